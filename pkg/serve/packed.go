package serve

import (
	"encoding/binary"
	"sync"

	"github.com/miekg/dns"
)

// A Packed is a reply a handler has in wire form already (the cache's
// hits: a reply packed once when it was stored), written through the chain
// without making or packing a message per query.
//
// Writers that see replies (metrics, querylog, acl, loadbalance) implement
// PackedWriter and pass it on; the server's writer fits it to the client
// and sends the bytes. A writer that does not implement PackedWriter (a
// Capture, a rewrite) gets the reply as a message (WritePacked), so every
// writer sees the same reply either way.
type Packed struct {
	// Rcode and Answers are the reply's rcode and answer count, for the
	// writers that only record them.
	Rcode, Answers int
	// Src makes the reply.
	Src PackedSource
	// Shuffle, set by loadbalance, is its reordering of a NOERROR reply's
	// sections; nil keeps the stored order.
	Shuffle func([]dns.RR) []dns.RR
}

// PackedSource makes a Packed reply for one client.
type PackedSource interface {
	// AppendWire appends the reply as the client gets it (its ID, its
	// spelling of the question, remaining TTLs, no OPT record) to dst, in
	// one of the orders shuffle makes when shuffle is not nil; ok false
	// when it cannot, and then the message (Msg) must be used.
	AppendWire(dst []byte, shuffle func([]dns.RR) []dns.RR) (b []byte, ok bool)
	// Msg is the same reply as a message of the caller's own.
	Msg() *dns.Msg
}

// Msg is p as a message (shuffled as p.Shuffle says), for a writer that
// needs one.
func (p *Packed) Msg() *dns.Msg {
	m := p.Src.Msg()
	if p.Shuffle != nil && m.Rcode == dns.RcodeSuccess {
		m.Answer, m.Ns, m.Extra = p.Shuffle(m.Answer), p.Shuffle(m.Ns), p.Shuffle(m.Extra)
	}
	return m
}

// PackedWriter is a ResponseWriter that takes Packed replies.
type PackedWriter interface {
	WritePacked(p *Packed) error
}

// WritePacked writes p on w: packed when w takes Packed replies, else as a
// message.
func WritePacked(w dns.ResponseWriter, p *Packed) error {
	if pw, ok := w.(PackedWriter); ok {
		return pw.WritePacked(p)
	}
	return w.WriteMsg(p.Msg())
}

// wirePool holds the buffers packed replies are assembled in.
var wirePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// optRR is dnsd's OPT record (newOPT) in wire form: root name, type OPT,
// class MaxUDPSize, extended rcode, version and flags 0, no options.
var optRR = []byte{0, 0, byte(dns.TypeOPT), byte(MaxUDPSize >> 8), byte(MaxUDPSize & 0xff), 0, 0, 0, 0, 0, 0}

// WritePacked fits p to the client as fit does a message: an OPT record
// when the query had one (p never has one); the message path (fit) when
// the reply is larger than the client takes (fit truncates and sets TC)
// or has an extended rcode.
func (w *responseWriter) WritePacked(p *Packed) error {
	w.written = true
	bp := wirePool.Get().(*[]byte)
	defer wirePool.Put(bp)
	b, ok := p.Src.AppendWire((*bp)[:0], p.Shuffle)
	if ok && w.req.IsEdns0() != nil {
		b = append(b, optRR...)
		binary.BigEndian.PutUint16(b[10:], binary.BigEndian.Uint16(b[10:])+1)
	}
	if !ok || p.Rcode > 0xF || len(b) > replySize(w.req, w.proto) {
		*bp = b[:0]
		return w.ResponseWriter.WriteMsg(fit(w.req, p.Msg(), w.proto))
	}
	*bp = b[:0]
	_, err := w.ResponseWriter.Write(b)
	return err
}
