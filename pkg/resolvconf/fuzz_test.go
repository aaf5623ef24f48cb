package resolvconf

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// FuzzParse feeds arbitrary node files to Parse: it must not panic, and what
// it returns must follow kubelet's rules.
func FuzzParse(f *testing.F) {
	f.Add([]byte(testNodeFile))
	f.Add([]byte("nameserver\nsearch . .. a. b..\noptions a:1 a:2 :x\n# c\n;d\r\n"))
	f.Add([]byte("search \u00a0x\tY\noptions ndots:\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(bytes.NewReader(data))
		if file == nil {
			if err == nil {
				t.Fatal("Parse returned neither a file nor an error")
			}
			return
		}
		if err != nil && err.Error() != errEmptyNameserver {
			t.Fatalf("unexpected error %q", err)
		}
		seen := map[string]bool{}
		for _, o := range file.Options {
			name, _, _ := strings.Cut(o, ":")
			if seen[name] {
				t.Fatalf("option name %q appears twice in %q", name, file.Options)
			}
			seen[name] = true
			if o == "" || strings.ContainsFunc(o, isSpace) {
				t.Fatalf("bad option token %q", o)
			}
		}
		for _, s := range file.Searches {
			if s == "" && !strings.Contains(string(data), "search") {
				t.Fatalf("empty search entry from %q", data)
			}
			if strings.ContainsFunc(s, isSpace) {
				t.Fatalf("search entry with white space %q", s)
			}
		}
		for _, ns := range file.Nameservers {
			if ns == "" || strings.ContainsFunc(ns, isSpace) {
				t.Fatalf("bad nameserver %q", ns)
			}
		}
	})
}

func isSpace(r rune) bool { return strings.TrimSpace(string(r)) == "" }

// FuzzCompute builds a node and a pod from fuzzed parts: Compute must not
// panic, must be deterministic, must leave its inputs alone, and its output
// must respect kubelet's limits.
func FuzzCompute(f *testing.F) {
	f.Add("cluster.local", "10.96.0.10", "", true, []byte(testNodeFile), "ClusterFirst", false, "shop", true, "1.1.1.1,2.2.2.2", "a.example,b.example", "ndots:2,edns0")
	f.Add("", "bogus,010.1.1.1", "2001:db8::1", false, []byte(""), "Default", true, "", false, "", "", "")
	f.Add("c.l.", "fd00::a", "192.0.2.1", true, []byte("nameserver\n"), "None", false, "x", true, "", ".,,x.", ":,a:b,c")
	f.Add("cluster.local", "10.96.0.10,10.96.0.11", "", true, []byte("search "+strings.Repeat("a ", 40)), "Bogus", true, "ns", true, "1.1.1.1,1.1.1.1,3.3.3.3,4.4.4.4", strings.Repeat("y", 300), "timeout:")
	f.Fuzz(func(t *testing.T, domain, clusterDNS, nodeIPs string, withFile bool, nodeFile []byte, policy string, hostNetwork bool, namespace string, withConfig bool, nameservers, searches, options string) {
		cfg := NodeConfig{ClusterDomain: domain, ClusterDNS: splitNonEmpty(clusterDNS), NodeIPs: splitNonEmpty(nodeIPs)}
		if withFile {
			cfg.ResolvConf = "/etc/resolv.conf"
			cfg.ResolvConfData = nodeFile
		}
		profile, err := NewNodeProfile(cfg)
		if err != nil {
			return // kubelet would not start
		}
		pod := &corev1.Pod{}
		pod.Name, pod.Namespace = "p", namespace
		pod.Spec.DNSPolicy = corev1.DNSPolicy(policy)
		pod.Spec.HostNetwork = hostNetwork
		if withConfig {
			dc := &corev1.PodDNSConfig{Nameservers: splitNonEmpty(nameservers), Searches: strings.Split(searches, ",")}
			for _, o := range strings.Split(options, ",") {
				name, value, hasValue := strings.Cut(o, ":")
				opt := corev1.PodDNSConfigOption{Name: name}
				if hasValue {
					opt.Value = &value
				}
				dc.Options = append(dc.Options, opt)
			}
			pod.Spec.DNSConfig = dc
		}
		before := pod.DeepCopy()
		first, err1 := Compute(pod, profile)
		second, err2 := Compute(pod, profile)
		if !reflect.DeepEqual(pod, before) {
			t.Fatal("Compute modified the pod")
		}
		if (err1 == nil) != (err2 == nil) || !reflect.DeepEqual(first, second) {
			t.Fatalf("Compute is not deterministic: %+v / %v vs %+v / %v", first, err1, second, err2)
		}
		if err1 != nil {
			return
		}
		c := first.Config
		if len(c.Nameservers) > MaxNameservers {
			t.Fatalf("%d nameservers", len(c.Nameservers))
		}
		if len(c.Searches) > MaxSearchPaths || joinedLen(c.Searches) > MaxSearchListChars {
			t.Fatalf("search line over the limits: %d entries, %d chars", len(c.Searches), joinedLen(c.Searches))
		}
		for _, s := range c.Searches {
			if len(s) > validation.DNS1123SubdomainMaxLength {
				t.Fatalf("search entry of %d chars", len(s))
			}
		}
		if c.Render() != second.Config.Render() {
			t.Fatal("Render is not deterministic")
		}
	})
}

func splitNonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
