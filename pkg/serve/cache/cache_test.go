package cache_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/poddns/poddns/pkg/configfile"
	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/cache"
	"github.com/poddns/poddns/pkg/serve/dnstest"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// upstream is the next handler: it counts the queries it gets and answers
// them with answer (SERVFAIL without a write when answer returns nil).
type upstream struct {
	n      atomic.Int32
	answer atomic.Pointer[func(r *dns.Msg) *dns.Msg]
}

func newUpstream(fn func(r *dns.Msg) *dns.Msg) *upstream {
	u := &upstream{}
	u.set(fn)
	return u
}

func (u *upstream) set(fn func(r *dns.Msg) *dns.Msg) { u.answer.Store(&fn) }

func (u *upstream) Name() string { return "upstream" }

func (u *upstream) ServeDNS(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	u.n.Add(1)
	m := (*u.answer.Load())(r)
	if m == nil {
		return dns.RcodeServerFailure, nil
	}
	return dns.RcodeSuccess, w.WriteMsg(m)
}

// records answers the question with the given records (zone-file text
// with %s for the question's name), rcode and authority.
func records(rcode int, answer []string, ns []string) func(r *dns.Msg) *dns.Msg {
	return func(r *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetRcode(r, rcode)
		for _, s := range answer {
			if strings.Contains(s, "%s") {
				s = fmt.Sprintf(s, r.Question[0].Name)
			}
			m.Answer = append(m.Answer, dnstest.RR(s))
		}
		for _, s := range ns {
			m.Ns = append(m.Ns, dnstest.RR(s))
		}
		return m
	}
}

const soa = "example. %d IN SOA ns.example. host.example. 1 7200 1800 86400 %d"

// newCache starts a cache of the default configuration changed by mods.
func newCache(t testing.TB, d cache.Deps, mods ...func(*cache.Config)) (*cache.Cache, string) {
	t.Helper()
	cfg := cache.Defaults()
	for _, m := range mods {
		m(&cfg)
	}
	c, err := cache.New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, dnstest.StartServer(t, c)
}

func query(t testing.TB, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	return dnstest.Exchange(t, addr, "udp", dnstest.Query(name, qtype, 0))
}

func TestTTLDecrementsAndCase(t *testing.T) {
	clk := newClock()
	up := newUpstream(records(dns.RcodeSuccess, []string{"%s 60 IN A 192.0.2.1"}, nil))
	_, addr := newCache(t, cache.Deps{Next: up, Now: clk.Now})
	steps := []struct {
		advance time.Duration
		name    string
		ttl     uint32
	}{
		{0, "www.example.", 60},
		{10 * time.Second, "www.example.", 50},
		{29*time.Second + 500*time.Millisecond, "WwW.ExAmPlE.", 21},
		{20 * time.Second, "www.example.", 1},
	}
	for _, s := range steps {
		clk.Advance(s.advance)
		m := query(t, addr, s.name, dns.TypeA)
		dnstest.Check(t, dnstest.Case{Qname: s.name, Qtype: dns.TypeA, NoAA: true,
			Answer: dnstest.RRs(fmt.Sprintf("%s %d IN A 192.0.2.1", s.name, s.ttl))}, m)
	}
	if n := up.n.Load(); n != 1 {
		t.Errorf("upstream asked %d times, want 1", n)
	}
	clk.Advance(2 * time.Second) // expired
	query(t, addr, "www.example.", dns.TypeA)
	if n := up.n.Load(); n != 2 {
		t.Errorf("after expiry: upstream asked %d times, want 2", n)
	}
}

func TestCapsAndFloors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mod     func(*cache.Config)
		answer  func(*dns.Msg) *dns.Msg
		qtype   uint16
		wantTTL uint32 // of every record served from the cache
	}{
		{"success cap", nil, records(0, []string{"%s 86400 IN A 192.0.2.1"}, nil), dns.TypeA, 3600},
		{"success floor", nil, records(0, []string{"%s 1 IN A 192.0.2.1"}, nil), dns.TypeA, 5},
		{"success min over records", nil, records(0, []string{"%s 300 IN CNAME b.example.", "b.example. 90 IN A 192.0.2.1"}, nil), dns.TypeA, 90},
		{"configured cap", func(c *cache.Config) { c.SuccessTTL = configfile.Duration(30 * time.Second) }, records(0, []string{"%s 300 IN A 192.0.2.1"}, nil), dns.TypeA, 30},
		{"denial: SOA minimum", nil, records(dns.RcodeNameError, nil, []string{fmt.Sprintf(soa, 3600, 60)}), dns.TypeA, 60},
		{"denial: SOA TTL", nil, records(dns.RcodeNameError, nil, []string{fmt.Sprintf(soa, 45, 600)}), dns.TypeA, 45},
		{"denial cap", nil, records(dns.RcodeNameError, nil, []string{fmt.Sprintf(soa, 86400, 86400)}), dns.TypeA, 1800},
		{"node-local denial cap", func(c *cache.Config) { c.DenialTTL = configfile.Duration(5 * time.Second) }, records(dns.RcodeNameError, nil, []string{fmt.Sprintf(soa, 600, 600)}), dns.TypeA, 5},
		{"NODATA", nil, records(0, nil, []string{fmt.Sprintf(soa, 3600, 120)}), dns.TypeAAAA, 120},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			up := newUpstream(tc.answer)
			mods := []func(*cache.Config){}
			if tc.mod != nil {
				mods = append(mods, tc.mod)
			}
			_, addr := newCache(t, cache.Deps{Next: up, Now: clk.Now}, mods...)
			for i := range 2 {
				m := query(t, addr, "a.example.", tc.qtype)
				for _, rr := range append(m.Answer, m.Ns...) {
					if rr.Header().Ttl != tc.wantTTL {
						t.Errorf("query %d: %s: TTL %d, want %d", i, rr, rr.Header().Ttl, tc.wantTTL)
					}
				}
			}
			if n := up.n.Load(); n != 1 {
				t.Errorf("upstream asked %d times, want 1", n)
			}
			clk.Advance(time.Duration(tc.wantTTL)*time.Second + time.Millisecond)
			query(t, addr, "a.example.", tc.qtype)
			if n := up.n.Load(); n != 2 {
				t.Errorf("after %ds: upstream asked %d times, want 2 (entry expired)", tc.wantTTL, n)
			}
		})
	}
}

func TestNotCached(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(*dns.Msg) *dns.Msg
	}{
		{"NXDOMAIN without SOA", records(dns.RcodeNameError, nil, nil)},
		{"REFUSED", records(dns.RcodeRefused, nil, nil)},
		{"truncated", func(r *dns.Msg) *dns.Msg {
			m := records(0, []string{"%s 60 IN A 192.0.2.1"}, nil)(r)
			m.Truncated = true
			return m
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(tc.answer)
			_, addr := newCache(t, cache.Deps{Next: up})
			query(t, addr, "a.example.", dns.TypeA)
			query(t, addr, "a.example.", dns.TypeA)
			if n := up.n.Load(); n != 2 {
				t.Errorf("upstream asked %d times, want 2 (not cached)", n)
			}
		})
	}
}

func TestServfailCachedBriefly(t *testing.T) {
	clk := newClock()
	up := newUpstream(func(*dns.Msg) *dns.Msg { return nil })
	_, addr := newCache(t, cache.Deps{Next: up, Now: clk.Now})
	for range 3 {
		if m := query(t, addr, "a.example.", dns.TypeA); m.Rcode != dns.RcodeServerFailure {
			t.Errorf("rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
		}
	}
	if n := up.n.Load(); n != 1 {
		t.Errorf("upstream asked %d times within 5s, want 1", n)
	}
	clk.Advance(5*time.Second + time.Millisecond)
	query(t, addr, "a.example.", dns.TypeA)
	if n := up.n.Load(); n != 2 {
		t.Errorf("after 5s: upstream asked %d times, want 2", n)
	}
}

func TestKeyBits(t *testing.T) {
	up := newUpstream(records(0, []string{"%s 60 IN A 192.0.2.1"}, nil))
	_, addr := newCache(t, cache.Deps{Next: up})
	mk := func(do, cd bool, class uint16) *dns.Msg {
		m := dnstest.Query("a.example.", dns.TypeA, 0)
		m.Question[0].Qclass = class
		m.CheckingDisabled = cd
		if do {
			m.SetEdns0(1232, true)
		}
		return m
	}
	qs := []*dns.Msg{mk(false, false, dns.ClassINET), mk(true, false, dns.ClassINET), mk(false, true, dns.ClassINET),
		mk(true, true, dns.ClassINET), mk(false, false, dns.ClassCHAOS), dnstest.Query("a.example.", dns.TypeAAAA, 0)}
	for round := range 2 {
		for _, q := range qs {
			dnstest.Exchange(t, addr, "udp", q)
		}
		if n := up.n.Load(); n != int32(len(qs)) {
			t.Errorf("round %d: upstream asked %d times, want %d (one per key)", round, n, len(qs))
		}
	}
}

func TestEvictionBound(t *testing.T) {
	up := newUpstream(records(0, []string{"%s 60 IN A 192.0.2.1"}, nil))
	c, err := cache.New(func() cache.Config { c := cache.Defaults(); c.Capacity = 1024; return c }(), cache.Deps{Next: up})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := &dnstest.Recorder{}
	for i := range 5000 {
		c.ServeDNS(context.Background(), w, dnstest.Query(fmt.Sprintf("n%d.example.", i), dns.TypeA, 0))
	}
	if s, d := c.Len(); s > 1024 || s < 512 || d != 0 {
		t.Errorf("Len = %d success, %d denial; want between 512 and 1024 success", s, d)
	}
}

func TestPrefetch(t *testing.T) {
	clk := newClock()
	up := newUpstream(records(0, []string{"%s 10 IN A 192.0.2.1"}, nil))
	_, addr := newCache(t, cache.Deps{Next: up, Now: clk.Now}, func(c *cache.Config) { c.Prefetch = 3 })
	query(t, addr, "hot.example.", dns.TypeA) // miss
	for range 3 {
		clk.Advance(time.Second)
		query(t, addr, "hot.example.", dns.TypeA) // popular, far from expiry
	}
	if n := up.n.Load(); n != 1 {
		t.Fatalf("upstream asked %d times before the refresh window, want 1", n)
	}
	clk.Advance(6*time.Second + 500*time.Millisecond) // 0.5s left: under 10%
	query(t, addr, "hot.example.", dns.TypeA)
	deadline := time.Now().Add(3 * time.Second)
	for up.n.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := up.n.Load(); n != 2 {
		t.Fatalf("upstream asked %d times, want 2 (one prefetch)", n)
	}
	// The upstream has answered the refresh; the cache stores the answer
	// just after. Until then a query still hits the old entry (TTL 0 or 1,
	// its refresh in flight: no second one).
	for m := query(t, addr, "hot.example.", dns.TypeA); len(m.Answer) != 1 || m.Answer[0].Header().Ttl < 9; m = query(t, addr, "hot.example.", dns.TypeA) {
		if time.Now().After(deadline) {
			t.Fatalf("the refreshed entry was not stored: answer %v", m.Answer)
		}
		time.Sleep(5 * time.Millisecond)
	}
	clk.Advance(time.Second) // the old entry would have expired
	m := query(t, addr, "hot.example.", dns.TypeA)
	if len(m.Answer) != 1 || m.Answer[0].Header().Ttl < 9 {
		t.Errorf("after the prefetch: answer %v, want the refreshed entry", m.Answer)
	}
	if n := up.n.Load(); n != 2 {
		t.Errorf("upstream asked %d times, want 2", n)
	}
}

func TestServeStale(t *testing.T) {
	for _, stale := range []time.Duration{0, time.Hour} {
		t.Run(fmt.Sprint("stale=", stale), func(t *testing.T) {
			clk := newClock()
			up := newUpstream(records(0, []string{"%s 60 IN A 192.0.2.1"}, nil))
			_, addr := newCache(t, cache.Deps{Next: up, Now: clk.Now}, func(c *cache.Config) { c.ServeStale = configfile.Duration(stale) })
			query(t, addr, "a.example.", dns.TypeA)
			up.set(func(*dns.Msg) *dns.Msg { return nil }) // upstream fails from now on
			clk.Advance(2 * time.Minute)
			for range 2 {
				m := query(t, addr, "a.example.", dns.TypeA)
				if stale == 0 {
					dnstest.Check(t, dnstest.Case{Qname: "a.example.", Qtype: dns.TypeA, Rcode: dns.RcodeServerFailure, NoAA: true}, m)
					continue
				}
				dnstest.Check(t, dnstest.Case{Qname: "a.example.", Qtype: dns.TypeA, NoAA: true,
					Answer: dnstest.RRs("a.example. 30 IN A 192.0.2.1")}, m)
			}
			// Upstream back: the fresh answer replaces the stale one.
			up.set(records(0, []string{"%s 60 IN A 192.0.2.2"}, nil))
			clk.Advance(10 * time.Second)
			m := query(t, addr, "a.example.", dns.TypeA)
			// (Without serve-stale, the SERVFAIL cached for 5s has expired.)
			dnstest.Check(t, dnstest.Case{Qname: "a.example.", Qtype: dns.TypeA, NoAA: true,
				Answer: dnstest.RRs("a.example. 60 IN A 192.0.2.2")}, m)
		})
	}
}

// TestCopyBeforeMutate: the cache neither keeps the next handler's message
// (which that handler may reuse) nor changes a reply it handed out.
func TestCopyBeforeMutate(t *testing.T) {
	clk := newClock()
	var last *dns.Msg
	up := newUpstream(func(r *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = dnstest.RRs("a.example. 60 IN A 192.0.2.1")
		last = m
		return m
	})
	c, err := cache.New(cache.Defaults(), cache.Deps{Next: up, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	serveOne := func(name string) *dns.Msg {
		w := &dnstest.Recorder{}
		c.ServeDNS(context.Background(), w, dnstest.Query(name, dns.TypeA, 0))
		return w.Msg
	}
	first := serveOne("a.example.")
	last.Answer[0].(*dns.A).A = net.ParseIP("203.0.113.66") // the upstream reuses its message
	clk.Advance(20 * time.Second)
	second := serveOne("A.EXAMPLE.")
	clk.Advance(20 * time.Second)
	third := serveOne("a.example.")
	for _, tc := range []struct {
		name string
		m    *dns.Msg
		want string
	}{{"first", first, "a.example. 60 IN A 192.0.2.1"}, {"second", second, "A.EXAMPLE. 40 IN A 192.0.2.1"}, {"third", third, "a.example. 20 IN A 192.0.2.1"}} {
		if d := dnstest.Diff(tc.m.Answer, dnstest.RRs(tc.want)); d != "" {
			t.Errorf("%s reply, after all were served:\n%s", tc.name, d)
		}
	}
}

func TestNewRejects(t *testing.T) {
	dnstest.CheckRejects(t, cache.Defaults, cache.New, cache.Deps{}, map[string]func(*cache.Config){
		"capacity": func(c *cache.Config) { c.Capacity = 100 },
		"minTTL over successTTL": func(c *cache.Config) {
			c.MinTTL, c.SuccessTTL = configfile.Duration(time.Hour), configfile.Duration(time.Minute)
		},
		"servfailTTL":     func(c *cache.Config) { c.ServfailTTL = configfile.Duration(time.Hour) },
		"prefetchPercent": func(c *cache.Config) { c.PrefetchPercent = 95 },
		"prefetch":        func(c *cache.Config) { c.Prefetch = -1 },
		"serveStale":      func(c *cache.Config) { c.ServeStale = configfile.Duration(-time.Second) },
	})
}

func TestMetrics(t *testing.T) {
	m, _ := cache.NewMetrics(nil)
	up := newUpstream(records(0, []string{"%s 60 IN A 192.0.2.1"}, nil))
	c, addr := newCache(t, cache.Deps{Next: up, Metrics: m})
	for range 3 {
		query(t, addr, "a.example.", dns.TypeA)
	}
	if h, mi, e := testutil.ToFloat64(m.Hits("success")), testutil.ToFloat64(m.Misses()), testutil.ToFloat64(m.Entries("success")); h != 2 || mi != 1 || e != 1 {
		t.Errorf("hits %v misses %v entries %v, want 2 1 1", h, mi, e)
	}
	c.Close()
	if e := testutil.ToFloat64(m.Entries("success")); e != 0 {
		t.Errorf("entries after Close = %v, want 0", e)
	}
}

func BenchmarkCacheHit(b *testing.B) { benchmarkCacheHit(b, &dnstest.Recorder{}) }

// benchmarkCacheHit measures the cache answering a cached name (two A
// records) to w.
func benchmarkCacheHit(b *testing.B, w dns.ResponseWriter) {
	up := newUpstream(records(0, []string{"%s 60 IN A 192.0.2.1", "%s 60 IN A 192.0.2.2"}, nil))
	c, err := cache.New(cache.Defaults(), cache.Deps{Next: up})
	if err != nil {
		b.Fatal(err)
	}
	q := dnstest.Query("www.example.com.", dns.TypeA, 1232)
	c.ServeDNS(context.Background(), &dnstest.Recorder{}, q)
	b.ReportAllocs()
	for b.Loop() {
		c.ServeDNS(context.Background(), w, q)
	}
	if up.n.Load() != 1 {
		b.Fatal("not served from the cache")
	}
}

// BenchmarkCacheHitUDP is a cache hit as a client sees it: one UDP round
// trip over loopback through the serving core.
func BenchmarkCacheHitUDP(b *testing.B) {
	up := newUpstream(records(0, []string{"%s 60 IN A 192.0.2.1", "%s 60 IN A 192.0.2.2"}, nil))
	_, addr := newCache(b, cache.Deps{Next: up})
	conn, err := dns.Dial("udp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	q := dnstest.Query("www.example.com.", dns.TypeA, 1232)
	b.ReportAllocs()
	for b.Loop() {
		conn.SetDeadline(time.Now().Add(dnstest.Timeout))
		if err := conn.WriteMsg(q); err != nil {
			b.Fatal(err)
		}
		if _, err := conn.ReadMsg(); err != nil {
			b.Fatal(err)
		}
	}
	if up.n.Load() != 1 {
		b.Fatal("not served from the cache")
	}
}

func BenchmarkCacheHitParallel(b *testing.B) {
	up := newUpstream(records(0, []string{"%s 60 IN A 192.0.2.1"}, nil))
	c, err := cache.New(cache.Defaults(), cache.Deps{Next: up})
	if err != nil {
		b.Fatal(err)
	}
	qs := make([]*dns.Msg, 1000)
	for i := range qs {
		qs[i] = dnstest.Query(fmt.Sprintf("n%d.example.", i), dns.TypeA, 0)
		c.ServeDNS(context.Background(), &dnstest.Recorder{}, qs[i])
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &dnstest.Recorder{}
		i := 0
		for pb.Next() {
			c.ServeDNS(context.Background(), w, qs[i%len(qs)])
			i++
		}
	})
}

func FuzzCache(f *testing.F) {
	for _, s := range []string{"a.example.", "A.Example.", "."} {
		q := dnstest.Query(s, dns.TypeA, 1232)
		b, _ := q.Pack()
		f.Add(b)
	}
	up := newUpstream(records(0, []string{"%s 60 IN A 192.0.2.1"}, nil))
	c, err := cache.New(cache.Defaults(), cache.Deps{Next: up})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := new(dns.Msg)
		if r.Unpack(b) != nil {
			return
		}
		w := &dnstest.Recorder{}
		serve.Handle(context.Background(), c, w, r)
		serve.Handle(context.Background(), c, w, r)
	})
}
