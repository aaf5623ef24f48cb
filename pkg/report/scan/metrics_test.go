package scan_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/poddns/poddns/pkg/report/scan"
)

// TestMetricsLint runs promlint over the scan's metrics.
func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := scan.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.OutOfPolicy.WithLabelValues("ndots").Set(2)
	m.Scanned.Set(4)
	m.Duration.Observe(1.5)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil || len(problems) > 0 {
		t.Errorf("promlint: %v %v", problems, err)
	}
	if n := testutil.CollectAndCount(m.Scans); n != 2 {
		t.Errorf("scans_total series = %d, want success and error", n)
	}
}
