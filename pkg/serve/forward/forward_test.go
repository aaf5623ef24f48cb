package forward_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/poddns/poddns/pkg/configfile"
	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/dnstest"
	"github.com/poddns/poddns/pkg/serve/forward"
)

// answerA answers every A query with ip and TTL 60.
func answerA(ip string) func(q *dns.Msg) []*dns.Msg {
	return func(q *dns.Msg) []*dns.Msg {
		m := new(dns.Msg)
		m.SetReply(q)
		if q.Question[0].Qtype == dns.TypeA {
			m.Answer = dnstest.RRs(q.Question[0].Name + " 60 IN A " + ip)
		}
		return []*dns.Msg{m}
	}
}

// upstreamHandler is a serve.Handler upstream (UDP and TCP).
func upstreamHandler(fn func(w dns.ResponseWriter, r *dns.Msg) *dns.Msg) serve.Handler {
	return serve.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		m := fn(w, r)
		if m == nil {
			return dns.RcodeServerFailure, nil
		}
		return dns.RcodeSuccess, w.WriteMsg(m)
	})
}

// newForward is a forwarder of the default configuration changed by mods.
func newForward(t testing.TB, d forward.Deps, mods ...func(*forward.Config)) *forward.Forward {
	t.Helper()
	return dnstest.Forward(t, nil, d, mods...)
}

func TestForwardAnswers(t *testing.T) {
	// The upstream answers with the question lower-cased (not 0x20-aware):
	// the client still gets its own spelling back.
	up := dnstest.RawUDPServer(t, func(q *dns.Msg) []*dns.Msg {
		m := answerA("192.0.2.1")(q)[0]
		m.Question[0].Name = strings.ToLower(m.Question[0].Name)
		return []*dns.Msg{m}
	})
	fm, _ := forward.NewMetrics(nil)
	addr := dnstest.StartServer(t, newForward(t, forward.Deps{Metrics: fm}, func(c *forward.Config) { c.Upstreams = []string{up} }))
	for _, proto := range []string{"udp", "tcp"} {
		for _, name := range []string{"example.com.", "ExAmPle.COM."} {
			m := dnstest.Exchange(t, addr, proto, dnstest.Query(name, dns.TypeA, 0))
			dnstest.Check(t, dnstest.Case{Qname: name, Qtype: dns.TypeA, NoAA: true,
				Answer: dnstest.RRs(name + " 60 IN A 192.0.2.1")}, m)
			if !m.RecursionAvailable {
				t.Errorf("%s over %s: RA not set (the upstream did not set it; dnsd recurses for the client)", name, proto)
			}
		}
	}
	// Four UDP queries one after the other: four sockets, none reused (a
	// new random source port per query); the TCP client's go over UDP too.
	if n := testutil.ToFloat64(fm.ConnCacheHits("udp")); n != 0 {
		t.Errorf("UDP sockets reused %v times, want 0", n)
	}
}

func TestUpstreamSilent(t *testing.T) {
	silent := dnstest.RawUDPServer(t, func(*dns.Msg) []*dns.Msg { return nil })
	// The deadline, not the per-try timeout, ends the query.
	f := newForward(t, forward.Deps{}, func(c *forward.Config) {
		c.Upstreams = []string{silent}
		c.TryTimeout = configfile.Duration(2 * time.Second)
		c.Deadline = configfile.Duration(300 * time.Millisecond)
	})
	addr := dnstest.StartServer(t, f)
	start := time.Now()
	m := dnstest.Exchange(t, addr, "udp", dnstest.Query("example.com.", dns.TypeA, 0))
	took := time.Since(start)
	if m.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	if took < 250*time.Millisecond || took > time.Second {
		t.Errorf("SERVFAIL after %s, want after the tries and within the 300ms deadline (+ slack)", took)
	}
}

// truncatingUpstream starts an upstream that answers every query over UDP
// empty and truncated, so that the forwarder asks again over TCP, and every
// query over TCP with tcp(w, r, m), m being a reply to r to fill in. It
// returns the upstream's address and its count of TCP queries.
func truncatingUpstream(t *testing.T, tcp func(w dns.ResponseWriter, r, m *dns.Msg) *dns.Msg) (string, *atomic.Int32) {
	t.Helper()
	var tcpQueries atomic.Int32
	up := dnstest.StartServer(t, upstreamHandler(func(w dns.ResponseWriter, r *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(r)
		if serve.Proto(w) == "udp" {
			m.Truncated = true
			return m
		}
		tcpQueries.Add(1)
		return tcp(w, r, m)
	}))
	return up, &tcpQueries
}

func TestTruncatedRetriesOverTCP(t *testing.T) {
	up, tcpQueries := truncatingUpstream(t, func(_ dns.ResponseWriter, _, m *dns.Msg) *dns.Msg {
		m.Answer = dnstest.RRs("big.example. 60 IN TXT \"over tcp\"")
		return m
	})
	addr := dnstest.StartServer(t, newForward(t, forward.Deps{}, func(c *forward.Config) { c.Upstreams = []string{up} }))
	m := dnstest.Exchange(t, addr, "udp", dnstest.Query("big.example.", dns.TypeTXT, 1232))
	dnstest.Check(t, dnstest.Case{Qname: "big.example.", Qtype: dns.TypeTXT, NoAA: true,
		Answer: dnstest.RRs("big.example. 60 IN TXT \"over tcp\"")}, m)
	if n := tcpQueries.Load(); n != 1 {
		t.Errorf("%d TCP queries upstream, want 1", n)
	}
}

// TestInFlightLimit: with limit queries blocked upstream, every further
// query is answered REFUSED at once, and the blocked ones still succeed.
func TestInFlightLimit(t *testing.T) {
	for _, tc := range []struct{ limit, extra int }{{1, 1}, {2, 1}, {5, 40}} {
		t.Run(fmt.Sprintf("limit %d, %d more", tc.limit, tc.extra), func(t *testing.T) {
			release := make(chan struct{})
			arrived := make(chan struct{}, tc.limit+tc.extra)
			up := dnstest.StartServer(t, upstreamHandler(func(w dns.ResponseWriter, r *dns.Msg) *dns.Msg {
				arrived <- struct{}{}
				select {
				case <-release:
				case <-time.After(2 * time.Second):
				}
				m := new(dns.Msg)
				m.SetReply(r)
				return m
			}))
			fm, _ := forward.NewMetrics(nil)
			addr := dnstest.StartServer(t, newForward(t, forward.Deps{Metrics: fm}, func(c *forward.Config) {
				c.Upstreams = []string{up}
				c.MaxConcurrent = tc.limit
			}))
			rcodes, wait := queryAll(addr, "slow", tc.limit)
			for range tc.limit {
				select {
				case <-arrived:
				case <-time.After(dnstest.Timeout):
					t.Fatal("queries did not reach the upstream")
				}
			}
			if n := testutil.ToFloat64(fm.InFlight()); n != float64(tc.limit) {
				t.Errorf("inflight = %v, want %d", n, tc.limit)
			}
			refused, waitRefused := queryAll(addr, "more", tc.extra)
			waitRefused()
			close(release)
			wait()
			for i, rc := range refused {
				if rc != dns.RcodeRefused {
					t.Errorf("query %d beyond the limit: rcode %d, want REFUSED", i, rc)
				}
			}
			for i, rc := range rcodes {
				if rc != dns.RcodeSuccess {
					t.Errorf("in-flight query %d: rcode %d, want NOERROR", i, rc)
				}
			}
			if n := testutil.ToFloat64(fm.Rejects()); n != float64(tc.extra) {
				t.Errorf("max_concurrent_rejects_total = %v, want %d", n, tc.extra)
			}
		})
	}
}

// queryAll sends n A queries (<prefix><i>.example.) to addr over UDP at
// once, each from its own goroutine. After wait returns, rcodes holds each
// reply's rcode, -1 where none came.
func queryAll(addr, prefix string, n int) (rcodes []int, wait func()) {
	rcodes = make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &dns.Client{Net: "udp", Timeout: dnstest.Timeout}
			rcodes[i] = -1
			if m, _, err := c.Exchange(dnstest.Query(fmt.Sprintf("%s%d.example.", prefix, i), dns.TypeA, 0), addr); err == nil {
				rcodes[i] = m.Rcode
			}
		}()
	}
	return rcodes, wg.Wait
}

func TestBadRepliesIgnored(t *testing.T) {
	up := dnstest.RawUDPServer(t, func(q *dns.Msg) []*dns.Msg {
		wrongID := new(dns.Msg)
		wrongID.SetReply(q)
		wrongID.Id = q.Id + 1
		wrongID.Answer = dnstest.RRs("example.com. 60 IN A 203.0.113.66")
		wrongQ := new(dns.Msg)
		wrongQ.SetReply(q)
		wrongQ.Question[0].Name = "evil.example."
		wrongQ.Answer = dnstest.RRs("evil.example. 60 IN A 203.0.113.66")
		notReply := q.Copy() // QR not set
		good := answerA("192.0.2.7")(q)[0]
		return []*dns.Msg{wrongID, wrongQ, notReply, good}
	})
	reg := prometheus.NewRegistry()
	fm, _ := forward.NewMetrics(reg)
	addr := dnstest.StartServer(t, newForward(t, forward.Deps{Metrics: fm}, func(c *forward.Config) { c.Upstreams = []string{up} }))
	m := dnstest.Exchange(t, addr, "udp", dnstest.Query("example.com.", dns.TypeA, 0))
	dnstest.Check(t, dnstest.Case{Qname: "example.com.", Qtype: dns.TypeA, NoAA: true,
		Answer: dnstest.RRs("example.com. 60 IN A 192.0.2.7")}, m)
	if n := testutil.ToFloat64(fm.Dropped()); n != 3 {
		t.Errorf("dropped replies = %v, want 3", n)
	}
}

func TestRandomQueryIDs(t *testing.T) {
	var mu sync.Mutex
	ids := map[uint16]bool{}
	up := dnstest.RawUDPServer(t, func(q *dns.Msg) []*dns.Msg {
		mu.Lock()
		ids[q.Id] = true
		mu.Unlock()
		return answerA("192.0.2.1")(q)
	})
	addr := dnstest.StartServer(t, newForward(t, forward.Deps{}, func(c *forward.Config) { c.Upstreams = []string{up} }))
	for range 20 {
		q := dnstest.Query("example.com.", dns.TypeA, 0)
		q.Id = 4242
		dnstest.Exchange(t, addr, "udp", q)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ids) < 18 || ids[4242] {
		t.Errorf("upstream saw %d distinct IDs for 20 queries (client ID 4242 reused: %v), want fresh random IDs", len(ids), ids[4242])
	}
}

func TestHealthCheckDownAndUp(t *testing.T) {
	var answering atomic.Bool
	up := dnstest.RawUDPServer(t, func(q *dns.Msg) []*dns.Msg {
		if !answering.Load() {
			return nil
		}
		return answerA("192.0.2.9")(q)
	})
	reg := prometheus.NewRegistry()
	fm, _ := forward.NewMetrics(reg)
	f := newForward(t, forward.Deps{Metrics: fm}, func(c *forward.Config) {
		c.Upstreams = []string{up}
		c.TryTimeout = configfile.Duration(50 * time.Millisecond)
		c.Deadline = configfile.Duration(200 * time.Millisecond)
		c.MaxFails = 2
		c.HealthCheck = configfile.Duration(20 * time.Millisecond)
	})
	addr := dnstest.StartServer(t, f)
	m := dnstest.Exchange(t, addr, "udp", dnstest.Query("example.com.", dns.TypeA, 0))
	if m.Rcode != dns.RcodeServerFailure {
		t.Fatalf("silent upstream: rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	if d := f.Down(); !slices.Equal(d, []string{up}) {
		t.Fatalf("down = %v, want [%s]", d, up)
	}
	waitFor(t, func() bool { return testutil.ToFloat64(fm.HealthcheckFailures(up)) >= 1 })
	answering.Store(true)
	waitFor(t, func() bool { return len(f.Down()) == 0 })
	m = dnstest.Exchange(t, addr, "udp", dnstest.Query("example.com.", dns.TypeA, 0))
	dnstest.Check(t, dnstest.Case{Qname: "example.com.", Qtype: dns.TypeA, NoAA: true,
		Answer: dnstest.RRs("example.com. 60 IN A 192.0.2.9")}, m)
}

// waitFor polls cond for at most 3 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 3s")
}

func TestPolicyAndFailover(t *testing.T) {
	a := dnstest.RawUDPServer(t, answerA("192.0.2.1"))
	b := dnstest.RawUDPServer(t, answerA("192.0.2.2"))
	silent := dnstest.RawUDPServer(t, func(*dns.Msg) []*dns.Msg { return nil })
	for _, tc := range []struct {
		name   string
		policy forward.Policy
		ups    []string
		want   []string // answers of 4 queries in a row
	}{
		{"sequential", forward.Sequential, []string{a, b}, []string{"192.0.2.1", "192.0.2.1", "192.0.2.1", "192.0.2.1"}},
		{"round robin", forward.RoundRobin, []string{a, b}, []string{"192.0.2.1", "192.0.2.2", "192.0.2.1", "192.0.2.2"}},
		{"failover to the next", forward.Sequential, []string{silent, b}, []string{"192.0.2.2", "192.0.2.2", "192.0.2.2", "192.0.2.2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newForward(t, forward.Deps{}, func(c *forward.Config) {
				c.Upstreams = tc.ups
				c.Policy = tc.policy
				c.TryTimeout = configfile.Duration(100 * time.Millisecond)
				c.HealthCheck = configfile.Duration(time.Hour)
			})
			addr := dnstest.StartServer(t, f)
			var got []string
			for range tc.want {
				m := dnstest.Exchange(t, addr, "udp", dnstest.Query("example.com.", dns.TypeA, 0))
				if len(m.Answer) != 1 {
					t.Fatalf("answer %v", m.Answer)
				}
				got = append(got, m.Answer[0].(*dns.A).A.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("answers %v, want %v", got, tc.want)
			}
		})
	}
}

func TestStubZones(t *testing.T) {
	def := dnstest.RawUDPServer(t, answerA("192.0.2.1"))
	corp := dnstest.RawUDPServer(t, answerA("10.1.1.1"))
	f := newForward(t, forward.Deps{}, func(c *forward.Config) {
		c.Upstreams = []string{def}
		c.Stubs = []forward.Stub{{Zone: "Corp.Example", Upstreams: []string{corp}}}
	})
	addr := dnstest.StartServer(t, f)
	for name, want := range map[string]string{"www.example.com.": "192.0.2.1", "db.corp.example.": "10.1.1.1", "corp.example.": "10.1.1.1", "xcorp.example.": "192.0.2.1"} {
		m := dnstest.Exchange(t, addr, "udp", dnstest.Query(name, dns.TypeA, 0))
		if len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != want {
			t.Errorf("%s: answer %v, want %s", name, m.Answer, want)
		}
	}
	// Only stubs: other names go to Next (REFUSED at the end of a chain).
	only := newForward(t, forward.Deps{Next: serve.Refused}, func(c *forward.Config) {
		c.Stubs = []forward.Stub{{Zone: "corp.example", Upstreams: []string{corp}}}
	})
	addr = dnstest.StartServer(t, only)
	if m := dnstest.Exchange(t, addr, "udp", dnstest.Query("www.example.com.", dns.TypeA, 0)); m.Rcode != dns.RcodeRefused {
		t.Errorf("name outside the stubs: rcode %s, want REFUSED", dns.RcodeToString[m.Rcode])
	}
}

func TestResolvConfUpstreams(t *testing.T) {
	p := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(p, []byte("# node\nsearch example.com\nnameserver 127.0.0.1\nnameserver ::1\noptions ndots:2\n"), 0o644)
	got, err := forward.ResolvConfUpstreams(p)
	if err != nil || !slices.Equal(got, []string{"127.0.0.1:53", "[::1]:53"}) {
		t.Errorf("ResolvConfUpstreams = %v, %v", got, err)
	}
	bad := filepath.Join(t.TempDir(), "bad.conf")
	os.WriteFile(bad, []byte("search example.com\n"), 0o644)
	if _, err := forward.ResolvConfUpstreams(bad); err == nil {
		t.Error("resolv.conf without nameserver: no error")
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := forward.New(forward.Defaults(), forward.Deps{}); err == nil {
		t.Error("New without upstreams: no error")
	}
	dnstest.CheckRejects(t, forward.Defaults, forward.New, forward.Deps{}, map[string]func(*forward.Config){
		"upstream not an IP":       func(c *forward.Config) { c.Upstreams = []string{"not-an-ip"} },
		"upstream port 0":          func(c *forward.Config) { c.Upstreams = []string{"127.0.0.1:0"} },
		"policy":                   func(c *forward.Config) { c.Upstreams, c.Policy = []string{"127.0.0.1"}, "fastest" },
		"upstreams and resolvConf": func(c *forward.Config) { c.Upstreams, c.ResolvConf = []string{"127.0.0.1"}, "/etc/resolv.conf" },
		"tryTimeout 0":             func(c *forward.Config) { c.Upstreams, c.TryTimeout = []string{"127.0.0.1"}, 0 },
		"maxConcurrent":            func(c *forward.Config) { c.Upstreams, c.MaxConcurrent = []string{"127.0.0.1"}, -1 },
		"stub without upstreams":   func(c *forward.Config) { c.Stubs = []forward.Stub{{Zone: "a.example", Upstreams: nil}} },
		"stub zone given twice": func(c *forward.Config) {
			c.Stubs = []forward.Stub{{Zone: "a.example", Upstreams: []string{"127.0.0.1"}}, {Zone: "A.example.", Upstreams: []string{"127.0.0.1"}}}
		},
	})
}

func BenchmarkForwardRoundTrip(b *testing.B) {
	up := dnstest.RawUDPServer(b, answerA("192.0.2.1"))
	f, err := forward.New(func() forward.Config { c := forward.Defaults(); c.Upstreams = []string{up}; return c }(), forward.Deps{})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	q := dnstest.Query("example.com.", dns.TypeA, 0)
	w := &dnstest.Recorder{}
	b.ReportAllocs()
	for b.Loop() {
		if rc, err := f.ServeDNS(context.Background(), w, q); err != nil || rc != dns.RcodeSuccess {
			b.Fatal(rc, err)
		}
	}
}

// TestClosedPooledConnection: an upstream that closes its TCP connection
// after each reply (as servers do with idle ones) costs a redial, not a
// failed try: the upstream is never marked down.
func TestClosedPooledConnection(t *testing.T) {
	up, tcpQueries := truncatingUpstream(t, func(w dns.ResponseWriter, r, m *dns.Msg) *dns.Msg {
		m.Answer = dnstest.RRs(r.Question[0].Name + " 60 IN A 192.0.2.3")
		w.WriteMsg(m)
		w.Close()
		return nil
	})
	f := newForward(t, forward.Deps{}, func(c *forward.Config) {
		c.Upstreams = []string{up}
		c.MaxFails = 1
		c.HealthCheck = configfile.Duration(time.Hour)
	})
	addr := dnstest.StartServer(t, f)
	for i := range 3 {
		m := dnstest.Exchange(t, addr, "udp", dnstest.Query("example.com.", dns.TypeA, 0))
		if len(m.Answer) != 1 {
			t.Fatalf("query %d: %v", i, m)
		}
		if d := f.Down(); len(d) != 0 {
			t.Fatalf("query %d: upstream marked down: %v", i, d)
		}
	}
	if n := tcpQueries.Load(); n != 3 {
		t.Errorf("%d TCP queries upstream, want 3", n)
	}
}

// TestForceTCP: with forceTCP every query reaches the upstream over TCP;
// without it, over UDP.
func TestForceTCP(t *testing.T) {
	for _, force := range []bool{false, true} {
		var udp, tcp atomic.Int32
		up := dnstest.StartServer(t, upstreamHandler(func(w dns.ResponseWriter, r *dns.Msg) *dns.Msg {
			if serve.Proto(w) == "udp" {
				udp.Add(1)
			} else {
				tcp.Add(1)
			}
			m := new(dns.Msg)
			m.SetReply(r)
			m.Answer = dnstest.RRs(r.Question[0].Name + " 60 IN A 192.0.2.4")
			return m
		}))
		addr := dnstest.StartServer(t, newForward(t, forward.Deps{}, func(c *forward.Config) { c.Upstreams, c.ForceTCP = []string{up}, force }))
		for range 2 {
			c := dnstest.Case{Qname: "example.com.", Qtype: dns.TypeA, NoAA: true, Answer: dnstest.RRs("example.com. 60 IN A 192.0.2.4")}
			dnstest.Check(t, c, dnstest.Exchange(t, addr, "udp", c.Msg()))
		}
		if want := map[bool][2]int32{false: {2, 0}, true: {0, 2}}[force]; udp.Load() != want[0] || tcp.Load() != want[1] {
			t.Errorf("forceTCP %v: upstream got %d UDP and %d TCP queries, want %d and %d", force, udp.Load(), tcp.Load(), want[0], want[1])
		}
	}
}
