package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/poddns/poddns/pkg/serve/dnstest"
)

// TestNodeLocalFlags: the nodeLocal block and its flags (flags win field
// by field), --node-local and --node-local-central making the block, and
// node-local flags refused outside node-local mode. (pkg/serve/daemon
// tests node-local mode's defaults and validation.)
func TestNodeLocalFlags(t *testing.T) {
	kubelet := dnstest.WriteFile(t, "config.yaml", "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n")
	file := dnstest.WriteFile(t, "dnsd.yaml", `
apiVersion: poddns.io/v1alpha1
kind: DNSDConfig
source: {file: `+exampleCluster+`}
nodeLocal:
  ips: [169.254.20.10, 10.96.0.10]
  interface: nodedns0
  kubeletConfig: `+kubelet+`
  setupRules: false
`)
	t.Setenv("NODE_NAME", "node-env") // --node-name wins over it
	cfg, err := loadArgs(t, "--config", file, "--node-name", "node-flag", "--node-local-ip", "169.254.20.10,10.96.0.10,fd00::a", "--skip-teardown")
	if err != nil {
		t.Fatal(err)
	}
	nl := cfg.NodeLocal
	if nl == nil || nl.NodeName != "node-flag" || nl.Interface != "nodedns0" || !slices.Equal(nl.IPs, []string{"169.254.20.10", "10.96.0.10", "fd00::a"}) ||
		*nl.SetupRules || !*nl.SetupInterface || !nl.SkipTeardown || nl.KubeletConfig != kubelet {
		t.Fatalf("nodeLocal: %+v", nl)
	}
	// Flags alone.
	cfg, err = loadArgs(t, "--source", exampleCluster, "--node-local", "--node-local-central", "10.96.0.11")
	if err != nil {
		t.Fatal(err)
	}
	if nl := cfg.NodeLocal; nl == nil || nl.Central != "10.96.0.11" {
		t.Fatalf("flags only: %+v", cfg.NodeLocal)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--source", exampleCluster, "--kubelet-config", kubelet}, "--kubelet-config needs node-local mode"},
		{[]string{"--source", exampleCluster, "--skip-teardown"}, "--skip-teardown needs node-local mode"},
	} {
		if _, err := loadArgs(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}
