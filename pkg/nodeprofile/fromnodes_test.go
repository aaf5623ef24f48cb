package nodeprofile_test

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/poddns/poddns/pkg/nodeprofile"
)

func node(name string, labels, annotations map[string]string) corev1.Node {
	return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: annotations}}
}

const (
	typeLabel = "node.kubernetes.io/instance-type"
	osLabel   = "kubernetes.io/os"
	poolLabel = "poddns.io/pool"
)

func TestFromNodes(t *testing.T) {
	general := map[string]string{
		nodeprofile.AnnotationClusterDNS:     "10.96.0.10",
		nodeprofile.AnnotationClusterDomain:  "cluster.local",
		nodeprofile.AnnotationNodeResolvConf: "nameserver 10.0.0.2\nsearch ec2.internal",
	}
	nodes := []corev1.Node{
		node("g-2", map[string]string{poolLabel: "general", osLabel: "linux", typeLabel: "m5.large"}, general),
		node("g-1", map[string]string{poolLabel: "general", osLabel: "linux", typeLabel: "m5.large"}, general),
		node("gpu-1", map[string]string{"cloud.google.com/gke-nodepool": "gpu_pool", osLabel: "linux"},
			map[string]string{nodeprofile.AnnotationClusterDNS: "10.96.0.10, fd00::a"}),
		// Both labels: poddns.io/pool wins.
		node("gpu-2", map[string]string{"cloud.google.com/gke-nodepool": "gpu_pool", poolLabel: "general", osLabel: "linux"},
			map[string]string{nodeprofile.AnnotationClusterDomain: "corp.internal"}),
		node("w-1", map[string]string{typeLabel: "m5.large", osLabel: "windows"}, nil),
		node("m-1", map[string]string{typeLabel: "m5.large", osLabel: "linux"}, nil),
		node("bare", nil, nil),
	}
	set, notes := nodeprofile.FromNodes(nodes, nodeprofile.FromNodesOptions{})

	var got []string
	for _, p := range set.Profiles {
		sel, _ := metav1.LabelSelectorAsSelector(p.NodeSelector)
		got = append(got, p.Name+" "+sel.String())
	}
	want := []string{
		"general poddns.io/pool=general",
		"gpu_pool cloud.google.com/gke-nodepool=gpu_pool",
		"m5.large-linux kubernetes.io/os=linux,node.kubernetes.io/instance-type=m5.large",
		"m5.large-windows kubernetes.io/os=windows,node.kubernetes.io/instance-type=m5.large",
		"other !kubernetes.io/os,!node.kubernetes.io/instance-type",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("profiles:\n got %q\nwant %q", got, want)
	}
	g := set.Profiles[0].Settings
	if g.ResolvConfContent == nil || *g.ResolvConfContent != "nameserver 10.0.0.2\nsearch ec2.internal\n" ||
		!reflect.DeepEqual(g.ClusterDNS, []string{"10.96.0.10"}) || g.ClusterDomain == nil || *g.ClusterDomain != "cluster.local" {
		t.Errorf("general's settings = %+v", g)
	}
	if dns := set.Profiles[1].ClusterDNS; !reflect.DeepEqual(dns, []string{"10.96.0.10", "fd00::a"}) {
		t.Errorf("gpu's cluster DNS = %q", dns)
	}
	wantNotes := []string{
		`pool "general": its nodes disagree on poddns.io/cluster-domain (2 values): using the one of 2 of 3 nodes`,
		`pool "general": 1 of 3 nodes lack poddns.io/cluster-dns`,
		`pool "gpu_pool": cluster domain unknown: set clusterDomain in the settings file or annotate its nodes with poddns.io/cluster-domain; the built-in cluster.local applies`,
		`pool "other": the node's resolv.conf (host search domains, options) unknown`,
	}
	all := strings.Join(notes, "\n")
	for _, w := range wantNotes {
		if !strings.Contains(all, w) {
			t.Errorf("notes lack %q:\n%s", w, all)
		}
	}
	if strings.Contains(all, `pool "general": cluster DNS unknown`) {
		t.Errorf("notes say general's cluster DNS is unknown:\n%s", all)
	}

	// What it writes reads back as a set in which every node is in the pool
	// it was grouped into.
	out, err := yaml.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	back, err := nodeprofile.ParseSet(out, "profile.yaml")
	if err != nil {
		t.Fatalf("ParseSet of the output: %v\n%s", err, out)
	}
	pools, err := back.Pools(nil)
	if err != nil {
		t.Fatal(err)
	}
	wantPool := map[string]string{"g-1": "general", "g-2": "general", "gpu-2": "general", "gpu-1": "gpu_pool", "w-1": "m5.large-windows", "m-1": "m5.large-linux", "bare": "other"}
	for _, n := range nodes {
		if p, ok := pools.NodePool(n.Labels); !ok || p.Name != wantPool[n.Name] {
			t.Errorf("node %s is in pool %q (%t), want %q", n.Name, p.Name, ok, wantPool[n.Name])
		}
	}
}

func TestFromNodesSettings(t *testing.T) {
	settings, err := nodeprofile.ParseSet([]byte(`apiVersion: poddns.io/v1alpha1
kind: NodeProfileSet
defaults: {clusterDNS: [10.32.0.10], clusterDomain: corp.internal}
profiles:
- name: general
  resolvConfContent: "search from.file\n"
- name: gone
`), "settings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	nodes := []corev1.Node{node("g-1", map[string]string{"example.com/pool": "general"}, map[string]string{
		nodeprofile.AnnotationNodeResolvConf: "search from.annotation\n", nodeprofile.AnnotationClusterDNS: "10.1.0.10"})}
	set, notes := nodeprofile.FromNodes(nodes, nodeprofile.FromNodesOptions{PoolLabels: []string{"example.com/pool"}, Settings: settings})
	if len(set.Profiles) != 1 || set.Profiles[0].Name != "general" {
		t.Fatalf("profiles = %+v", set.Profiles)
	}
	p := set.Profiles[0]
	if *p.ResolvConfContent != "search from.file\n" || !reflect.DeepEqual(p.ClusterDNS, []string{"10.1.0.10"}) {
		t.Errorf("general: the file wins, the annotations fill the rest: %+v", p.Settings)
	}
	if set.Defaults == nil || *set.Defaults.ClusterDomain != "corp.internal" {
		t.Errorf("defaults not copied: %+v", set.Defaults)
	}
	if got := strings.Join(notes, "\n"); got != `profile "gone" of the settings file is not a pool of the cluster's nodes: left out` {
		t.Errorf("notes:\n%s", got)
	}
}
