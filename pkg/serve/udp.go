package serve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
// Per query, the costs that matter are wake-ups and system calls, not the
// handlers: at a fixed rate below saturation most of dnsd's CPU went to one
// recvmsg and one sendmsg per packet, to handing each packet from goroutine
// to goroutine, and to the runtime waking up for each. So each socket has
// one reading worker that reads every datagram that is ready at once
// (recvmmsg, through golang.org/x/net's ReadBatch), answers them inline on
// its own goroutine (its stack stays grown and its buffers are reused: a
// goroutine per packet, as miekg/dns's server starts, paid a stack copy per
// query), and sends the replies together (sendmmsg, WriteBatch) before it
// reads again. A reply never waits for a batch to fill: the worker reads
// what is there, answers it and sends it; one query on an idle socket is a
// batch of one.
//
// A handler may block (a forwarded query waits for its upstream), and the
// datagrams read with it must not wait behind it. A handler that knows it
// is about to wait says so (Blocking): its worker then sends the replies it
// has, and hands the rest of its batch and the socket to another worker
// (an idle one, or a new one up to maxUDPWorkers) before it waits; after
// the handler returns, its reply goes out on its own and the worker waits
// idle for another handoff (at most baseUDPWorkers wait; the others
// retire). A handler that blocks without saying so is caught by a watcher:
// a worker that answers nothing for stallCheck to 2*stallCheck loses its
// batch the same way.
const (
	// udpBatchSize is the most datagrams read, and replies sent, in one
	// system call.
	udpBatchSize = 16
	// baseUDPWorkers is the most idle workers a socket keeps for handoffs.
	baseUDPWorkers = 16
	maxUDPWorkers  = 4096
	// udpReadSize is the largest query read, as miekg/dns's server reads
	// (dns.DefaultMsgSize); longer datagrams are cut and get FORMERR.
	udpReadSize = dns.DefaultMsgSize
	// stallCheck is how often the watcher looks for a worker stuck in a
	// handler that did not call Blocking.
	stallCheck = time.Millisecond
)

// oobSize fits the IPv4 or IPv6 packet-info control message that tells which
// local address a query was sent to.
var oobSize = max(len(ipv4.NewControlMessage(ipv4.FlagDst|ipv4.FlagInterface)),
	len(ipv6.NewControlMessage(ipv6.FlagDst|ipv6.FlagInterface)))

// batchConn reads and writes datagrams in batches: an ipv4.PacketConn or
// an ipv6.PacketConn (their messages are the same type).
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// udpBatch is the datagrams one read returned and the replies to them not
// sent yet. One worker at a time owns it.
type udpBatch struct {
	in   []ipv4.Message
	n    int          // datagrams read
	next atomic.Int32 // the next datagram to answer
	out  []ipv4.Message
	outs int // replies waiting in out
	bufs [][]byte
	// The peers of in (on Linux, where the reads fill them in place) and
	// of out: no address is allocated per datagram.
	inAddrs, outAddrs [udpBatchSize]peerAddr
	// rin and rout are the system calls' view of in and out (Linux).
	rin, rout rawBatch
}

// peerAddr is a *net.UDPAddr with room for its IP: set fills it without
// allocating.
type peerAddr struct {
	net.UDPAddr
	ip [16]byte
}

// set makes a a copy of u and returns it as a *net.UDPAddr.
func (a *peerAddr) set(u *net.UDPAddr) *net.UDPAddr {
	a.IP = append(a.ip[:0], u.IP...)
	a.Port, a.Zone = u.Port, u.Zone
	return &a.UDPAddr
}

var udpBatches = sync.Pool{New: func() any {
	b := &udpBatch{in: make([]ipv4.Message, udpBatchSize), out: make([]ipv4.Message, udpBatchSize), bufs: make([][]byte, udpBatchSize)}
	for i := range b.in {
		b.in[i].Buffers = [][]byte{make([]byte, udpReadSize)}
		b.in[i].OOB = make([]byte, oobSize)
		b.out[i].Buffers = make([][]byte, 1)
		b.bufs[i] = make([]byte, MaxUDPSize)
	}
	return b
}}

// udpWorker is a goroutine answering the datagrams of one batch at a time.
type udpWorker struct {
	l *udpLoop
	b *udpBatch
	// detached, set under l.mu, says that the worker lost its batch while
	// answering (a handoff): its reply goes out on its own.
	detached atomic.Bool
	// cur is the query in the handler chain (its datagram parsed), nil
	// between queries.
	cur atomic.Pointer[udpWriter]
	// uw is the writer of the worker's query, reused for each: a handler
	// does not keep its writer once it has returned, and the worker
	// answers its next datagram only after that.
	uw udpWriter
	// req is the worker's query, reused the same way.
	req dns.Msg
	// The reply control message of the last query's local address: one
	// listen address gives every query the same.
	oobKey, oobReply []byte
}

// udpLoop serves one UDP socket.
type udpLoop struct {
	conn    *net.UDPConn
	stall   time.Duration // the watcher's period; 0 turns it off (tests)
	io      batchIO
	handler dns.Handler
	onError func(error)

	mu       sync.Mutex
	active   *udpWorker    // the worker answering a batch; nil while it reads
	progress atomic.Uint64 // datagrams taken, for the watcher
	watching atomic.Bool   // the watcher is running (else parked on wake)
	wake     chan struct{}
	handoffs chan *udpBatch // to idle workers
	stop     chan struct{}
	stopOnce sync.Once

	idle    atomic.Int32 // workers waiting for a handoff
	workers atomic.Int32 // workers running
	wg      sync.WaitGroup
	closing atomic.Bool
	errOnce sync.Once
	done    chan error // the loop's end: nil after close, else the read error
}

// newUDPLoop serves conn with serve, which is called with a context that
// carries the query's Blocking hook; onError (may be nil) gets the errors
// of replies sent in a batch, which no handler sees.
func newUDPLoop(conn *net.UDPConn, serve func(context.Context, dns.ResponseWriter, *dns.Msg), onError func(error)) (*udpLoop, error) {
	// Replies must leave from the address the query came to (a wildcard
	// listener on a host with several addresses): ask for the packet info.
	// Failing that (neither family supports it) replies use the default
	// source address, as miekg/dns does.
	p4, p6 := ipv4.NewPacketConn(conn), ipv6.NewPacketConn(conn)
	_ = p4.SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true)
	_ = p6.SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true)
	var bc batchConn = p4
	if a, ok := conn.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() == nil {
		bc = p6
	}
	io, err := newBatchIO(conn, bc)
	if err != nil {
		return nil, fmt.Errorf("udp %s: %w", conn.LocalAddr(), err)
	}
	return &udpLoop{conn: conn, stall: stallCheck, io: io, handler: udpHandler(serve), onError: onError,
		done: make(chan error, 1), wake: make(chan struct{}, 1), handoffs: make(chan *udpBatch), stop: make(chan struct{})}, nil
}

// udpHandler calls its function with the writer's context.
type udpHandler func(context.Context, dns.ResponseWriter, *dns.Msg)

func (h udpHandler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	uw := w.(*udpWriter)
	// The datagram is parsed: from here on the worker does not read its
	// batch, which a handoff may give to another worker.
	uw.worker.cur.Store(uw)
	h((*udpContext)(uw), w, r)
}

// start runs the reading worker and the watcher.
func (l *udpLoop) start() {
	l.wg.Add(1)
	l.workers.Add(1)
	go l.work(nil)
	if l.stall > 0 {
		l.wg.Add(1)
		go l.watch()
	}
}

// finish records the loop's end once.
func (l *udpLoop) finish(err error) {
	l.errOnce.Do(func() { l.done <- err })
}

// work answers batches (b first, when not nil) until it loses one to a
// handoff; then it waits for a handoff of its own, or retires.
func (l *udpLoop) work(b *udpBatch) {
	defer l.wg.Done()
	defer l.workers.Add(-1)
	w := &udpWorker{l: l}
	for {
		if b == nil {
			b = udpBatches.Get().(*udpBatch)
		}
		if !l.answer(w, b) {
			return // reading ended
		}
		// Detached: the batch is another worker's now.
		if b = l.await(); b == nil {
			return
		}
	}
}

// await waits for a handoff; nil when the worker should retire.
func (l *udpLoop) await() *udpBatch {
	if l.idle.Add(1) > baseUDPWorkers {
		l.idle.Add(-1)
		return nil
	}
	defer l.idle.Add(-1)
	select {
	case b := <-l.handoffs:
		return b
	case <-l.stop:
		return nil
	}
}

// answer answers what is left of b, then reads and answers batches into b
// until reading ends (false: b went back to the pool) or the worker is
// detached (true: b is another worker's).
func (l *udpLoop) answer(w *udpWorker, b *udpBatch) bool {
	w.b = b
	w.detached.Store(false)
	for {
		if int(b.next.Load()) >= b.n {
			n, err := l.io.read(b)
			if err != nil {
				b.n = 0
				if l.closing.Load() || errors.Is(err, net.ErrClosed) {
					udpBatches.Put(b)
					l.finish(nil)
					return false
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					continue
				}
				udpBatches.Put(b)
				l.finish(err)
				return false
			}
			b.n = n
			b.next.Store(0)
		}
		l.mu.Lock()
		l.active = w
		l.mu.Unlock()
		if !l.watching.Load() && l.watching.CompareAndSwap(false, true) {
			l.wake <- struct{}{}
		}
		for {
			i := int(b.next.Add(1)) - 1
			if i >= b.n {
				break
			}
			l.progress.Add(1)
			l.serve(w, &b.in[i])
			if w.detached.Load() {
				return true
			}
		}
		l.mu.Lock()
		if w.detached.Load() {
			l.mu.Unlock()
			return true
		}
		l.active = nil
		l.flush(b)
		l.mu.Unlock()
	}
}

// serve answers one datagram as miekg/dns's server does: a datagram without
// a whole header, or a response, is dropped (any reply could be used for
// amplification or loops); a header that the default accept function
// rejects, or a message that does not parse, gets FORMERR (NOTIMP for an
// unknown opcode) without reaching the handler.
func (l *udpLoop) serve(w *udpWorker, m *ipv4.Message) {
	raddr, ok := m.Addr.(*net.UDPAddr)
	if m.N < 12 || !ok || raddr == nil {
		return
	}
	// The peer is copied: after a handoff, the batch's datagrams (and
	// their addresses) are overwritten by the next read while this
	// worker's handler may still be answering.
	uw := &w.uw
	uw.addr.set(raddr)
	uw.worker, uw.oob = w, w.replyOOB(m.OOB[:m.NN])
	dispatch(l.handler, uw, m.Buffers[0][:m.N], &w.req)
	w.cur.Store(nil)
}

// replyOOB is replyOOB(oob), remembered for the last oob.
func (w *udpWorker) replyOOB(oob []byte) []byte {
	if w.oobKey == nil || !bytes.Equal(oob, w.oobKey) {
		w.oobKey, w.oobReply = append(w.oobKey[:0], oob...), replyOOB(oob)
	}
	return w.oobReply
}

// detach hands w's batch and the socket to another worker (under l.mu,
// w the active worker): the replies written so far are sent, and the
// datagrams not answered yet are the other worker's. It reports false
// when no worker can be had (maxUDPWorkers): w keeps its batch.
func (l *udpLoop) detach(w *udpWorker) bool {
	if l.workers.Load() >= maxUDPWorkers && l.idle.Load() == 0 {
		return false
	}
	l.flush(w.b)
	w.detached.Store(true)
	l.active = nil
	select {
	case l.handoffs <- w.b:
	default: // (above maxUDPWorkers only when an idle worker was not at its receive yet)
		l.workers.Add(1)
		l.wg.Add(1)
		go l.work(w.b)
	}
	return true
}

// watch detaches a worker that answers nothing for l.stall to 2*l.stall (a handler that blocks without calling Blocking). It sleeps
// while no batch is being answered.
func (l *udpLoop) watch() {
	defer l.wg.Done()
	t := time.NewTimer(l.stall)
	t.Stop()
	for {
		select {
		case <-l.wake:
		case <-l.stop:
			return
		}
		last := l.progress.Load()
		for watching := true; watching; {
			t.Reset(l.stall)
			select {
			case <-t.C:
			case <-l.stop:
				t.Stop()
				return
			}
			p := l.progress.Load()
			l.mu.Lock()
			switch w := l.active; {
			case w == nil:
				l.watching.Store(false)
				watching = false
			case p == last && w.cur.Load() != nil:
				l.detach(w) // stuck in a handler
			}
			l.mu.Unlock()
			last = p
		}
	}
}

// blocking detaches the worker answering w's query, if it still is.
func (w *udpWriter) blocking() {
	wk := w.worker
	if wk.cur.Load() != w || wk.detached.Load() {
		return
	}
	l := wk.l
	l.mu.Lock()
	if l.active == wk && wk.cur.Load() == w && !wk.detached.Load() {
		l.detach(wk)
	}
	l.mu.Unlock()
}

// flush sends the replies waiting in b (under l.mu). A reply the kernel
// refuses is dropped and the others are still sent.
func (l *udpLoop) flush(b *udpBatch) {
	for i := 0; i < b.outs; {
		n, err := l.io.write(b, b.out[i:b.outs])
		i += max(n, 0)
		if err != nil {
			i++ // the reply that failed
			if l.onError != nil {
				l.onError(fmt.Errorf("udp %s: send: %w", l.conn.LocalAddr(), err))
			}
		} else if n <= 0 {
			break
		}
	}
	for i := range b.outs {
		b.out[i].Addr, b.out[i].OOB, b.out[i].Buffers[0] = nil, nil, nil
	}
	b.outs = 0
}

// close stops reading (a read deadline in the past wakes the reading
// worker); the socket stays open so that the queries being answered can
// still send their replies. wait returns once every worker is gone or ctx
// ends, and then closes the socket. (Closing it at once lost the reply of
// every query in flight: a node-local instance leaving turned each into a
// client retry.)
func (l *udpLoop) close() error {
	l.closing.Store(true)
	l.stopOnce.Do(func() { close(l.stop) })
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

// udpWriter is the dns.ResponseWriter of one UDP query. Its reply joins
// its worker's batch, or goes out on its own once the worker is detached
// (or when it does not fit a batch's buffer).
type udpWriter struct {
	worker *udpWorker
	addr   peerAddr // the client's
	oob    []byte
}

func (w *udpWriter) LocalAddr() net.Addr  { return w.worker.l.conn.LocalAddr() }
func (w *udpWriter) RemoteAddr() net.Addr { return &w.addr.UDPAddr }

func (w *udpWriter) WriteMsg(m *dns.Msg) error {
	bp := wirePool.Get().(*[]byte)
	defer wirePool.Put(bp)
	b, err := m.PackBuffer((*bp)[:cap(*bp)])
	if err != nil {
		return err
	}
	if cap(b) <= 64<<10 {
		*bp = b[:0] // keep a grown buffer
	}
	_, err = w.Write(b)
	return err
}

func (w *udpWriter) Write(p []byte) (int, error) {
	wk := w.worker
	if !wk.detached.Load() && len(p) <= MaxUDPSize {
		l := wk.l
		l.mu.Lock()
		if b := wk.b; !wk.detached.Load() && b.outs < len(b.out) {
			o := &b.out[b.outs]
			o.Buffers[0] = append(b.bufs[b.outs][:0], p...)
			o.OOB, o.Addr = w.oob, b.outAddrs[b.outs].set(&w.addr.UDPAddr)
			b.outs++
			l.mu.Unlock()
			return len(p), nil
		}
		l.mu.Unlock()
	}
	n, _, err := wk.l.conn.WriteMsgUDP(p, w.oob, &w.addr.UDPAddr)
	return n, err
}

func (w *udpWriter) Close() error        { return nil }
func (w *udpWriter) TsigStatus() error   { return nil }
func (w *udpWriter) TsigTimersOnly(bool) {}
func (w *udpWriter) Hijack()             {}

// udpContext is the context of a UDP query: it never ends and carries
// only the query's Blocking hook. (The writer is the context: no
// allocation per query.)
type udpContext udpWriter

func (*udpContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (*udpContext) Done() <-chan struct{}       { return nil }
func (*udpContext) Err() error                  { return nil }
func (c *udpContext) Value(key any) any {
	if key == (blockingKey{}) {
		return (*udpWriter)(c)
	}
	return nil
}
func (*udpContext) String() string { return "serve.udpContext" }

type blockingKey struct{}

// Blocking tells the server that the handler answering ctx's query is
// about to wait (for an upstream's reply, for another query's flight).
// Over UDP, where a worker answers the datagrams of one read inline, the
// worker then sends the replies it has and hands the rest of its datagrams
// and its socket to another worker, so that nothing waits behind this
// query. Without it, they wait until a watcher notices (1-2 ms). It costs
// a context lookup otherwise, and is a no-op outside a UDP query's
// handler (TCP, a later call with the same context).
func Blocking(ctx context.Context) {
	if w, ok := ctx.Value(blockingKey{}).(*udpWriter); ok {
		w.blocking()
	}
}
