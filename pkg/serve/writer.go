package serve

import (
	"slices"

	"github.com/miekg/dns"
)

// MaxUDPSize is the largest UDP reply dnsd sends whatever the client
// advertises: 1232 bytes, the DNS Flag Day 2020 value that avoids IP
// fragmentation. It is also the buffer size dnsd advertises in its OPT
// records.
const MaxUDPSize = 1232

// replySize is the largest reply to req over proto; see Request.Size.
func replySize(req *dns.Msg, proto string) int {
	if proto == "tcp" {
		return dns.MaxMsgSize
	}
	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		size = int(opt.UDPSize())
	}
	return min(max(size, dns.MinMsgSize), MaxUDPSize)
}

// fit returns m made fit to be the reply to req over proto: an OPT record
// when (and only when) req had one, and no more than the client accepts,
// records dropped with TC set when it had to shrink. m is never modified:
// if anything has to change, a copy is changed and returned.
func fit(req, m *dns.Msg, proto string) *dns.Msg {
	reqOpt := req.IsEdns0()
	replyOpt := m.IsEdns0()
	copied := false
	cp := func() {
		if !copied {
			m = shallowCopy(m)
			copied = true
		}
	}
	switch {
	case reqOpt != nil && replyOpt == nil:
		cp()
		m.Extra = append(m.Extra, newOPT())
	case reqOpt == nil && replyOpt != nil:
		cp()
		extra := make([]dns.RR, 0, len(m.Extra))
		for _, rr := range m.Extra {
			if rr.Header().Rrtype != dns.TypeOPT {
				extra = append(extra, rr)
			}
		}
		m.Extra = extra
		if m.Rcode > 0xF {
			// An extended rcode cannot be sent without OPT.
			m.Rcode = dns.RcodeServerFailure
		}
	}
	size := replySize(req, proto)
	if uncompressedLen(m) > size && m.Len() > size {
		cp()
		m.Truncate(size)
	}
	return m
}

// uncompressedLen is m's packed size without name compression, an upper
// bound of its real size that costs no allocation.
func uncompressedLen(m *dns.Msg) int {
	c := *m
	c.Compress = false
	return c.Len()
}

// responseWriter is the dns.ResponseWriter the chain writes to: it fits
// every reply to the client (fit) and remembers whether a reply was
// written, so the server can answer for handlers that wrote nothing.
type responseWriter struct {
	dns.ResponseWriter
	req     *dns.Msg
	proto   string
	written bool
}

// WriteMsg fits m to the client and writes it.
func (w *responseWriter) WriteMsg(m *dns.Msg) error {
	w.written = true
	return w.ResponseWriter.WriteMsg(fit(w.req, m, w.proto))
}

// Write writes a packed reply as is; handlers should use WriteMsg.
func (w *responseWriter) Write(b []byte) (int, error) {
	w.written = true
	return w.ResponseWriter.Write(b)
}

// shallowCopy copies m and its sections, not the records: enough for fit,
// which only adds, removes and reorders records (Truncate edits the
// sections' backing arrays in place) and never changes one.
func shallowCopy(m *dns.Msg) *dns.Msg {
	c := *m
	c.Question = slices.Clone(m.Question)
	c.Answer = slices.Clone(m.Answer)
	c.Ns = slices.Clone(m.Ns)
	c.Extra = slices.Clone(m.Extra)
	return &c
}

// newOPT is the OPT record of dnsd's replies: EDNS0 version 0, buffer size
// MaxUDPSize.
func newOPT() *dns.OPT {
	o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	o.SetUDPSize(MaxUDPSize)
	return o
}
