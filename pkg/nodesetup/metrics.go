package nodesetup

import "github.com/prometheus/client_golang/prometheus"

// Steps, the values of the step label.
const (
	StepLock      = "lock"
	StepInterface = "interface"
	StepRules     = "rules"
	StepTeardown  = "teardown"
)

// metrics count what went wrong and what was repaired, by step, as
// NodeLocal DNSCache's coredns_nodecache_setup_errors_total{errortype}.
type metrics struct {
	errors  *prometheus.CounterVec
	repairs *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "poddns", Subsystem: "nodelocal", Name: "setup_errors_total",
			Help: "Failed node setup steps (lock, interface, rules, teardown).",
		}, []string{"step"}),
		repairs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "poddns", Subsystem: "nodelocal", Name: "setup_repairs_total",
			Help: "Node setup found missing or changed by a periodic check and put back, by step (interface, rules).",
		}, []string{"step"}),
	}
	// Every step shows from the start, at 0.
	for _, s := range []string{StepLock, StepInterface, StepRules, StepTeardown} {
		m.errors.WithLabelValues(s)
	}
	for _, s := range []string{StepInterface, StepRules} {
		m.repairs.WithLabelValues(s)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.errors, m.repairs} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
