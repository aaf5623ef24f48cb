// Package dnstest is the test vocabulary of pkg/serve handlers: a real
// server on an ephemeral loopback port that is serving when StartServer
// returns (no sleeps), a client exchange with a bounded timeout, record
// builders from zone-file text, a Case that states a whole expected reply,
// and a ResponseWriter that records what a handler writes, for fuzz targets
// and benchmarks that skip the sockets.
//
// It exists so that every handler test asserts exact replies (rcode, AA, TC,
// every section, TTLs included) the same way, over real UDP and TCP. It is
// test support: only _test.go files import it (test/layout holds that).
package dnstest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/configfile"
	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/daemon"
	"github.com/poddns/poddns/pkg/serve/forward"
)

// Timeout bounds every exchange of Exchange.
const Timeout = 3 * time.Second

// StartServer serves h on 127.0.0.1 on a free port, over UDP (two
// SO_REUSEPORT sockets) and TCP, and returns the address once every socket
// is serving. The server stops when the test ends.
func StartServer(tb testing.TB, h serve.Handler) string {
	tb.Helper()
	s, err := serve.NewServer(serve.Options{Addr: "127.0.0.1:0", Handler: h, UDPSockets: 2})
	if err != nil {
		tb.Fatalf("NewServer: %v", err)
	}
	if err := s.Start(); err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			tb.Errorf("Shutdown: %v", err)
		}
	})
	return s.Addr()
}

// Exchange sends m to addr over proto ("udp" or "tcp") and returns the
// reply; it fails the test on a network error. The client reads UDP replies
// of any size, so a reply that should be truncated must be by the server.
func Exchange(tb testing.TB, addr, proto string, m *dns.Msg) *dns.Msg {
	tb.Helper()
	c := &dns.Client{Net: proto, Timeout: Timeout, UDPSize: dns.MaxMsgSize}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		tb.Fatalf("exchange %s %s over %s: %v", m.Question[0].Name, dns.TypeToString[m.Question[0].Qtype], proto, err)
	}
	return r
}

// RawUDPServer is a bare UDP server on 127.0.0.1 on a free port, for
// upstream faults the serve package would not produce: every query that
// unpacks is passed to reply, and each message it returns is packed and
// sent back in order (several let a test send bad replies before a good
// one; nil or none means the server stays silent). Packets that do not
// unpack are ignored. reply runs on the server's one goroutine, which
// stops when the test ends. It returns the server's address.
func RawUDPServer(tb testing.TB, reply func(q *dns.Msg) []*dns.Msg) string {
	tb.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("RawUDPServer: %v", err)
	}
	ServeRawUDP(tb, pc, func(q *dns.Msg, _ net.Addr) []*dns.Msg { return reply(q) })
	return pc.LocalAddr().String()
}

// ServeRawUDP is RawUDPServer on a socket the test opened (on an address
// of its own, or one it also sends from), and reply is also given the
// query's source address. pc is closed when the test ends.
func ServeRawUDP(tb testing.TB, pc net.PacketConn, reply func(q *dns.Msg, from net.Addr) []*dns.Msg) {
	done := make(chan struct{})
	tb.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return // closed at the end of the test
			}
			q := new(dns.Msg)
			if q.Unpack(buf[:n]) != nil {
				continue
			}
			for _, m := range reply(q, from) {
				if b, err := m.Pack(); err == nil {
					pc.WriteTo(b, from)
				}
			}
		}
	}()
}

// Query makes a query for name and type qtype with RD set, as dig sends it;
// bufsize > 0 adds an OPT record with that buffer size.
func Query(name string, qtype uint16, bufsize uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if bufsize > 0 {
		m.SetEdns0(bufsize, false)
	}
	return m
}

// RR parses one record in zone-file syntax ("a.b. 30 IN A 10.0.0.1"); it
// panics on a syntax error, which is a bug in the test.
func RR(s string) dns.RR {
	r, err := dns.NewRR(s)
	if err != nil || r == nil {
		panic(fmt.Sprintf("dnstest.RR(%q): %v", s, err))
	}
	return r
}

// RRs parses several records; see RR.
func RRs(ss ...string) []dns.RR {
	out := make([]dns.RR, 0, len(ss))
	for _, s := range ss {
		out = append(out, RR(s))
	}
	return out
}

// Case is the whole expected reply to one question.
type Case struct {
	Qname string
	Qtype uint16

	Rcode     int
	NoAA      bool // the reply is expected without AA
	Truncated bool
	Answer    []dns.RR
	Ns        []dns.RR
	Extra     []dns.RR // OPT records are not compared
}

// SOA is the SOA record dnsd puts in the authority section of negative
// answers in zone (a fully qualified name), with the store's serial.
func SOA(zone string, serial uint32) dns.RR {
	return RR(fmt.Sprintf("%s 30 IN SOA ns.dns.%s hostmaster.%s %d 7200 1800 86400 30", zone, zone, zone, serial))
}

// Answer is a NOERROR reply to name/qtype with the answer records rrs
// (in zone-file syntax).
func Answer(name string, qtype uint16, rrs ...string) Case {
	return Case{Qname: name, Qtype: qtype, Answer: RRs(rrs...)}
}

// NXDomain is an NXDOMAIN reply to name/qtype with soa in the authority
// section.
func NXDomain(name string, qtype uint16, soa dns.RR) Case {
	return Case{Qname: name, Qtype: qtype, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa}}
}

// NoData is a NOERROR reply without answers to name/qtype with soa in the
// authority section.
func NoData(name string, qtype uint16, soa dns.RR) Case {
	return Case{Qname: name, Qtype: qtype, Ns: []dns.RR{soa}}
}

// WithExtra is c expecting the additional records rrs.
func (c Case) WithExtra(rrs ...string) Case {
	c.Extra = RRs(rrs...)
	return c
}

// Msg is the query of the case, with RD set and no EDNS0.
func (c Case) Msg() *dns.Msg { return Query(c.Qname, c.Qtype, 0) }

// Check compares the reply m with c: rcode, AA, TC, the question kept as
// asked, and every section as a set of records (order ignored, TTLs and
// owner-name case compared). It reports every difference with t.Errorf.
func Check(tb testing.TB, c Case, m *dns.Msg) {
	tb.Helper()
	if m == nil {
		tb.Errorf("%s %s: no reply", c.Qname, dns.TypeToString[c.Qtype])
		return
	}
	prefix := c.Qname + " " + dns.TypeToString[c.Qtype] + ": "
	if m.Rcode != c.Rcode {
		tb.Errorf("%srcode = %s, want %s", prefix, dns.RcodeToString[m.Rcode], dns.RcodeToString[c.Rcode])
	}
	if m.Authoritative == c.NoAA {
		tb.Errorf("%sAA = %v, want %v", prefix, m.Authoritative, !c.NoAA)
	}
	if m.Truncated != c.Truncated {
		tb.Errorf("%sTC = %v, want %v", prefix, m.Truncated, c.Truncated)
	}
	if !m.Response {
		tb.Errorf("%sQR not set", prefix)
	}
	if len(m.Question) != 1 || m.Question[0].Name != c.Qname || m.Question[0].Qtype != c.Qtype {
		tb.Errorf("%squestion = %v, want the question as asked", prefix, m.Question)
	}
	for _, s := range []struct {
		name      string
		got, want []dns.RR
	}{{"answer", m.Answer, c.Answer}, {"authority", m.Ns, c.Ns}, {"additional", m.Extra, c.Extra}} {
		if d := Diff(s.got, s.want); d != "" {
			tb.Errorf("%s%s section differs (-got +want):\n%s", prefix, s.name, d)
		}
	}
}

// Diff compares two record sets, ignoring order and OPT records, and
// returns "" when they are equal, else the records only in got (-) and only
// in want (+).
func Diff(got, want []dns.RR) string {
	g, w := Strings(got), Strings(want)
	var b strings.Builder
	for _, s := range g {
		if !slices.Contains(w, s) {
			fmt.Fprintf(&b, "  - %s\n", s)
		}
	}
	for _, s := range w {
		if !slices.Contains(g, s) {
			fmt.Fprintf(&b, "  + %s\n", s)
		}
	}
	if b.Len() == 0 && len(g) != len(w) {
		fmt.Fprintf(&b, "  %d records, want %d (duplicates)\n", len(g), len(w))
	}
	return b.String()
}

// Strings renders records in zone-file syntax, sorted, without OPT records.
func Strings(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, strings.ReplaceAll(rr.String(), "\t", " "))
	}
	slices.Sort(out)
	return out
}

// Recorder is a dns.ResponseWriter that keeps the last message written, for
// calling a handler without sockets. Its client is 10.240.0.1 over UDP, or
// over TCP when TCP is set.
type Recorder struct {
	TCP    bool
	Msg    *dns.Msg
	Writes int
}

// LocalAddr implements dns.ResponseWriter.
func (r *Recorder) LocalAddr() net.Addr {
	if r.TCP {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
}

// RemoteAddr implements dns.ResponseWriter.
func (r *Recorder) RemoteAddr() net.Addr {
	if r.TCP {
		return &net.TCPAddr{IP: net.IPv4(10, 240, 0, 1), Port: 40212}
	}
	return &net.UDPAddr{IP: net.IPv4(10, 240, 0, 1), Port: 40212}
}

// WriteMsg records m.
func (r *Recorder) WriteMsg(m *dns.Msg) error {
	r.Msg = m
	r.Writes++
	return nil
}

// Write records a packed message.
func (r *Recorder) Write(b []byte) (int, error) {
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return 0, err
	}
	return len(b), r.WriteMsg(m)
}

// Close implements dns.ResponseWriter.
func (r *Recorder) Close() error { return nil }

// TsigStatus implements dns.ResponseWriter.
func (r *Recorder) TsigStatus() error { return nil }

// TsigTimersOnly implements dns.ResponseWriter.
func (r *Recorder) TsigTimersOnly(bool) {}

// Hijack implements dns.ResponseWriter.
func (r *Recorder) Hijack() {}

// StartUpstream starts an upstream resolver on loopback that answers every
// A query with ip (NOERROR without records for other types) and counts the
// queries, dnsd's startup loop probes (names under poddns-loop.) excepted.
func StartUpstream(t testing.TB, ip string) (string, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	addr := StartServer(t, serve.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		return dns.RcodeSuccess, w.WriteMsg(upstreamReply(r, ip, &n))
	}))
	return addr, &n
}

// ServeUpstream serves StartUpstream's answers over UDP on pc, a socket the
// test opened (on an address of its own, or inside a network namespace),
// until the test ends, and returns the query counter.
func ServeUpstream(tb testing.TB, pc net.PacketConn, ip string) *atomic.Int32 {
	var n atomic.Int32
	ServeRawUDP(tb, pc, func(q *dns.Msg, _ net.Addr) []*dns.Msg { return []*dns.Msg{upstreamReply(q, ip, &n)} })
	return &n
}

// upstreamReply is StartUpstream's reply to r: every A query answered with
// ip, NOERROR without records for other types; n counts r unless it is a
// loop probe.
func upstreamReply(r *dns.Msg, ip string, n *atomic.Int32) *dns.Msg {
	if !dns.IsSubDomain("poddns-loop.", r.Question[0].Name) {
		n.Add(1)
	}
	m := new(dns.Msg)
	m.SetReply(r)
	if r.Question[0].Qtype == dns.TypeA {
		m.Answer = RRs(r.Question[0].Name + " 60 IN A " + ip)
	}
	return m
}

// Activate serves s, whose Listener or PacketConn is set, until the test
// ends; it returns once s is serving and fails the test when that takes
// more than 10 s.
func Activate(tb testing.TB, s *dns.Server) {
	tb.Helper()
	started := make(chan struct{})
	s.NotifyStartedFunc = func() { close(started) }
	go func() { _ = s.ActivateAndServe() }()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		var addr net.Addr
		if s.Listener != nil {
			addr = s.Listener.Addr()
		} else if s.PacketConn != nil {
			addr = s.PacketConn.LocalAddr()
		}
		tb.Fatalf("DNS server on %v (%s) did not start", addr, s.Net)
	}
	tb.Cleanup(func() { _ = s.Shutdown() })
}

// HTTPGet fetches url (dnsd's /health, /ready, /metrics) with a 3 s
// timeout and returns the status code and body.
func HTTPGet(t testing.TB, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// MetricValue is the value of the sample line that starts with series
// (a metric name with its labels, as exposed) in the Prometheus text
// at http://addr/metrics, or 0 without one.
func MetricValue(t testing.TB, addr, series string) float64 {
	t.Helper()
	_, body := HTTPGet(t, "http://"+addr+"/metrics")
	for line := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return 0
}

// SumMetrics are the sums over all series of each named metric in a
// Prometheus text exposition (a /metrics body), 0 for a metric it lacks.
func SumMetrics(exposition string, names ...string) ([]float64, error) {
	sums := make([]float64, len(names))
	for line := range strings.SplitSeq(exposition, "\n") {
		for i, n := range names {
			if !strings.HasPrefix(line, n+"{") && !strings.HasPrefix(line, n+" ") {
				continue
			}
			fs := strings.Fields(line)
			v, err := strconv.ParseFloat(fs[len(fs)-1], 64)
			if err != nil {
				return nil, fmt.Errorf("metrics line %q: %w", line, err)
			}
			sums[i] += v
		}
	}
	return sums, nil
}

// Forward returns a forwarder (package forward) to upstreams, with
// forward's defaults changed by mods and the dependencies d; it is closed
// when the test ends.
func Forward(t testing.TB, upstreams []string, d forward.Deps, mods ...func(*forward.Config)) *forward.Forward {
	t.Helper()
	c := forward.Defaults()
	c.Upstreams = upstreams
	for _, m := range mods {
		m(&c)
	}
	f, err := forward.New(c, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

// Timeouts sets a forwarder's try timeout and deadline, and health checks
// rare enough never to run in a test.
func Timeouts(try, deadline time.Duration) func(*forward.Config) {
	return func(c *forward.Config) {
		c.TryTimeout, c.Deadline, c.HealthCheck = configfile.Duration(try), configfile.Duration(deadline), configfile.Duration(time.Hour)
	}
}

// CheckRejects checks that each of mods, applied to defaults(), makes a
// configuration that both its Validate and newHandler (with deps) refuse:
// a handler package's constructor must not build what its validation
// refuses.
func CheckRejects[C interface{ Validate() error }, D, H any](t testing.TB, defaults func() C, newHandler func(C, D) (H, error), deps D, mods map[string]func(*C)) {
	t.Helper()
	for name, mod := range mods {
		c := defaults()
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, c)
		}
		if _, err := newHandler(c, deps); err == nil {
			t.Errorf("%s: New accepted %+v", name, c)
		}
	}
}

// WriteFile writes content to a file name in a directory of the test's
// and returns its path.
func WriteFile(t testing.TB, name, content string) string {
	t.Helper()
	return testenv.WriteFile(t, t.TempDir(), name, content)
}

// Serve starts s (a dnsd daemon) and shuts it down, without a lame-duck
// period, when the test ends.
func Serve(t testing.TB, s interface {
	Start() error
	Shutdown(time.Duration)
}) {
	t.Helper()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(0) })
}

// StartDaemon makes the daemon of cfg with o, listening on loopback ports
// the kernel chooses (DNS with two UDP sockets, health and metrics), and
// serves it until the test ends.
func StartDaemon(t testing.TB, cfg daemon.Config, o daemon.Options) *daemon.Daemon {
	t.Helper()
	cfg.Listen, cfg.HealthListen, cfg.MetricsListen, cfg.UDPSockets = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", 2
	d, err := daemon.New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	Serve(t, d)
	return d
}

// PackedReply is a serve.PackedSource of M for tests of the writers that
// pass packed replies on: it packs M (shuffled as asked) and counts how
// often a writer needed the message instead.
type PackedReply struct {
	M        *dns.Msg
	MsgCalls atomic.Int32
}

// Packed is the serve.Packed of p.
func (p *PackedReply) Packed() *serve.Packed {
	return &serve.Packed{Rcode: p.M.Rcode, Answers: len(p.M.Answer), Src: p}
}

// AppendWire implements serve.PackedSource.
func (p *PackedReply) AppendWire(dst []byte, shuffle func([]dns.RR) []dns.RR) ([]byte, bool) {
	m := *p.M
	if shuffle != nil {
		m.Answer, m.Ns, m.Extra = shuffle(m.Answer), shuffle(m.Ns), shuffle(m.Extra)
	}
	b, err := m.Pack()
	if err != nil {
		return dst, false
	}
	return append(dst, b...), true
}

// Msg implements serve.PackedSource.
func (p *PackedReply) Msg() *dns.Msg {
	p.MsgCalls.Add(1)
	return p.M.Copy()
}
