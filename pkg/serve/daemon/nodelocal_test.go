package daemon_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/poddns/poddns/pkg/serve/cluster"
	"github.com/poddns/poddns/pkg/serve/daemon"
	"github.com/poddns/poddns/pkg/serve/dnstest"
)

// TestNodeLocalConfig: node-local mode's defaults once the file and the
// flags are in (the node name from $NODE_NAME, the setup's defaults,
// upstreams from the node's resolv.conf or the central server when none
// are configured), what its validation refuses, and the kubelet
// configuration read when the daemon is built. (cmd/dnsd tests the
// node-local flags.)
func TestNodeLocalConfig(t *testing.T) {
	t.Setenv("NODE_NAME", "node-env")
	resolv := dnstest.WriteFile(t, "resolv.conf", "nameserver 192.0.2.53\nsearch corp.example\n")
	kubelet := dnstest.WriteFile(t, "config.yaml", "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nclusterDomain: cluster.local\nclusterDNS: [10.96.0.10]\nresolvConf: "+resolv+"\n")
	// nodeLocal is a config file with the nodeLocal block.
	nodeLocal := func(block string) string {
		return dnstest.WriteFile(t, "dnsd.yaml", header+"source: {file: x}\nnodeLocal: "+block+"\n")
	}
	cfg := load(t, nodeLocal("{kubeletConfig: "+kubelet+", resolvConf: "+resolv+"}"))
	if cfg.Forward.ResolvConf != resolv || len(cfg.Forward.Upstreams) != 0 {
		t.Errorf("default upstreams: %+v, want the node's resolv.conf that nodeLocal.resolvConf names", cfg.Forward)
	}
	if cfg := load(t, nodeLocal("{}")); cfg.Forward.ResolvConf != "/etc/resolv.conf" {
		t.Errorf("without a kubelet config: upstreams %+v; want /etc/resolv.conf", cfg.Forward)
	}
	// Defaults, $NODE_NAME, the central server as upstream (over TCP).
	cfg = load(t, nodeLocal("{central: 10.96.0.11}"))
	if nl := cfg.NodeLocal; nl == nil || nl.NodeName != "node-env" || !slices.Equal(nl.IPs, []string{"169.254.20.10"}) || nl.Interface != "poddns0" || !*nl.SetupInterface ||
		!slices.Equal(cfg.Forward.Upstreams, []string{"10.96.0.11"}) || cfg.Forward.ResolvConf != "" || !cfg.Forward.ForceTCP {
		t.Fatalf("defaults: %+v, forward %+v", cfg.NodeLocal, cfg.Forward)
	}
	// Explicit upstreams (a flag's, bound before the defaults) win over
	// the node-local default.
	cfg = load(t, nodeLocal("{}"), upstreams("192.0.2.1"))
	if !slices.Equal(cfg.Forward.Upstreams, []string{"192.0.2.1"}) || cfg.Forward.ResolvConf != "" {
		t.Fatalf("explicit upstream: %+v", cfg.Forward)
	}

	verified := func(c *daemon.Config) error { c.Pods = cluster.PodsVerified; return nil }
	for _, tc := range []struct {
		block string
		bind  func(*daemon.Config) error
		want  string
	}{
		{"{ips: [127.0.0.1]}", nil, "loopback"},
		{"{}", verified, "pods: verified needs a server for the pods of other nodes"},
	} {
		if _, err := daemon.Load(nodeLocal(tc.block), tc.bind); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.block, err, tc.want)
		}
	}
	// Verified pod records with the central server to ask for other
	// nodes' pods.
	if _, err := daemon.Load(nodeLocal("{nodeName: node-a, central: 10.96.0.11}"), verified); err != nil {
		t.Errorf("verified pods with central: %v", err)
	}
	// The kubelet configuration is read when completion is built.
	cfg = load(t, nodeLocal("{nodeName: node-a, kubeletConfig: /nonexistent/config.yaml}"))
	if _, err := daemon.New(cfg, daemon.Options{}); err == nil || !strings.Contains(err.Error(), "/nonexistent/config.yaml") {
		t.Errorf("missing kubelet config: New error = %v", err)
	}
	t.Setenv("NODE_NAME", "")
	if _, err := daemon.Load(nodeLocal("{}"), nil); err == nil || !strings.Contains(err.Error(), "nodeName is required") {
		t.Errorf("no node name: %v", err)
	}
}
