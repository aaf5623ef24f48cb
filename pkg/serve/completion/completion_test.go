package completion_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/cluster"
	"github.com/poddns/poddns/pkg/serve/completion"
	"github.com/poddns/poddns/pkg/serve/dnstest"
	"github.com/poddns/poddns/pkg/serve/forward"
	"github.com/poddns/poddns/pkg/serve/store"
)

// upstreamZone is the fake upstream's world: every other name is NXDOMAIN.
var upstreamZone = map[string][]string{
	"ext.example.":        {"ext.example. 300 IN A 192.0.2.1", "ext.example. 300 IN AAAA 2001:db8::1"},
	"web.corp.example.":   {"web.corp.example. 300 IN A 192.0.2.2"},
	"v6.example.":         {"v6.example. 300 IN AAAA 2001:db8::6"},
	"empty.example.":      {"empty.example. 300 IN TXT \"no address\""},
	"empty.corp.example.": {"empty.corp.example. 300 IN TXT \"no address\""},
	"empty.":              {"empty. 300 IN A 192.0.2.9"},
	"x.y.z.example.":      {"x.y.z.example. 300 IN A 192.0.2.3"},
	"ext.corp2.example.":  {"ext.corp2.example. 300 IN A 192.0.2.4"},
}

const soa = "example. 60 IN SOA ns.example. hostmaster.example. 1 3600 600 86400 30"

// upstream answers upstreamZone and counts the questions it gets.
type upstream struct {
	mu    sync.Mutex
	asked map[string]int
}

func (u *upstream) ServeDNS(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	u.mu.Lock()
	u.asked[name+" "+dns.TypeToString[q.Qtype]]++
	u.mu.Unlock()
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	rrs, ok := upstreamZone[name]
	if !ok {
		m.Rcode = dns.RcodeNameError
	}
	for _, s := range rrs {
		if rr := dnstest.RR(s); rr.Header().Rrtype == q.Qtype {
			m.Answer = append(m.Answer, rr)
		}
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{dnstest.RR(soa)}
	}
	return dns.RcodeSuccess, w.WriteMsg(m)
}
func (*upstream) Name() string { return "upstream" }

func ip(s string) []netip.Addr { return []netip.Addr{netip.MustParseAddr(s)} }

func k8sPod(ns, name, addr string, mut func(*corev1.Pod)) *store.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name)},
		Spec:       corev1.PodSpec{DNSPolicy: corev1.DNSClusterFirst},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: addr},
	}
	if mut != nil {
		mut(p)
	}
	sp, ok := store.ToPod(p)
	if !ok {
		return nil
	}
	return sp
}

func setup(t *testing.T) (addr string, c *completion.Completion, up *upstream) {
	t.Helper()
	up = &upstream{asked: map[string]int{}}
	upAddr := dnstest.StartServer(t, up)

	// Pods, one source address each (all on loopback).
	pods := []*store.Pod{
		k8sPod("default", "client", "127.0.0.11", nil),
		k8sPod("default", "custom", "127.0.0.12", func(p *corev1.Pod) {
			p.Spec.DNSPolicy = corev1.DNSNone
			p.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"127.0.0.1"},
				Searches: []string{"corp.example", "corp2.example", "example"},
				Options:  []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr("2")}}}
		}),
		k8sPod("default", "hostnet", "127.0.0.13", func(p *corev1.Pod) { p.Spec.HostNetwork = true }),
		// 127.0.0.14: two live pods (IP reused, informer lag).
		k8sPod("default", "reused-a", "127.0.0.14", nil),
		k8sPod("other", "reused-b", "127.0.0.14", nil),
		// 127.0.0.15: a completed pod of another namespace and a live one.
		k8sPod("other", "done", "127.0.0.15", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
		k8sPod("default", "after", "127.0.0.15", nil),
		// 127.0.0.16: a pod of namespace other only.
		k8sPod("other", "elsewhere", "127.0.0.16", nil),
		// 127.0.0.18: ndots:3.
		k8sPod("default", "ndots3", "127.0.0.18", func(p *corev1.Pod) {
			p.Spec.DNSConfig = &corev1.PodDNSConfig{Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr("3")}}}
		}),
		// 127.0.0.20: a search line of 256 bytes or more: musl ignores it
		// and does not walk, so the first expansion may be a literal name.
		k8sPod("default", "longsearch", "127.0.0.20", func(p *corev1.Pod) {
			p.Spec.DNSConfig = &corev1.PodDNSConfig{Searches: []string{strings.Repeat("a", 60) + ".example", strings.Repeat("b", 60) + ".example", strings.Repeat("c", 60) + ".example"}}
		}),
		// 127.0.0.19: only a completed pod.
		k8sPod("default", "finished", "127.0.0.19", func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }),
	}
	// 127.0.0.17: a terminating pod: never stored.
	now := metav1.Now()
	if p := k8sPod("default", "terminating", "127.0.0.17", func(p *corev1.Pod) { p.DeletionTimestamp = &now }); p != nil {
		t.Fatalf("ToPod kept a terminating pod")
	}
	for _, p := range pods {
		if p == nil {
			t.Fatal("ToPod dropped a test pod")
		}
	}
	st := store.New()
	st.Replace(store.Objects{
		Services: []*store.Service{
			{Namespace: "default", Name: "db", Kind: store.ClusterIP, ClusterIPs: ip("10.96.0.20")},
			{Namespace: "other", Name: "db", Kind: store.ClusterIP, ClusterIPs: ip("10.96.0.21")},
			{Namespace: "other", Name: "v6svc", Kind: store.ClusterIP, ClusterIPs: ip("fd00::21")},
		},
		Pods:       pods,
		Namespaces: []*store.Namespace{{Name: "default"}, {Name: "other"}},
	})

	fwd := dnstest.Forward(t, []string{upAddr}, forward.Deps{})
	cl, err := cluster.New(cluster.Defaults(), cluster.Deps{Store: st, Next: fwd})
	if err != nil {
		t.Fatal(err)
	}
	profile := writeProfile(t, "clusterDomain: cluster.local\nclusterDNS: [10.96.0.10]\nresolvConf: /etc/resolv.conf\n"+
		"resolvConfContent: |\n  nameserver 192.0.2.53\n  search corp.example\n")
	c, err = completion.New(completion.Config{NodeProfile: profile}, completion.Deps{Store: st, Next: cl})
	if err != nil {
		t.Fatal(err)
	}
	return dnstest.StartServer(t, c), c, up
}

func ptr(s string) *string { return &s }

// exchange asks addr from the source address from.
func exchange(t *testing.T, addr, from, name string, qtype uint16) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: "udp", Timeout: dnstest.Timeout,
		Dialer: &net.Dialer{Timeout: dnstest.Timeout, LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}}}
	r, _, err := c.Exchange(dnstest.Query(name, qtype, 0), addr)
	if err != nil {
		t.Fatalf("exchange %s %s from %s: %v", name, dns.TypeToString[qtype], from, err)
	}
	return r
}

const (
	def    = ".default.svc.cluster.local."
	pod    = "127.0.0.11"
	custom = "127.0.0.12"
)

func TestCompletion(t *testing.T) {
	addr, c, _ := setup(t)
	for _, tc := range []struct {
		name   string
		from   string
		qname  string
		qtype  uint16
		rcode  int
		answer []string
		ns     []string // authority, checked when not nil
		saved  float64  // saved queries counted for the pod's namespace
	}{
		{name: "first domain hit: no CNAME", from: pod, qname: "db" + def, qtype: dns.TypeA,
			answer: []string{"db.default.svc.cluster.local. 30 IN A 10.96.0.20"}},
		{name: "second domain hit", from: pod, qname: "db.other" + def, qtype: dns.TypeA,
			answer: []string{"db.other.default.svc.cluster.local. 30 IN CNAME db.other.svc.cluster.local.", "db.other.svc.cluster.local. 30 IN A 10.96.0.21"}, saved: 1},
		{name: "third domain hit", from: pod, qname: "db.other.svc" + def, qtype: dns.TypeA,
			answer: []string{"db.other.svc.default.svc.cluster.local. 30 IN CNAME db.other.svc.cluster.local.", "db.other.svc.cluster.local. 30 IN A 10.96.0.21"}, saved: 2},
		{name: "node search domain hit", from: pod, qname: "web" + def, qtype: dns.TypeA,
			answer: []string{"web.default.svc.cluster.local. 300 IN CNAME web.corp.example.", "web.corp.example. 300 IN A 192.0.2.2"}, saved: 3},
		{name: "absolute hit A", from: pod, qname: "ext.example" + def, qtype: dns.TypeA,
			answer: []string{"ext.example.default.svc.cluster.local. 300 IN CNAME ext.example.", "ext.example. 300 IN A 192.0.2.1"}, saved: 4},
		{name: "absolute hit AAAA", from: pod, qname: "ext.example" + def, qtype: dns.TypeAAAA,
			answer: []string{"ext.example.default.svc.cluster.local. 300 IN CNAME ext.example.", "ext.example. 300 IN AAAA 2001:db8::1"}, saved: 4},
		{name: "AAAA-only name asked AAAA", from: pod, qname: "v6.example" + def, qtype: dns.TypeAAAA,
			answer: []string{"v6.example.default.svc.cluster.local. 300 IN CNAME v6.example.", "v6.example. 300 IN AAAA 2001:db8::6"}, saved: 4},
		{name: "AAAA-only name asked A: CNAME and NODATA", from: pod, qname: "v6.example" + def, qtype: dns.TypeA,
			answer: []string{"v6.example.default.svc.cluster.local. 60 IN CNAME v6.example."}, ns: []string{soa}, saved: 4},
		{name: "A-only name asked AAAA: glibc stops there too", from: pod, qname: "web" + def, qtype: dns.TypeAAAA,
			answer: []string{"web.default.svc.cluster.local. 60 IN CNAME web.corp.example."}, ns: []string{soa}, saved: 3},
		{name: "AAAA-only cluster service asked A", from: pod, qname: "v6svc.other" + def, qtype: dns.TypeA,
			answer: []string{"v6svc.other.default.svc.cluster.local. 30 IN CNAME v6svc.other.svc.cluster.local."}, saved: 1},
		{name: "NODATA at the absolute name: no completion", from: pod, qname: "empty.example" + def, qtype: dns.TypeA,
			rcode: dns.RcodeNameError},
		{name: "NODATA mid-walk hides a later hit: no completion", from: pod, qname: "empty" + def, qtype: dns.TypeA,
			rcode: dns.RcodeNameError},
		{name: "nothing anywhere: NXDOMAIN", from: pod, qname: "nope.example" + def, qtype: dns.TypeA,
			rcode: dns.RcodeNameError},
		{name: "nothing anywhere AAAA: NXDOMAIN", from: pod, qname: "nope" + def, qtype: dns.TypeAAAA,
			rcode: dns.RcodeNameError},
		{name: "other types are not completed", from: pod, qname: "ext.example" + def, qtype: dns.TypeTXT,
			rcode: dns.RcodeNameError},
		{name: "hostNetwork pod", from: "127.0.0.13", qname: "ext.example" + def, qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "unknown IP", from: "127.0.0.99", qname: "ext.example" + def, qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "reused IP: two live pods", from: "127.0.0.14", qname: "ext.example" + def, qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "reused IP: two live pods, other namespace's list", from: "127.0.0.14", qname: "ext.example.other.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "reused IP: completed pod ignored, live pod completed", from: "127.0.0.15", qname: "ext.example" + def, qtype: dns.TypeA,
			answer: []string{"ext.example.default.svc.cluster.local. 300 IN CNAME ext.example.", "ext.example. 300 IN A 192.0.2.1"}, saved: 4},
		{name: "reused IP: completed pod's namespace never answered", from: "127.0.0.15", qname: "ext.example.other.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "only a completed pod", from: "127.0.0.19", qname: "ext.example" + def, qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "terminating pod is not stored", from: "127.0.0.17", qname: "ext.example" + def, qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "pod of another namespace", from: "127.0.0.16", qname: "ext.example" + def, qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "pod of another namespace, its own list", from: "127.0.0.16", qname: "ext.example.other.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"ext.example.other.svc.cluster.local. 300 IN CNAME ext.example.", "ext.example. 300 IN A 192.0.2.1"}, saved: 4},
		{name: "custom search list: second entry", from: custom, qname: "ext.corp.example.", qtype: dns.TypeA,
			answer: []string{"ext.corp.example. 300 IN CNAME ext.corp2.example.", "ext.corp2.example. 300 IN A 192.0.2.4"}, saved: 1},
		{name: "custom search list: last entry", from: custom, qname: "v6.corp.example.", qtype: dns.TypeAAAA,
			answer: []string{"v6.corp.example. 300 IN CNAME v6.example.", "v6.example. 300 IN AAAA 2001:db8::6"}, saved: 2},
		{name: "custom search list: cluster search is not theirs", from: custom, qname: "ext.example" + def, qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "custom search list: ndots:2 reached", from: custom, qname: "y.z.corp.example.", qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "ndots:5, 3 dots: completed", from: pod, qname: "x.y.z.example" + def, qtype: dns.TypeA,
			answer: []string{"x.y.z.example.default.svc.cluster.local. 300 IN CNAME x.y.z.example.", "x.y.z.example. 300 IN A 192.0.2.3"}, saved: 4},
		{name: "search line too long for musl: no completion", from: "127.0.0.20", qname: "ext.example" + def, qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "ndots:3 reached: no completion", from: "127.0.0.18", qname: "x.y.z.example" + def, qtype: dns.TypeA, rcode: dns.RcodeNameError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := "default"
			if tc.from == "127.0.0.16" {
				ns = "other"
			}
			before := testutil.ToFloat64(c.Saved().WithLabelValues(ns))
			m := exchange(t, addr, tc.from, tc.qname, tc.qtype)
			if m.Rcode != tc.rcode {
				t.Fatalf("rcode %s, want %s\n%v", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode], m)
			}
			if d := dnstest.Diff(m.Answer, dnstest.RRs(tc.answer...)); d != "" {
				t.Errorf("answer:\n%s", d)
			}
			if tc.ns != nil {
				if d := dnstest.Diff(m.Ns, dnstest.RRs(tc.ns...)); d != "" {
					t.Errorf("authority:\n%s", d)
				}
			}
			if tc.rcode == dns.RcodeNameError && len(m.Ns) == 0 {
				t.Errorf("NXDOMAIN without SOA")
			}
			if m.Question[0].Name != tc.qname {
				t.Errorf("question %q, want %q", m.Question[0].Name, tc.qname)
			}
			if got := testutil.ToFloat64(c.Saved().WithLabelValues(ns)) - before; got != tc.saved {
				t.Errorf("saved queries %v, want %v", got, tc.saved)
			}
		})
	}
}

// TestNoNext: a failing rest of the chain is passed on, not hidden.
func TestNextFails(t *testing.T) {
	st := store.New()
	st.Replace(store.Objects{Pods: []*store.Pod{k8sPod("default", "p", "10.240.0.1", nil)}})
	profile := writeProfile(t, "clusterDomain: cluster.local\nclusterDNS: [10.96.0.10]\nresolvConf: \"\"\n")
	for _, tc := range []struct {
		name  string
		next  serve.HandlerFunc
		rcode int
	}{
		{"asked name fails", func(context.Context, dns.ResponseWriter, *dns.Msg) (int, error) {
			return dns.RcodeServerFailure, nil
		}, dns.RcodeServerFailure},
		{"walk fails: asked name's NXDOMAIN", func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
			if r.Question[0].Name != "ext.default.svc.cluster.local." {
				return dns.RcodeServerFailure, nil
			}
			m := new(dns.Msg)
			m.SetRcode(r, dns.RcodeNameError)
			return dns.RcodeNameError, w.WriteMsg(m)
		}, dns.RcodeNameError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := completion.New(completion.Config{NodeProfile: profile}, completion.Deps{Store: st, Next: tc.next})
			if err != nil {
				t.Fatal(err)
			}
			w := &dnstest.Recorder{}
			rcode, err := c.ServeDNS(context.Background(), w, dnstest.Query("ext.default.svc.cluster.local.", dns.TypeA, 0))
			if err != nil {
				t.Fatal(err)
			}
			if rcode != tc.rcode {
				t.Fatalf("rcode %s, want %s", dns.RcodeToString[rcode], dns.RcodeToString[tc.rcode])
			}
			if tc.rcode == dns.RcodeNameError && (w.Msg == nil || w.Msg.Rcode != dns.RcodeNameError || len(w.Msg.Answer) != 0) {
				t.Fatalf("reply %v, want the asked name's NXDOMAIN", w.Msg)
			}
			if testutil.ToFloat64(c.Saved().WithLabelValues("default")) != 0 {
				t.Fatal("counted a saved query")
			}
		})
	}
}

// writeProfile writes a NodeProfile file of the given fields and returns
// its path.
func writeProfile(t *testing.T, fields string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "profile.yaml")
	if err := os.WriteFile(p, []byte("apiVersion: poddns.io/v1alpha1\nkind: NodeProfile\n"+fields), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfig(t *testing.T) {
	on, off := true, false
	for _, tc := range []struct {
		c       completion.Config
		on, bad bool
	}{
		{c: completion.Defaults()},
		{c: completion.Config{NodeProfile: "p.yaml"}, on: true},
		{c: completion.Config{NodeProfile: "p.yaml", Enabled: &off}},
		{c: completion.Config{NodeProfile: "p.yaml", Enabled: &on}, on: true},
		{c: completion.Config{Enabled: &on}}, // a profile may come from Deps
	} {
		if got := tc.c.On(); got != tc.on {
			t.Errorf("%+v: On() = %v, want %v", tc.c, got, tc.on)
		}
		if err := tc.c.Validate(); (err != nil) != tc.bad {
			t.Errorf("%+v: Validate() = %v, want an error: %v", tc.c, err, tc.bad)
		}
	}
	if _, err := completion.New(completion.Config{NodeProfile: filepath.Join(t.TempDir(), "none.yaml")}, completion.Deps{Store: store.New()}); err == nil {
		t.Error("New with a missing node profile: no error")
	}
	if _, err := completion.New(completion.Config{Enabled: &on}, completion.Deps{Store: store.New()}); err == nil {
		t.Error("New without a node profile: no error")
	}
}

// TestSavedNamespaceBound: the namespace label of the saved-queries metric
// has at most MaxNamespaceLabels values; later namespaces share _other.
func TestSavedNamespaceBound(t *testing.T) {
	m, err := completion.NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range completion.MaxNamespaceLabels + 50 {
		completion.AddSaved(m, fmt.Sprintf("ns-%d", i), 1)
	}
	completion.AddSaved(m, "ns-0", 1) // known: its own series
	if n := testutil.CollectAndCount(m.Saved()); n != completion.MaxNamespaceLabels+1 {
		t.Errorf("%d series, want %d (the first namespaces and _other)", n, completion.MaxNamespaceLabels+1)
	}
	if got := testutil.ToFloat64(m.Saved().WithLabelValues("_other")); got != 50 {
		t.Errorf("_other = %v, want 50", got)
	}
	if got := testutil.ToFloat64(m.Saved().WithLabelValues("ns-0")); got != 2 {
		t.Errorf("ns-0 = %v, want 2", got)
	}
}
