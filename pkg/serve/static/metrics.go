package static

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/poddns/poddns/pkg/promopts"
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
		reloads: prometheus.NewCounterVec(promopts.Counter("static", "reloads_total", "Changed hosts files applied, by file."), []string{"file"}),
		refused: prometheus.NewCounterVec(promopts.Counter("static", "reloads_refused_total",
			"Changed hosts files refused (the last good records keep serving), by reason: read, parse, incomplete or empty."), []string{"reason"}),
	}
	for _, r := range reasons {
		m.refused.WithLabelValues(r)
	}
	if err := promopts.Register(reg, "static", m.reloads, m.refused); err != nil {
		return nil, err
	}
	return m, nil
}

// Refused returns the counter of refused reloads for reason (for tests).
func (m *Metrics) Refused(reason string) prometheus.Counter { return m.refused.WithLabelValues(reason) }
