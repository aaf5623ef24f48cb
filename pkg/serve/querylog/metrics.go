package querylog

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
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
	const ns, sub = "poddns", "querylog"
	m := &Metrics{
		lines: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "lines_total",
			Help: "Query log lines written."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "dropped_total",
			Help: "Query log lines dropped because the writer's queue was full (serving never waits for the log)."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.lines, m.dropped} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("querylog metrics: %w", err)
			}
		}
	}
	return m, nil
}

// Dropped returns the counter of dropped lines (for tests).
func (m *Metrics) Dropped() prometheus.Counter { return m.dropped }

// Lines returns the counter of lines written (for tests).
func (m *Metrics) Lines() prometheus.Counter { return m.lines }
