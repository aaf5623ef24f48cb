package kubeletdiff

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func ptr(s string) *string { return &s }

func mkPod(policy corev1.DNSPolicy, hostNet bool, dc *corev1.PodDNSConfig) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "default", UID: "uid-1"},
		Spec:       corev1.PodSpec{DNSPolicy: policy, HostNetwork: hostNet, DNSConfig: dc},
	}
}

// allPolicies gives one pod per policy and hostNetwork value, plus odd ones.
func allPolicies(dc *corev1.PodDNSConfig) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range []corev1.DNSPolicy{corev1.DNSClusterFirst, corev1.DNSClusterFirstWithHostNet, corev1.DNSDefault, corev1.DNSNone, "", "bogus", "clusterfirst"} {
		for _, hn := range []bool{false, true} {
			out = append(out, mkPod(p, hn, dc.DeepCopy()))
		}
	}
	return out
}

func fileNode(content string) nodeCase {
	return nodeCase{ClusterDomain: "cluster.local", ClusterDNS: []string{"10.96.0.10"}, Mode: modeFile, Content: content}
}

func withDomain(n nodeCase, d string) nodeCase      { n.ClusterDomain = d; return n }
func withDNS(n nodeCase, ips ...string) nodeCase    { n.ClusterDNS = ips; return n }
func withNodeIP(n nodeCase, ip string) nodeCase     { n.NodeIP = ip; return n }
func withMode(n nodeCase, m fileMode) nodeCase      { n.Mode = m; return n }
func withFileName(n nodeCase, name string) nodeCase { n.FileName = name; return n }
func inline(n nodeCase) nodeCase                    { n.Inline = true; return n }

func searchesOf(n, l int, letter byte) string {
	var parts []string
	for i := 0; i < n; i++ {
		// Distinct entries of exactly l characters (l >= 6).
		prefix := fmt.Sprintf("%03d.", i%1000)
		parts = append(parts, prefix+domainOfLen(l-len(prefix), letter))
	}
	return strings.Join(parts, " ")
}

func manyOptions(n int) string {
	var parts []string
	for i := 0; i < n; i++ {
		parts = append(parts, fmt.Sprintf("o%d:%d", i, i%3))
	}
	return strings.Join(parts, " ")
}

// namedCases are hand-picked cases; minimised reproducers of any
// disagreement found by TestRandom belong here too.
func namedCases() []*tcase {
	basic := "nameserver 1.1.1.1\nnameserver 8.8.8.8\nsearch a.example b.example\noptions ndots:2 edns0\n"
	long254 := domainOfLen(254, 'x')
	cases := []*tcase{
		{Name: "basic", Node: fileNode(basic), Pods: allPolicies(nil)},
		{Name: "basic-empty-dnsConfig", Node: fileNode(basic), Pods: allPolicies(&corev1.PodDNSConfig{})},
		{Name: "basic-inline", Node: inline(fileNode(basic)), Pods: allPolicies(nil)},
		{Name: "no-cluster-dns", Node: withDNS(fileNode(basic)), Pods: allPolicies(nil)},
		{Name: "cluster-dns-all-garbage", Node: withDNS(fileNode(basic), "garbage", "fe80::1%eth0", ""), Pods: allPolicies(nil)},
		{Name: "cluster-dns-sloppy", Node: withDNS(fileNode(basic), "010.096.000.010", "FD00:10:96:0:0:0:0:A", "::ffff:1.2.3.4", "010.096.000.010"), Pods: allPolicies(&corev1.PodDNSConfig{})},
		{Name: "cluster-dns-v4-tail", Node: withDNS(fileNode(basic), "::1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4", "1::1.2.3.4", "::ffff:0a60:000a"), Pods: allPolicies(nil)},
		{Name: "cluster-dns-overflowing-digits", Node: withDNS(fileNode(basic), "0000000001.2.3.4", "00000000000000000000001.1.1.1", "00000000000001::", "0000000:1::", "fffff::", "1.2.3.4."), Pods: allPolicies(nil)},
		{Name: "no-resolv-conf", Node: withMode(fileNode(""), modeNone), Pods: allPolicies(nil)},
		{Name: "no-resolv-conf-no-cluster-dns-dual", Node: withNodeIP(withMode(withDNS(fileNode("")), modeNone), "fd00::1,10.0.0.1"), Pods: allPolicies(nil)},
		{Name: "no-resolv-conf-v6", Node: withNodeIP(withMode(fileNode(""), modeNone), "fd00::1"), Pods: allPolicies(&corev1.PodDNSConfig{Nameservers: []string{"::1", "1.1.1.1"}})},
		// Disagreement found by TestRandom: kubelet logs the unparsable
		// --node-ip entries (RunKubelet) before the invalid --cluster-dns
		// entries (NewMainKubelet); poddns' Logs have them the other way round.
		{Name: "log-order-node-ip-before-cluster-dns", Node: withNodeIP(withDNS(withMode(fileNode(""), modeNone), "garbage"), "x"), Pods: []*corev1.Pod{mkPod(corev1.DNSDefault, false, nil)}},
		{Name: "node-ip-mapped-v4", Node: withNodeIP(withMode(withDNS(fileNode("")), modeNone), "::ffff:1.2.3.4"), Pods: allPolicies(nil)},
		{Name: "node-ip-bad-pair", Node: withNodeIP(fileNode(basic), "10.0.0.1,10.0.0.2"), Pods: allPolicies(nil)},
		{Name: "node-ip-unspecified-pair", Node: withNodeIP(fileNode(basic), "0.0.0.0,::1"), Pods: allPolicies(nil)},
		{Name: "node-ip-garbage-ignored", Node: withNodeIP(withMode(fileNode(""), modeNone), "garbage, fd00::1 ,"), Pods: allPolicies(nil)},
		{Name: "missing-file", Node: withMode(fileNode(""), modeMissing), Pods: allPolicies(nil)},
		{Name: "directory", Node: withMode(fileNode(""), modeDir), Pods: allPolicies(nil)},
		{Name: "empty-nameserver-line", Node: fileNode("nameserver 1.1.1.1\nnameserver\nnameserver   \t\nsearch a\n"), Pods: allPolicies(nil)},
		{Name: "empty-file", Node: fileNode(""), Pods: allPolicies(nil)},
		{Name: "comments-crlf-tabs", Node: fileNode("# c\r\n;nameserver 9.9.9.9\r\n\tnameserver\t1.1.1.1 # x\r\n  #nameserver\r\nsearch a.example # c d\r\noptions ndots:3 # c\r\ndomain corp.example\r\n"), Pods: allPolicies(nil)},
		{Name: "cr-only-line-ends", Node: fileNode("nameserver 1.1.1.1\rsearch a.example\rnameserver 2.2.2.2\n"), Pods: allPolicies(nil)},
		{Name: "multiple-search-lines", Node: fileNode("search a b c\nnameserver 1.1.1.1\nsearch d. e.. .\n"), Pods: allPolicies(nil)},
		{Name: "bare-search-clears", Node: fileNode("search a b c\nsearch\n"), Pods: allPolicies(nil)},
		{Name: "dots", Node: fileNode("search . .. ... a.. b.\n"), Pods: allPolicies(&corev1.PodDNSConfig{Searches: []string{".", "..", "", "a.", "a"}})},
		{Name: "upper-keywords", Node: fileNode("NAMESERVER 9.9.9.9\nSearch x\nOPTIONS rotate\nnameserver 1.1.1.1\n"), Pods: allPolicies(nil)},
		{Name: "options-dups-colons", Node: fileNode("options ndots:2 ndots: a:b:c :x :\noptions ndots attempts:3:4 edns0 edns0\n"), Pods: allPolicies(&corev1.PodDNSConfig{Options: []corev1.PodDNSConfigOption{{Name: "a:b", Value: ptr("c")}, {Name: ""}, {Name: "", Value: ptr("v")}, {Name: "ndots", Value: ptr("")}, {Name: "edns0", Value: ptr("1")}, {Name: "edns0"}}})},
		{Name: "many-options", Node: fileNode("options " + manyOptions(20) + "\noptions " + manyOptions(7) + " o3:9 o4:\n"), Pods: allPolicies(&corev1.PodDNSConfig{Options: []corev1.PodDNSConfigOption{{Name: "o1", Value: ptr("x")}, {Name: "o30"}, {Name: "o2", Value: ptr("")}, {Name: "o31", Value: ptr("1")}}})},
		{Name: "unicode-whitespace", Node: fileNode("search\u00a0a.example\u2003b.example\u3000c\u0085d\nnameserver\u20281.1.1.1\n\ufeffnameserver 2.2.2.2\n"), Pods: allPolicies(nil)},
		{Name: "invalid-utf8-nul", Node: fileNode("search \xff\xfe a\x00b\nnameserver \x00\n"), Pods: allPolicies(nil)},
		{Name: "long-search-entries", Node: fileNode("search " + long254 + " ok.example " + domainOfLen(253, 'y') + " " + domainOfLen(254, 'z') + ".\n"), Pods: allPolicies(nil)},
		{Name: "many-search-entries", Node: fileNode("search " + searchesOf(40, 6, 'q') + "\n"), Pods: allPolicies(nil)},
		{Name: "search-29-with-domain", Node: fileNode("search " + searchesOf(29, 6, 'r') + "\n"), Pods: allPolicies(nil)},
		{Name: "search-30-with-domain", Node: fileNode("search " + searchesOf(30, 6, 'r') + "\n"), Pods: allPolicies(nil)},
		{Name: "search-32-no-domain", Node: withDomain(fileNode("search "+searchesOf(32, 6, 'r')+"\n"), ""), Pods: allPolicies(nil)},
		{Name: "search-33-no-domain", Node: withDomain(fileNode("search "+searchesOf(33, 6, 'r')+"\n"), ""), Pods: allPolicies(nil)},
		{Name: "file-10MiB-minus-1", Node: fileNode("nameserver 1.1.1.1\n" + strings.Repeat("#", 10<<20-1-len("nameserver 1.1.1.1\n"))), Pods: []*corev1.Pod{mkPod(corev1.DNSDefault, false, nil)}},
		{Name: "file-10MiB", Node: fileNode("nameserver 1.1.1.1\n" + strings.Repeat("#", 10<<20-len("nameserver 1.1.1.1\n"))), Pods: []*corev1.Pod{mkPod(corev1.DNSDefault, false, nil)}},
		{Name: "search-over-2048", Node: fileNode("search " + searchesOf(12, 200, 'w') + "\n"), Pods: allPolicies(nil)},
		{Name: "search-exactly-2048", Node: withDomain(fileNode("search "+searchesOf(8, 253, 'v')+" "+domainOfLen(16, 'u')+"\n"), ""), Pods: allPolicies(nil)},
		{Name: "search-2049", Node: withDomain(fileNode("search "+searchesOf(8, 253, 'v')+" "+domainOfLen(17, 'u')+"\n"), ""), Pods: allPolicies(nil)},
		{Name: "search-2049-pod-adds", Node: withDomain(fileNode("search "+searchesOf(8, 253, 'v')+"\n"), ""), Pods: allPolicies(&corev1.PodDNSConfig{Searches: []string{domainOfLen(16, 'u'), "x"}})},
		{Name: "cluster-domain-dup-host-search", Node: withDomain(fileNode("search cluster.local svc.cluster.local default.svc.cluster.local x\n"), "cluster.local"), Pods: allPolicies(&corev1.PodDNSConfig{Searches: []string{"x", "cluster.local"}})},
		{Name: "cluster-domain-trailing-dot", Node: withDomain(fileNode(basic), "cluster.local."), Pods: allPolicies(nil)},
		{Name: "cluster-domain-empty-dup-host", Node: withDomain(fileNode("search a a b a\nnameserver 1.1.1.1\nnameserver 1.1.1.1\n"), ""), Pods: append(allPolicies(nil), allPolicies(&corev1.PodDNSConfig{})...)},
		{Name: "pod-nameservers-dups", Node: withDNS(fileNode(basic), "10.96.0.10", "010.096.000.010"), Pods: allPolicies(&corev1.PodDNSConfig{Nameservers: []string{"10.96.0.10", "1.1.1.1", "", "10.96.0.10", "8.8.8.8", "9.9.9.9"}})},
		{Name: "pod-searches-overlong", Node: fileNode(basic), Pods: allPolicies(&corev1.PodDNSConfig{Searches: []string{long254, "", ".", "a.example.", "a.example", domainOfLen(300, 'k')}})},
		{Name: "pod-searches-many", Node: fileNode(basic), Pods: allPolicies(&corev1.PodDNSConfig{Searches: strings.Fields(searchesOf(35, 70, 'm'))})},
		{Name: "odd-pod-identity", Node: withDNS(fileNode(basic)), Pods: []*corev1.Pod{{
			TypeMeta:   metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
			ObjectMeta: metav1.ObjectMeta{Name: "we\"ird%s", Namespace: "ns with space", UID: ""},
			Spec:       corev1.PodSpec{DNSPolicy: "bogus"},
		}}},
		{Name: "odd-path-names", Node: withFileName(fileNode("search "+searchesOf(33, 6, 'p')+"\n"), "res\"olv 'q'.conf"), Pods: allPolicies(nil)},
		{Name: "odd-path-names-long-entry", Node: withFileName(fileNode("search "+long254+"\n"), "res\"olv 'q'.conf"), Pods: allPolicies(nil)},
		{Name: "nul-in-path", Node: withFileName(withMode(fileNode(""), modeMissing), "a\x00b"), Pods: allPolicies(nil)},
		{Name: "missing-odd-path", Node: withFileName(withMode(fileNode(""), modeMissing), "résolv\t\".conf"), Pods: allPolicies(nil)},
	}
	return cases
}
