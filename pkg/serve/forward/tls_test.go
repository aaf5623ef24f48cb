package forward_test

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/poddns/poddns/internal/syncbuf"
	"github.com/poddns/poddns/pkg/configfile"
	"github.com/poddns/poddns/pkg/serve/dnstest"
	"github.com/poddns/poddns/pkg/serve/forward"
)

// tlsUpstream is a DNS-over-TLS server on loopback, written for the tests
// (miekg/dns's server answers in order and cannot misbehave on purpose).
// Each connection's queries are read one after the other and each is
// handed to handle in its own goroutine: replies go out in any order.
type tlsUpstream struct {
	addr string // "tls://127.0.0.1:port"
	// conns counts the connections whose handshake succeeded; queries the
	// queries read; maxInFlight the most queries read and not yet replied
	// to on one connection.
	conns, queries, maxInFlight atomic.Int32
	// closed counts the connections that ended (either side closing).
	closed atomic.Int32
	// plain counts the plain DNS queries received on the same port over
	// UDP (there must be none: no fallback to plain text).
	plain atomic.Int32
}

// upstreamConn is what a handler can do on its connection.
type upstreamConn struct {
	n     int32 // the connection's number, from 1
	query int32 // the query's number on the connection, from 1
	write func(m *dns.Msg)
	close func()
}

// startTLSUpstream serves DNS over TLS with a certificate of ca; handle
// answers one query (it may write several messages, or none, or close).
func startTLSUpstream(t *testing.T, ca *dnstest.TLSCA, handle func(c upstreamConn, q *dns.Msg)) *tlsUpstream {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{ca.Server}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	u := &tlsUpstream{addr: "tls://" + ln.Addr().String()}
	// A plain DNS server on the same port over UDP: a fallback to plain
	// text would reach it.
	pc, err := net.ListenPacket("udp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	dnstest.ServeRawUDP(t, pc, func(q *dns.Msg, _ net.Addr) []*dns.Msg {
		u.plain.Add(1)
		return answerA("192.0.2.99")(q)
	})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, nc)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				u.serveConn(nc.(*tls.Conn), handle, &wg)
			}()
		}
	}()
	return u
}

func (u *tlsUpstream) serveConn(c *tls.Conn, handle func(upstreamConn, *dns.Msg), wg *sync.WaitGroup) {
	defer c.Close()
	if err := c.Handshake(); err != nil {
		return
	}
	n := u.conns.Add(1)
	defer u.closed.Add(1)
	var wmu sync.Mutex
	var inFlight atomic.Int32
	write := func(m *dns.Msg) {
		b, err := m.Pack()
		if err != nil {
			return
		}
		wmu.Lock()
		defer wmu.Unlock()
		c.Write(binary.BigEndian.AppendUint16(nil, uint16(len(b))))
		c.Write(b)
	}
	var hdr [2]byte
	for k := int32(1); ; k++ {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		buf := make([]byte, binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		q := new(dns.Msg)
		if q.Unpack(buf) != nil {
			return
		}
		u.queries.Add(1)
		if f := inFlight.Add(1); f > u.maxInFlight.Load() {
			u.maxInFlight.Store(f) // racy maximum: good enough for a lower bound
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			handle(upstreamConn{n: n, query: k, write: func(m *dns.Msg) { inFlight.Add(-1); write(m) }, close: func() { c.Close() }}, q)
		}()
	}
}

// reply answers q's A query with 192.0.2.x where x is the first label's
// number ("q7.example." → 192.0.2.7; 1 for other names).
func reply(q *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(q)
	x := 1
	fmt.Sscanf(q.Question[0].Name, "q%d.", &x)
	if q.Question[0].Qtype == dns.TypeA {
		m.Answer = dnstest.RRs(fmt.Sprintf("%s 60 IN A 192.0.2.%d", q.Question[0].Name, x))
	}
	return m
}

func answerTLS(c upstreamConn, q *dns.Msg) { c.write(reply(q)) }

// tlsForward is a forwarder to the tls upstreams ups, with the test CA and
// server name dns.test unless mods change them, started behind a dnsd
// server; it returns the server's address.
func tlsForward(t *testing.T, ca *dnstest.TLSCA, d forward.Deps, ups []string, mods ...func(*forward.Config)) string {
	t.Helper()
	mods = append([]func(*forward.Config){func(c *forward.Config) {
		c.TLSCA, c.TLSServerName = ca.File, dnstest.TLSServerName
		c.HealthCheck = configfile.Duration(time.Hour)
	}}, mods...)
	return dnstest.StartServer(t, dnstest.Forward(t, ups, d, mods...))
}

// exchangeA asks addr for name's A records over UDP and returns the reply
// (nil and an error reported for a failed exchange): for goroutines.
func exchangeA(t *testing.T, addr, name string) *dns.Msg {
	c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
	m, _, err := c.Exchange(dnstest.Query(name, dns.TypeA, 0), addr)
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return nil
	}
	return m
}

// wantA checks that m answers name with exactly the address ip.
func wantA(t *testing.T, m *dns.Msg, name, ip string) {
	t.Helper()
	if m == nil {
		return
	}
	dnstest.Check(t, dnstest.Case{Qname: name, Qtype: dns.TypeA, NoAA: true, Answer: dnstest.RRs(name + " 60 IN A " + ip)}, m)
}

// TestTLSAnswers: queries reach a tls:// upstream over TLS and only over
// TLS, its certificate verified against the configured CA for the server
// name (the forward block's, a stub's own) or, without one, for the
// upstream's IP address; the connection is reused.
func TestTLSAnswers(t *testing.T) {
	ca := dnstest.NewTLSCA(t)
	up := startTLSUpstream(t, ca, answerTLS)
	stubUp := startTLSUpstream(t, ca, answerTLS)
	for _, tc := range []struct {
		name string
		mod  func(*forward.Config)
	}{
		{"server name", func(*forward.Config) {}},
		{"IP address, no server name", func(c *forward.Config) { c.TLSServerName = "" }},
		{"IP address as the server name", func(c *forward.Config) { c.TLSServerName = "127.0.0.1" }},
		{"stub's own server name", func(c *forward.Config) {
			c.TLSServerName = "other.test" // the default upstream would fail: the stub's wins
			c.Stubs = []forward.Stub{{Zone: "stub.example", Upstreams: []string{stubUp.addr}, TLSServerName: dnstest.TLSServerName}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fm, _ := forward.NewMetrics(nil)
			name, target := "q7.example.", up
			if strings.Contains(tc.name, "stub") {
				name, target = "q7.stub.example.", stubUp
			}
			conns := target.conns.Load()
			addr := tlsForward(t, ca, forward.Deps{Metrics: fm}, []string{up.addr}, tc.mod)
			for range 3 {
				wantA(t, dnstest.Exchange(t, addr, "udp", dnstest.Query(name, dns.TypeA, 0)), name, "192.0.2.7")
			}
			if n := target.conns.Load() - conns; n != 1 {
				t.Errorf("%d TLS connections for 3 queries one after the other, want 1 (reused)", n)
			}
			if hits, misses := testutil.ToFloat64(fm.ConnCacheHits("tls")), testutil.ToFloat64(fm.ConnCacheMisses("tls")); hits != 2 || misses != 1 {
				t.Errorf("conn cache hits %v, misses %v for tls, want 2 and 1", hits, misses)
			}
		})
	}
	if n := up.plain.Load() + stubUp.plain.Load(); n != 0 {
		t.Errorf("%d plain DNS queries on the upstreams' port, want 0", n)
	}
}

// TestTLSPipelined: concurrent queries share TLS connections, at most
// MaxPipelined (64) on each, the upstream answering them out of order:
// each client gets its own answer.
func TestTLSPipelined(t *testing.T) {
	ca := dnstest.NewTLSCA(t)
	const n = 100
	var arrived atomic.Int32
	allIn := make(chan struct{})
	up := startTLSUpstream(t, ca, func(c upstreamConn, q *dns.Msg) {
		// Hold every reply until all the queries are in (or 2s), then
		// answer in reverse order of arrival.
		if arrived.Add(1) == n {
			close(allIn)
		}
		select {
		case <-allIn:
		case <-time.After(2 * time.Second):
		}
		time.Sleep(time.Duration(n-c.query) * 2 * time.Millisecond)
		answerTLS(c, q)
	})
	fm, _ := forward.NewMetrics(nil)
	addr := tlsForward(t, ca, forward.Deps{Metrics: fm}, []string{up.addr}, dnstest.Timeouts(4*time.Second, 5*time.Second))
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("q%d.example.", i+1)
			wantA(t, exchangeA(t, addr, name), name, fmt.Sprintf("192.0.2.%d", i+1))
		}()
	}
	wg.Wait()
	if c := up.conns.Load(); c != 2 {
		t.Errorf("%d queries in flight took %d TLS connections, want 2 (pipelined, at most %d on one)", n, c, forward.MaxPipelined)
	}
	if f := up.maxInFlight.Load(); f < n/2 || f > forward.MaxPipelined {
		t.Errorf("at most %d queries in flight on one connection, want %d to %d", f, n/2, forward.MaxPipelined)
	}
}

// TestTLSPoolFull: with PoolSize connections each carrying MaxPipelined
// queries, further queries wait for room and are answered (the upstream
// neither sees more connections nor more queries at once on one).
func TestTLSPoolFull(t *testing.T) {
	ca := dnstest.NewTLSCA(t)
	up := startTLSUpstream(t, ca, func(c upstreamConn, q *dns.Msg) {
		time.Sleep(100 * time.Millisecond)
		answerTLS(c, q)
	})
	fm, _ := forward.NewMetrics(nil)
	addr := tlsForward(t, ca, forward.Deps{Metrics: fm}, []string{up.addr}, dnstest.Timeouts(2*time.Second, 3*time.Second),
		func(c *forward.Config) { c.PoolSize = 1 })
	const n = 2*forward.MaxPipelined + 10
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("q%d.example.", i%250+1)
			wantA(t, exchangeA(t, addr, name), name, fmt.Sprintf("192.0.2.%d", i%250+1))
		}()
	}
	wg.Wait()
	if c := up.conns.Load(); c != 1 {
		t.Errorf("%d connections, want 1 (poolSize)", c)
	}
	if f := up.maxInFlight.Load(); f > forward.MaxPipelined {
		t.Errorf("%d queries in flight on one connection, want at most %d", f, forward.MaxPipelined)
	}
	if tries := testutil.ToFloat64(fm.Requests(up.addr)); tries != n {
		t.Errorf("%v tries for %d queries, want one each", tries, n)
	}
}

// TestTLSExpire: a connection without a query for Expire is closed.
func TestTLSExpire(t *testing.T) {
	ca := dnstest.NewTLSCA(t)
	up := startTLSUpstream(t, ca, answerTLS)
	addr := tlsForward(t, ca, forward.Deps{}, []string{up.addr}, func(c *forward.Config) { c.Expire = configfile.Duration(100 * time.Millisecond) })
	wantA(t, dnstest.Exchange(t, addr, "udp", dnstest.Query("q1.example.", dns.TypeA, 0)), "q1.example.", "192.0.2.1")
	waitFor(t, func() bool { return up.closed.Load() == 1 })
	wantA(t, dnstest.Exchange(t, addr, "udp", dnstest.Query("q2.example.", dns.TypeA, 0)), "q2.example.", "192.0.2.2")
	if c := up.conns.Load(); c != 2 {
		t.Errorf("%d connections, want 2 (the first expired)", c)
	}
}

// TestTLSWrongID: a reply on the TLS stream whose ID (or question) is not
// the query's is dropped and counted; the query takes its own reply.
func TestTLSWrongID(t *testing.T) {
	ca := dnstest.NewTLSCA(t)
	up := startTLSUpstream(t, ca, func(c upstreamConn, q *dns.Msg) {
		forged := reply(q)
		forged.Id = q.Id + 1
		forged.Answer = dnstest.RRs(q.Question[0].Name + " 60 IN A 203.0.113.66")
		c.write(forged)
		other := reply(q)
		other.Question[0].Name = "forged.example."
		other.Answer = dnstest.RRs("forged.example. 60 IN A 203.0.113.66")
		c.write(other)
		c.write(reply(q))
	})
	fm, _ := forward.NewMetrics(nil)
	addr := tlsForward(t, ca, forward.Deps{Metrics: fm}, []string{up.addr})
	wantA(t, dnstest.Exchange(t, addr, "udp", dnstest.Query("q5.example.", dns.TypeA, 0)), "q5.example.", "192.0.2.5")
	if d := testutil.ToFloat64(fm.Dropped()); d != 2 {
		t.Errorf("dropped replies %v, want 2 (wrong ID, wrong question)", d)
	}
}

// TestTLSRefusesCertificate: a certificate for another name, or from a CA
// not trusted (the system's pool without tlsCA), fails the handshake:
// SERVFAIL, counted, logged, and nothing is sent in plain text.
func TestTLSRefusesCertificate(t *testing.T) {
	ca := dnstest.NewTLSCA(t)
	up := startTLSUpstream(t, ca, answerTLS)
	for _, tc := range []struct {
		name, want string
		mod        func(*forward.Config)
	}{
		{"wrong server name", "other.test", func(c *forward.Config) { c.TLSServerName = "other.test" }},
		{"system pool", "unknown authority", func(c *forward.Config) { c.TLSCA = "" }},
		{"another CA", "unknown authority", func(c *forward.Config) { c.TLSCA = dnstest.NewTLSCA(t).File }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			fm, err := forward.NewMetrics(reg)
			if err != nil {
				t.Fatal(err)
			}
			var logs syncbuf.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			addr := tlsForward(t, ca, forward.Deps{Metrics: fm, Logger: log}, []string{up.addr}, tc.mod,
				dnstest.Timeouts(time.Second, 2*time.Second))
			queries := up.queries.Load()
			m := dnstest.Exchange(t, addr, "udp", dnstest.Query("q1.example.", dns.TypeA, 0))
			if m.Rcode != dns.RcodeServerFailure || len(m.Answer) != 0 {
				t.Errorf("rcode %s with %d answers, want SERVFAIL", dns.RcodeToString[m.Rcode], len(m.Answer))
			}
			if n := testutil.ToFloat64(fm.TLSHandshakeErrors(up.addr, "certificate")); n < 1 {
				t.Errorf("tls_handshake_errors_total{reason=certificate} %v, want at least 1", n)
			}
			if got := logs.String(); !strings.Contains(got, "TLS handshake with upstream failed") || !strings.Contains(got, tc.want) {
				t.Errorf("log %q: want the failed handshake, naming %q", got, tc.want)
			}
			if n := up.queries.Load() - queries; n != 0 {
				t.Errorf("the upstream read %d queries over a refused connection", n)
			}
			problems, err := testutil.GatherAndLint(reg, "poddns_forward_tls_handshake_errors_total")
			if err != nil || len(problems) != 0 {
				t.Errorf("promlint: %v %v", problems, err)
			}
		})
	}
	if n := up.plain.Load(); n != 0 {
		t.Errorf("%d plain DNS queries on the upstream's port, want 0", n)
	}
}

// TestTLSUpstreamCloses: queries are answered, each in one try, when the
// upstream closes its connections: after each reply, when idle, or with
// queries in flight (those are sent again on one new connection).
func TestTLSUpstreamCloses(t *testing.T) {
	ca := dnstest.NewTLSCA(t)
	for _, tc := range []struct {
		name       string
		handle     func(c upstreamConn, q *dns.Msg)
		concurrent int           // queries at once (else 4, one after the other)
		pause      time.Duration // between queries
		maxConns   int32
	}{
		{"after each reply", func(c upstreamConn, q *dns.Msg) { answerTLS(c, q); c.close() }, 0, 20 * time.Millisecond, 4},
		{"when idle", func(c upstreamConn, q *dns.Msg) {
			answerTLS(c, q)
			time.AfterFunc(50*time.Millisecond, c.close) // before the next query comes
		}, 0, 200 * time.Millisecond, 4},
		{"mid-query", func(c upstreamConn, q *dns.Msg) {
			if c.n == 1 { // the first connection: read, then close unanswered
				time.Sleep(100 * time.Millisecond) // let the other queries in
				c.close()
				return
			}
			answerTLS(c, q)
		}, 10, 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := startTLSUpstream(t, ca, tc.handle)
			fm, _ := forward.NewMetrics(nil)
			addr := tlsForward(t, ca, forward.Deps{Metrics: fm}, []string{up.addr}, dnstest.Timeouts(2*time.Second, 3*time.Second))
			n := max(tc.concurrent, 4)
			var wg sync.WaitGroup
			for i := range n {
				name := fmt.Sprintf("q%d.example.", i+1)
				ask := func() { defer wg.Done(); wantA(t, exchangeA(t, addr, name), name, fmt.Sprintf("192.0.2.%d", i+1)) }
				wg.Add(1)
				if tc.concurrent > 0 {
					go ask()
					continue
				}
				ask()
				time.Sleep(tc.pause)
			}
			wg.Wait()
			if tries := testutil.ToFloat64(fm.Requests(up.addr)); tries != float64(n) {
				t.Errorf("%v tries for %d queries, want one each (the retry on a new connection is within the try)", tries, n)
			}
			if c := up.conns.Load(); c > tc.maxConns {
				t.Errorf("%d connections, want at most %d", c, tc.maxConns)
			}
			// A connection the upstream closed while idle is dropped when
			// it closes, not found broken by the next query.
			if hits := testutil.ToFloat64(fm.ConnCacheHits("tls")); tc.concurrent == 0 && hits != 0 {
				t.Errorf("%v queries sent on a pooled connection the upstream had closed, want 0", hits)
			}
		})
	}
}

// TestTLSHealthCheck: an upstream marked down is probed over TLS.
func TestTLSHealthCheck(t *testing.T) {
	ca := dnstest.NewTLSCA(t)
	var silent atomic.Bool
	silent.Store(true)
	var probes atomic.Int32
	up := startTLSUpstream(t, ca, func(c upstreamConn, q *dns.Msg) {
		if q.Question[0].Name == "." && q.Question[0].Qtype == dns.TypeNS {
			probes.Add(1)
			answerTLS(c, q)
			return
		}
		if !silent.Load() {
			answerTLS(c, q)
		}
	})
	f := dnstest.Forward(t, []string{up.addr}, forward.Deps{}, func(c *forward.Config) {
		c.TLSCA, c.TLSServerName = ca.File, dnstest.TLSServerName
		c.TryTimeout, c.Deadline = configfile.Duration(200*time.Millisecond), configfile.Duration(300*time.Millisecond)
		c.MaxFails, c.HealthCheck = 1, configfile.Duration(50*time.Millisecond)
	})
	addr := dnstest.StartServer(t, f)
	if m := dnstest.Exchange(t, addr, "udp", dnstest.Query("q1.example.", dns.TypeA, 0)); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("silent upstream: rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	waitFor(t, func() bool { return probes.Load() > 0 && len(f.Down()) == 0 })
	if n := up.plain.Load(); n != 0 {
		t.Errorf("%d plain DNS queries (probes) on the upstream's port, want 0", n)
	}
}

// BenchmarkTLSRoundTrip: one query at a time, and queries from parallel
// goroutines pipelined on the pooled connections, to a DNS-over-TLS
// upstream on loopback.
func BenchmarkTLSRoundTrip(b *testing.B) {
	ca := dnstest.NewTLSCA(b)
	up, _ := dnstest.StartTLSUpstream(b, ca, "192.0.2.1")
	c := forward.Defaults()
	c.Upstreams, c.TLSCA, c.TLSServerName = []string{up}, ca.File, dnstest.TLSServerName
	f, err := forward.New(c, forward.Deps{})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	q := dnstest.Query("example.com.", dns.TypeA, 0)
	b.Run("serial", func(b *testing.B) {
		w := &dnstest.Recorder{}
		b.ReportAllocs()
		for b.Loop() {
			if rc, err := f.ServeDNS(context.Background(), w, q); err != nil || rc != dns.RcodeSuccess {
				b.Fatal(rc, err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			w := &dnstest.Recorder{}
			for pb.Next() {
				if rc, err := f.ServeDNS(context.Background(), w, q); err != nil || rc != dns.RcodeSuccess {
					b.Error(rc, err)
					return
				}
			}
		})
	})
}
