package serve_test

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/dnstest"
)

var (
	fuzzServerOnce sync.Once
	fuzzServerAddr string
)

// fuzzServer is one Server per fuzzing process, answering A queries.
func fuzzServer(t *testing.T) string {
	fuzzServerOnce.Do(func() {
		s, err := serve.NewServer(serve.Options{Addr: "127.0.0.1:0", UDPSockets: 1, Handler: answerA(2),
			TCPIdleTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		fuzzServerAddr = s.Addr()
	})
	return fuzzServerAddr
}

// FuzzTCPStream sends arbitrary bytes as a client's TCP stream (length-
// prefixed messages, cut anywhere) and half-closes: the server must not
// crash, every reply must be a whole DNS response, no more replies than
// whole messages sent, and the connection must end with a FIN.
func FuzzTCPStream(f *testing.F) {
	frame := func(msgs ...*dns.Msg) []byte {
		var out []byte
		for _, m := range msgs {
			b, _ := m.Pack()
			out = binary.BigEndian.AppendUint16(out, uint16(len(b)))
			out = append(out, b...)
		}
		return out
	}
	q := dnstest.Query("a.example.", dns.TypeA, 1232)
	two := frame(q, dnstest.Query("b.example.", dns.TypeAAAA, 0))
	f.Add(two)
	f.Add(two[:len(two)-3])
	f.Add([]byte{0, 5, 1, 2, 3, 4, 5})
	f.Add([]byte{0, 0})
	f.Add(append(frame(q), 0xff, 0xff, 1))
	resp := q.Copy()
	resp.Response = true
	f.Add(frame(resp, q))
	f.Fuzz(func(t *testing.T, stream []byte) {
		addr := fuzzServer(t)
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(stream); err != nil {
			t.Fatal(err)
		}
		c.(*net.TCPConn).CloseWrite()
		whole := 0
		for rest := stream; len(rest) >= 2; {
			n := int(binary.BigEndian.Uint16(rest))
			if n < 12 || len(rest) < 2+n {
				break
			}
			whole++
			rest = rest[2+n:]
		}
		replies := 0
		for {
			var hdr [2]byte
			if _, err := io.ReadFull(c, hdr[:]); err != nil {
				if err != io.EOF {
					t.Fatalf("after %d replies: %v, want EOF", replies, err)
				}
				break
			}
			b := make([]byte, binary.BigEndian.Uint16(hdr[:]))
			if _, err := io.ReadFull(c, b); err != nil {
				t.Fatalf("reply %d cut: %v", replies+1, err)
			}
			m := new(dns.Msg)
			if err := m.Unpack(b); err != nil || !m.Response {
				t.Fatalf("reply %d: %v (response %v)", replies+1, err, m.Response)
			}
			replies++
		}
		if replies > whole {
			t.Fatalf("%d replies to %d whole messages", replies, whole)
		}
	})
}
