package cache

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/poddns/poddns/pkg/promopts"
)

// Metrics are the cache's metrics; they outlive a cache (a reload builds a
// new one), so they are made once with NewMetrics and passed in Options.
type Metrics struct {
	requests   prometheus.Counter
	hits       *prometheus.CounterVec
	misses     prometheus.Counter
	entries    *prometheus.GaugeVec
	evictions  *prometheus.CounterVec
	prefetches prometheus.Counter
	stale      prometheus.Counter
	coalesced  prometheus.Counter
}

// NewMetrics makes the metrics and registers them with reg; a nil reg keeps
// them unregistered (tests).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	const sub = "cache"
	m := &Metrics{
		requests:   prometheus.NewCounter(promopts.Counter(sub, "requests_total", "Queries that reached the cache.")),
		hits:       prometheus.NewCounterVec(promopts.Counter(sub, "hits_total", "Queries answered from the cache, by cache (success or denial)."), []string{"type"}),
		misses:     prometheus.NewCounter(promopts.Counter(sub, "misses_total", "Queries the cache handed on.")),
		entries:    prometheus.NewGaugeVec(promopts.Gauge(sub, "entries", "Entries in the cache, by cache (success or denial)."), []string{"type"}),
		evictions:  prometheus.NewCounterVec(promopts.Counter(sub, "evictions_total", "Entries evicted to make room, by cache (success or denial)."), []string{"type"}),
		prefetches: prometheus.NewCounter(promopts.Counter(sub, "prefetch_total", "Popular entries refreshed in the background before they expired.")),
		stale:      prometheus.NewCounter(promopts.Counter(sub, "served_stale_total", "Expired answers served because the next handler failed (RFC 8767).")),
		coalesced:  prometheus.NewCounter(promopts.Counter(sub, "coalesced_total", "Misses that waited for an identical query already in flight instead of asking the next handler.")),
	}
	if err := promopts.Register(reg, sub, m.requests, m.hits, m.misses, m.entries, m.evictions, m.prefetches, m.stale, m.coalesced); err != nil {
		return nil, err
	}
	return m, nil
}

// Hits is poddns_cache_hits_total of one cache type.
func (m *Metrics) Hits(typ string) prometheus.Counter { return m.hits.WithLabelValues(typ) }

// Entries is poddns_cache_entries of one cache type.
func (m *Metrics) Entries(typ string) prometheus.Gauge { return m.entries.WithLabelValues(typ) }

// Evictions is poddns_cache_evictions_total of one cache type.
func (m *Metrics) Evictions(typ string) prometheus.Counter { return m.evictions.WithLabelValues(typ) }

// Prefetches is poddns_cache_prefetch_total.
func (m *Metrics) Prefetches() prometheus.Counter { return m.prefetches }

// Stale is poddns_cache_served_stale_total.
func (m *Metrics) Stale() prometheus.Counter { return m.stale }

// Misses is poddns_cache_misses_total.
func (m *Metrics) Misses() prometheus.Counter { return m.misses }

// Coalesced is poddns_cache_coalesced_total.
func (m *Metrics) Coalesced() prometheus.Counter { return m.coalesced }
