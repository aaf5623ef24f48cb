package forward

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// udpReadSize is the read buffer of UDP replies: queries advertise
// serve.MaxUDPSize, so a well-behaved upstream never sends more; a larger
// datagram is cut, fails to parse and is dropped (the try then times out).
// Larger buffers cost an allocation of their size per read.
const udpReadSize = 4096

// errTimeout is a try that got no valid reply in time.
var errTimeout = errors.New("timeout")

// errCaseMismatch is a reply that matched the query's ID, source and
// question except for the case of the name sent with 0x20.
var errCaseMismatch = errors.New("reply does not echo the query name's case (0x20)")

// CaseFallback is how long an upstream that answered without echoing the
// 0x20 case of a query name is sent names as the client spelt them, before
// 0x20 is tried on it again.
const CaseFallback = time.Hour

// upstream is one resolver and its sockets. UDP sockets are not pooled:
// every UDP query leaves from a new socket (see dialUDP).
type upstream struct {
	f        *Forward
	addr     string
	tcp      *pool
	tlsp     *tlsPool // DNS over TLS: the upstream's only transport
	fails    atomic.Int32
	down     atomic.Bool
	checking atomic.Bool
	// noCaseUntil (Unix nanoseconds) turns 0x20 off for this upstream
	// until then, after a reply that did not echo the case.
	noCaseUntil atomic.Int64
}

// newUpstream returns the upstream addr ("IP:port", or "tls://IP:port"
// with its TLS configuration conf).
func newUpstream(f *Forward, addr string, conf *tls.Config) *upstream {
	u := &upstream{f: f, addr: addr}
	u.tcp = &pool{proto: "tcp", addr: addr, idle: make(chan *pconn, f.poolSize), expire: f.expire, closed: &f.stopped}
	if hostPort, ok := tlsUpstreamAddr(addr); ok {
		u.tlsp = newTLSPool(u, hostPort, conf)
	}
	return u
}

// useCase reports whether this try should randomize the name's case.
func (u *upstream) useCase() bool {
	return u.f.case0x20 && time.Now().UnixNano() >= u.noCaseUntil.Load()
}

// exchange is one try: UDP, then TCP when the reply is truncated, bounded
// by the try timeout and ctx. With 0x20 on, the name goes out in random
// case and the reply must echo it exactly; a reply that echoes it in
// another case (the upstream does not keep case) is dropped, counted, and
// the try is repeated at once with the name as the client spelt it, from a
// new socket and with a new ID; the upstream then gets names unchanged for
// CaseFallback.
func (u *upstream) exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	deadline := time.Now().Add(u.f.tryTO)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	start := time.Now()
	sent := q
	if u.useCase() {
		sent = q.Copy()
		sent.Question[0].Name = randomCase(q.Question[0].Name)
	}
	reply, err := u.tryUDPThenTCP(sent, deadline, sent != q)
	if errors.Is(err, errCaseMismatch) {
		u.f.m.caseMismatch.WithLabelValues(u.addr).Inc()
		u.noCaseUntil.Store(time.Now().Add(CaseFallback).UnixNano())
		sent = q
		reply, err = u.tryUDPThenTCP(sent, deadline, false)
	}
	if err == nil && sent != q {
		restoreCase(reply, sent.Question[0].Name, q.Question[0].Name)
	}
	m := u.f.m
	m.requests.WithLabelValues(u.addr).Inc()
	if err != nil {
		m.duration.WithLabelValues(u.addr, "timeout").Observe(time.Since(start).Seconds())
		u.failed()
		return nil, fmt.Errorf("%s: %w", u.addr, err)
	}
	rc := dns.RcodeToString[reply.Rcode]
	m.responses.WithLabelValues(u.addr, rc).Inc()
	m.duration.WithLabelValues(u.addr, rc).Observe(time.Since(start).Seconds())
	u.fails.Store(0)
	return reply, nil
}

// tryUDPThenTCP sends q over UDP, and over TCP when the reply is
// truncated (only over TCP with ForceTCP); over TLS only to a tls://
// upstream. With exactCase (q's name is in 0x20 case) the reply must spell
// the name exactly as sent.
func (u *upstream) tryUDPThenTCP(q *dns.Msg, deadline time.Time, exactCase bool) (*dns.Msg, error) {
	if u.tlsp != nil {
		return u.tlsp.roundTrip(q, deadline, exactCase)
	}
	if u.f.forceTCP {
		return u.roundTripTCP(q, deadline, exactCase)
	}
	reply, err := u.roundTripUDP(q, deadline, exactCase)
	if err == nil && reply.Truncated {
		reply, err = u.roundTripTCP(q, deadline, exactCase)
	}
	return reply, err
}

// dialUDP opens the socket of one UDP query: a new socket, connected to the
// upstream, so that the kernel picks a random source port from the whole
// ephemeral range (net.ipv4.ip_local_port_range) for each query and
// delivers to it only datagrams whose source is the upstream's address and
// port. A forger must then guess the port as well as the ID (about 2^31
// tries on Linux's default range, instead of 2^16 for a socket reused
// across queries).
func (u *upstream) dialUDP(deadline time.Time) (*dns.Conn, error) {
	d := net.Dialer{Deadline: deadline}
	nc, err := d.Dial("udp", u.addr)
	if err != nil {
		return nil, err
	}
	u.f.m.connMisses.WithLabelValues("udp").Inc()
	return &dns.Conn{Conn: nc, UDPSize: udpReadSize}, nil
}

// roundTripUDP sends q with a fresh random ID from a new socket and reads
// until a reply with that ID and question comes, or deadline; anything
// else that arrives is dropped and counted.
func (u *upstream) roundTripUDP(q *dns.Msg, deadline time.Time, exactCase bool) (*dns.Msg, error) {
	c, err := u.dialUDP(deadline)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	q = q.Copy()
	q.Id = queryID()
	c.SetDeadline(deadline)
	if err := c.WriteMsg(q); err != nil {
		return nil, err
	}
	for {
		reply, err := c.ReadMsg()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, errTimeout
			}
			if !isConnErr(err) {
				// A packet that does not parse: drop it, keep reading.
				u.f.m.staleReplies.Inc()
				continue
			}
			return nil, err
		}
		switch matches(q, reply, exactCase) {
		case matchNo:
			u.f.m.staleReplies.Inc()
			continue
		case matchCaseDiffers:
			return nil, errCaseMismatch
		}
		return reply, nil
	}
}

// roundTripTCP sends q over a pooled TCP connection; when a reused one
// fails other than by a timeout (the upstream closed an idle connection,
// say), it tries once more on a new connection, so that this is not
// counted against the upstream.
func (u *upstream) roundTripTCP(q *dns.Msg, deadline time.Time, exactCase bool) (*dns.Msg, error) {
	reply, reused, err := u.roundTripTCPOnce(q, deadline, exactCase, false)
	if err != nil && reused && !errors.Is(err, errTimeout) && !errors.Is(err, errCaseMismatch) {
		reply, _, err = u.roundTripTCPOnce(q, deadline, exactCase, true)
	}
	return reply, err
}

// roundTripTCPOnce sends q with a fresh random ID on a pooled connection
// (a new one when fresh) and reads its reply. A TCP reply that does not
// match is an error: the stream is out of step and is closed.
func (u *upstream) roundTripTCPOnce(q *dns.Msg, deadline time.Time, exactCase, fresh bool) (_ *dns.Msg, reused bool, _ error) {
	p := u.tcp
	c, reused, err := p.get(deadline, fresh)
	if err != nil {
		return nil, false, err
	}
	if reused {
		u.f.m.connHits.WithLabelValues(p.proto).Inc()
	} else {
		u.f.m.connMisses.WithLabelValues(p.proto).Inc()
	}
	q = q.Copy()
	q.Id = queryID()
	c.SetDeadline(deadline)
	if err := c.WriteMsg(q); err != nil {
		c.Close()
		return nil, reused, err
	}
	reply, err := c.ReadMsg()
	if err != nil {
		c.Close()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, reused, errTimeout
		}
		return nil, reused, err
	}
	switch matches(q, reply, exactCase) {
	case matchNo:
		u.f.m.staleReplies.Inc()
		c.Close()
		return nil, reused, errors.New("reply does not match the query")
	case matchCaseDiffers:
		p.put(c) // the stream is in step
		return nil, reused, errCaseMismatch
	}
	p.put(c)
	return reply, reused, nil
}

func isConnErr(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe)
}

// queryID is a query ID from crypto/rand.
func queryID() uint16 {
	var b [2]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return binary.BigEndian.Uint16(b[:])
}

// Outcomes of matches.
const (
	matchNo          = iota // not a reply to the query
	matchYes                // the reply to the query
	matchCaseDiffers        // the reply, but the name's case was not echoed
)

// matches reports whether reply answers q: same ID, QR set, same type and
// class, and the same name: byte for byte with exactCase (q's name was
// sent in 0x20 case; a reply whose name differs only in case is then
// matchCaseDiffers), else case-insensitively.
func matches(q, reply *dns.Msg, exactCase bool) int {
	if reply.Id != q.Id || !reply.Response || len(reply.Question) != 1 {
		return matchNo
	}
	a, b := q.Question[0], reply.Question[0]
	switch {
	case a.Qtype != b.Qtype || a.Qclass != b.Qclass || !strings.EqualFold(a.Name, b.Name):
		return matchNo
	case exactCase && a.Name != b.Name:
		return matchCaseDiffers
	}
	return matchYes
}

// randomCase returns name with each letter's case from crypto/rand (0x20,
// draft-vixie-dnsext-dns0x20): about one bit more for a forger to guess per
// letter.
func randomCase(name string) string {
	b := []byte(name)
	bits := make([]byte, (len(b)+7)/8)
	rand.Read(bits)
	for i, c := range b {
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') {
			if bits[i/8]>>(i%8)&1 == 1 {
				b[i] = c | 0x20
			} else {
				b[i] = c &^ 0x20
			}
		}
	}
	return string(b)
}

// restoreCase spells the owner names of reply's records that are sent
// (the 0x20 name, exactly) as the client's name orig, so that what is
// answered and cached reads as the client asked.
func restoreCase(reply *dns.Msg, sent, orig string) {
	for _, sec := range [][]dns.RR{reply.Answer, reply.Ns, reply.Extra} {
		for _, rr := range sec {
			if h := rr.Header(); h.Name == sent {
				h.Name = orig
			}
		}
	}
	if len(reply.Question) == 1 && reply.Question[0].Name == sent {
		reply.Question[0].Name = orig
	}
}

// failed counts a failed try and marks the upstream down after MaxFails in
// a row, starting its health check.
func (u *upstream) failed() {
	n := u.fails.Add(1)
	if u.f.maxFails == 0 || int(n) < u.f.maxFails {
		return
	}
	u.down.Store(true)
	if u.f.stopped.Load() || !u.checking.CompareAndSwap(false, true) {
		return
	}
	u.f.wg.Add(1)
	go u.healthCheck()
}

// healthCheck probes the upstream with ". IN NS" every HealthCheck until
// any reply comes (then it is up again) or the forwarder is closed.
func (u *upstream) healthCheck() {
	defer u.f.wg.Done()
	defer u.checking.Store(false)
	t := time.NewTicker(u.f.hcEvery)
	defer t.Stop()
	for {
		select {
		case <-u.f.stop:
			return
		case <-t.C:
		}
		if u.probe() {
			u.fails.Store(0)
			u.down.Store(false)
			return
		}
		u.f.m.hcFailures.WithLabelValues(u.addr).Inc()
	}
}

// probe sends one health-check query on a new socket (over TLS to a
// tls:// upstream, on a pooled connection); any reply counts.
func (u *upstream) probe() bool {
	q := new(dns.Msg)
	q.SetQuestion(".", dns.TypeNS)
	q.Id = queryID()
	timeout := min(u.f.hcEvery, u.f.tryTO)
	if u.tlsp != nil {
		_, err := u.tlsp.roundTrip(q, time.Now().Add(timeout), false)
		return err == nil
	}
	nc, err := net.DialTimeout("udp", u.addr, timeout)
	if err != nil {
		return false
	}
	c := &dns.Conn{Conn: nc, UDPSize: udpReadSize}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if err := c.WriteMsg(q); err != nil {
		return false
	}
	for range 16 {
		reply, err := c.ReadMsg()
		if err != nil {
			if !isConnErr(err) {
				continue // a packet that does not parse
			}
			return false
		}
		if matches(q, reply, false) == matchYes {
			return true
		}
	}
	return false
}

// pconn is a pooled socket.
type pconn struct {
	*dns.Conn
	idleSince time.Time
}

// pool keeps idle sockets to one upstream over one transport.
type pool struct {
	proto, addr string
	idle        chan *pconn
	expire      time.Duration
	closed      *atomic.Bool
}

// get returns an idle socket that has not expired, or dials a new one
// (reused false).
func (p *pool) get(deadline time.Time, fresh bool) (c *pconn, reused bool, err error) {
	for !fresh {
		select {
		case c := <-p.idle:
			if time.Since(c.idleSince) < p.expire {
				return c, true, nil
			}
			c.Close()
			continue
		default:
		}
		break
	}
	d := net.Dialer{Deadline: deadline}
	nc, err := d.Dial(p.proto, p.addr)
	if err != nil {
		return nil, false, err
	}
	return &pconn{Conn: &dns.Conn{Conn: nc, UDPSize: udpReadSize}}, false, nil
}

// put returns a healthy socket to the pool, or closes it when the pool is
// full or closed.
func (p *pool) put(c *pconn) {
	if p.closed.Load() {
		c.Close()
		return
	}
	c.SetDeadline(time.Time{})
	c.idleSince = time.Now()
	select {
	case p.idle <- c:
	default:
		c.Close()
	}
}

// drain closes the idle sockets.
func (p *pool) drain() {
	for {
		select {
		case c := <-p.idle:
			c.Close()
		default:
			return
		}
	}
}
