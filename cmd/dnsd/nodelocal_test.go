package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/poddns/poddns/pkg/serve/daemon"
	"github.com/poddns/poddns/pkg/serve/dnstest"
)

// TestNodeLocalConfig: the nodeLocal block and its flags (flags win field
// by field), node-local defaults (node name from $NODE_NAME, upstreams
// from the node's resolv.conf or the central server, completion on with a
// kubelet config), and node-local flags refused outside node-local mode.
func TestNodeLocalConfig(t *testing.T) {
	t.Setenv("NODE_NAME", "node-env")
	resolv := dnstest.WriteFile(t, "resolv.conf", "nameserver 192.0.2.53\nsearch corp.example\n")
	kubelet := dnstest.WriteFile(t, "config.yaml", "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nclusterDomain: cluster.local\nclusterDNS: [10.96.0.10]\nresolvConf: "+resolv+"\n")
	file := dnstest.WriteFile(t, "dnsd.yaml", `
apiVersion: poddns.io/v1alpha1
kind: DNSDConfig
source: {file: `+exampleCluster+`}
nodeLocal:
  ips: [169.254.20.10, 10.96.0.10]
  interface: nodedns0
  kubeletConfig: `+kubelet+`
  resolvConf: `+resolv+`
  setupRules: false
`)
	cfg, err := loadArgs(t, "--config", file, "--node-name", "node-flag", "--node-local-ip", "169.254.20.10,10.96.0.10,fd00::a", "--skip-teardown")
	if err != nil {
		t.Fatal(err)
	}
	nl := cfg.NodeLocal
	if nl == nil || nl.NodeName != "node-flag" || nl.Interface != "nodedns0" || !slices.Equal(nl.IPs, []string{"169.254.20.10", "10.96.0.10", "fd00::a"}) ||
		*nl.SetupRules || !*nl.SetupInterface || !nl.SkipTeardown || nl.KubeletConfig != kubelet {
		t.Fatalf("nodeLocal: %+v", nl)
	}
	if cfg.Forward.ResolvConf != resolv || len(cfg.Forward.Upstreams) != 0 {
		t.Errorf("default upstreams: %+v, want the node's resolv.conf that nodeLocal.resolvConf names", cfg.Forward)
	}

	// Flags alone: defaults, $NODE_NAME, the central server as upstream.
	cfg, err = loadArgs(t, "--source", exampleCluster, "--node-local", "--node-local-central", "10.96.0.11")
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := loadArgs(t, "--source", exampleCluster, "--node-local"); err != nil || cfg.Forward.ResolvConf != "/etc/resolv.conf" {
		t.Errorf("without a kubelet config: upstreams %+v, %v; want /etc/resolv.conf", cfg.Forward, err)
	}
	if nl := cfg.NodeLocal; nl == nil || nl.NodeName != "node-env" || !slices.Equal(nl.IPs, []string{"169.254.20.10"}) || nl.Interface != "poddns0" ||
		!slices.Equal(cfg.Forward.Upstreams, []string{"10.96.0.11"}) || cfg.Forward.ResolvConf != "" || !cfg.Forward.ForceTCP {
		t.Fatalf("flags only: %+v, forward %+v", cfg.NodeLocal, cfg.Forward)
	}
	// Explicit upstreams win over the node-local default.
	cfg, err = loadArgs(t, "--source", exampleCluster, "--node-local", "--upstream", "192.0.2.1")
	if err != nil || !slices.Equal(cfg.Forward.Upstreams, []string{"192.0.2.1"}) || cfg.Forward.ResolvConf != "" {
		t.Fatalf("explicit upstream: %+v %v", cfg.Forward, err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--source", exampleCluster, "--kubelet-config", kubelet}, "--kubelet-config needs node-local mode"},
		{[]string{"--source", exampleCluster, "--skip-teardown"}, "--skip-teardown needs node-local mode"},
		{[]string{"--source", exampleCluster, "--node-local-ip", "127.0.0.1"}, "loopback"},
		{[]string{"--source", exampleCluster, "--node-local", "--pods", "verified"}, "pods: verified needs a server for the pods of other nodes"},
	} {
		if _, err := loadArgs(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
	// Verified pod records with the central server to ask for other
	// nodes' pods.
	if _, err := loadArgs(t, "--source", exampleCluster, "--node-local", "--node-name", "n", "--pods", "verified", "--node-local-central", "10.96.0.11"); err != nil {
		t.Errorf("verified pods with --node-local-central: %v", err)
	}
	// The kubelet configuration is read when completion is built.
	cfg, err = loadArgs(t, "--source", exampleCluster, "--node-local", "--node-name", "n", "--kubelet-config", "/nonexistent/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := daemon.New(cfg, daemon.Options{}); err == nil || !strings.Contains(err.Error(), "/nonexistent/config.yaml") {
		t.Errorf("missing kubelet config: New error = %v", err)
	}
	t.Setenv("NODE_NAME", "")
	if _, err := loadArgs(t, "--source", exampleCluster, "--node-local"); err == nil || !strings.Contains(err.Error(), "nodeName is required") {
		t.Errorf("no node name: %v", err)
	}
}
