package serve

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// TCP serving.
//
// miekg/dns's Server serves one query at a time per connection, closes a
// connection after 128 queries with the rest unanswered, declares a
// WriteTimeout it never applies and accepts without limit. tcpLoop is dnsd's
// own loop (miekg/dns still packs and parses the messages), written as a
// BIND or unbound reviewer expects (RFC 7766):
//
//   - Pipelining: every query read from a connection is answered in its own
//     goroutine, and each reply is written as soon as it is ready, so a
//     cluster answer never waits behind a slow forwarded one. At most
//     tcpPipeline queries of one connection are in flight; beyond that the
//     loop stops reading the connection (TCP's own flow control pushes back)
//     instead of dropping anything. There is no limit on the queries of a
//     connection's lifetime.
//   - Deadlines: a connection with no query in flight is closed after
//     TCPIdleTimeout without a new query (also when a query is sent only in
//     part); every write must complete within TCPWriteTimeout, else the
//     connection is closed, so a client that never reads pins neither
//     memory (socket buffers, goroutines) nor shutdown.
//   - A cap, MaxTCPConns: a new connection over the cap closes the
//     connection idle the longest (no query in flight); when none is idle,
//     the new one is closed at once. Accept errors (EMFILE at the fd limit)
//     back off, from 5 ms doubling to 1 s, after closing the oldest idle
//     connection at once (one at a time), instead of spinning.
//   - A clean close: the server closes a connection only once each query it
//     read is answered, by shutting down its write side (FIN) and reading
//     what the client still sends for a moment, never with unread data (a
//     reset that loses replies in flight), also after a length too short
//     for a DNS message. Only a write timeout or Shutdown's context ending
//     close at once.
const (
	// DefaultTCPIdleTimeout is RFC 7766 §6.2.3's "order of seconds":
	// CoreDNS's 10 s.
	DefaultTCPIdleTimeout = 10 * time.Second
	// DefaultTCPWriteTimeout is miekg/dns's declared default.
	DefaultTCPWriteTimeout = 2 * time.Second
	// DefaultMaxTCPConns bounds the connections (and their file
	// descriptors and buffers).
	DefaultMaxTCPConns = 1024
	// tcpPipeline is the most queries of one connection in flight.
	tcpPipeline = 64
	// tcpLinger is how long a closing connection's unread input is
	// drained after the FIN.
	tcpLinger = time.Second
	// Accept backoff bounds.
	minAcceptBackoff = 5 * time.Millisecond
	maxAcceptBackoff = time.Second
)

// tcpLoop serves one TCP listener.
type tcpLoop struct {
	ln       net.Listener
	handler  dns.Handler
	idle     time.Duration
	write    time.Duration
	maxConns int

	mu      sync.Mutex
	conns   map[*tcpConn]struct{}
	closing bool
	wg      sync.WaitGroup // the accept loop and every connection
	done    chan error     // the loop's end: nil after close, else the accept error
	errOnce sync.Once
	count   atomic.Int32 // len(conns), for tests and metrics
}

func newTCPLoop(ln net.Listener, h dns.Handler, o Options) *tcpLoop {
	return &tcpLoop{ln: ln, handler: h, idle: o.TCPIdleTimeout, write: o.TCPWriteTimeout, maxConns: o.MaxTCPConns,
		conns: map[*tcpConn]struct{}{}, done: make(chan error, 1)}
}

func (l *tcpLoop) finish(err error) { l.errOnce.Do(func() { l.done <- err }) }

func (l *tcpLoop) start() {
	l.wg.Add(1)
	go l.accept()
}

func (l *tcpLoop) accept() {
	defer l.wg.Done()
	var backoff time.Duration
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if l.isClosing() || errors.Is(err, net.ErrClosed) {
				l.finish(nil)
				return
			}
			if !temporaryAcceptError(err) {
				l.finish(err)
				return
			}
			// Out of descriptors (or memory): free one if a connection
			// is idle, and wait before trying again.
			l.closeOldestIdle()
			backoff = min(max(2*backoff, minAcceptBackoff), maxAcceptBackoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		c := &tcpConn{l: l, nc: nc, sem: make(chan struct{}, tcpPipeline), lastActive: time.Now()}
		if !l.add(c) {
			nc.Close() // over the cap and nothing idle to close
			continue
		}
		go c.serve()
	}
}

// temporaryAcceptError reports whether accept may succeed later: the
// process or system is out of descriptors or memory, or a connection was
// aborted before it was accepted.
func temporaryAcceptError(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.EINTR, syscall.EAGAIN} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (l *tcpLoop) isClosing() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closing
}

// add registers c, closing the oldest idle connection when at the cap; it
// reports false when c must be refused (closing, or at the cap with every
// connection busy).
func (l *tcpLoop) add(c *tcpConn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return false
	}
	if l.maxConns > 0 && len(l.conns) >= l.maxConns {
		old := l.oldestIdleLocked()
		if old == nil {
			return false
		}
		old.stopReading()
		// old leaves conns when its goroutine ends; until then the cap
		// may be exceeded by the connections being closed.
		delete(l.conns, old)
		l.count.Add(-1)
		old.evicted = true
	}
	l.conns[c] = struct{}{}
	l.count.Add(1)
	l.wg.Add(1)
	return true
}

func (l *tcpLoop) remove(c *tcpConn) {
	l.mu.Lock()
	if !c.evicted {
		delete(l.conns, c)
		l.count.Add(-1)
	}
	l.mu.Unlock()
	l.wg.Done()
}

// oldestIdleLocked returns the connection without queries in flight that
// was active the longest ago, or nil.
func (l *tcpLoop) oldestIdleLocked() *tcpConn {
	var old *tcpConn
	for c := range l.conns {
		if c.inflight == 0 && !c.stopping && (old == nil || c.lastActive.Before(old.lastActive)) {
			old = c
		}
	}
	return old
}

// closeOldestIdle frees a descriptor for accept: the connection idle the
// longest is closed at once (no linger: the descriptor is what is short).
// While an earlier one is still closing, none more is.
func (l *tcpLoop) closeOldestIdle() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		if c.abrupt {
			return
		}
	}
	if c := l.oldestIdleLocked(); c != nil {
		c.abrupt = true
		c.stopReading()
	}
}

// close stops accepting and makes every connection stop reading: each
// closes once its queries in flight are answered. wait returns once every
// connection is gone or ctx ends, then closes the rest at once.
func (l *tcpLoop) close() error {
	l.mu.Lock()
	l.closing = true
	for c := range l.conns {
		c.stopReading()
	}
	l.mu.Unlock()
	return l.ln.Close()
}

func (l *tcpLoop) wait(ctx context.Context) error {
	err := waitGroup(ctx, &l.wg)
	if err == nil {
		return nil
	}
	// Close the rest at once; a handler still running finds its
	// connection closed when it writes (its goroutine is not waited
	// for: a handler that never returns must not hold up Shutdown).
	l.mu.Lock()
	for c := range l.conns {
		c.broken.Store(true)
		c.nc.Close()
	}
	l.mu.Unlock()
	return err
}

// tcpConn is one client connection.
type tcpConn struct {
	l  *tcpLoop
	nc net.Conn

	sem chan struct{} // queries in flight, at most tcpPipeline
	wg  sync.WaitGroup

	wmu    sync.Mutex // one reply written at a time
	broken atomic.Bool

	// Under l.mu.
	inflight   int
	lastActive time.Time
	stopping   bool
	evicted    bool
	abrupt     bool // closed without linger (descriptor shortage)
}

// stopReading makes the read loop end (its pending read fails at once);
// the caller holds l.mu.
func (c *tcpConn) stopReading() {
	c.stopping = true
	c.nc.SetReadDeadline(time.Now())
}

func (c *tcpConn) serve() {
	defer c.l.remove(c)
	c.readLoop()
	c.wg.Wait() // every query read gets its reply
	c.closeGracefully()
}

// readLoop reads queries until the client closes, the idle timeout, an
// error, or stopReading.
func (c *tcpConn) readLoop() {
	var hdr [2]byte
	for {
		// The idle timeout covers a whole message: a client that sends
		// part of one and stalls is closed as idle. Set under the lock,
		// so that stopReading's deadline is never overwritten.
		c.l.mu.Lock()
		if c.stopping {
			c.l.mu.Unlock()
			return
		}
		c.nc.SetReadDeadline(time.Now().Add(c.l.idle))
		c.l.mu.Unlock()
		if _, err := io.ReadFull(c.nc, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(hdr[:]))
		if n < 12 {
			// Not a DNS message: the stream cannot be trusted further.
			// Answer what was read before it, then close cleanly (a
			// reset would discard those replies at the client).
			return
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(c.nc, buf); err != nil {
			return
		}
		select {
		case c.sem <- struct{}{}:
		default:
			// tcpPipeline queries in flight: stop reading until one
			// finishes (the client's sends then block in TCP).
			c.sem <- struct{}{}
		}
		c.l.mu.Lock()
		c.inflight++
		c.lastActive = time.Now()
		c.l.mu.Unlock()
		c.wg.Add(1)
		go c.answer(buf)
	}
}

// answer serves one query through dispatch, as the UDP loop does: a message without a whole
// header or a response is dropped, one the accept function rejects or that
// does not parse gets FORMERR (NOTIMP for an unknown opcode).
func (c *tcpConn) answer(m []byte) {
	defer func() {
		c.l.mu.Lock()
		c.inflight--
		c.lastActive = time.Now()
		c.l.mu.Unlock()
		<-c.sem
		c.wg.Done()
	}()
	w := &tcpWriter{c: c}
	dispatch(c.l.handler, w, m, nil)
}

// writeFrame writes one length-prefixed message within the write timeout;
// a write that fails closes the connection at once (the client is not
// reading, or is gone).
func (c *tcpConn) writeFrame(b []byte) error {
	if len(b) > dns.MaxMsgSize {
		return errors.New("reply longer than 65535 bytes")
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.broken.Load() {
		return net.ErrClosed
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.l.write))
	frame := make([]byte, 2+len(b))
	binary.BigEndian.PutUint16(frame, uint16(len(b)))
	copy(frame[2:], b)
	if _, err := c.nc.Write(frame); err != nil {
		c.broken.Store(true)
		c.nc.Close() // also ends the read loop
		return err
	}
	return nil
}

// closeGracefully closes a connection whose queries are all answered: FIN
// first, then what the client still sends is read and dropped for up to
// tcpLinger, so that the close is not a reset. A broken connection is
// closed at once.
func (c *tcpConn) closeGracefully() {
	c.l.mu.Lock()
	abrupt := c.abrupt
	c.l.mu.Unlock()
	if c.broken.Load() || abrupt {
		c.nc.Close()
		return
	}
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		c.nc.SetReadDeadline(time.Now().Add(tcpLinger))
		io.Copy(io.Discard, io.LimitReader(c.nc, 1<<20))
	}
	c.nc.Close()
}

// tcpWriter is the dns.ResponseWriter of one TCP query.
type tcpWriter struct{ c *tcpConn }

func (w *tcpWriter) LocalAddr() net.Addr  { return w.c.nc.LocalAddr() }
func (w *tcpWriter) RemoteAddr() net.Addr { return w.c.nc.RemoteAddr() }

func (w *tcpWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	return w.c.writeFrame(b)
}

func (w *tcpWriter) Write(b []byte) (int, error) {
	if err := w.c.writeFrame(b); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Close closes the connection after the replies already written (a handler
// that wants the client gone, as miekg/dns's Close does).
func (w *tcpWriter) Close() error {
	w.c.l.mu.Lock()
	w.c.stopReading()
	w.c.l.mu.Unlock()
	return nil
}

func (w *tcpWriter) TsigStatus() error   { return nil }
func (w *tcpWriter) TsigTimersOnly(bool) {}
func (w *tcpWriter) Hijack()             {}
