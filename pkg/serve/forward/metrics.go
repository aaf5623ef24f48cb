package forward

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/poddns/poddns/pkg/promopts"
)

// Metrics are the forwarder's metrics. They outlive a forwarder (a reload
// builds a new one), so they are made once with NewMetrics and passed in
// Options.
type Metrics struct {
	requests     *prometheus.CounterVec
	responses    *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	hcFailures   *prometheus.CounterVec
	hcBroken     prometheus.Counter
	rejects      prometheus.Counter
	inflight     prometheus.Gauge
	connHits     *prometheus.CounterVec
	connMisses   *prometheus.CounterVec
	staleReplies prometheus.Counter
	caseMismatch *prometheus.CounterVec

	tlsHandshakeErrors *prometheus.CounterVec
}

// NewMetrics makes the metrics and registers them with reg; a nil reg keeps
// them unregistered (tests).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	const sub = "forward"
	m := &Metrics{
		requests:  prometheus.NewCounterVec(promopts.Counter(sub, "requests_total", "Queries sent to upstreams (one per try), by upstream."), []string{"to"}),
		responses: prometheus.NewCounterVec(promopts.Counter(sub, "responses_total", "Replies received from upstreams, by upstream and rcode."), []string{"to", "rcode"}),
		duration: prometheus.NewHistogramVec(promopts.Histogram(sub, "request_duration_seconds", "Round trip of one try to an upstream, by upstream and rcode (timeouts have rcode \"timeout\").", prometheus.ExponentialBuckets(0.00025, 2, 16)),
			[]string{"to", "rcode"}),
		hcFailures:         prometheus.NewCounterVec(promopts.Counter(sub, "healthcheck_failures_total", "Health-check probes an upstream did not answer, by upstream."), []string{"to"}),
		hcBroken:           prometheus.NewCounter(promopts.Counter(sub, "healthcheck_broken_total", "Queries forwarded while every upstream was marked down.")),
		rejects:            prometheus.NewCounter(promopts.Counter(sub, "max_concurrent_rejects_total", "Queries answered REFUSED because the in-flight limit was reached.")),
		inflight:           prometheus.NewGauge(promopts.Gauge(sub, "inflight", "Queries being forwarded.")),
		connHits:           prometheus.NewCounterVec(promopts.Counter(sub, "conn_cache_hits_total", "Tries that reused a pooled upstream socket, by transport."), []string{"proto"}),
		connMisses:         prometheus.NewCounterVec(promopts.Counter(sub, "conn_cache_misses_total", "Tries that dialled a new upstream socket, by transport."), []string{"proto"}),
		staleReplies:       prometheus.NewCounter(promopts.Counter(sub, "dropped_replies_total", "Packets from upstreams dropped because their ID or question did not match the query.")),
		caseMismatch:       prometheus.NewCounterVec(promopts.Counter(sub, "case_mismatches_total", "Replies dropped because they did not echo the 0x20 case of the query name (the upstream then gets names unchanged for a while), by upstream."), []string{"to"}),
		tlsHandshakeErrors: prometheus.NewCounterVec(promopts.Counter(sub, "tls_handshake_errors_total", "TLS handshakes with tls:// upstreams that failed, by upstream and reason (certificate: not verified, e.g. an unknown CA or another server name; other)."), []string{"to", "reason"}),
	}
	if err := promopts.Register(reg, sub, m.requests, m.responses, m.duration, m.hcFailures, m.hcBroken, m.rejects, m.inflight, m.connHits, m.connMisses, m.staleReplies, m.caseMismatch, m.tlsHandshakeErrors); err != nil {
		return nil, err
	}
	return m, nil
}

// Rejects is poddns_forward_max_concurrent_rejects_total.
func (m *Metrics) Rejects() prometheus.Counter { return m.rejects }

// Dropped is poddns_forward_dropped_replies_total.
func (m *Metrics) Dropped() prometheus.Counter { return m.staleReplies }

// HealthcheckFailures is poddns_forward_healthcheck_failures_total of one
// upstream.
func (m *Metrics) HealthcheckFailures(to string) prometheus.Counter {
	return m.hcFailures.WithLabelValues(to)
}

// ConnCacheHits is poddns_forward_conn_cache_hits_total of one transport.
func (m *Metrics) ConnCacheHits(proto string) prometheus.Counter {
	return m.connHits.WithLabelValues(proto)
}

// CaseMismatches is poddns_forward_case_mismatches_total of one upstream.
func (m *Metrics) CaseMismatches(to string) prometheus.Counter {
	return m.caseMismatch.WithLabelValues(to)
}

// InFlight is poddns_forward_inflight.
func (m *Metrics) InFlight() prometheus.Gauge { return m.inflight }

// TLSHandshakeErrors is poddns_forward_tls_handshake_errors_total of one
// upstream ("tls://IP:port") and reason (certificate or other).
func (m *Metrics) TLSHandshakeErrors(to, reason string) prometheus.Counter {
	return m.tlsHandshakeErrors.WithLabelValues(to, reason)
}

// ConnCacheMisses is poddns_forward_conn_cache_misses_total of one
// transport.
func (m *Metrics) ConnCacheMisses(proto string) prometheus.Counter {
	return m.connMisses.WithLabelValues(proto)
}

// Requests is poddns_forward_requests_total of one upstream.
func (m *Metrics) Requests(to string) prometheus.Counter {
	return m.requests.WithLabelValues(to)
}
