package nodelocal

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/nodesetup"
)

// TestNodeProfileFromKubeletConfig: the profile is the kubelet's (cluster
// domain, cluster DNS, the resolv.conf it names, relative to the file),
// with the kubelet-flag overrides on top.
func TestNodeProfileFromKubeletConfig(t *testing.T) {
	dir := t.TempDir()
	testenv.WriteFile(t, dir, "resolv.conf", "nameserver 192.0.2.53\nsearch corp.example\n")
	testenv.WriteFile(t, dir, "other.conf", "nameserver 192.0.2.54\nsearch lab.example\n")
	kc := testenv.WriteFile(t, dir, "config.yaml", "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"+
		"clusterDomain: cluster.local\nclusterDNS: [10.96.0.10]\nresolvConf: resolv.conf\n")

	c := Config{KubeletConfig: kc, NodeName: "n1"}.WithDefaults()
	nc, warnings, err := c.NodeConfig()
	if err != nil || len(warnings) > 0 {
		t.Fatalf("NodeConfig: %v %v", err, warnings)
	}
	if nc.ClusterDomain != "cluster.local" || !slices.Equal(nc.ClusterDNS, []string{"10.96.0.10"}) || nc.ResolvConf != filepath.Join(dir, "resolv.conf") {
		t.Fatalf("NodeConfig: %+v", nc)
	}
	p, err := c.NodeProfile()
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Host(); got == nil || len(got.Searches) != 1 || got.Searches[0] != "corp.example" {
		t.Errorf("profile host file %+v", got)
	}

	domain, other := "k8s.example", filepath.Join(dir, "other.conf")
	c.ClusterDomain, c.ClusterDNS, c.ResolvConf = &domain, []string{"169.254.20.10"}, &other
	nc, _, err = c.NodeConfig()
	if err != nil || nc.ClusterDomain != domain || !slices.Equal(nc.ClusterDNS, []string{"169.254.20.10"}) || nc.ResolvConf != other {
		t.Fatalf("with overrides: %+v %v", nc, err)
	}

	missing := Config{KubeletConfig: filepath.Join(dir, "nope.yaml"), NodeName: "n1"}.WithDefaults()
	if err := missing.Validate(); err != nil {
		t.Errorf("Validate read the kubelet config: %v", err)
	}
	if _, err := missing.NodeProfile(); err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("NodeProfile with a missing kubelet config: %v", err)
	}
	gone := Config{KubeletConfig: testenv.WriteFile(t, dir, "gone.yaml", "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nresolvConf: /nonexistent/resolv.conf\n"), NodeName: "n1"}.WithDefaults()
	if _, err := gone.NodeProfile(); err == nil {
		t.Errorf("NodeProfile with an unreadable node resolv.conf: no error")
	}
}

func TestConfigDefaultsValidate(t *testing.T) {
	t.Setenv(NodeNameEnv, "node-a")
	c := Config{}.WithDefaults()
	if c.NodeName != "node-a" || c.Interface != nodesetup.DefaultInterface || !slices.Equal(c.IPs, []string{nodesetup.DefaultLinkLocalIP}) {
		t.Fatalf("defaults: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	ls, err := c.Listens()
	if err != nil || !slices.Equal(ls, []string{"169.254.20.10:53"}) {
		t.Fatalf("Listens: %v %v", ls, err)
	}
	c.IPs = []string{"169.254.20.10", "10.96.0.10", "fd00::a"}
	ls, _ = c.Listens()
	if !slices.Equal(ls, []string{"169.254.20.10:53", "10.96.0.10:53", "[fd00::a]:53"}) {
		t.Fatalf("Listens: %v", ls)
	}

	t.Setenv(NodeNameEnv, "")
	for _, tc := range []struct {
		name string
		c    Config
		want string
	}{
		{"no node name", Config{}, "nodeName is required"},
		{"bad central", Config{NodeName: "n", Central: "dns.example"}, "central"},
		{"bad ip", Config{NodeName: "n", Config: nodesetup.Config{IPs: []string{"x"}}}, `ip "x"`},
	} {
		if err := tc.c.WithDefaults().Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate = %v, want %q", tc.name, err, tc.want)
		}
	}
	for in, want := range map[string]string{"10.96.0.11": "10.96.0.11:53", "10.96.0.11:5353": "10.96.0.11:5353", "fd00::b": "[fd00::b]:53"} {
		if got, err := CentralAddr(in); err != nil || got != want {
			t.Errorf("CentralAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// TestPodsServer: the central server when named, else the first cluster
// DNS IP that is not a listen IP (transparent mode's own would come back
// here), from the overrides or the kubelet configuration; none is an error
// that Validate reports without reading a file.
func TestPodsServer(t *testing.T) {
	dir := t.TempDir()
	testenv.WriteFile(t, dir, "resolv.conf", "nameserver 192.0.2.53\n")
	kc := testenv.WriteFile(t, dir, "config.yaml", "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"+
		"clusterDNS: [10.96.0.10]\nresolvConf: resolv.conf\n")
	linkLocal, transparent := []string{"169.254.20.10"}, []string{"169.254.20.10", "10.96.0.10"}
	for _, tc := range []struct {
		name       string
		c          Config
		want, fail string
		validates  bool
	}{
		{"central", Config{Central: "10.96.0.11", Config: nodesetup.Config{IPs: transparent}}, "10.96.0.11:53", "", true},
		{"central with port", Config{Central: "10.96.0.11:5353", Config: nodesetup.Config{IPs: transparent}}, "10.96.0.11:5353", "", true},
		{"link-local: the kubelet's cluster DNS IP", Config{KubeletConfig: kc, Config: nodesetup.Config{IPs: linkLocal}}, "10.96.0.10:53", "", true},
		{"transparent: the kubelet's cluster DNS IP is ours", Config{KubeletConfig: kc, Config: nodesetup.Config{IPs: transparent}}, "", "all listen IPs", true},
		{"override, the second IP", Config{ClusterDNS: []string{"10.96.0.10", "10.96.0.12"}, Config: nodesetup.Config{IPs: transparent}}, "10.96.0.12:53", "", true},
		{"override, all ours", Config{ClusterDNS: []string{"10.96.0.10"}, Config: nodesetup.Config{IPs: transparent}}, "", "all listen IPs", false},
		{"nothing to ask", Config{Config: nodesetup.Config{IPs: linkLocal}}, "", "needs a server for the pods of other nodes", false},
		{"missing kubelet config", Config{KubeletConfig: filepath.Join(dir, "nope.yaml"), Config: nodesetup.Config{IPs: linkLocal}}, "", "nope.yaml", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c
			c.NodeName = "n1"
			c = c.WithDefaults()
			got, err := c.PodsServer()
			if tc.fail == "" && (err != nil || got != tc.want) {
				t.Errorf("PodsServer = %q, %v; want %q", got, err, tc.want)
			}
			if tc.fail != "" && (err == nil || !strings.Contains(err.Error(), tc.fail)) {
				t.Errorf("PodsServer = %q, %v; want an error with %q", got, err, tc.fail)
			}
			if err := c.ValidatePodsServer(); (err == nil) != tc.validates {
				t.Errorf("ValidatePodsServer = %v, want ok %v", err, tc.validates)
			}
		})
	}
}
