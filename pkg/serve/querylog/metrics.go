package querylog

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/poddns/poddns/pkg/promopts"
)

// Metrics are the query log's metrics; they outlive a query log (a reload
// builds a new one), so they are made once with NewMetrics.
type Metrics struct {
	lines   prometheus.Counter
	dropped prometheus.Counter
}

// NewMetrics makes the metrics and registers them with reg; a nil reg keeps
// them unregistered (tests).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	const sub = "querylog"
	m := &Metrics{
		lines:   prometheus.NewCounter(promopts.Counter(sub, "lines_total", "Query log lines written.")),
		dropped: prometheus.NewCounter(promopts.Counter(sub, "dropped_total", "Query log lines dropped because the writer's queue was full (serving never waits for the log).")),
	}
	if err := promopts.Register(reg, sub, m.lines, m.dropped); err != nil {
		return nil, err
	}
	return m, nil
}

// Dropped returns the counter of dropped lines (for tests).
func (m *Metrics) Dropped() prometheus.Counter { return m.dropped }

// Lines returns the counter of lines written (for tests).
func (m *Metrics) Lines() prometheus.Counter { return m.lines }
