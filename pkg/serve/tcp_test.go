package serve_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/dnstest"
)

// startServer runs a Server with o (Addr and UDPSockets filled in) and
// shuts it down at the end of the test.
func startServer(t *testing.T, o serve.Options) *serve.Server {
	t.Helper()
	o.Addr, o.UDPSockets = "127.0.0.1:0", 1
	s, err := serve.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s
}

// gate answers "block.*" queries only once released, everything else at
// once, with one A record.
type gate struct {
	release chan struct{}
	once    sync.Once
	arrived chan string
}

// newGate returns a gate released at the end of the test at the latest.
func newGate(t *testing.T) *gate {
	g := &gate{release: make(chan struct{}), arrived: make(chan string, 1024)}
	t.Cleanup(g.open)
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

func (g *gate) handler() serve.Handler {
	return serve.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		name := r.Question[0].Name
		g.arrived <- name
		if strings.HasPrefix(name, "block") {
			<-g.release
		}
		return answerA(1)(ctx, w, r)
	})
}

func dialTCP(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

func sendQuery(t *testing.T, c net.Conn, id uint16, name string) {
	t.Helper()
	q := dnstest.Query(name, dns.TypeA, 0)
	q.Id = id
	b, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	frame := binary.BigEndian.AppendUint16(nil, uint16(len(b)))
	c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write(append(frame, b...)); err != nil {
		t.Fatalf("send %s: %v", name, err)
	}
}

// readReply reads one reply within d.
func readReply(c net.Conn, d time.Duration) (*dns.Msg, error) {
	c.SetReadDeadline(time.Now().Add(d))
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	if _, err := io.ReadFull(c, b); err != nil {
		return nil, err
	}
	m := new(dns.Msg)
	return m, m.Unpack(b)
}

// TestTCPPipelining: queries pipelined on one connection are answered
// concurrently, each reply as soon as it is ready (RFC 7766 §6.2.1.1): the
// answer to a fast query is not held behind a slow one sent before it.
func TestTCPPipelining(t *testing.T) {
	g := newGate(t)
	s := startServer(t, serve.Options{Handler: g.handler()})
	c := dialTCP(t, s.Addr())
	sendQuery(t, c, 1, "block.example.")
	sendQuery(t, c, 2, "fast.example.")
	m, err := readReply(c, 2*time.Second)
	if err != nil {
		t.Fatalf("no reply while the first query is in flight: %v", err)
	}
	if m.Id != 2 {
		t.Fatalf("first reply has ID %d, want 2 (the fast query)", m.Id)
	}
	g.open()
	if m, err = readReply(c, 2*time.Second); err != nil || m.Id != 1 {
		t.Fatalf("second reply: %v, %v; want ID 1", m, err)
	}
}

// TestTCPManyQueries: 300 queries pipelined on one connection are all
// answered, and the connection stays open (miekg/dns's server reset it
// after 128 with the rest unanswered).
func TestTCPManyQueries(t *testing.T) {
	const n = 300
	s := startServer(t, serve.Options{Handler: answerA(1)})
	c := dialTCP(t, s.Addr())
	go func() {
		for i := range n {
			q := dnstest.Query(fmt.Sprintf("q%d.example.", i), dns.TypeA, 0)
			q.Id = uint16(i)
			b, _ := q.Pack()
			c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...))
		}
	}()
	seen := map[uint16]bool{}
	for range n {
		m, err := readReply(c, 3*time.Second)
		if err != nil {
			t.Fatalf("after %d replies: %v", len(seen), err)
		}
		if want := fmt.Sprintf("q%d.example.", m.Id); m.Question[0].Name != want || len(m.Answer) != 1 {
			t.Fatalf("reply ID %d for %s, want %s answered", m.Id, m.Question[0].Name, want)
		}
		seen[m.Id] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct replies, want %d", len(seen), n)
	}
	sendQuery(t, c, 9999, "last.example.")
	if m, err := readReply(c, 2*time.Second); err != nil || m.Id != 9999 {
		t.Fatalf("query %d on the same connection: %v, %v", n+1, m, err)
	}
}

// expectClose reads c until it ends within d and reports how: a clean
// close (EOF after every reply) is nil.
func expectClose(c net.Conn, d time.Duration) error {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	if err == nil {
		return nil // io.Copy turns EOF into nil
	}
	return err
}

// TestTCPIdleClosed: a connection without a query in flight is closed after
// the idle timeout, also when a query was sent only in part, with a FIN
// (EOF), not a reset.
func TestTCPIdleClosed(t *testing.T) {
	s := startServer(t, serve.Options{Handler: answerA(1), TCPIdleTimeout: 200 * time.Millisecond})
	c := dialTCP(t, s.Addr())
	sendQuery(t, c, 1, "a.example.")
	if _, err := readReply(c, time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := expectClose(c, 2*time.Second); err != nil {
		t.Fatalf("idle connection: %v, want EOF within 2s", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("closed after %v, before the idle timeout", d)
	}
	// Half a query, then nothing: closed as idle too.
	c = dialTCP(t, s.Addr())
	c.Write([]byte{0, 40, 1, 2, 3})
	if err := expectClose(c, 2*time.Second); err != nil {
		t.Fatalf("stalled query: %v, want EOF within 2s", err)
	}
}

// big answers every query with about 60 KB of TXT records (built once: the
// records are shared, never modified).
var big = func() serve.Handler {
	var rrs []dns.RR
	for i := range 235 {
		rrs = append(rrs, &dns.TXT{Hdr: dns.RR_Header{Name: "big.example.", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 30},
			Txt: []string{fmt.Sprintf("%03d%s", i, strings.Repeat("x", 240))}})
	}
	return serve.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		m := serve.NewRequest(w, r).Reply(dns.RcodeSuccess)
		m.Answer = rrs
		return dns.RcodeSuccess, w.WriteMsg(m)
	})
}()

// sendWithoutReading sends n TXT queries on c and never reads; it returns
// when sent or when the connection fails.
func sendWithoutReading(c *net.TCPConn, n int) {
	for i := range n {
		q := dnstest.Query(fmt.Sprintf("q%d.example.", i), dns.TypeTXT, 0)
		b, _ := q.Pack()
		c.SetWriteDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)); err != nil {
			return // the server closed the connection, or stopped reading
		}
	}
}

// TestTCPNonReadingClients: clients that send queries with large replies
// and never read are disconnected after the write timeout: they pin no
// connection, buffers or goroutines, and Shutdown is not held up.
func TestTCPNonReadingClients(t *testing.T) {
	s := startServer(t, serve.Options{Handler: big, TCPWriteTimeout: 300 * time.Millisecond, TCPIdleTimeout: time.Minute})
	// 120 queries of 60 KB replies each (7 MB, more than socket buffers
	// hold, under miekg/dns's 128-query limit) per connection.
	const clients, queries = 10, 120
	var wg sync.WaitGroup
	for range clients {
		c := dialTCP(t, s.Addr())
		c.SetReadBuffer(4096)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sendWithoutReading(c, queries)
		}()
	}
	time.Sleep(200 * time.Millisecond) // the writes block
	_, port, _ := net.SplitHostPort(s.Addr())
	// Far beyond the write timeout, for a loaded machine; without one they
	// stay open for as long as the clients like. First the sockets (what
	// the kernel holds), then the connections' goroutines, which finish
	// the queries already read (up to 64 each) before they go.
	deadline := time.Now().Add(6 * time.Second)
	for established(t, port) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if e := established(t, port); e > 0 {
		t.Errorf("%d of %d non-reading connections' server sockets still established 6s after they stopped reading (write timeout 300ms)", e, clients)
	}
	for deadline = time.Now().Add(10 * time.Second); s.TCPConns() > 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if n := s.TCPConns(); n > 0 {
		t.Errorf("%d of %d non-reading connections still served 16s after they stopped reading", n, clients)
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Shutdown took %v with non-reading clients", d)
	}
}

// established counts the server's ESTABLISHED TCP sockets on 127.0.0.1:port
// (from /proc/net/tcp: what the kernel holds, whatever the server thinks).
func established(t *testing.T, port string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	local := fmt.Sprintf("0100007F:%04X", p)
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 3 && f[1] == local && f[3] == "01" {
			n++
		}
	}
	return n
}

// TestTCPConnCap: over MaxTCPConns, a new connection closes the connection
// idle the longest; when every connection has a query in flight, the new
// one is closed at once and the others are still answered.
func TestTCPConnCap(t *testing.T) {
	g := newGate(t)
	s := startServer(t, serve.Options{Handler: g.handler(), MaxTCPConns: 3, TCPIdleTimeout: time.Minute})
	var conns []*net.TCPConn
	for i := range 3 {
		c := dialTCP(t, s.Addr())
		sendQuery(t, c, uint16(i), "a.example.")
		if _, err := readReply(c, time.Second); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		time.Sleep(20 * time.Millisecond) // distinct activity times
	}
	// conns[1] is used again: conns[0] is the oldest idle.
	sendQuery(t, conns[1], 10, "a.example.")
	if _, err := readReply(conns[1], time.Second); err != nil {
		t.Fatal(err)
	}
	c4 := dialTCP(t, s.Addr())
	sendQuery(t, c4, 4, "a.example.")
	if _, err := readReply(c4, time.Second); err != nil {
		t.Fatalf("new connection over the cap: %v, want it served", err)
	}
	if err := expectClose(conns[0], time.Second); err != nil {
		t.Fatalf("oldest idle connection: %v, want it closed (EOF)", err)
	}
	for _, c := range []*net.TCPConn{conns[1], conns[2], c4} {
		sendQuery(t, c, 20, "a.example.")
		if _, err := readReply(c, time.Second); err != nil {
			t.Fatalf("a newer connection was closed: %v", err)
		}
	}
	// Every connection busy: a new one is refused, the busy ones answered.
	busy := []*net.TCPConn{conns[1], conns[2], c4}
	for len(g.arrived) > 0 {
		<-g.arrived
	}
	for _, c := range busy {
		sendQuery(t, c, 30, "block.example.")
	}
	for range busy {
		<-g.arrived
	}
	c5 := dialTCP(t, s.Addr())
	if err := expectClose(c5, time.Second); err != nil {
		t.Fatalf("connection over the cap with none idle: %v, want it closed", err)
	}
	g.open()
	for _, c := range busy {
		if m, err := readReply(c, time.Second); err != nil || m.Id != 30 {
			t.Fatalf("busy connection: %v, %v", m, err)
		}
	}
}

// TestTCPCleanShutdown: Shutdown answers the queries in flight before it
// closes their connection, with a FIN (the client reads every reply, then
// EOF), never a reset.
func TestTCPCleanShutdown(t *testing.T) {
	g := newGate(t)
	s, err := serve.NewServer(serve.Options{Addr: "127.0.0.1:0", UDPSockets: 1, Handler: g.handler()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	c := dialTCP(t, s.Addr())
	for i := range 3 {
		sendQuery(t, c, uint16(i), fmt.Sprintf("block%d.example.", i))
	}
	for range 3 {
		<-g.arrived
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	time.Sleep(100 * time.Millisecond)
	g.open()
	for i := range 3 {
		if _, err := readReply(c, 2*time.Second); err != nil {
			t.Fatalf("reply %d of 3 in flight at shutdown: %v", i, err)
		}
	}
	if err := expectClose(c, 2*time.Second); err != nil {
		t.Fatalf("after the replies: %v, want EOF", err)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if c, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		c.Close()
		t.Error("still accepting after Shutdown")
	}
}
