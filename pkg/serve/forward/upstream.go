package forward

import (
	"context"
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

// upstream is one resolver and its sockets.
type upstream struct {
	f        *Forward
	addr     string
	udp, tcp *pool
	fails    atomic.Int32
	down     atomic.Bool
	checking atomic.Bool
}

func newUpstream(f *Forward, addr string) *upstream {
	u := &upstream{f: f, addr: addr}
	u.udp = &pool{proto: "udp", addr: addr, idle: make(chan *pconn, f.poolSize), expire: f.expire, closed: &f.stopped}
	u.tcp = &pool{proto: "tcp", addr: addr, idle: make(chan *pconn, f.poolSize), expire: f.expire, closed: &f.stopped}
	return u
}

// exchange is one try: UDP, then TCP when the reply is truncated, bounded
// by the try timeout and ctx.
func (u *upstream) exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	deadline := time.Now().Add(u.f.tryTO)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	start := time.Now()
	reply, err := u.roundTrip(u.udp, q, deadline)
	if err == nil && reply.Truncated {
		reply, err = u.roundTrip(u.tcp, q, deadline)
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

// roundTrip sends q on a pooled socket; when a reused socket fails other
// than by a timeout (the upstream closed an idle TCP connection, say), it
// tries once more on a new socket, so that this is not counted against the
// upstream.
func (u *upstream) roundTrip(p *pool, q *dns.Msg, deadline time.Time) (*dns.Msg, error) {
	reply, reused, err := u.roundTripOnce(p, q, deadline, false)
	if err != nil && reused && !errors.Is(err, errTimeout) {
		reply, _, err = u.roundTripOnce(p, q, deadline, true)
	}
	return reply, err
}

// roundTripOnce sends q with a fresh random ID on a pooled socket (a new
// one when fresh) and reads until a reply with that ID and question comes,
// or deadline.
func (u *upstream) roundTripOnce(p *pool, q *dns.Msg, deadline time.Time, fresh bool) (_ *dns.Msg, reused bool, _ error) {
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
	q.Id = dns.Id()
	c.SetDeadline(deadline)
	if err := c.WriteMsg(q); err != nil {
		c.Close()
		return nil, reused, err
	}
	for {
		reply, err := c.ReadMsg()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.Close()
				return nil, reused, errTimeout
			}
			if p.proto == "udp" && !isConnErr(err) {
				// A packet that does not parse: drop it, keep reading.
				u.f.m.staleReplies.Inc()
				continue
			}
			c.Close()
			return nil, reused, err
		}
		if !matches(q, reply) {
			u.f.m.staleReplies.Inc()
			if p.proto == "tcp" {
				c.Close() // a TCP stream out of step is not reused
				return nil, reused, errors.New("reply does not match the query")
			}
			continue
		}
		p.put(c)
		return reply, reused, nil
	}
}

func isConnErr(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe)
}

// matches reports whether reply answers q: same ID, QR set, same question
// (name compared case-insensitively).
func matches(q, reply *dns.Msg) bool {
	if reply.Id != q.Id || !reply.Response || len(reply.Question) != 1 {
		return false
	}
	a, b := q.Question[0], reply.Question[0]
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
}

// failed counts a failed try and marks the upstream down after MaxFails in
// a row, starting its health check.
func (u *upstream) failed() {
	n := u.fails.Add(1)
	if u.f.maxFails < 0 || int(n) < u.f.maxFails {
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

// probe sends one health-check query on a new socket; any reply counts.
func (u *upstream) probe() bool {
	q := new(dns.Msg)
	q.SetQuestion(".", dns.TypeNS)
	q.Id = dns.Id()
	timeout := min(u.f.hcEvery, u.f.tryTO)
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
		if matches(q, reply) {
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
