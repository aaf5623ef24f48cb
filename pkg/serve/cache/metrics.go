package cache

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
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
	const ns, sub = "poddns", "cache"
	m := &Metrics{
		requests: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "requests_total",
			Help: "Queries that reached the cache."}),
		hits: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "hits_total",
			Help: "Queries answered from the cache, by cache (success or denial)."}, []string{"type"}),
		misses: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "misses_total",
			Help: "Queries the cache handed on."}),
		entries: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "entries",
			Help: "Entries in the cache, by cache (success or denial)."}, []string{"type"}),
		evictions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "evictions_total",
			Help: "Entries evicted to make room, by cache (success or denial)."}, []string{"type"}),
		prefetches: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "prefetch_total",
			Help: "Popular entries refreshed in the background before they expired."}),
		stale: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "served_stale_total",
			Help: "Expired answers served because the next handler failed (RFC 8767)."}),
		coalesced: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "coalesced_total",
			Help: "Misses that waited for an identical query already in flight instead of asking the next handler."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.hits, m.misses, m.entries, m.evictions, m.prefetches, m.stale, m.coalesced} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("cache: register metrics: %w", err)
			}
		}
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
