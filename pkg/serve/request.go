package serve

import (
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// Request wraps one query and what handlers derive from it, computed once:
// the question's name lower-cased for matching, its type, the transport and
// the client's address. It never modifies the query.
type Request struct {
	Req *dns.Msg
	W   dns.ResponseWriter

	name  string // lower-cased qname, "" until computed
	proto string
}

// NewRequest wraps r, received on w. r must have exactly one question (the
// server only passes such queries to the chain).
func NewRequest(w dns.ResponseWriter, r *dns.Msg) *Request { return &Request{Req: r, W: w} }

// QName is the question's name as the client wrote it (case kept), fully
// qualified.
func (r *Request) QName() string { return r.Req.Question[0].Name }

// Name is the question's name lower-cased, for matching.
func (r *Request) Name() string {
	if r.name == "" {
		r.name = strings.ToLower(r.Req.Question[0].Name)
	}
	return r.name
}

// QType is the question's type.
func (r *Request) QType() uint16 { return r.Req.Question[0].Qtype }

// QClass is the question's class.
func (r *Request) QClass() uint16 { return r.Req.Question[0].Qclass }

// Proto is "udp" or "tcp", the transport the query came on.
func (r *Request) Proto() string {
	if r.proto == "" {
		r.proto = Proto(r.W)
	}
	return r.proto
}

// Proto is "tcp" for a query received over TCP and "udp" otherwise.
func Proto(w dns.ResponseWriter) string {
	if w == nil {
		return "udp"
	}
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		return "tcp"
	}
	return "udp"
}

// Family is 1 for a client on IPv4, 2 for IPv6 (the IANA address family
// numbers CoreDNS uses as a metric label).
func (r *Request) Family() int {
	if ip := r.IP(); ip.Is6() && !ip.Is4In6() {
		return 2
	}
	return 1
}

// IP is the client's address, or the zero Addr when unknown.
func (r *Request) IP() netip.Addr {
	if r.W == nil {
		return netip.Addr{}
	}
	var ip net.IP
	switch a := r.W.RemoteAddr().(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.TCPAddr:
		ip = a.IP
	}
	addr, _ := netip.AddrFromSlice(ip)
	return addr.Unmap()
}

// Size is the largest reply the client accepts over this transport: 65535
// on TCP; on UDP the EDNS0 buffer size, between 512 and MaxUDPSize, or 512
// without EDNS0.
func (r *Request) Size() int { return replySize(r.Req, r.Proto()) }

// Reply makes an empty authoritative reply to the request with the given
// rcode, the question copied as the client wrote it, and an OPT record when
// the query had one (so the writer need not copy the reply to add it).
// Handlers fill it in.
func (r *Request) Reply(rcode int) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(r.Req, rcode)
	m.Authoritative = true
	m.Compress = true
	if r.Req.IsEdns0() != nil {
		m.Extra = append(m.Extra, newOPT())
	}
	return m
}

// AskLike makes q, a query a handler sends on behalf of the client's query
// r, ask as r does: with r's RD and CD bits, and with EDNS0 advertising
// bufsize and r's DO bit (clear when r has no EDNS0).
func AskLike(q, r *dns.Msg, bufsize uint16) {
	q.RecursionDesired = r.RecursionDesired
	q.CheckingDisabled = r.CheckingDisabled
	do := false
	if opt := r.IsEdns0(); opt != nil {
		do = opt.Do()
	}
	q.SetEdns0(bufsize, do)
}
