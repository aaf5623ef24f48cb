package serve

import (
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// A reply kept in wire form (a cache entry, a cluster answer) is packed
// once and copied per query with what differs between clients patched in
// place: the ID, the client's spelling of the question's name in the
// question and in the owner names equal to it, the TTLs. The offsets are
// found once, when packing. Loadbalance's shuffle: besides the stored order,
// NumShuffled orders made by the shuffle function once (the first time a
// shuffled reply is asked for), one of them served at random per query.
// Every address comes first about as often as with a shuffle per query;
// the orders seen are at most NumShuffled of the n! possible.
const NumShuffled = 8

// WireOptions say how a message is packed into a Wire.
type WireOptions struct {
	// ClearAA packs the reply with AA clear (a forwarded reply).
	ClearAA bool
	// AnswerOwners limits the owner names given the client's spelling to
	// the answer section's (the records a handler made for the asked
	// name); otherwise every section's names equal to the question's are.
	AnswerOwners bool
}

// wire is one packed order of a reply: no OPT record, not compressed (a
// pointer into the question would respell other names with the client's
// case).
type wire struct {
	b     []byte
	ttls  []int // offsets of the records' TTL fields in b
	names []int // offsets of the question's name and of the records it owns
}

// Wires is a reply in wire form: its stored order and, made when first
// needed, the shuffled ones.
type Wires struct {
	opts        WireOptions
	base        *wire // nil when the message could not be packed
	shuffleOnce sync.Once
	shuffled    []*wire // nil: the shuffle keeps the order (fewer than two addresses)
}

// PackWires packs m, a reply of one question without an OPT record; Ok
// reports false when it could not (then the message must be used).
func PackWires(m *dns.Msg, o WireOptions) *Wires {
	return &Wires{opts: o, base: packWire(m, o)}
}

// Ok reports whether the reply could be packed.
func (ws *Wires) Ok() bool { return ws.base != nil }

// packWire packs m, or returns nil.
func packWire(m *dns.Msg, o WireOptions) *wire {
	c := *m
	if o.ClearAA {
		c.Authoritative = false
	}
	c.Compress = false
	b, err := c.Pack()
	if err != nil {
		return nil
	}
	w, ok := offsets(b, o.AnswerOwners)
	if !ok {
		return nil
	}
	return w
}

// offsets walks b, a packed uncompressed message of one question, and
// returns it with the offsets of its records' TTL fields and of the names
// equal to the question's but for ASCII case (in the answer section only
// when answerOnly).
func offsets(b []byte, answerOnly bool) (*wire, bool) {
	if len(b) < 12 || binary.BigEndian.Uint16(b[4:]) != 1 {
		return nil, false
	}
	an := int(binary.BigEndian.Uint16(b[6:]))
	n := an + int(binary.BigEndian.Uint16(b[8:])) + int(binary.BigEndian.Uint16(b[10:]))
	off, ok := skipName(b, 12)
	if !ok || off+4 > len(b) {
		return nil, false
	}
	qname := b[12:off]
	off += 4
	w := &wire{b: b, ttls: make([]int, 0, n), names: []int{12}}
	for i := range n {
		start := off
		if off, ok = skipName(b, off); !ok || off+10 > len(b) {
			return nil, false
		}
		if (i < an || !answerOnly) && off-start == len(qname) && foldEqual(b[start:off], qname) {
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

// shuffledWires makes the shuffled orders of m (the message ws was packed
// from) with shuffle, once.
func (ws *Wires) shuffledWires(m *dns.Msg, shuffle func([]dns.RR) []dns.RR) []*wire {
	ws.shuffleOnce.Do(func() {
		if !shufflable(m.Answer) && !shufflable(m.Ns) && !shufflable(m.Extra) {
			return
		}
		out := make([]*wire, 0, NumShuffled)
		for range NumShuffled {
			c := *m
			c.Answer, c.Ns, c.Extra = shuffle(m.Answer), shuffle(m.Ns), shuffle(m.Extra)
			w := packWire(&c, ws.opts)
			if w == nil {
				return
			}
			out = append(out, w)
		}
		ws.shuffled = out
	})
	return ws.shuffled
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

// AppendWire appends the reply to dst for the client of query r: in one of
// the orders shuffle makes when shuffle is not nil (m is the message ws was
// packed from), with r's ID and spelling of the question's name, and ttl in
// every record when ttl >= 0. ok is false when r's name has escapes (dst
// is then returned as it was).
func (ws *Wires) AppendWire(dst []byte, m, r *dns.Msg, shuffle func([]dns.RR) []dns.RR, ttl int64) (b []byte, ok bool) {
	w := ws.base
	if shuffle != nil {
		if s := ws.shuffledWires(m, shuffle); len(s) > 0 {
			w = s[rand.IntN(len(s))]
		}
	}
	start := len(dst)
	dst = append(dst, w.b...)
	b = dst[start:]
	binary.BigEndian.PutUint16(b, r.Id)
	for _, off := range w.names {
		if !copyQname(b[off:], r.Question[0].Name) {
			return dst[:start], false
		}
	}
	if ttl >= 0 {
		for _, off := range w.ttls {
			binary.BigEndian.PutUint32(b[off:], uint32(ttl))
		}
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
