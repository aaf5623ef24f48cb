package cache

import (
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve"
)

// A hit is served from the entry's reply packed once, when it was stored
// (serve.Packed), instead of a copy of its message packed per query: the
// packed bytes are copied and patched for the client — its ID, its
// spelling of the question's name in the question and in the owner names
// equal to it, the remaining TTL in every record (offsets found once, when
// packing). What needs the message (a writer that takes no packed reply, a
// reply larger than the client accepts, which fit truncates, a name with
// escapes) gets the copy it got before (Cache.reply), so both paths send
// the same reply.
//
// Loadbalance's shuffle: an entry keeps, besides its stored order,
// numShuffled orders made by the shuffle function once (the first time a
// shuffled hit comes) and serves one of them at random per hit. Every
// address comes first about as often as with a shuffle per query; the
// orders seen are at most numShuffled of the n! possible.
const numShuffled = 8

// wire is one packed order of an entry's reply: no OPT record, AA clear,
// not compressed (as the message path sends a forwarded reply; a pointer
// into the question would respell other names with the client's case).
type wire struct {
	b     []byte
	ttls  []int // offsets of the records' TTL fields in b
	names []int // offsets of the question's name and of the records it owns
}

// packedReply is an entry's wire form: the stored order and, made when
// first needed, the shuffled ones.
type packedReply struct {
	base        *wire // nil when the message could not be packed
	shuffleOnce sync.Once
	shuffled    []*wire // nil: the shuffle keeps the order (fewer than two addresses)
}

// packEntry packs m, an entry's message, or returns nil.
func packEntry(m *dns.Msg) *wire {
	c := *m
	c.Authoritative = false
	c.Compress = false
	b, err := c.Pack()
	if err != nil {
		return nil
	}
	w, ok := offsets(b)
	if !ok {
		return nil
	}
	return w
}

// offsets walks b, a packed uncompressed message of one question, and
// returns it with the offsets of its records' TTL fields and of the names
// equal to the question's but for ASCII case.
func offsets(b []byte) (*wire, bool) {
	if len(b) < 12 || binary.BigEndian.Uint16(b[4:]) != 1 {
		return nil, false
	}
	n := int(binary.BigEndian.Uint16(b[6:])) + int(binary.BigEndian.Uint16(b[8:])) + int(binary.BigEndian.Uint16(b[10:]))
	off, ok := skipName(b, 12)
	if !ok || off+4 > len(b) {
		return nil, false
	}
	qname := b[12:off]
	off += 4
	w := &wire{b: b, ttls: make([]int, 0, n), names: []int{12}}
	for range n {
		start := off
		if off, ok = skipName(b, off); !ok || off+10 > len(b) {
			return nil, false
		}
		if off-start == len(qname) && foldEqual(b[start:off], qname) {
			w.names = append(w.names, start)
		}
		w.ttls = append(w.ttls, off+4)
		off += 10 + int(binary.BigEndian.Uint16(b[off+8:]))
		if off > len(b) {
			return nil, false
		}
	}
	return w, off == len(b)
}

func foldEqual(a, b []byte) bool {
	for i := range a {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

// skipName returns the offset after the (possibly compressed) name at off.
func skipName(b []byte, off int) (int, bool) {
	for off < len(b) {
		c := int(b[off])
		switch {
		case c == 0:
			return off + 1, true
		case c&0xC0 != 0: // compressed or reserved: not ours
			return 0, false
		}
		off += 1 + c
	}
	return 0, false
}

// shuffledWires makes the entry's shuffled orders with shuffle, once.
func (p *packedReply) shuffledWires(m *dns.Msg, shuffle func([]dns.RR) []dns.RR) []*wire {
	p.shuffleOnce.Do(func() {
		if !shufflable(m.Answer) && !shufflable(m.Ns) && !shufflable(m.Extra) {
			return
		}
		ws := make([]*wire, 0, numShuffled)
		for range numShuffled {
			c := *m
			c.Answer, c.Ns, c.Extra = shuffle(m.Answer), shuffle(m.Ns), shuffle(m.Extra)
			w := packEntry(&c)
			if w == nil {
				return
			}
			ws = append(ws, w)
		}
		p.shuffled = ws
	})
	return p.shuffled
}

// shufflable reports whether rrs has two records loadbalance shuffles.
func shufflable(rrs []dns.RR) bool {
	n := 0
	for _, rr := range rrs {
		switch rr.Header().Rrtype {
		case dns.TypeA, dns.TypeAAAA, dns.TypeMX:
			n++
		}
	}
	return n >= 2
}

// hit is one reply served from an entry: the serve.Packed the chain's
// writers see and its source, in one allocation.
type hit struct {
	p     serve.Packed
	c     *Cache
	e     *entry
	r     *dns.Msg
	now   time.Time
	stale bool
}

// writeHit writes e's reply to r on w: packed when w takes packed replies.
func (c *Cache) writeHit(w dns.ResponseWriter, e *entry, r *dns.Msg, now time.Time, stale bool) error {
	if _, ok := w.(serve.PackedWriter); !ok || e.packed.base == nil {
		return w.WriteMsg(c.reply(e, r, now, stale))
	}
	h := &hit{c: c, e: e, r: r, now: now, stale: stale}
	h.p = serve.Packed{Rcode: e.msg.Rcode, Answers: len(e.msg.Answer), Src: h}
	return serve.WritePacked(w, &h.p)
}

// Msg implements serve.PackedSource: the copy Cache.reply makes.
func (h *hit) Msg() *dns.Msg { return h.c.reply(h.e, h.r, h.now, h.stale) }

// AppendWire implements serve.PackedSource.
func (h *hit) AppendWire(dst []byte, shuffle func([]dns.RR) []dns.RR) ([]byte, bool) {
	w := h.e.packed.base
	if shuffle != nil {
		if ws := h.e.packed.shuffledWires(h.e.msg, shuffle); len(ws) > 0 {
			w = ws[rand.IntN(len(ws))]
		}
	}
	start := len(dst)
	dst = append(dst, w.b...)
	b := dst[start:]
	binary.BigEndian.PutUint16(b, h.r.Id)
	for _, off := range w.names {
		if !copyQname(b[off:], h.r.Question[0].Name) {
			return dst[:start], false
		}
	}
	ttl := h.c.remainingTTL(h.e, h.now, h.stale)
	for _, off := range w.ttls {
		binary.BigEndian.PutUint32(b[off:], ttl)
	}
	return dst, true
}

// copyQname writes the client's spelling of the question's name over the
// packed one at the start of b (the same name but for ASCII case); false
// when name has escapes or does not match b's labels.
func copyQname(b []byte, name string) bool {
	if strings.IndexByte(name, '\\') >= 0 {
		return false
	}
	off, i := 0, 0
	for off < len(b) {
		n := int(b[off])
		if n == 0 {
			return i == len(name) || (name == "." && i == 0)
		}
		if n&0xC0 != 0 || off+1+n > len(b) || i+n >= len(name) || name[i+n] != '.' {
			return false
		}
		for k := range n {
			if lower(b[off+1+k]) != lower(name[i+k]) {
				return false
			}
		}
		copy(b[off+1:off+1+n], name[i:i+n])
		off += 1 + n
		i += n + 1
	}
	return false
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
