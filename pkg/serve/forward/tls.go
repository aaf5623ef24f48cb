package forward

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// MaxPipelined is the most queries in flight on one TLS connection; a
// query that finds every connection of its upstream at this bound opens
// another one, up to PoolSize connections, beyond which it waits for room
// within its try.
const MaxPipelined = 64

// errConnClosed is a query lost because its TLS connection closed or
// broke (the upstream closed an idle connection, or closed it mid-query):
// the query is sent once more on a new connection.
var errConnClosed = errors.New("TLS connection closed")

// errPoolFull is a query that found PoolSize TLS connections each with
// MaxPipelined queries in flight (never: the queries wait for a slot
// first).
var errPoolFull = errors.New("every TLS connection busy")

// tlsConfig is the client configuration of the tls:// upstreams of one
// zone: certificates verified against the CA file's certificates (the
// system's pool without one) for the server name (the upstream's IP
// address without one: Go then checks the certificate's IP addresses, as
// CoreDNS does without tls_servername); TLS 1.2 at least.
func tlsConfig(serverName, caFile string, sessions int) (*tls.Config, error) {
	c := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         serverName,
		ClientSessionCache: tls.NewLRUClientSessionCache(sessions),
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("tlsCA: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tlsCA %s: no PEM certificate", caFile)
		}
	}
	return c, nil
}

// tlsPool is the TLS connections to one DNS-over-TLS upstream (RFC 7858):
// at most max, each carrying up to MaxPipelined queries at once (replies
// come in any order and are matched by ID and question); a connection is
// closed after Expire without a query in flight, and dropped when the
// upstream closes it or it breaks. There is no other transport: a tls://
// upstream never gets a query in plain text.
type tlsPool struct {
	u      *upstream
	addr   string // "IP:port"
	conf   *tls.Config
	max    int
	expire time.Duration
	tryTO  time.Duration // bounds a handshake

	// slots holds a token per query in roundTrip: at most PoolSize ×
	// MaxPipelined, so that a connection always has room for one.
	slots chan struct{}

	mu     sync.Mutex
	conns  []*tlsConn
	seq    uint64 // of the last connection opened
	closed bool

	logMu   sync.Mutex
	lastLog time.Time
	lastErr string
}

// tlsConn is one TLS connection and its queries in flight.
type tlsConn struct {
	p     *tlsPool
	seq   uint64        // its place among the pool's connections, from 1
	ready chan struct{} // closed when the handshake has ended: c or err set
	c     *tls.Conn
	err   error
	load  int         // queries using it (p.mu)
	idle  *time.Timer // closes it after Expire at load 0 (p.mu)
	dead  atomic.Bool

	wmu     sync.Mutex // one message written at a time
	mu      sync.Mutex
	pending map[uint16]*tlsWaiter
}

// tlsWaiter is a query waiting for its reply.
type tlsWaiter struct {
	q         *dns.Msg
	exactCase bool
	done      chan tlsResult // buffered: the reader never blocks
}

type tlsResult struct {
	m   *dns.Msg
	err error
}

// newTLSPool returns the pool of the upstream at addr ("IP:port"); without
// a server name in conf, the certificate must carry the IP address.
func newTLSPool(u *upstream, addr string, conf *tls.Config) *tlsPool {
	if conf.ServerName == "" {
		conf = conf.Clone()
		conf.ServerName, _, _ = net.SplitHostPort(addr)
	}
	return &tlsPool{u: u, addr: addr, conf: conf, max: u.f.poolSize, expire: u.f.expire, tryTO: u.f.tryTO,
		slots: make(chan struct{}, u.f.poolSize*MaxPipelined)}
}

// roundTrip sends q and returns its reply, waiting first while PoolSize
// connections have MaxPipelined queries each; when the connection closes or
// breaks before the reply (an idle connection the upstream had closed, a
// close mid-query), q is sent once more on a connection opened after that
// one (the queries that were in flight on it share one), within the same
// deadline.
func (p *tlsPool) roundTrip(q *dns.Msg, deadline time.Time, exactCase bool) (*dns.Msg, error) {
	select {
	case p.slots <- struct{}{}:
	default: // every connection full: wait for room
		timer := time.NewTimer(time.Until(deadline))
		defer timer.Stop()
		select {
		case p.slots <- struct{}{}:
		case <-timer.C:
			return nil, errTimeout
		}
	}
	defer func() { <-p.slots }()
	reply, seq, err := p.exchange(q, deadline, exactCase, 0)
	if errors.Is(err, errConnClosed) && time.Now().Before(deadline) {
		reply, _, err = p.exchange(q, deadline, exactCase, seq)
	}
	return reply, err
}

// exchange sends q with a fresh random ID on a connection opened after
// connection number after (any when 0) that has room, or a new one, and
// waits for its reply. It returns the number of the connection used.
func (p *tlsPool) exchange(q *dns.Msg, deadline time.Time, exactCase bool, after uint64) (*dns.Msg, uint64, error) {
	reply, c, err := p.exchangeOn(q, deadline, exactCase, after)
	var seq uint64
	if c != nil {
		seq = c.seq
	}
	return reply, seq, err
}

func (p *tlsPool) exchangeOn(q *dns.Msg, deadline time.Time, exactCase bool, after uint64) (*dns.Msg, *tlsConn, error) {
	c, reused, err := p.acquire(after)
	if err != nil {
		return nil, nil, err
	}
	defer p.release(c)
	m := p.u.f.m
	if reused {
		m.connHits.WithLabelValues("tls").Inc()
	} else {
		m.connMisses.WithLabelValues("tls").Inc()
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-c.ready:
	case <-timer.C:
		return nil, c, errTimeout
	}
	if c.err != nil {
		return nil, c, c.err
	}
	w := &tlsWaiter{exactCase: exactCase, done: make(chan tlsResult, 1)}
	id, err := c.register(q, w)
	if err != nil {
		return nil, c, err
	}
	buf, err := w.q.Pack()
	if err != nil {
		c.unregister(id)
		return nil, c, err
	}
	if err := c.write(buf, deadline); err != nil {
		c.unregister(id)
		c.kill(err)
		return nil, c, fmt.Errorf("%w: %v", errConnClosed, err)
	}
	select {
	case r := <-w.done:
		return r.m, c, r.err
	case <-timer.C:
		c.unregister(id)
		return nil, c, errTimeout
	}
}

// acquire returns a live connection opened after connection number after
// with fewer than MaxPipelined queries (reused), or else a new one, its
// handshake under way, while the pool has fewer than PoolSize.
func (p *tlsPool) acquire(after uint64) (c *tlsConn, reused bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, false, errors.New("forwarder closed")
	}
	var roomy *tlsConn
	live := 0
	for _, c := range p.conns {
		if c.dead.Load() {
			continue // being removed
		}
		live++
		if c.seq > after && c.load < MaxPipelined && (roomy == nil || c.load > roomy.load) {
			roomy = c // the busiest with room: the fewest connections
		}
	}
	if roomy != nil {
		p.take(roomy)
		return roomy, true, nil
	}
	if live >= p.max {
		return nil, false, errPoolFull
	}
	p.seq++
	c = &tlsConn{p: p, seq: p.seq, ready: make(chan struct{}), pending: map[uint16]*tlsWaiter{}}
	p.conns = append(p.conns, c)
	p.take(c)
	go c.dial()
	return c, false, nil
}

// take counts one more query on c (p.mu held).
func (p *tlsPool) take(c *tlsConn) {
	c.load++
	if c.idle != nil {
		c.idle.Stop()
		c.idle = nil
	}
}

// release counts one query less on c; at none, c is closed after Expire
// (at once when the forwarder is closed).
func (p *tlsPool) release(c *tlsConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c.load--
	if c.load > 0 || c.dead.Load() {
		return
	}
	if p.closed {
		go c.kill(errors.New("forwarder closed"))
		return
	}
	c.idle = time.AfterFunc(p.expire, func() {
		p.mu.Lock()
		idle := c.load == 0
		p.mu.Unlock()
		if idle {
			c.kill(errors.New("idle"))
		}
	})
}

// remove drops c from the pool.
func (p *tlsPool) remove(c *tlsConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.conns {
		if x == c {
			p.conns = append(p.conns[:i], p.conns[i+1:]...)
			break
		}
	}
}

// close closes the idle connections and marks the pool closed: the
// connections in use are closed when their last query ends.
func (p *tlsPool) close() {
	p.mu.Lock()
	p.closed = true
	var idle []*tlsConn
	for _, c := range p.conns {
		if c.load == 0 {
			idle = append(idle, c)
		}
	}
	p.mu.Unlock()
	for _, c := range idle {
		c.kill(errors.New("forwarder closed"))
	}
}

// dial connects and shakes hands, bounded by the try timeout; on success
// it starts the reader.
func (c *tlsConn) dial() {
	p := c.p
	ctx, cancel := context.WithTimeout(context.Background(), p.tryTO)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		c.fail(err)
		return
	}
	tc := tls.Client(nc, p.conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		p.handshakeFailed(err)
		c.fail(fmt.Errorf("TLS handshake: %w", err))
		return
	}
	c.mu.Lock()
	if c.dead.Load() { // closed while shaking hands: idle, or the forwarder closed
		c.mu.Unlock()
		tc.Close()
		c.err = fmt.Errorf("%w: during the handshake", errConnClosed)
		close(c.ready)
		return
	}
	c.c = tc
	c.mu.Unlock()
	close(c.ready)
	go c.read()
}

// fail ends a connection whose dial or handshake failed.
func (c *tlsConn) fail(err error) {
	c.err = err
	c.dead.Store(true)
	c.p.remove(c)
	close(c.ready)
}

// handshakeFailed counts and logs a failed handshake: a certificate that
// does not verify (unknown CA, another name, expired) or any other
// failure. Repeats of the same error are logged once a minute.
func (p *tlsPool) handshakeFailed(err error) {
	reason := "other"
	var ve *tls.CertificateVerificationError
	if errors.As(err, &ve) {
		reason = "certificate"
	}
	p.u.f.m.tlsHandshakeErrors.WithLabelValues(p.u.addr, reason).Inc()
	msg := err.Error()
	now := time.Now()
	p.logMu.Lock()
	log := msg != p.lastErr || now.Sub(p.lastLog) >= time.Minute
	if log {
		p.lastErr, p.lastLog = msg, now
	}
	p.logMu.Unlock()
	if log {
		p.u.f.log.Warn("forward: TLS handshake with upstream failed", "upstream", p.u.addr, "serverName", p.conf.ServerName,
			"reason", reason, "error", err)
	}
}

// register gives q a fresh random ID not in flight on c and records w as
// its waiter.
func (c *tlsConn) register(q *dns.Msg, w *tlsWaiter) (uint16, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead.Load() {
		return 0, fmt.Errorf("%w: before the query was sent", errConnClosed)
	}
	id := queryID()
	for c.pending[id] != nil {
		id = queryID()
	}
	w.q = q.Copy()
	w.q.Id = id
	c.pending[id] = w
	return id, nil
}

func (c *tlsConn) unregister(id uint16) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// write sends one message with its two-byte length (RFC 1035 §4.2.2) in one
// write.
func (c *tlsConn) write(msg []byte, deadline time.Time) error {
	if len(msg) > dns.MaxMsgSize {
		return fmt.Errorf("query of %d bytes", len(msg))
	}
	buf := make([]byte, 2+len(msg))
	binary.BigEndian.PutUint16(buf, uint16(len(msg)))
	copy(buf[2:], msg)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.c.SetWriteDeadline(deadline)
	_, err := c.c.Write(buf)
	return err
}

// read hands each reply to the query it answers: the query in flight with
// its ID whose question it matches (exactly with 0x20). Anything else (a
// late reply to a query that timed out, a wrong ID or question, a message
// that does not parse) is dropped and counted; the stream stays in step as
// long as its framing holds. A read error ends the connection and sends
// its queries in flight to a new one.
func (c *tlsConn) read() {
	var hdr [2]byte
	for {
		if _, err := io.ReadFull(c.c, hdr[:]); err != nil {
			c.kill(err)
			return
		}
		buf := make([]byte, binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.ReadFull(c.c, buf); err != nil {
			c.kill(err)
			return
		}
		m := new(dns.Msg)
		if err := m.Unpack(buf); err != nil {
			c.p.u.f.m.staleReplies.Inc()
			continue
		}
		c.mu.Lock()
		w := c.pending[m.Id]
		var res tlsResult
		if w != nil {
			switch matches(w.q, m, w.exactCase) {
			case matchNo:
				w = nil
			case matchCaseDiffers:
				res.err = errCaseMismatch
			default:
				res.m = m
			}
		}
		if w != nil {
			delete(c.pending, m.Id)
		}
		c.mu.Unlock()
		if w == nil {
			c.p.u.f.m.staleReplies.Inc()
			continue
		}
		w.done <- res
	}
}

// kill closes c, drops it from the pool and fails its queries in flight
// with errConnClosed (they are sent again on a new connection).
func (c *tlsConn) kill(cause error) {
	if c.dead.Swap(true) {
		return
	}
	c.p.remove(c)
	c.mu.Lock()
	if c.c != nil {
		c.c.Close()
	}
	pending := c.pending
	c.pending = map[uint16]*tlsWaiter{}
	c.mu.Unlock()
	if errors.Is(cause, io.EOF) {
		cause = errors.New("closed by the upstream")
	}
	for _, w := range pending {
		w.done <- tlsResult{err: fmt.Errorf("%w: %v", errConnClosed, cause)}
	}
}

// tlsUpstreamAddr splits "tls://IP:port" into "IP:port" and whether it is
// a tls:// address.
func tlsUpstreamAddr(addr string) (string, bool) {
	return strings.CutPrefix(addr, tlsScheme)
}

// discardLogger is the logger of a forwarder given none.
var discardLogger = slog.New(slog.DiscardHandler)
