package nodesetup

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/poddns/poddns/pkg/promopts"
)

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
		errors:  prometheus.NewCounterVec(promopts.Counter("nodelocal", "setup_errors_total", "Failed node setup steps (lock, interface, rules, teardown)."), []string{"step"}),
		repairs: prometheus.NewCounterVec(promopts.Counter("nodelocal", "setup_repairs_total", "Node setup found missing or changed by a periodic check and put back, by step (interface, rules)."), []string{"step"}),
	}
	// Every step shows from the start, at 0.
	for _, s := range []string{StepLock, StepInterface, StepRules, StepTeardown} {
		m.errors.WithLabelValues(s)
	}
	for _, s := range []string{StepInterface, StepRules} {
		m.repairs.WithLabelValues(s)
	}
	if err := promopts.Register(reg, "nodelocal", m.errors, m.repairs); err != nil {
		return nil, err
	}
	return m, nil
}
