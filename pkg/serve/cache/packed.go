package cache

import (
	"time"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve"
)

// A hit is served from the entry's reply packed once, when it was stored
// (serve.Wires: the cache packs it with AA clear, and patches every
// section's names and TTLs), instead of a copy of its message packed per
// query. What needs the message (a writer that takes no packed reply, a
// reply larger than the client accepts, which fit truncates, a name with
// escapes) gets the copy it got before (Cache.reply), so both paths send
// the same reply.

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
	if _, ok := w.(serve.PackedWriter); !ok || e.packed == nil || !e.packed.Ok() {
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
	return h.e.packed.AppendWire(dst, h.e.msg, h.r, shuffle, int64(h.c.remainingTTL(h.e, h.now, h.stale)))
}
