package sizing_test

import (
	"testing"

	"github.com/poddns/poddns/pkg/serve/sizing"
)

// TestBoundMB pins the formula's published figures: deploy/'s memory limit
// and README's sizing note quote them.
func TestBoundMB(t *testing.T) {
	for _, tc := range []struct {
		c    sizing.Cluster
		want float64
	}{
		{sizing.Cluster{}, 56},
		{sizing.Cluster{Pods: 150000, Services: 10000}, 311}, // deploy/base/dnsd/deployment.yaml: limits.memory 320Mi
		{sizing.Cluster{Pods: 16500, Services: 2500}, 88.25}, // TestDNSScaleAPIRestart
		{sizing.Cluster{Services: 10000}, 86},                // pods off
	} {
		if got := sizing.BoundMB(tc.c); got != tc.want {
			t.Errorf("BoundMB(%+v) = %v, want %v", tc.c, got, tc.want)
		}
	}
}
