package daemon_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/poddns/poddns/pkg/serve/daemon"
)

// TestMetricsLint runs promlint over everything a dnsd registers (every
// handler's metrics, the store's, the source's), not only one package's.
func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := daemon.Defaults()
	cfg.Source.File = exampleCluster
	cfg.Forward.Upstreams = []string{"127.0.0.1:1"}
	if _, err := daemon.New(cfg, daemon.Options{Registry: reg}); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "poddns_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "poddns_") {
			n++
		}
	}
	// Vectors without series are not gathered: the plain metrics of every
	// handler and of the store are.
	if n < 12 {
		t.Errorf("%d poddns metrics gathered, want the handlers' too (at least 12)", n)
	}
}
