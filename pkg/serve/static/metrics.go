package static

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the static handler's metrics, made once (they outlive
// reloads of dnsd's configuration).
type Metrics struct {
	reloads *prometheus.CounterVec
	refused *prometheus.CounterVec
}

// Refusal reasons.
var reasons = []string{"read", "parse", "incomplete", "empty"}

// NewMetrics makes the metrics and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "poddns", Subsystem: "static", Name: "reloads_total",
			Help: "Changed hosts files applied, by file."}, []string{"file"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "poddns", Subsystem: "static", Name: "reloads_refused_total",
			Help: "Changed hosts files refused (the last good records keep serving), by reason: read, parse, incomplete or empty."}, []string{"reason"}),
	}
	for _, r := range reasons {
		m.refused.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.reloads, m.refused} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("static metrics: %w", err)
			}
		}
	}
	return m, nil
}

// Refused returns the counter of refused reloads for reason (for tests).
func (m *Metrics) Refused(reason string) prometheus.Counter { return m.refused.WithLabelValues(reason) }
