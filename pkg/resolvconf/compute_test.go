package resolvconf

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const testNodeFile = "nameserver 10.0.0.2\nnameserver 10.0.0.3\nsearch corp.example ec2.internal\noptions edns0 ndots:2 trust-ad\n"

func mustProfile(t testing.TB, cfg NodeConfig) *NodeProfile {
	t.Helper()
	p, err := NewNodeProfile(cfg)
	if err != nil {
		t.Fatalf("NewNodeProfile(%+v) error = %v", cfg, err)
	}
	return p
}

func defaultNode() NodeConfig {
	return NodeConfig{
		ClusterDomain:  "cluster.local",
		ClusterDNS:     []string{"10.96.0.10"},
		ResolvConf:     DefaultResolvConf,
		ResolvConfData: []byte(testNodeFile),
	}
}

func pod(policy corev1.DNSPolicy, hostNetwork bool, dc *corev1.PodDNSConfig) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "shop", UID: "1234-abcd"},
		Spec:       corev1.PodSpec{DNSPolicy: policy, HostNetwork: hostNetwork, DNSConfig: dc},
	}
}

func ptr(s string) *string { return &s }

var (
	clusterSearch = []string{"shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example", "ec2.internal"}
	hostConfig    = Config{Nameservers: []string{"10.0.0.2", "10.0.0.3"}, Searches: []string{"corp.example", "ec2.internal"}, Options: []string{"edns0", "ndots:2", "trust-ad"}}
	clusterConfig = Config{Nameservers: []string{"10.96.0.10"}, Searches: clusterSearch, Options: []string{"ndots:5"}}
)

func TestComputePolicies(t *testing.T) {
	tests := []struct {
		policy      corev1.DNSPolicy
		hostNetwork bool
		want        Config
		wantLog     bool
	}{
		{corev1.DNSClusterFirst, false, clusterConfig, false},
		{corev1.DNSClusterFirst, true, hostConfig, false},
		{corev1.DNSClusterFirstWithHostNet, false, clusterConfig, false},
		{corev1.DNSClusterFirstWithHostNet, true, clusterConfig, false},
		{corev1.DNSDefault, false, hostConfig, false},
		{corev1.DNSDefault, true, hostConfig, false},
		{corev1.DNSNone, false, Config{}, false},
		{corev1.DNSNone, true, Config{}, false},
		// An invalid policy falls back to cluster DNS, even for hostNetwork pods.
		{"", false, clusterConfig, true},
		{"", true, clusterConfig, true},
		{"clusterfirst", true, clusterConfig, true},
		{"Bogus", false, clusterConfig, true},
	}
	p := mustProfile(t, defaultNode())
	for _, tt := range tests {
		name := string(tt.policy)
		if tt.hostNetwork {
			name += "/hostNetwork"
		}
		t.Run(name, func(t *testing.T) {
			res, err := Compute(pod(tt.policy, tt.hostNetwork, nil), p)
			if err != nil {
				t.Fatalf("Compute() error = %v", err)
			}
			assertConfig(t, res.Config, tt.want)
			if len(res.Events) != 0 {
				t.Errorf("events = %v, want none", res.Events)
			}
			gotLog := len(res.Logs) == 1 && strings.Contains(res.Logs[0], "Falling back to DNSClusterFirst policy") &&
				strings.Contains(res.Logs[0], "invalid DNSPolicy="+string(tt.policy))
			if gotLog != tt.wantLog {
				t.Errorf("logs = %q, want fallback log: %v", res.Logs, tt.wantLog)
			}
		})
	}
}

func assertConfig(t *testing.T, got, want Config) {
	t.Helper()
	if !equalLists(got.Nameservers, want.Nameservers) {
		t.Errorf("nameservers = %q, want %q", got.Nameservers, want.Nameservers)
	}
	if !equalLists(got.Searches, want.Searches) {
		t.Errorf("searches = %q, want %q", got.Searches, want.Searches)
	}
	if !equalLists(got.Options, want.Options) {
		t.Errorf("options = %q, want %q", got.Options, want.Options)
	}
}

func TestComputeClusterSearches(t *testing.T) {
	tests := []struct {
		name      string
		domain    string
		namespace string
		nodeFile  string
		want      []string
	}{
		{"host search appended", "cluster.local", "shop", "search a.example b.example\n", []string{"shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "a.example", "b.example"}},
		{"duplicates of cluster domains removed, first wins", "cluster.local", "shop", "search cluster.local a.example svc.cluster.local a.example\n", []string{"shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "a.example"}},
		{"trailing dot in domain kept verbatim", "cluster.local.", "shop", "search a.example\n", []string{"shop.svc.cluster.local.", "svc.cluster.local.", "cluster.local.", "a.example"}},
		{"empty namespace", "cluster.local", "", "", []string{".svc.cluster.local", "svc.cluster.local", "cluster.local"}},
		{"no cluster domain: host searches as they are, duplicates kept", "", "shop", "search a.example a.example b.example\n", []string{"a.example", "a.example", "b.example"}},
		{"no cluster domain and no host search", "", "shop", "nameserver 1.1.1.1\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustProfile(t, NodeConfig{ClusterDomain: tt.domain, ClusterDNS: []string{"10.96.0.10"}, ResolvConf: "/etc/resolv.conf", ResolvConfData: []byte(tt.nodeFile)})
			po := pod(corev1.DNSClusterFirst, false, nil)
			po.Namespace = tt.namespace
			res, err := Compute(po, p)
			if err != nil {
				t.Fatal(err)
			}
			if !equalLists(res.Config.Searches, tt.want) {
				t.Errorf("searches = %q, want %q", res.Config.Searches, tt.want)
			}
			if !equalLists(res.Config.Options, []string{"ndots:5"}) {
				t.Errorf("options = %q, want only ndots:5 (host options discarded)", res.Config.Options)
			}
		})
	}
}

func TestComputeClusterDNSNormalised(t *testing.T) {
	cfg := defaultNode()
	cfg.ClusterDNS = []string{"010.096.000.010", "bogus", "FD00:10:96:0:0:0:0:A", "10.96.0.10", "fe80::1%eth0"}
	p := mustProfile(t, cfg)
	res, err := Compute(pod(corev1.DNSClusterFirst, false, nil), p)
	if err != nil {
		t.Fatal(err)
	}
	// Duplicates are kept, then the limit of three applies.
	want := []string{"10.96.0.10", "fd00:10:96::a", "10.96.0.10"}
	if !equalLists(res.Config.Nameservers, want) {
		t.Errorf("nameservers = %q, want %q", res.Config.Nameservers, want)
	}
	wantLogs := []string{`Invalid clusterDNS IP "bogus"`, `Invalid clusterDNS IP "fe80::1%eth0"`}
	if !reflect.DeepEqual(p.Logs(), wantLogs) {
		t.Errorf("profile logs = %q, want %q", p.Logs(), wantLogs)
	}
	if !equalLists(p.ClusterDNS(), want) {
		t.Errorf("ClusterDNS() = %q", p.ClusterDNS())
	}
}

const missingNodeMsg = `kubelet does not have ClusterDNS IP configured and cannot create Pod using "ClusterFirst" policy. Falling back to "Default" policy.`

func TestComputeMissingClusterDNS(t *testing.T) {
	cfg := defaultNode()
	cfg.ClusterDNS = []string{"not-an-ip"} // every entry skipped: no cluster DNS
	p := mustProfile(t, cfg)
	wantEvents := []Event{
		{Object: ObjectNode, Type: "Warning", Reason: "MissingClusterDNS", Message: missingNodeMsg},
		{Object: ObjectPod, Type: "Warning", Reason: "MissingClusterDNS", Message: `pod: "web-0_shop(1234-abcd)". ` + missingNodeMsg},
	}
	for _, policy := range []corev1.DNSPolicy{corev1.DNSClusterFirst, corev1.DNSClusterFirstWithHostNet, "Bogus"} {
		t.Run(string(policy), func(t *testing.T) {
			res, err := Compute(pod(policy, false, nil), p)
			if err != nil {
				t.Fatal(err)
			}
			assertConfig(t, res.Config, hostConfig)
			if !reflect.DeepEqual(res.Events, wantEvents) {
				t.Errorf("events = %#v\nwant %#v", res.Events, wantEvents)
			}
		})
	}
	// Host and None policies never look at cluster DNS.
	for _, policy := range []corev1.DNSPolicy{corev1.DNSDefault, corev1.DNSNone} {
		res, _ := Compute(pod(policy, false, nil), p)
		if len(res.Events) != 0 {
			t.Errorf("%s: events = %v, want none", policy, res.Events)
		}
	}
	// The pod text is Go-quoted, as kubelet formats it with %q.
	odd := pod(corev1.DNSClusterFirst, false, nil)
	odd.Name, odd.UID = `a"b`, ""
	res, _ := Compute(odd, p)
	if want := `pod: "a\"b_shop()". ` + missingNodeMsg; len(res.Events) != 2 || res.Events[1].Message != want {
		t.Errorf("events = %v, want pod message %q", res.Events, want)
	}
}

func TestComputeNoResolvConf(t *testing.T) {
	tests := []struct {
		name    string
		nodeIPs []string
		want    []string
	}{
		{"no node IP", nil, []string{"127.0.0.1"}},
		{"IPv4 node", []string{"192.0.2.7"}, []string{"127.0.0.1"}},
		{"IPv6 node", []string{"2001:db8::7"}, []string{"::1"}},
		{"dual-stack, v6 first", []string{"2001:db8::7", "192.0.2.7"}, []string{"::1", "127.0.0.1"}},
		{"dual-stack comma-separated", []string{"192.0.2.7, 2001:db8::7"}, []string{"127.0.0.1", "::1"}},
		{"IPv4-mapped counts as IPv4", []string{"::ffff:192.0.2.7"}, []string{"127.0.0.1"}},
		{"unparsable entries ignored", []string{"nope,192.0.2.7"}, []string{"127.0.0.1"}},
		{"only unparsable entries", []string{"nope"}, []string{"127.0.0.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustProfile(t, NodeConfig{ClusterDomain: "cluster.local", ClusterDNS: []string{"10.96.0.10"}, ResolvConf: "", NodeIPs: tt.nodeIPs})
			res, err := Compute(pod(corev1.DNSDefault, false, nil), p)
			if err != nil {
				t.Fatal(err)
			}
			assertConfig(t, res.Config, Config{Nameservers: tt.want, Searches: []string{"."}})
			if got := res.Config.Render(); !strings.HasPrefix(got, "search .\nnameserver ") {
				t.Errorf("Render() = %q", got)
			}
		})
	}
	p := mustProfile(t, NodeConfig{NodeIPs: []string{"nope, 192.0.2.7"}})
	if want := []string{`Could not parse some node IP(s), ignoring them ["nope"]`}; !reflect.DeepEqual(p.Logs(), want) {
		t.Errorf("Logs() = %q, want %q", p.Logs(), want)
	}
	// kubelet logs bad node IPs before bad cluster DNS entries.
	p = mustProfile(t, NodeConfig{ClusterDNS: []string{"garbage"}, NodeIPs: []string{"x"}})
	if want := []string{`Could not parse some node IP(s), ignoring them ["x"]`, `Invalid clusterDNS IP "garbage"`}; !reflect.DeepEqual(p.Logs(), want) {
		t.Errorf("Logs() = %q, want %q", p.Logs(), want)
	}
	// Cluster pods ignore the missing file: no host searches, ndots:5 only.
	p = mustProfile(t, NodeConfig{ClusterDomain: "cluster.local", ClusterDNS: []string{"10.96.0.10"}})
	res, _ := Compute(pod(corev1.DNSClusterFirst, false, nil), p)
	assertConfig(t, res.Config, Config{Nameservers: []string{"10.96.0.10"}, Searches: []string{"shop.svc.cluster.local", "svc.cluster.local", "cluster.local"}, Options: []string{"ndots:5"}})
	// Missing cluster DNS with no file: MissingClusterDNS, then 127.0.0.1 / search .
	p = mustProfile(t, NodeConfig{ClusterDomain: "cluster.local"})
	res, _ = Compute(pod(corev1.DNSClusterFirst, false, nil), p)
	assertConfig(t, res.Config, Config{Nameservers: []string{"127.0.0.1"}, Searches: []string{"."}})
	if len(res.Events) != 2 {
		t.Errorf("events = %v, want two MissingClusterDNS", res.Events)
	}
}

func TestNodeIPErrors(t *testing.T) {
	for _, ips := range [][]string{
		{"192.0.2.1", "192.0.2.2"},
		{"192.0.2.1,2001:db8::1,192.0.2.3"},
		{"0.0.0.0", "2001:db8::1"},
		{"2001:db8::1", "::"},
	} {
		if _, err := NewNodeProfile(NodeConfig{NodeIPs: ips}); err == nil || !strings.HasPrefix(err.Error(), "bad --node-ip") {
			t.Errorf("NewNodeProfile(node IPs %q) error = %v, want bad --node-ip", ips, err)
		}
	}
	if _, err := NewNodeProfile(NodeConfig{NodeIPs: []string{"0.0.0.0"}}); err != nil {
		t.Errorf("a single unspecified node IP is allowed: %v", err)
	}
}

func TestComputeHostFileErrors(t *testing.T) {
	cfg := defaultNode()
	cfg.ResolvConfData = []byte("nameserver 10.0.0.1\nnameserver\n")
	p := mustProfile(t, cfg)
	want := "Encountered error while parsing resolv conf file. Error: nameserver list is empty "
	// Every policy fails, None included: the file is read first.
	for _, policy := range []corev1.DNSPolicy{corev1.DNSClusterFirst, corev1.DNSDefault, corev1.DNSNone, corev1.DNSClusterFirstWithHostNet} {
		if _, err := Compute(pod(policy, false, nil), p); err == nil || err.Error() != want {
			t.Errorf("%s: Compute() error = %v, want %q", policy, err, want)
		}
	}
	if p.HostError() == nil || p.Host() != nil {
		t.Errorf("HostError() = %v, Host() = %v", p.HostError(), p.Host())
	}

	missing := NodeConfig{ClusterDNS: []string{"10.96.0.10"}, ResolvConf: t.TempDir() + "/nope"}
	p = mustProfile(t, missing)
	if _, err := Compute(pod(corev1.DNSNone, false, &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}}), p); err == nil || !strings.HasPrefix(err.Error(), "open ") {
		t.Errorf("missing file: Compute() error = %v, want the open error", err)
	}
}

func TestComputeMergeDNSConfig(t *testing.T) {
	tests := []struct {
		name   string
		policy corev1.DNSPolicy
		dc     *corev1.PodDNSConfig
		node   string
		want   Config
	}{
		{
			name:   "cluster pod adds searches, nameserver and options",
			policy: corev1.DNSClusterFirst,
			dc: &corev1.PodDNSConfig{
				Nameservers: []string{"10.96.0.10", "1.1.1.1"},
				Searches:    []string{"cluster.local", "extra.example"},
				Options:     []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr("2")}, {Name: "edns0"}},
			},
			want: Config{Nameservers: []string{"10.96.0.10", "1.1.1.1"}, Searches: append(append([]string{}, clusterSearch...), "extra.example"), Options: []string{"ndots:2", "edns0"}},
		},
		{
			name:   "empty dnsConfig removes duplicates already in the node file",
			policy: corev1.DNSDefault,
			dc:     &corev1.PodDNSConfig{},
			node:   "nameserver 10.0.0.1\nnameserver 10.0.0.1\nsearch a.example a.example\n",
			want:   Config{Nameservers: []string{"10.0.0.1"}, Searches: []string{"a.example"}},
		},
		{
			name:   "without dnsConfig duplicates stay",
			policy: corev1.DNSDefault,
			node:   "nameserver 10.0.0.1\nnameserver 10.0.0.1\nsearch a.example a.example\n",
			want:   Config{Nameservers: []string{"10.0.0.1", "10.0.0.1"}, Searches: []string{"a.example", "a.example"}},
		},
		{
			name:   "pod searches are not normalised",
			policy: corev1.DNSNone,
			dc:     &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}, Searches: []string{"a.example.", "a.example", ".", "", "a.example"}},
			want:   Config{Nameservers: []string{"1.1.1.1"}, Searches: []string{"a.example.", "a.example", ".", ""}},
		},
		{
			name:   "option merge: empty value and nil value give the bare name, later pod option wins",
			policy: corev1.DNSDefault,
			node:   "options ndots: timeout:1 rotate\n",
			dc: &corev1.PodDNSConfig{Options: []corev1.PodDNSConfigOption{
				{Name: "timeout", Value: ptr("")}, {Name: "attempts", Value: ptr("2")}, {Name: "attempts", Value: ptr("3")}, {Name: "rotate", Value: ptr("x")},
			}},
			want: Config{Options: []string{"ndots", "timeout", "rotate:x", "attempts:3"}},
		},
		{
			name:   "without dnsConfig host option text is kept as written",
			policy: corev1.DNSDefault,
			node:   "options ndots: timeout:1\n",
			want:   Config{Options: []string{"ndots:", "timeout:1"}},
		},
		{
			name:   "empty option name gives an empty token or a bare value",
			policy: corev1.DNSNone,
			dc:     &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}, Options: []corev1.PodDNSConfigOption{{Name: ""}, {Name: "a:b"}}},
			want:   Config{Nameservers: []string{"1.1.1.1"}, Options: []string{"", "a:b"}},
		},
		{
			name:   "empty option name with a value",
			policy: corev1.DNSNone,
			dc:     &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}, Options: []corev1.PodDNSConfigOption{{Name: "", Value: ptr("v")}}},
			want:   Config{Nameservers: []string{"1.1.1.1"}, Options: []string{":v"}},
		},
		{
			name:   "None with dnsConfig uses only the pod's settings",
			policy: corev1.DNSNone,
			dc:     &corev1.PodDNSConfig{Nameservers: []string{"169.254.20.10"}, Searches: []string{"shop.svc.cluster.local"}, Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr("1")}}},
			want:   Config{Nameservers: []string{"169.254.20.10"}, Searches: []string{"shop.svc.cluster.local"}, Options: []string{"ndots:1"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := defaultNode()
			if tt.node != "" {
				cfg.ResolvConfData = []byte(tt.node)
			} else {
				cfg.ResolvConfData = []byte("nameserver 10.0.0.2\nsearch corp.example ec2.internal\n")
			}
			res, err := Compute(pod(tt.policy, false, tt.dc), mustProfile(t, cfg))
			if err != nil {
				t.Fatal(err)
			}
			assertConfig(t, res.Config, tt.want)
		})
	}
}

func TestComputeLimits(t *testing.T) {
	long := strings.Repeat("a", 254)
	exact := strings.Repeat("b", 253)
	many := func(n int, prefix string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = prefix + string(rune('a'+i%26)) + strings.Repeat("x", i/26)
		}
		return out
	}
	// 2048 characters joined: 8 entries of 255 ... use 253-char entries.
	at2048 := []string{strings.Repeat("c", 253), strings.Repeat("d", 253), strings.Repeat("e", 253), strings.Repeat("f", 253), strings.Repeat("g", 253), strings.Repeat("h", 253), strings.Repeat("i", 253), strings.Repeat("j", 253-0), strings.Repeat("k", 16)}
	if joinedLen(at2048) != 2048 {
		t.Fatalf("setup: %d", joinedLen(at2048))
	}
	over2048 := append(append([]string{}, at2048[:8]...), strings.Repeat("k", 17))

	nsEvent := func(kept string) Event {
		return Event{Object: ObjectPod, Type: "Warning", Reason: "DNSConfigForming", Message: "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: " + kept}
	}
	searchEvent := func(kept []string) Event {
		return Event{Object: ObjectPod, Type: "Warning", Reason: "DNSConfigForming", Message: "Search Line limits were exceeded, some search paths have been omitted, the applied search line is: " + strings.Join(kept, " ")}
	}

	tests := []struct {
		name         string
		nameservers  []string
		searches     []string
		wantNS       []string
		wantSearches []string
		wantEvents   []Event
	}{
		{name: "three nameservers fit", nameservers: []string{"1.1.1.1", "2.2.2.2", "3.3.3.3"}, wantNS: []string{"1.1.1.1", "2.2.2.2", "3.3.3.3"}},
		{name: "four nameservers cut to three", nameservers: []string{"1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"}, wantNS: []string{"1.1.1.1", "2.2.2.2", "3.3.3.3"}, wantEvents: []Event{nsEvent("1.1.1.1 2.2.2.2 3.3.3.3")}},
		{name: "32 searches fit", nameservers: []string{"1.1.1.1"}, searches: many(32, "s"), wantNS: []string{"1.1.1.1"}, wantSearches: many(32, "s")},
		{name: "33 searches cut to 32", nameservers: []string{"1.1.1.1"}, searches: many(33, "s"), wantNS: []string{"1.1.1.1"}, wantSearches: many(32, "s"), wantEvents: []Event{searchEvent(many(32, "s"))}},
		{name: "253-char entry fits", nameservers: []string{"1.1.1.1"}, searches: []string{exact}, wantNS: []string{"1.1.1.1"}, wantSearches: []string{exact}},
		{name: "254-char entry dropped", nameservers: []string{"1.1.1.1"}, searches: []string{"a.example", long, "b.example"}, wantNS: []string{"1.1.1.1"}, wantSearches: []string{"a.example", "b.example"}, wantEvents: []Event{searchEvent([]string{"a.example", "b.example"})}},
		{
			name: "count cut happens before long entries are dropped", nameservers: []string{"1.1.1.1"},
			searches: append(append(many(31, "s"), long), "after.example"), wantNS: []string{"1.1.1.1"}, wantSearches: many(31, "s"), wantEvents: []Event{searchEvent(many(31, "s"))},
		},
		{name: "2048 characters fit", nameservers: []string{"1.1.1.1"}, searches: at2048, wantNS: []string{"1.1.1.1"}, wantSearches: at2048},
		{name: "2049 characters cut from the end", nameservers: []string{"1.1.1.1"}, searches: over2048, wantNS: []string{"1.1.1.1"}, wantSearches: over2048[:8], wantEvents: []Event{searchEvent(over2048[:8])}},
		{
			name: "nameserver event comes before search event", nameservers: []string{"1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"}, searches: many(33, "s"),
			wantNS: []string{"1.1.1.1", "2.2.2.2", "3.3.3.3"}, wantSearches: many(32, "s"), wantEvents: []Event{nsEvent("1.1.1.1 2.2.2.2 3.3.3.3"), searchEvent(many(32, "s"))},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustProfile(t, NodeConfig{ClusterDNS: []string{"10.96.0.10"}, ResolvConf: "/etc/resolv.conf", ResolvConfData: []byte{}})
			res, err := Compute(pod(corev1.DNSNone, false, &corev1.PodDNSConfig{Nameservers: tt.nameservers, Searches: tt.searches}), p)
			if err != nil {
				t.Fatal(err)
			}
			if !equalLists(res.Config.Nameservers, tt.wantNS) || !equalLists(res.Config.Searches, tt.wantSearches) {
				t.Errorf("config = %q / %q, want %q / %q", res.Config.Nameservers, res.Config.Searches, tt.wantNS, tt.wantSearches)
			}
			if !reflect.DeepEqual(res.Events, tt.wantEvents) {
				t.Errorf("events = %#v\nwant %#v", res.Events, tt.wantEvents)
			}
		})
	}
}

// Limits also apply to what the node file and cluster DNS contribute: two
// cluster DNS addresses plus two pod nameservers pass API validation but are
// cut by kubelet.
func TestComputeLimitsAcrossSources(t *testing.T) {
	cfg := defaultNode()
	cfg.ClusterDNS = []string{"10.96.0.10", "10.96.0.11"}
	res, err := Compute(pod(corev1.DNSClusterFirst, false, &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1", "8.8.8.8"}}), mustProfile(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"10.96.0.10", "10.96.0.11", "1.1.1.1"}; !equalLists(res.Config.Nameservers, want) {
		t.Errorf("nameservers = %q, want %q", res.Config.Nameservers, want)
	}
	if len(res.Events) != 1 || res.Events[0].Reason != ReasonDNSConfigForming {
		t.Errorf("events = %v", res.Events)
	}

	// A node file with 31 search domains: cluster pods get 3 + 31, cut to 32.
	var hostSearch []string
	for i := range 31 {
		hostSearch = append(hostSearch, "h"+strings.Repeat("x", i)+".example")
	}
	cfg = defaultNode()
	cfg.ResolvConfData = []byte("search " + strings.Join(hostSearch, " ") + "\n")
	res, _ = Compute(pod(corev1.DNSClusterFirst, false, nil), mustProfile(t, cfg))
	if len(res.Config.Searches) != 32 || res.Config.Searches[31] != hostSearch[28] {
		t.Errorf("searches = %d entries (last %q), want 32 ending with %q", len(res.Config.Searches), res.Config.Searches[len(res.Config.Searches)-1], hostSearch[28])
	}
}

func TestComputeDoesNotMutateInputs(t *testing.T) {
	cfg := defaultNode()
	cfg.ClusterDomain = ""
	long := strings.Repeat("a", 300)
	cfg.ResolvConfData = []byte("search a.example " + long + " b.example\noptions x\n")
	p := mustProfile(t, cfg)
	before := *p.Host()
	before.Searches = append([]string(nil), before.Searches...)
	before.Options = append([]string(nil), before.Options...)
	po := pod(corev1.DNSClusterFirst, false, nil)
	first, err := Compute(po, p)
	if err != nil {
		t.Fatal(err)
	}
	first.Config.Options[0] = "mutated"
	second, _ := Compute(po, p)
	if !reflect.DeepEqual(p.Host().Searches, before.Searches) || !reflect.DeepEqual(p.Host().Options, before.Options) {
		t.Errorf("profile changed: %+v, was %+v", *p.Host(), before)
	}
	if second.Config.Options[0] != "ndots:5" || !equalLists(second.Config.Searches, []string{"a.example", "b.example"}) {
		t.Errorf("second Compute = %+v", second.Config)
	}
	hostPod := pod(corev1.DNSDefault, false, nil)
	r, _ := Compute(hostPod, p)
	r.Config.Options[0] = "mutated"
	if p.Host().Options[0] != "x" {
		t.Errorf("host options aliased: %q", p.Host().Options)
	}
}

func TestRender(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"empty config is an empty file", Config{}, ""},
		{"full", Config{Nameservers: []string{"10.96.0.10", "fd00::a"}, Searches: []string{"a.example", "b.example"}, Options: []string{"ndots:5", "edns0"}},
			"search a.example b.example\nnameserver 10.96.0.10\nnameserver fd00::a\noptions ndots:5 edns0\n"},
		{"only nameservers", Config{Nameservers: []string{"127.0.0.1"}}, "nameserver 127.0.0.1\n"},
		{"empty strings are written as they are", Config{Nameservers: []string{""}, Searches: []string{"a", "", "b"}, Options: []string{""}}, "search a  b\nnameserver \noptions \n"},
	}
	for _, tt := range tests {
		if got := tt.cfg.Render(); got != tt.want {
			t.Errorf("%s: Render() = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestCheckLimits(t *testing.T) {
	repeat := func(n int, s string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = s + strings.Repeat("x", i)
		}
		return strings.Join(parts, " ")
	}
	tests := []struct {
		name   string
		domain string
		file   string
		path   string
		want   string // "" for no event
	}{
		{"fine", "cluster.local", "search a.example\n", "/etc/resolv.conf", ""},
		{"29 domains with a cluster domain fit", "cluster.local", "search " + repeat(29, "d") + "\n", "/etc/resolv.conf", ""},
		{"30 domains with a cluster domain", "cluster.local", "search " + repeat(30, "d") + "\n", "/etc/resolv.conf", "Resolv.conf file '/etc/resolv.conf' contains search line consisting of more than 29 domains!"},
		{"30 domains without a cluster domain fit", "", "search " + repeat(30, "d") + "\n", "/etc/resolv.conf", ""},
		{"33 domains without a cluster domain", "", "search " + repeat(33, "d") + "\n", "/etc/resolv.conf", "Resolv.conf file '/etc/resolv.conf' contains search line consisting of more than 32 domains!"},
		{"254-char domain", "cluster.local", "search " + strings.Repeat("a", 254) + "\n", "/etc/resolv.conf", `Resolv.conf file "/etc/resolv.conf" contains a search path which length is more than allowed 253 chars!`},
		{"long line", "cluster.local", "search " + repeat(10, strings.Repeat("a", 220)) + "\n", "/etc/resolv.conf", "Resolv.conf file '/etc/resolv.conf' contains search line which length is more than allowed 2048 chars!"},
		{"parse error without kubelet's GetPodDNS wrapping", "cluster.local", "nameserver\n", "/etc/resolv.conf", "nameserver list is empty "},
		{"count wins over length", "cluster.local", "search " + repeat(30, strings.Repeat("a", 254)) + "\n", "/etc/resolv.conf", "Resolv.conf file '/etc/resolv.conf' contains search line consisting of more than 29 domains!"},
		{"no file read", "cluster.local", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustProfile(t, NodeConfig{ClusterDomain: tt.domain, ResolvConf: tt.path, ResolvConfData: []byte(tt.file)})
			ev := p.CheckLimits()
			switch {
			case tt.want == "" && ev != nil:
				t.Errorf("CheckLimits() = %+v, want none", *ev)
			case tt.want != "" && (ev == nil || ev.Message != tt.want || ev.Object != ObjectNode || ev.Reason != ReasonCheckLimitsForResolvConf || ev.Type != "Warning"):
				t.Errorf("CheckLimits() = %+v, want %q", ev, tt.want)
			}
		})
	}
	// An unreadable file reports the open error as it is.
	p := mustProfile(t, NodeConfig{ResolvConf: "/nonexistent/resolv.conf"})
	if ev := p.CheckLimits(); ev == nil || ev.Message != "open /nonexistent/resolv.conf: no such file or directory" {
		t.Errorf("CheckLimits() = %+v", ev)
	}
}
