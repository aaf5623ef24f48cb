package cluster_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/cluster"
	"github.com/poddns/poddns/pkg/serve/cluster/clustertest"
	"github.com/poddns/poddns/pkg/serve/dnstest"
	"github.com/poddns/poddns/pkg/serve/filesource"
	"github.com/poddns/poddns/pkg/serve/store"
)

// serial is the SOA serial of the fixture store (its fixed clock).
const serial = 1700000000

// fixture is the conformance table's objects; table is the table for a
// store with the fixed clock of newStore.
var (
	fixture = clustertest.Fixture
	table   = clustertest.Table{Serial: serial}
)

// newStore loads the fixture into a synced store with a fixed clock.
func newStore(tb testing.TB, yaml string) *store.Store {
	tb.Helper()
	res, err := filesource.Read(strings.NewReader(yaml), "fixture")
	if err != nil {
		tb.Fatalf("fixture: %v", err)
	}
	st := store.New()
	st.SetClock(func() time.Time { return time.Unix(serial, 0) })
	st.Replace(res.Objects)
	return st
}

// newHandler is the cluster handler over st, in front of serve.Refused.
func newHandler(tb testing.TB, st cluster.Source, mod func(*cluster.Config, *cluster.Deps)) serve.Handler {
	tb.Helper()
	c, d := cluster.Defaults(), cluster.Deps{Store: st, Next: serve.Refused}
	if mod != nil {
		mod(&c, &d)
	}
	h, err := cluster.New(c, d)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return h
}

func soa(zone string) dns.RR { return dnstest.SOA(zone, serial) }

var (
	soaZ   = soa("cluster.local.")
	soaRev = soa("in-addr.arpa.")
	soaV6  = soa("ip6.arpa.")
)

func nxdomain(name string, t uint16) dnstest.Case { return dnstest.NXDomain(name, t, soaZ) }
func nodata(name string, t uint16) dnstest.Case   { return dnstest.NoData(name, t, soaZ) }

var answer = dnstest.Answer

// runCases sends every case over UDP and TCP to a real server on loopback.
func runCases(t *testing.T, h serve.Handler, cases []dnstest.Case) {
	t.Helper()
	addr := dnstest.StartServer(t, h)
	for _, proto := range []string{"udp", "tcp"} {
		for _, c := range cases {
			t.Run(proto+"/"+c.Qname+"/"+dns.TypeToString[c.Qtype], func(t *testing.T) {
				dnstest.Check(t, c, dnstest.Exchange(t, addr, proto, c.Msg()))
			})
		}
	}
}

const (
	web  = "web.default.svc.cluster.local."
	db   = "db.default.svc.cluster.local."
	dual = "dual.default.svc.cluster.local."
)

func TestServiceRecords(t *testing.T) {
	runCases(t, newHandler(t, newStore(t, fixture), nil), table.Services())
}

func TestSRVRecords(t *testing.T) {
	runCases(t, newHandler(t, newStore(t, fixture), nil), table.SRV())
}

// TestNXDOMAINvsNODATA has one case per row of the table in
// kubernetes-dns.md §1.3 (the rows on headless and SRV are in the other
// tests, the one on sync in TestServfailBeforeSync).
func TestNXDOMAINvsNODATA(t *testing.T) {
	runCases(t, newHandler(t, newStore(t, fixture), nil), table.Zone())
}

func TestPodRecords(t *testing.T) {
	st := newStore(t, fixture)
	for _, mode := range []cluster.PodMode{cluster.PodsInsecure, cluster.PodsVerified, cluster.PodsDisabled} {
		t.Run(string(mode), func(t *testing.T) {
			runCases(t, newHandler(t, st, func(o *cluster.Config, _ *cluster.Deps) { o.Pods = mode }), table.Pods(mode))
		})
	}
}

// TestRemotePods: in verified mode with Deps.RemotePods (node-local dnsd:
// the central server), a pod name the store has no pod of is asked of
// RemotePods and its reply is the client's; names the store decides —
// local pods, namespaces that do not exist, labels that are no IP, every
// name in insecure mode — never reach it.
func TestRemotePods(t *testing.T) {
	st := newStore(t, fixture)
	var mu sync.Mutex
	asked := map[string]int{}
	remote := serve.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		mu.Lock()
		asked[r.Question[0].Name]++
		mu.Unlock()
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		rr, _ := dns.NewRR(r.Question[0].Name + " 5 IN A 192.0.2.7")
		m.Answer = []dns.RR{rr}
		return dns.RcodeSuccess, w.WriteMsg(m)
	})
	const (
		local  = "10-244-1-10.default.pod.cluster.local."
		far    = "10-1-2-3.default.pod.cluster.local."
		otherN = "10-244-9-9.default.pod.cluster.local." // that IP's local pod is in "other"
	)
	remoteAnswer := func(name string) dnstest.Case { return answer(name, dns.TypeA, name+" 5 IN A 192.0.2.7") }
	t.Run("verified", func(t *testing.T) {
		clear(asked)
		runCases(t, newHandler(t, st, func(o *cluster.Config, d *cluster.Deps) { o.Pods, d.RemotePods = cluster.PodsVerified, remote }), []dnstest.Case{
			answer(local, dns.TypeA, local+" 30 IN A 10.244.1.10"),
			remoteAnswer(far),
			remoteAnswer(otherN),
			remoteAnswer(strings.ToUpper(far)),
			answer("10-244-9-9.other.pod.cluster.local.", dns.TypeA, "10-244-9-9.other.pod.cluster.local. 30 IN A 10.244.9.9"),
			nxdomain("10-1-2-3.nosuch.pod.cluster.local.", dns.TypeA),
			nxdomain("not-an-ip.default.pod.cluster.local.", dns.TypeA),
			nxdomain("x.10-1-2-3.default.pod.cluster.local.", dns.TypeA),
			nodata("default.pod.cluster.local.", dns.TypeA),
			answer(web, dns.TypeA, web+" 30 IN A 10.96.0.20"),
		})
		mu.Lock()
		defer mu.Unlock()
		// Each remote name once per protocol, nothing else.
		want := map[string]int{far: 2, otherN: 2, strings.ToUpper(far): 2}
		if fmt.Sprint(asked) != fmt.Sprint(want) {
			t.Errorf("RemotePods asked %v, want %v", asked, want)
		}
	})
	t.Run("insecure", func(t *testing.T) {
		clear(asked)
		runCases(t, newHandler(t, st, func(_ *cluster.Config, d *cluster.Deps) { d.RemotePods = remote }), []dnstest.Case{
			answer(far, dns.TypeA, far+" 30 IN A 10.1.2.3"),
		})
		mu.Lock()
		defer mu.Unlock()
		if len(asked) != 0 {
			t.Errorf("insecure mode asked RemotePods: %v", asked)
		}
	})
	t.Run("not synced", func(t *testing.T) {
		clear(asked)
		runCases(t, newHandler(t, store.New(), func(o *cluster.Config, d *cluster.Deps) { o.Pods, d.RemotePods = cluster.PodsVerified, remote }), []dnstest.Case{
			{Qname: far, Qtype: dns.TypeA, Rcode: dns.RcodeServerFailure, NoAA: true},
		})
		mu.Lock()
		defer mu.Unlock()
		if len(asked) != 0 {
			t.Errorf("an unsynced store asked RemotePods: %v", asked)
		}
	})
}

func TestPTRRecords(t *testing.T) {
	st := newStore(t, fixture)
	runCases(t, newHandler(t, st, nil), table.PTR())
	v6 := clustertest.Rev
	t.Run("no fallthrough", func(t *testing.T) {
		runCases(t, newHandler(t, st, func(c *cluster.Config, _ *cluster.Deps) { c.ReverseFallthrough = false }), []dnstest.Case{
			{Qname: v6("192.0.2.1"), Qtype: dns.TypePTR, Rcode: dns.RcodeNameError, Ns: []dns.RR{soaRev}},
			{Qname: v6("2001:db8::1"), Qtype: dns.TypePTR, Rcode: dns.RcodeNameError, Ns: []dns.RR{soaV6}},
		})
	})
}

func TestTTLAndZones(t *testing.T) {
	st := newStore(t, fixture)
	h := newHandler(t, st, func(o *cluster.Config, _ *cluster.Deps) {
		o.TTL = 5
		o.Zones = []string{"Example.Internal", "cluster.local"}
	})
	const w = "web.default.svc.example.internal."
	s := dnstest.RR(fmt.Sprintf("example.internal. 5 IN SOA ns.dns.example.internal. hostmaster.example.internal. %d 7200 1800 86400 5", serial))
	runCases(t, h, []dnstest.Case{
		answer(w, dns.TypeA, w+" 5 IN A 10.96.0.20"),
		answer(web, dns.TypeA, web+" 5 IN A 10.96.0.20"),
		{Qname: "nosuch.default.svc.example.internal.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{s}},
		// PTR targets are in the first zone configured.
		answer("20.0.96.10.in-addr.arpa.", dns.TypePTR, "20.0.96.10.in-addr.arpa. 5 IN PTR "+w),
	})
}

func TestServfailBeforeSync(t *testing.T) {
	st := store.New() // never synced
	runCases(t, newHandler(t, st, nil), []dnstest.Case{
		{Qname: web, Qtype: dns.TypeA, Rcode: dns.RcodeServerFailure, NoAA: true},
		{Qname: "nosuch.default.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeServerFailure, NoAA: true},
		{Qname: "20.0.96.10.in-addr.arpa.", Qtype: dns.TypePTR, Rcode: dns.RcodeServerFailure, NoAA: true},
		{Qname: "example.com.", Qtype: dns.TypeA, Rcode: dns.RcodeRefused, NoAA: true},
	})
}

func TestNewRejectsBadOptions(t *testing.T) {
	st := store.New()
	if _, err := cluster.New(cluster.Defaults(), cluster.Deps{}); err == nil {
		t.Error("New accepted no store")
	}
	dnstest.CheckRejects(t, cluster.Defaults, cluster.New, cluster.Deps{Store: st}, map[string]func(*cluster.Config){
		"ttl":          func(c *cluster.Config) { c.TTL = 3601 },
		"pods":         func(c *cluster.Config) { c.Pods = "sometimes" },
		"pods empty":   func(c *cluster.Config) { c.Pods = "" },
		"no zone":      func(c *cluster.Config) { c.Zones = nil },
		"zone":         func(c *cluster.Config) { c.Zones = []string{"a..b"} },
		"root zone":    func(c *cluster.Config) { c.Zones = []string{"."} },
		"reverse zone": func(c *cluster.Config) { c.Zones = []string{"10.in-addr.arpa"} },
	})
}

// bigHeadless is a headless Service with n ready endpoints.
func bigHeadless(n int) string {
	var b strings.Builder
	b.WriteString(`
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: default}}
- apiVersion: v1
  kind: Service
  metadata: {name: big, namespace: default}
  spec: {clusterIP: None, ports: [{name: http, port: 80}]}
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata: {name: big-1, namespace: default, labels: {kubernetes.io/service-name: big}}
  addressType: IPv4
  ports: [{name: http, port: 80, protocol: TCP}]
  endpoints:
`)
	for i := range n {
		fmt.Fprintf(&b, "  - {addresses: [10.244.%d.%d], hostname: big-%d}\n", i/250, i%250+1, i)
	}
	return b.String()
}

func TestTruncation(t *testing.T) {
	st := newStore(t, bigHeadless(100))
	addr := dnstest.StartServer(t, newHandler(t, st, nil))
	const big = "big.default.svc.cluster.local."
	for _, tc := range []struct {
		name    string
		proto   string
		bufsize uint16
		qtype   uint16
		tc      bool
		max     int // largest reply size in bytes
	}{
		{"udp without EDNS0", "udp", 0, dns.TypeA, true, 512},
		{"udp EDNS0 1232", "udp", 1232, dns.TypeA, true, 1232},
		{"udp EDNS0 4096 capped", "udp", 4096, dns.TypeA, true, serve.MaxUDPSize},
		{"udp SRV without EDNS0", "udp", 0, dns.TypeSRV, true, 512},
		{"tcp", "tcp", 0, dns.TypeA, false, dns.MaxMsgSize},
		{"tcp SRV", "tcp", 0, dns.TypeSRV, false, dns.MaxMsgSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := dnstest.Exchange(t, addr, tc.proto, dnstest.Query(big, tc.qtype, tc.bufsize))
			if m.Truncated != tc.tc {
				t.Errorf("TC = %v, want %v", m.Truncated, tc.tc)
			}
			m.Compress = true // as the server packed it
			if n := m.Len(); n > tc.max {
				t.Errorf("reply is %d bytes, want at most %d", n, tc.max)
			}
			if m.Rcode != dns.RcodeSuccess || !m.Authoritative {
				t.Errorf("rcode %s AA %v, want NOERROR with AA", dns.RcodeToString[m.Rcode], m.Authoritative)
			}
			if tc.tc && (len(m.Answer) == 0 || len(m.Answer) >= 100) {
				t.Errorf("truncated reply has %d answers, want some but not all 100", len(m.Answer))
			}
			if !tc.tc {
				if len(m.Answer) != 100 {
					t.Errorf("%d answers, want 100", len(m.Answer))
				}
				if tc.qtype == dns.TypeSRV && len(m.Extra) != 100 {
					t.Errorf("%d additional records, want 100", len(m.Extra))
				}
			}
			if (tc.bufsize > 0) != (m.IsEdns0() != nil) {
				t.Errorf("reply OPT = %v, want one only when the query had one", m.IsEdns0())
			}
		})
	}
}

func TestExternalNameUpstream(t *testing.T) {
	st := newStore(t, fixture)
	upstream := serve.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		if r.Question[0].Name != "search.example.com." || r.Question[0].Qtype != dns.TypeA {
			return dns.RcodeRefused, nil
		}
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = dnstest.RRs("search.example.com. 300 IN A 192.0.2.10")
		return dns.RcodeSuccess, w.WriteMsg(m)
	})
	const ext = "ext.default.svc.cluster.local."
	runCases(t, newHandler(t, st, func(_ *cluster.Config, d *cluster.Deps) { d.Upstream = upstream }), []dnstest.Case{
		answer(ext, dns.TypeA, ext+" 30 IN CNAME search.example.com.", "search.example.com. 300 IN A 192.0.2.10"),
		answer(ext, dns.TypeAAAA, ext+" 30 IN CNAME search.example.com."), // upstream refused: the CNAME alone
		answer(ext, dns.TypeCNAME, ext+" 30 IN CNAME search.example.com."),
	})
}

// TestOtherClassRefused: the cluster zones exist in class IN only; a CH
// (or HS, ANY) query for a cluster name or a cluster IP's reverse name is
// refused and never handed on (to the forwarder, which would ask an
// upstream about it). Names outside the zones are handed on whatever their
// class (version.bind CH TXT is the forwarder's to answer or refuse).
func TestOtherClassRefused(t *testing.T) {
	st := newStore(t, fixture)
	var handedOn []string
	next := serve.HandlerFunc(func(_ context.Context, _ dns.ResponseWriter, r *dns.Msg) (int, error) {
		handedOn = append(handedOn, r.Question[0].Name)
		return dns.RcodeRefused, nil
	})
	h := newHandler(t, st, func(_ *cluster.Config, d *cluster.Deps) { d.Next = next })
	for _, tc := range []struct {
		name  string
		class uint16
		next  bool
	}{
		{web, dns.ClassCHAOS, false},
		{web, dns.ClassHESIOD, false},
		{web, dns.ClassANY, false},
		{"nosuch.default.svc.cluster.local.", dns.ClassCHAOS, false},
		{"cluster.local.", dns.ClassCHAOS, false},
		{"20.0.96.10.in-addr.arpa.", dns.ClassCHAOS, false},
		{"version.bind.", dns.ClassCHAOS, true},
	} {
		handedOn = nil
		q := dnstest.Query(tc.name, dns.TypeTXT, 0)
		q.Question[0].Qclass = tc.class
		w := &dnstest.Recorder{}
		serve.Handle(t.Context(), h, w, q)
		if got := len(handedOn) > 0; got != tc.next {
			t.Errorf("%s class %s: handed on %v, want %v", tc.name, dns.ClassToString[tc.class], got, tc.next)
		}
		if w.Msg == nil || w.Msg.Rcode != dns.RcodeRefused {
			t.Errorf("%s class %s: reply %v, want REFUSED", tc.name, dns.ClassToString[tc.class], w.Msg)
		}
	}
}
