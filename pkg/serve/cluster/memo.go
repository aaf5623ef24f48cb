package cluster

import (
	"strings"
	"sync"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/store"
)

// Cluster answers are built from the store's snapshot, and a snapshot
// never changes: the reply to a name and type is the same for every
// client until the store publishes another one (but for the ID, the
// client's spelling of the name, its RD and CD bits and its EDNS, which
// the server's writer adds). So the handler keeps the replies of the
// current snapshot packed (serve.Wires; AA kept, the answer section's
// names of the asked name given the client's spelling) and answers a
// name asked again from them, as the cache answers its hits: no lookup,
// no records made, no packing. A new snapshot starts an empty memo, so an
// API change shows at once, as before. Replies with a CNAME (ExternalName
// Services, whose targets may be asked upstream) are not kept. At most
// Deps.MemoSize replies are (a new one replaces one at random), about
// 800 bytes each: 3.2 MB at the default.
//
// Only writers that take packed replies use the memo; the others, and a
// reply the client's size makes the server truncate, get the message
// (memoHit.Msg), the same reply as before.

// DefaultMemoSize is the most replies the memo keeps when Deps.MemoSize is
// 0: the central server's.
const DefaultMemoSize = 4096

// memo is the packed replies of one snapshot.
type memo struct {
	snap *store.Snapshot
	mu   sync.RWMutex
	m    map[memoKey]*memoEntry
}

type memoKey struct {
	name  string // lower case
	qtype uint16
}

// memoEntry is one reply: its message (no OPT record, never modified) and
// its wire form.
type memoEntry struct {
	msg   *dns.Msg
	wires *serve.Wires
}

// memoFor returns the memo of snap, a new one when the current memo is of
// another snapshot.
func (c *Cluster) memoFor(snap *store.Snapshot) *memo {
	if m := c.memo.Load(); m != nil && m.snap == snap {
		return m
	}
	m := &memo{snap: snap, m: make(map[memoKey]*memoEntry)}
	c.memo.Store(m)
	return m
}

func (m *memo) get(k memoKey) *memoEntry {
	m.mu.RLock()
	e := m.m[k]
	m.mu.RUnlock()
	return e
}

// put keeps reply (the reply to k as the handler wrote it) when it may be
// kept.
func (c *Cluster) put(m *memo, k memoKey, reply *dns.Msg) {
	for _, rr := range reply.Answer {
		if rr.Header().Rrtype == dns.TypeCNAME {
			return
		}
	}
	cp := reply.Copy()
	extra := cp.Extra[:0]
	for _, rr := range cp.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	cp.Extra = extra
	e := &memoEntry{msg: cp, wires: serve.PackWires(cp, serve.WireOptions{AnswerOwners: true})}
	if !e.wires.Ok() {
		return
	}
	m.mu.Lock()
	if len(m.m) >= c.memoSize {
		for victim := range m.m { // one, in the map's random order
			delete(m.m, victim)
			break
		}
	}
	m.m[k] = e
	m.mu.Unlock()
}

// memoHit is one reply from the memo: the serve.Packed the writers see and
// its source, in one allocation.
type memoHit struct {
	p serve.Packed
	e *memoEntry
	r *dns.Msg
}

// writeMemo writes e's reply to r on w (a serve.PackedWriter).
func writeMemo(w dns.ResponseWriter, e *memoEntry, r *dns.Msg) error {
	h := &memoHit{e: e, r: r}
	h.p = serve.Packed{Rcode: e.msg.Rcode, Answers: len(e.msg.Answer), Src: h}
	return serve.WritePacked(w, &h.p)
}

// AppendWire implements serve.PackedSource: the packed reply with r's ID,
// RD and CD bits and spelling of the name.
func (h *memoHit) AppendWire(dst []byte, shuffle func([]dns.RR) []dns.RR) ([]byte, bool) {
	start := len(dst)
	dst, ok := h.e.wires.AppendWire(dst, h.e.msg, h.r, shuffle, -1)
	if !ok {
		return dst, false
	}
	b := dst[start:]
	b[2] &^= 0x01 // RD
	b[3] &^= 0x10 // CD
	if h.r.RecursionDesired {
		b[2] |= 0x01
	}
	if h.r.CheckingDisabled {
		b[3] |= 0x10
	}
	return dst, true
}

// Msg implements serve.PackedSource: a copy of the message, for r as the
// handler writes it (r's ID, question, RD and CD bits; the answer
// section's names of the asked name as r spells it).
func (h *memoHit) Msg() *dns.Msg {
	m := h.e.msg.Copy()
	r := h.r
	m.Id, m.RecursionDesired, m.CheckingDisabled = r.Id, r.RecursionDesired, r.CheckingDisabled
	m.Question = []dns.Question{r.Question[0]}
	qname := r.Question[0].Name
	for _, rr := range m.Answer {
		if h := rr.Header(); h.Name != qname && strings.EqualFold(h.Name, qname) {
			h.Name = qname
		}
	}
	return m
}
