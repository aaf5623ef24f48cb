package serve

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// UDP serving.
//
// miekg/dns's Server starts a goroutine for every UDP packet. That goroutine
// starts with a small stack which the handler chain then grows, so every
// query pays for a stack copy (runtime.newstack was ~18% of dnsd's CPU under
// dnsperf). udpLoop instead keeps long-lived workers per socket: each reads
// a packet, answers it and reads the next, on a stack that stays grown and
// with its buffers reused.
//
// A handler may block (a forwarded query waits for its upstream), so the
// workers grow on demand: when the last idle worker of a socket takes a
// packet, it starts another one (up to maxUDPWorkers); after the burst, the
// workers beyond baseUDPWorkers retire once enough others are idle.
const (
	// baseUDPWorkers is enough that answering from memory (cluster records,
	// the cache) rarely finds every worker busy: each extra worker started
	// and retired costs an allocation.
	baseUDPWorkers = 16
	maxUDPWorkers  = 4096
	// udpReadSize is the largest query read, as miekg/dns's server reads
	// (dns.DefaultMsgSize); longer datagrams are cut and get FORMERR.
	udpReadSize = dns.DefaultMsgSize
)

// udpBuffers are the read buffers of workers, kept when workers retire.
var udpBuffers = sync.Pool{New: func() any { return new(udpBuffer) }}

type udpBuffer struct {
	msg [udpReadSize]byte
	oob [128]byte // more than oobSize
}

// oobSize fits the IPv4 or IPv6 packet-info control message that tells which
// local address a query was sent to.
var oobSize = max(len(ipv4.NewControlMessage(ipv4.FlagDst|ipv4.FlagInterface)),
	len(ipv6.NewControlMessage(ipv6.FlagDst|ipv6.FlagInterface)))

// udpLoop serves one UDP socket.
type udpLoop struct {
	conn    *net.UDPConn
	handler dns.Handler

	idle    atomic.Int32 // workers blocked in a read
	workers atomic.Int32 // workers running
	wg      sync.WaitGroup
	closing atomic.Bool
	errOnce sync.Once
	done    chan error // the loop's end: nil after close, else the read error
}

func newUDPLoop(conn *net.UDPConn, h dns.Handler) *udpLoop {
	// Replies must leave from the address the query came to (a wildcard
	// listener on a host with several addresses): ask for the packet info.
	// Failing that (neither family supports it) replies use the default
	// source address, as miekg/dns does.
	_ = ipv4.NewPacketConn(conn).SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true)
	_ = ipv6.NewPacketConn(conn).SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true)
	return &udpLoop{conn: conn, handler: h, done: make(chan error, 1)}
}

// start runs the base workers.
func (l *udpLoop) start() {
	for range baseUDPWorkers {
		l.spawn()
	}
}

func (l *udpLoop) spawn() {
	l.workers.Add(1)
	l.wg.Add(1)
	go l.work()
}

// finish records the loop's end once.
func (l *udpLoop) finish(err error) {
	l.errOnce.Do(func() { l.done <- err })
}

func (l *udpLoop) work() {
	defer l.wg.Done()
	b := udpBuffers.Get().(*udpBuffer)
	defer udpBuffers.Put(b)
	buf, oob := b.msg[:], b.oob[:oobSize]
	for {
		l.idle.Add(1)
		n, oobn, _, raddr, err := l.conn.ReadMsgUDP(buf, oob)
		idle := l.idle.Add(-1)
		if err != nil {
			l.workers.Add(-1)
			if l.closing.Load() || errors.Is(err, net.ErrClosed) {
				l.finish(nil)
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				l.workers.Add(1)
				continue
			}
			l.finish(err)
			return
		}
		if idle == 0 && l.workers.Load() < maxUDPWorkers {
			l.spawn() // nobody left reading while this packet is answered
		}
		l.serve(buf[:n], oob[:oobn], raddr)
		if l.retire() {
			return
		}
	}
}

// retire ends a worker beyond the base count when enough others are idle.
func (l *udpLoop) retire() bool {
	for {
		w := l.workers.Load()
		if w <= baseUDPWorkers || l.idle.Load() < baseUDPWorkers {
			return false
		}
		if l.workers.CompareAndSwap(w, w-1) {
			return true
		}
	}
}

// serve answers one datagram as miekg/dns's server does: a datagram without
// a whole header, or a response, is dropped (any reply could be used for
// amplification or loops); a header that the default accept function
// rejects, or a message that does not parse, gets FORMERR (NOTIMP for an
// unknown opcode) without reaching the handler.
func (l *udpLoop) serve(m, oob []byte, raddr *net.UDPAddr) {
	if len(m) < 12 {
		return
	}
	w := &udpWriter{conn: l.conn, raddr: raddr, oob: replyOOB(oob)}
	dispatch(l.handler, w, m)
}

// close stops reading (a read deadline in the past wakes every worker);
// the socket stays open so that the queries being answered can still send
// their replies. wait returns once every worker is gone or ctx ends, and
// then closes the socket. (Closing it at once lost the reply of every query
// in flight: a node-local instance leaving turned each into a client retry.)
func (l *udpLoop) close() error {
	l.closing.Store(true)
	return l.conn.SetReadDeadline(time.Now())
}

func (l *udpLoop) wait(ctx context.Context) error {
	err := waitGroup(ctx, &l.wg)
	if cerr := l.conn.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		err = errors.Join(err, cerr)
	}
	return err
}

// waitGroup waits for wg, or until ctx ends: then it returns ctx's error
// (wg's goroutines are not waited for).
func waitGroup(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// replyOOB turns the packet info of a query into the control message that
// sends the reply from the address the query was sent to; nil without one.
func replyOOB(oob []byte) []byte {
	if len(oob) == 0 {
		return nil
	}
	var cm6 ipv6.ControlMessage
	if cm6.Parse(oob) == nil && cm6.Dst != nil {
		if cm6.Dst.To4() == nil {
			return (&ipv6.ControlMessage{Src: cm6.Dst}).Marshal()
		}
		return (&ipv4.ControlMessage{Src: cm6.Dst}).Marshal()
	}
	var cm4 ipv4.ControlMessage
	if cm4.Parse(oob) == nil && cm4.Dst != nil {
		return (&ipv4.ControlMessage{Src: cm4.Dst}).Marshal()
	}
	return nil
}

// udpWriter is the dns.ResponseWriter of one UDP query.
type udpWriter struct {
	conn  *net.UDPConn
	raddr *net.UDPAddr
	oob   []byte
}

func (w *udpWriter) LocalAddr() net.Addr  { return w.conn.LocalAddr() }
func (w *udpWriter) RemoteAddr() net.Addr { return w.raddr }

func (w *udpWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (w *udpWriter) Write(b []byte) (int, error) {
	n, _, err := w.conn.WriteMsgUDP(b, w.oob, w.raddr)
	return n, err
}

func (w *udpWriter) Close() error        { return nil }
func (w *udpWriter) TsigStatus() error   { return nil }
func (w *udpWriter) TsigTimersOnly(bool) {}
func (w *udpWriter) Hijack()             {}
