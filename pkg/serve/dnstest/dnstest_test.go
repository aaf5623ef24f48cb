package dnstest_test

import (
	"slices"
	"testing"

	"github.com/poddns/poddns/pkg/serve/dnstest"
)

// TestSumMetrics: every series of a name counts, a longer name that starts
// with it and the HELP and TYPE lines do not, a missing metric is 0, and a
// sample that is not a number is an error.
func TestSumMetrics(t *testing.T) {
	const exposition = `# HELP poddns_dns_requests_total Queries.
# TYPE poddns_dns_requests_total counter
poddns_dns_requests_total{proto="udp"} 3
poddns_dns_requests_total{proto="tcp"} 2.5
poddns_dns_requests_total_created 9
poddns_querylog_dropped_total 0
poddns_querylog_lines_total 7
`
	got, err := dnstest.SumMetrics(exposition, "poddns_dns_requests_total", "poddns_querylog_lines_total", "poddns_querylog_dropped_total", "absent_total")
	if err != nil {
		t.Fatal(err)
	}
	if want := []float64{5.5, 7, 0, 0}; !slices.Equal(got, want) {
		t.Errorf("sums %v, want %v", got, want)
	}
	if _, err := dnstest.SumMetrics("poddns_x_total{a=\"b\"} many\n", "poddns_x_total"); err == nil {
		t.Error("a sample that is not a number: no error")
	}
}
