package admission

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/poddns/poddns/pkg/promopts"
)

// Result label values of poddns_webhook_admissions_total.
const (
	ResultPatched   = "patched"   // the pod was mutated
	ResultUnchanged = "unchanged" // evaluated; nothing to change (audit only, reinvocation, no match)
	ResultExempt    = "exempt"    // opt-out annotation, mirror or Windows pod
	ResultExcluded  = "excluded"  // kube-system or a configured excluded namespace
	ResultIgnored   = "ignored"   // not a CREATE, or not a pod
	ResultNoLabels  = "namespace-unavailable"
	ResultError     = "error" // malformed request or internal error
)

// Metrics are the webhook's Prometheus collectors (namespace poddns,
// subsystem webhook).
type Metrics struct {
	Admissions     *prometheus.CounterVec
	Duration       prometheus.Histogram
	Matches        *prometheus.CounterVec
	AuditChanges   *prometheus.CounterVec
	Skipped        *prometheus.CounterVec
	Reloads        prometheus.Counter
	ReloadFailures prometheus.Counter
	Policies       prometheus.Gauge
	// Refused counts requests the server answered at once, never handled, by
	// reason (RefusedTooLarge, RefusedBusy).
	Refused *prometheus.CounterVec
}

// NewMetrics makes the collectors and registers them with reg (the webhook
// registers them with controller-runtime's metrics.Registry, so they are
// served next to controller-runtime's own). Collectors already registered
// with reg (a second handler in one process) are reused. A nil reg registers
// nothing.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	const sub = "webhook"
	m := &Metrics{
		Admissions:     prometheus.NewCounterVec(promopts.Counter(sub, "admissions_total", "Admission requests answered, by result (patched, unchanged, exempt, excluded, ignored, namespace-unavailable, error)."), []string{"result"}),
		Duration:       prometheus.NewHistogram(promopts.Histogram(sub, "admission_duration_seconds", "Time to answer an admission request, in the handler.", []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1})),
		Matches:        prometheus.NewCounterVec(promopts.Counter(sub, "policy_matches_total", "Pods a policy selected, by policy and outcome (applied, unchanged, audit, skipped)."), []string{"policy", "outcome"}),
		AuditChanges:   prometheus.NewCounterVec(promopts.Counter(sub, "audit_would_change_total", "Pods an audit-mode policy would have changed."), []string{"policy"}),
		Skipped:        prometheus.NewCounterVec(promopts.Counter(sub, "policy_skipped_total", "Pods a policy was skipped for because its result would be invalid or truncated."), []string{"policy"}),
		Reloads:        prometheus.NewCounter(promopts.Counter(sub, "policy_reloads_total", "Policy reloads attempted.")),
		ReloadFailures: prometheus.NewCounter(promopts.Counter(sub, "policy_reload_failures_total", "Policy reloads that failed; the policies in use stayed.")),
		Policies:       prometheus.NewGauge(promopts.Gauge(sub, "policies", "Policies in use.")),
		Refused:        prometheus.NewCounterVec(promopts.Counter(sub, "requests_refused_total", "Requests answered at once with an error, never handled, by reason (too-large: over the body limit; busy: over the in-flight budget)."), []string{"reason"}),
	}
	for _, r := range []string{RefusedTooLarge, RefusedBusy} {
		m.Refused.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	register := func(c prometheus.Collector, set func(prometheus.Collector)) {
		err := reg.Register(c)
		var are prometheus.AlreadyRegisteredError
		switch {
		case err == nil:
		case errors.As(err, &are):
			set(are.ExistingCollector)
		default:
			errs = append(errs, err)
		}
	}
	register(m.Admissions, func(c prometheus.Collector) { m.Admissions = c.(*prometheus.CounterVec) })
	register(m.Duration, func(c prometheus.Collector) { m.Duration = c.(prometheus.Histogram) })
	register(m.Matches, func(c prometheus.Collector) { m.Matches = c.(*prometheus.CounterVec) })
	register(m.AuditChanges, func(c prometheus.Collector) { m.AuditChanges = c.(*prometheus.CounterVec) })
	register(m.Skipped, func(c prometheus.Collector) { m.Skipped = c.(*prometheus.CounterVec) })
	register(m.Reloads, func(c prometheus.Collector) { m.Reloads = c.(prometheus.Counter) })
	register(m.ReloadFailures, func(c prometheus.Collector) { m.ReloadFailures = c.(prometheus.Counter) })
	register(m.Policies, func(c prometheus.Collector) { m.Policies = c.(prometheus.Gauge) })
	register(m.Refused, func(c prometheus.Collector) { m.Refused = c.(*prometheus.CounterVec) })
	return m, errors.Join(errs...)
}

// ObserveReload records a reload attempt and its result, and the number of
// policies now in use.
func (m *Metrics) ObserveReload(err error, policies int) {
	m.Reloads.Inc()
	if err != nil {
		m.ReloadFailures.Inc()
	}
	m.Policies.Set(float64(policies))
}
