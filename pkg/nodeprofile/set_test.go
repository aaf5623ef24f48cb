package nodeprofile_test

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/nodeprofile"
	"github.com/poddns/poddns/pkg/resolvconf"
)

const setTwoPools = `apiVersion: poddns.io/v1alpha1
kind: NodeProfileSet
defaults:
  clusterDNS: [10.32.0.10]
  clusterDomain: corp.internal
profiles:
- name: short
  nodeSelector:
    matchLabels: {poddns.io/pool: short}
  resolvConfContent: |
    nameserver 10.0.0.2
    search a.example
- name: long
  nodeSelector:
    matchExpressions:
    - {key: node.kubernetes.io/instance-type, operator: In, values: [m5.large]}
  clusterDomain: other.internal
  resolvConf: node-resolv.conf
- name: rest
`

func TestParseSetErrors(t *testing.T) {
	checkParseErrors(t, "ParseSet", nodeprofile.ParseSet, "set.yaml", []errorCase{
		{"unknown field in a profile", "apiVersion: poddns.io/v1alpha1\nkind: NodeProfileSet\nprofiles:\n- name: a\n  clusterDns: [10.0.0.1]\n",
			"set.yaml: document 1, line 5: profiles[0].clusterDns: unknown field"},
		{"unknown field in a selector", "apiVersion: poddns.io/v1alpha1\nkind: NodeProfileSet\nprofiles:\n- name: a\n  nodeSelector: {matchLabel: {a: b}}\n",
			"line 5: profiles[0].nodeSelector.matchLabel: unknown field"},
		{"duplicate field", "apiVersion: poddns.io/v1alpha1\nkind: NodeProfileSet\nprofiles:\n- name: a\n  name: b\n",
			"line 5: profiles[0].name: duplicate field (first at line 4)"},
		{"a NodeProfile is not a set", "apiVersion: poddns.io/v1alpha1\nkind: NodeProfile\n", `kind: unsupported value "NodeProfile": want "NodeProfileSet"`},
		{"no profiles", "apiVersion: poddns.io/v1alpha1\nkind: NodeProfileSet\n", "profiles: at least one profile is required"},
		{"content without a file", "apiVersion: poddns.io/v1alpha1\nkind: NodeProfileSet\nprofiles:\n- name: a\n  resolvConf: \"\"\n  resolvConfContent: x\n",
			`profiles[0]: resolvConfContent is set but resolvConf is ""`},
		{"two documents", "apiVersion: poddns.io/v1alpha1\nkind: NodeProfileSet\nprofiles: [{name: a}]\n---\napiVersion: poddns.io/v1alpha1\nkind: NodeProfileSet\n",
			"2 documents: expected one NodeProfileSet"},
	})
}

func TestSetPools(t *testing.T) {
	dir := t.TempDir()
	testenv.WriteFile(t, dir, "node-resolv.conf", "nameserver 10.0.0.3\nsearch b.example c.example\n")
	path := testenv.WriteFile(t, dir, "set.yaml", setTwoPools)
	f, err := nodeprofile.ReadSetFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := f.NodeConfigs(nil)
	want := []resolvconf.NodeConfig{
		{ClusterDomain: "corp.internal", ClusterDNS: []string{"10.32.0.10"}, ResolvConf: "/etc/resolv.conf", ResolvConfData: []byte("nameserver 10.0.0.2\nsearch a.example\n")},
		{ClusterDomain: "other.internal", ClusterDNS: []string{"10.32.0.10"}, ResolvConf: filepath.Join(dir, "node-resolv.conf")},
		{ClusterDomain: "corp.internal", ClusterDNS: []string{"10.32.0.10"}, ResolvConf: "/etc/resolv.conf", ResolvConfData: nodeprofile.DefaultResolvConf()},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("NodeConfigs =\n%+v\nwant\n%+v", got, want)
	}

	// --profile takes the set; the flags win over every profile.
	o := parseOptions(t, dir, []string{"--profile", path, "--cluster-dns", "10.1.0.10"})
	profile, pools, _, err := o.Profiles()
	if err != nil || profile != nil || pools == nil {
		t.Fatalf("Profiles = %v, %v, %v; want pools only", profile, pools, err)
	}
	var gotNames []string
	for _, p := range pools.Pools() {
		gotNames = append(gotNames, p.Name)
		if dns := p.Profile.Config().ClusterDNS; !reflect.DeepEqual(dns, []string{"10.1.0.10"}) {
			t.Errorf("pool %s: cluster DNS %v, want the flag's", p.Name, dns)
		}
	}
	if strings.Join(gotNames, ",") != "short,long,rest" {
		t.Errorf("pools %v", gotNames)
	}
	if p, ok := pools.NodePool(map[string]string{"node.kubernetes.io/instance-type": "m5.large"}); !ok || p.Name != "long" {
		t.Errorf("NodePool(m5.large) = %q, %t; want long", p.Name, ok)
	}

	// Where one profile is needed, a set is an error that says so.
	if _, _, err := o.NodeConfig(); err == nil || !strings.Contains(err.Error(), "a NodeProfileSet describes several node pools") {
		t.Errorf("NodeConfig of a set: %v", err)
	}
	// A NodeProfile through Profiles is one profile.
	single := testenv.WriteFile(t, dir, "node.yaml", profileAll)
	o = parseOptions(t, dir, []string{"--profile", single})
	if profile, pools, _, err := o.Profiles(); err != nil || profile == nil || pools != nil {
		t.Errorf("Profiles of a NodeProfile = %v, %v, %v; want the profile only", profile, pools, err)
	}
}

func TestSetPoolErrors(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{"duplicate name", "apiVersion: poddns.io/v1alpha1\nkind: NodeProfileSet\nprofiles: [{name: a}, {name: a}]\n", `pool 1: name "a": duplicate`},
		{"bad selector", "apiVersion: poddns.io/v1alpha1\nkind: NodeProfileSet\nprofiles:\n- name: a\n  nodeSelector: {matchExpressions: [{key: k, operator: Gt, values: ['1']}]}\n", `pool "a": nodeSelector:`},
		{"bad node IP", "apiVersion: poddns.io/v1alpha1\nkind: NodeProfileSet\nprofiles: [{name: a, nodeIPs: [bogus, 10.0.0.1, 10.0.0.2, 10.0.0.3]}]\n", `node profile "a"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, err := nodeprofile.ParseSet([]byte(tt.in), "set.yaml")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Pools(nil); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Pools error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func FuzzParseSet(f *testing.F) {
	f.Add([]byte(setTwoPools))
	f.Add([]byte("apiVersion: poddns.io/v1alpha1\nkind: NodeProfileSet\nprofiles: [{name: a, nodeSelector: {}}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := nodeprofile.ParseSet(data, "set.yaml")
		if err != nil {
			return
		}
		if s.Kind != nodeprofile.SetKind || len(s.Profiles) == 0 {
			t.Errorf("ParseSet accepted kind %q with %d profiles", s.Kind, len(s.Profiles))
		}
		_, _ = s.Pools(nil) // must not panic
	})
}
