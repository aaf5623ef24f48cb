package scan

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/poddns/poddns/pkg/promopts"
)

// subsystem is the metrics' subsystem: poddns_webhook_report_*.
const subsystem = "webhook_report"

// Metrics are the scan's Prometheus metrics (see the package documentation).
type Metrics struct {
	OutOfPolicy *prometheus.GaugeVec
	Scanned     prometheus.Gauge
	Scans       *prometheus.CounterVec
	Duration    prometheus.Histogram
}

// Values of the result label of poddns_webhook_report_scans_total.
const (
	ScanSuccess = "success"
	ScanError   = "error"
)

// NewMetrics makes the metrics and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		OutOfPolicy: prometheus.NewGaugeVec(promopts.Gauge(subsystem, "pods_out_of_policy",
			"Pods whose DNS differs from what the policy gives them at creation (a fail result), in the last scan; one series per policy in use."),
			[]string{"policy"}),
		Scanned: prometheus.NewGauge(promopts.Gauge(subsystem, "pods_scanned",
			"Pods compared with the policies in the last complete scan.")),
		Scans: prometheus.NewCounterVec(promopts.Counter(subsystem, "scans_total",
			"Background scans of running pods, by result (success, error)."), []string{"result"}),
		Duration: prometheus.NewHistogram(promopts.Histogram(subsystem, "scan_duration_seconds",
			"Time a background scan takes, listing and report writes included.", prometheus.ExponentialBuckets(0.5, 2, 12))),
	}
	for _, r := range []string{ScanSuccess, ScanError} {
		m.Scans.WithLabelValues(r)
	}
	if err := promopts.Register(reg, subsystem, m.OutOfPolicy, m.Scanned, m.Scans, m.Duration); err != nil {
		return nil, err
	}
	return m, nil
}
