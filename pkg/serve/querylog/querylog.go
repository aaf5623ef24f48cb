package querylog

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"

	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/store"
)

// Deps are what the query log is given besides its configuration.
type Deps struct {
	// Next answers every query.
	Next serve.Handler
	// Store is the pod index the client's pod is looked up in; nil: no
	// pod identity.
	Store interface{ Snapshot() *store.Snapshot }
	// Metrics count the lines written and dropped; nil: unregistered ones.
	Metrics *Metrics
	// Output, when not nil, replaces Config.Output (tests, benchmarks).
	Output io.Writer
}

// Log is the query log handler.
type Log struct {
	next       serve.Handler
	store      interface{ Snapshot() *store.Snapshot }
	m          *Metrics
	classes    uint8 // bits of classSuccess, classDenial, classError
	namespaces []string
	sample     uint64
	seen       atomic.Uint64

	queue chan record
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
	out   io.Writer
	file  *os.File // closed by Close when the log opened it
}

const (
	classSuccess uint8 = 1 << iota
	classDenial
	classError
)

// record is what the serving goroutine hands the writer: small, no
// formatting done on the serving path.
type record struct {
	time     time.Time
	client   netip.AddrPort
	tcp      bool
	id       uint16
	pod      *store.Pod
	name     string
	qtype    uint16
	rcode    int
	source   serve.Source
	duration time.Duration
}

// New opens the output and starts the writer; Close stops it.
func New(c Config, d Deps) (*Log, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	l := &Log{next: d.Next, store: d.Store, m: d.Metrics, namespaces: slices.Clone(c.Namespaces), sample: uint64(c.Sample),
		queue: make(chan record, c.Buffer), stop: make(chan struct{}), done: make(chan struct{}), out: d.Output}
	if l.m == nil {
		l.m, _ = NewMetrics(nil)
	}
	for _, cl := range c.Classes {
		switch cl {
		case ClassAll:
			l.classes = classSuccess | classDenial | classError
		case ClassSuccess:
			l.classes |= classSuccess
		case ClassDenial:
			l.classes |= classDenial
		case ClassError:
			l.classes |= classError
		}
	}
	if l.out == nil {
		switch c.Output {
		case "stdout":
			l.out = os.Stdout
		case "stderr":
			l.out = os.Stderr
		default:
			f, err := os.OpenFile(c.Output, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
			if err != nil {
				return nil, fmt.Errorf("queryLog: %w", err)
			}
			l.file, l.out = f, f
		}
	}
	go l.write()
	return l, nil
}

// Name implements serve.Handler.
func (l *Log) Name() string { return "querylog" }

// ServeDNS hands the query on and logs its reply.
func (l *Log) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if serve.HasSourceSlot(ctx) || (l.sample > 1 && l.seen.Add(1)%l.sample != 0) {
		// A lookup made for a query being logged (an ExternalName or
		// static CNAME target through the chain) is part of that query's
		// line, not one of its own.
		return serve.NextOrFailure(ctx, l.Name(), l.next, w, r)
	}
	start := time.Now()
	rec := &recorder{ResponseWriter: w}
	rcode, err := serve.NextOrFailure(serve.WithSourceSlot(ctx, &rec.source), l.Name(), l.next, rec, r)
	written := rec.rcode
	if !rec.written {
		// serve.Handle writes the reply after this returns.
		written = rcode
		if serve.ClientWrite(rcode) {
			written = dns.RcodeServerFailure
		}
	}
	if l.classes&classOf(written, rec.answers) == 0 {
		return rcode, err
	}
	client := clientAddr(w)
	var pod *store.Pod
	if l.store != nil && client.IsValid() {
		pod = podOf(l.store.Snapshot(), client.Addr())
	}
	if l.namespaces != nil && (pod == nil || !slices.Contains(l.namespaces, pod.Namespace)) {
		return rcode, err
	}
	q := r.Question[0]
	l.enqueue(record{time: start, client: client, tcp: serve.Proto(w) == "tcp", id: r.Id, pod: pod,
		name: q.Name, qtype: q.Qtype, rcode: written, source: rec.source.Get(), duration: rec.at.Sub(start)})
	return rcode, err
}

// enqueue queues rec for the writer, or drops and counts it when the queue
// is full: serving never waits.
func (l *Log) enqueue(rec record) {
	if rec.duration < 0 { // no reply written: timed now
		rec.duration = time.Since(rec.time)
	}
	select {
	case l.queue <- rec:
	default:
		l.m.dropped.Inc()
	}
}

// classOf is the class bit of a reply with rcode and answers records.
func classOf(rcode, answers int) uint8 {
	switch {
	case rcode == dns.RcodeSuccess && answers > 0:
		return classSuccess
	case rcode == dns.RcodeSuccess, rcode == dns.RcodeNameError:
		return classDenial
	}
	return classError
}

// podOf is the one live pod with address ip that has its own network
// namespace; nil when none is, or several are (the address is then no
// pod's own).
func podOf(snap *store.Snapshot, ip netip.Addr) *store.Pod {
	var pod *store.Pod
	for _, p := range snap.PodsByIP(ip) {
		if p.Phase == corev1.PodSucceeded || p.Phase == corev1.PodFailed {
			continue
		}
		if pod != nil {
			return nil
		}
		pod = p
	}
	if pod != nil && pod.HostNetwork {
		return nil
	}
	return pod
}

func clientAddr(w dns.ResponseWriter) netip.AddrPort {
	if w == nil {
		return netip.AddrPort{}
	}
	var ap netip.AddrPort
	switch a := w.RemoteAddr().(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	case *net.TCPAddr:
		ap = a.AddrPort()
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()) // an IPv4 client as IPv4
}

// recorder notes the reply's rcode, its number of answers and when it was
// written; it holds the query's source slot (one allocation for both).
type recorder struct {
	dns.ResponseWriter
	source  serve.SourceSlot
	written bool
	rcode   int
	answers int
	at      time.Time
}

func (r *recorder) WriteMsg(m *dns.Msg) error {
	if !r.written {
		r.written, r.rcode, r.answers, r.at = true, m.Rcode, len(m.Answer), time.Now()
	}
	return r.ResponseWriter.WriteMsg(m)
}

// WritePacked records a packed reply as WriteMsg records a message.
func (r *recorder) WritePacked(p *serve.Packed) error {
	if !r.written {
		r.written, r.rcode, r.answers, r.at = true, p.Rcode, p.Answers, time.Now()
	}
	return serve.WritePacked(r.ResponseWriter, p)
}

// flushEvery bounds how long a written line waits in the buffer.
const flushEvery = 100 * time.Millisecond

// write is the writer goroutine: it encodes and writes the queued records
// through a 64 KiB buffer, flushed when full and every flushEvery, until
// Close; then it writes what is queued and returns.
func (l *Log) write() {
	defer close(l.done)
	bw := bufio.NewWriterSize(l.out, 64<<10)
	var line []byte
	put := func(rec record) {
		line = appendLine(line[:0], &rec)
		bw.Write(line) // an output error loses lines; it never stops serving
		l.m.lines.Inc()
	}
	tick := time.NewTicker(flushEvery)
	defer tick.Stop()
	for {
		select {
		case rec := <-l.queue:
			put(rec)
		case <-tick.C:
			if bw.Buffered() > 0 {
				bw.Flush()
			}
		case <-l.stop:
			for n := len(l.queue); n > 0; n-- {
				put(<-l.queue)
			}
			bw.Flush()
			return
		}
	}
}

// Close stops the writer once it has written what is queued, and closes
// the output file the log opened.
func (l *Log) Close() {
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		if l.file != nil {
			l.file.Close()
		}
	})
}

// appendLine appends rec's JSON line to b.
func appendLine(b []byte, rec *record) []byte {
	b = append(b, `{"time":"`...)
	b = rec.time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","client":"`...)
	if rec.client.IsValid() {
		b = rec.client.AppendTo(b)
	}
	b = append(b, `","proto":"`...)
	if rec.tcp {
		b = append(b, "tcp"...)
	} else {
		b = append(b, "udp"...)
	}
	b = append(b, `","id":`...)
	b = strconv.AppendUint(b, uint64(rec.id), 10)
	var ns, name string
	if rec.pod != nil {
		ns, name = rec.pod.Namespace, rec.pod.Name
	}
	b = append(b, `,"namespace":`...)
	b = appendString(b, ns)
	b = append(b, `,"pod":`...)
	b = appendString(b, name)
	b = append(b, `,"name":`...)
	b = appendString(b, rec.name)
	b = append(b, `,"type":`...)
	if t, ok := dns.TypeToString[rec.qtype]; ok {
		b = appendString(b, t)
	} else {
		b = appendString(b, "TYPE"+strconv.Itoa(int(rec.qtype)))
	}
	b = append(b, `,"rcode":`...)
	if rc, ok := dns.RcodeToString[rec.rcode]; ok {
		b = appendString(b, rc)
	} else {
		b = appendString(b, "RCODE"+strconv.Itoa(rec.rcode))
	}
	b = append(b, `,"source":"`...)
	b = append(b, rec.source.String()...)
	b = append(b, `","duration":`...)
	b = strconv.AppendFloat(b, rec.duration.Seconds(), 'f', -1, 64)
	return append(b, "}\n"...)
}

// appendString appends s as a JSON string. A query name is in presentation
// format (miekg/dns escapes unusual bytes as \DDD), but every byte is
// escaped as JSON needs: quotes, backslashes, control bytes, and bytes
// above 0x7f (as \u00XX, so the line is valid UTF-8 whatever the input).
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c >= 0x7f:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
