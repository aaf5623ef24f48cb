package serve_test

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

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/dnstest"
)

// TestUDPBlockingHandlers: handlers that block (a forwarded query waiting
// for its upstream) do not hold up other queries: the socket's workers grow
// until every query is being answered at once.
func TestUDPBlockingHandlers(t *testing.T) {
	const n = 40
	var inside atomic.Int32
	all := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	h := serve.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		if inside.Add(1) == n {
			once.Do(func() { close(all) })
		}
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		return answerA(1)(ctx, w, r)
	})
	s := startServer(t, serve.Options{Handler: h})

	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			c := &dns.Client{Net: "udp", Timeout: 10 * time.Second}
			m, _, err := c.Exchange(dnstest.Query(qname, dns.TypeA, 0), s.Addr())
			if err == nil && len(m.Answer) != 1 {
				err = &net.AddrError{Err: "no answer", Addr: s.Addr()}
			}
			errs <- err
		})
	}
	select {
	case <-all:
	case <-time.After(5 * time.Second):
		t.Fatalf("%d of %d queries reached the handler at once: blocked handlers hold up the socket", inside.Load(), n)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestUDPMalformed: what never reaches the handler over UDP, as with
// miekg/dns's server: short datagrams and responses are dropped (a reply
// could feed amplification or loops); a header the accept rules reject,
// or a message that does not parse, gets FORMERR (NOTIMP for an unknown
// opcode) with the query's ID.
func TestUDPMalformed(t *testing.T) {
	var calls atomic.Int32
	h := serve.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		calls.Add(1)
		if _, ok := w.RemoteAddr().(*net.UDPAddr); !ok {
			t.Errorf("RemoteAddr = %T, want *net.UDPAddr", w.RemoteAddr())
		}
		return answerA(1)(ctx, w, r)
	})
	addr := dnstest.StartServer(t, h)
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	exchange := func(b []byte) *dns.Msg {
		t.Helper()
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond)) // "no reply" is a timeout, bounded
		buf := make([]byte, 512)
		n, err := conn.Read(buf)
		if err != nil {
			return nil
		}
		m := new(dns.Msg)
		if err := m.Unpack(buf[:n]); err != nil {
			t.Fatalf("reply does not parse: %v", err)
		}
		return m
	}
	query, _ := dnstest.Query(qname, dns.TypeA, 0).Pack()
	header := func(id, bits, qd uint16) []byte {
		return []byte{byte(id >> 8), byte(id), byte(bits >> 8), byte(bits), byte(qd >> 8), byte(qd), 0, 0, 0, 0, 0, 0}
	}
	twoQuestions := append(header(7, 0x0100, 2), query[12:]...)
	twoQuestions = append(twoQuestions, query[12:]...)
	update := append(header(8, 5<<11, 1), query[12:]...)
	cut := append(header(9, 0x0100, 1), query[12:len(query)-3]...)
	response := append(header(10, 0x8100, 1), query[12:]...)

	for _, tc := range []struct {
		name  string
		in    []byte
		rcode int // -1: no reply
		id    uint16
	}{
		{"short datagram", []byte{1, 2, 3, 4, 5}, -1, 0},
		{"a response", response, -1, 0},
		{"two questions", twoQuestions, dns.RcodeFormatError, 7},
		{"UPDATE opcode", update, dns.RcodeNotImplemented, 8},
		{"question cut short", cut, dns.RcodeFormatError, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := exchange(tc.in)
			switch {
			case tc.rcode < 0 && m != nil:
				t.Errorf("got a reply %v, want none", m)
			case tc.rcode >= 0 && m == nil:
				t.Errorf("no reply, want %s", dns.RcodeToString[tc.rcode])
			case m != nil && (m.Rcode != tc.rcode || m.Id != tc.id || !m.Response || len(m.Answer) != 0):
				t.Errorf("reply rcode %s id %d response %v answers %d, want %s id %d", dns.RcodeToString[m.Rcode], m.Id, m.Response, len(m.Answer), dns.RcodeToString[tc.rcode], tc.id)
			}
		})
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("the handler was called %d times for malformed input", n)
	}
	if m := exchange(query); m == nil || len(m.Answer) != 1 || calls.Load() != 1 {
		t.Errorf("a good query after the bad ones: %v (handler calls %d)", m, calls.Load())
	}
}

// TestUDPShutdownAnswersInFlight: a query being answered when Shutdown
// starts (a forwarded query waiting for its upstream, in a node-local
// instance leaving after its lame-duck period) still gets its reply: the
// socket stops reading but stays open until the answers in flight are
// written. (Closing it first lost every such reply; the client had to
// retry, and musl, whose timeout:1 is the whole lookup's, could fail.)
func TestUDPShutdownAnswersInFlight(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	h := serve.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		once.Do(func() { close(entered) })
		<-release
		return answerA(1)(ctx, w, r)
	})
	s, err := serve.NewServer(serve.Options{Addr: "127.0.0.1:0", Handler: h, UDPSockets: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	type reply struct {
		m   *dns.Msg
		err error
	}
	got := make(chan reply, 1)
	go func() {
		c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
		m, _, err := c.Exchange(dnstest.Query(qname, dns.TypeA, 0), s.Addr())
		got <- reply{m, err}
	}()
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the query did not reach the handler")
	}
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	time.Sleep(100 * time.Millisecond) // Shutdown has stopped the reading by now
	close(release)
	r := <-got
	if r.err != nil || len(r.m.Answer) != 1 {
		t.Errorf("the query in flight at Shutdown: %v %v, want its answer", r.m, r.err)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	// Closed after the answers: nothing more is read.
	c := &dns.Client{Net: "udp", Timeout: 300 * time.Millisecond}
	if _, _, err := c.Exchange(dnstest.Query(qname, dns.TypeA, 0), s.Addr()); err == nil {
		t.Error("a query after Shutdown was answered")
	}
}

// TestUDPBatchGarbage: datagrams are read and answered in batches; a burst
// that mixes garbage (short datagrams, responses, unparseable messages)
// with queries loses none of the queries, and each piece of garbage gets
// what it gets alone (TestUDPMalformed).
func TestUDPBatchGarbage(t *testing.T) {
	addr := dnstest.StartServer(t, answerA(1))
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	query := func(id uint16) []byte {
		q := dnstest.Query(qname, dns.TypeA, 0)
		q.Id = id
		b, _ := q.Pack()
		return b
	}
	q := query(0)
	garbage := [][]byte{
		{1, 2, 3}, // short: no reply
		append([]byte{0, 0, 0x81, 0, 0, 1, 0, 0, 0, 0, 0, 0}, q[12:]...),      // a response: no reply
		append([]byte{0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0}, q[12:len(q)-3]...), // cut: FORMERR
	}
	const n = 48 // in one burst, well within a socket's receive buffer
	want := map[uint16]bool{}
	for i := range n {
		b := query(uint16(1000 + i))
		if i%2 == 1 {
			g := garbage[i/2%len(garbage)]
			b = append([]byte(nil), g...)
			if len(b) >= 2 {
				b[0], b[1] = byte((2000+i)>>8), byte(2000+i)
			}
		} else {
			want[uint16(1000+i)] = true
		}
		if _, err := conn.WriteToUDP(b, raddr); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for len(want) > 0 {
		k, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("%d queries not answered: %v", len(want), err)
		}
		m := new(dns.Msg)
		if err := m.Unpack(buf[:k]); err != nil {
			t.Fatalf("reply does not parse: %v", err)
		}
		switch {
		case m.Id >= 2000 && m.Rcode == dns.RcodeFormatError:
			// the cut message
		case want[m.Id] && len(m.Answer) == 1:
			delete(want, m.Id)
		default:
			t.Fatalf("unexpected reply %v", m)
		}
	}
}

// TestUDPReplySource: replies, sent in batches, leave from the address
// each query was sent to, on IPv4, IPv6 and wildcard listeners (a
// connected client takes no reply from another address), and each query
// sent alone to an idle socket is answered: a reply never waits for a
// batch to fill.
func TestUDPReplySource(t *testing.T) {
	ln, v6err := net.ListenPacket("udp", "[::1]:0")
	if v6err == nil {
		ln.Close()
	}
	for _, tc := range []struct {
		listen string
		dial   []string
	}{
		{"127.0.0.1:0", []string{"127.0.0.1"}},
		{"[::1]:0", []string{"::1"}},
		{"0.0.0.0:0", []string{"127.0.0.1", "127.0.0.2"}},
		{"[::]:0", []string{"127.0.0.1", "127.0.0.2", "::1"}},
	} {
		t.Run(tc.listen, func(t *testing.T) {
			if strings.Contains(tc.listen+strings.Join(tc.dial, ""), "::") {
				// A machine without IPv6 (a container) skips the IPv6
				// cases alone; under CI=true they fail instead.
				testenv.RequireOrSkip(t, fmt.Sprintf("IPv6 loopback (%v)", v6err), v6err == nil)
			}
			s, err := serve.NewServer(serve.Options{Addr: tc.listen, Handler: answerA(1), UDPSockets: 2})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Shutdown(context.Background()) })
			_, port, _ := net.SplitHostPort(s.Addr())
			for _, ip := range tc.dial {
				for range 3 {
					m := dnstest.Exchange(t, net.JoinHostPort(ip, port), "udp", dnstest.Query(qname, dns.TypeA, 0))
					if len(m.Answer) != 1 {
						t.Errorf("%s: %v", ip, m)
					}
				}
			}
		})
	}
}
