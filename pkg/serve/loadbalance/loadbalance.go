// Package loadbalance shuffles the address records of every reply, as
// CoreDNS's loadbalance plugin (round_robin) does: in NOERROR replies, the
// A and AAAA records and the MX records of each section are shuffled
// (Fisher-Yates), CNAMEs stay first and in their order (glibc expects the
// CNAME chain before the addresses), other records keep their order after
// the CNAMEs. Zone transfers and other rcodes are not touched. The shuffle
// works on copies of the sections: a reply may be shared (cache, store).
package loadbalance

import (
	"context"
	"math/rand/v2"
	"sync"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve"
)

// LoadBalance is the shuffling handler; it wraps the writer of every query
// and hands the query to Next.
type LoadBalance struct {
	Next serve.Handler
}

// Config is the handler's configuration. It has no field: the shuffle
// (CoreDNS's round_robin) is the only policy; dnsd's loadBalance field says
// whether the handler is in the chain.
type Config struct{}

// Deps are what the handler is given besides its configuration.
type Deps struct {
	// Next writes the replies the handler shuffles.
	Next serve.Handler
}

// New returns the handler.
func New(_ Config, d Deps) (*LoadBalance, error) { return &LoadBalance{Next: d.Next}, nil }

// Name implements serve.Handler.
func (l *LoadBalance) Name() string { return "loadbalance" }

// ServeDNS hands r on with a writer that shuffles the reply.
func (l *LoadBalance) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	switch r.Question[0].Qtype {
	case dns.TypeAXFR, dns.TypeIXFR:
		return serve.NextOrFailure(ctx, l.Name(), l.Next, w, r)
	}
	sw := writers.Get().(*writer)
	sw.ResponseWriter = w
	defer func() {
		sw.ResponseWriter = nil
		writers.Put(sw)
	}()
	return serve.NextOrFailure(ctx, l.Name(), l.Next, sw, r)
}

// writers are the handler's writers, reused: the handlers below are done
// with a writer when they return (serve's handler contract).
var writers = sync.Pool{New: func() any { return new(writer) }}

type writer struct{ dns.ResponseWriter }

func (w *writer) WriteMsg(m *dns.Msg) error {
	if m.Rcode != dns.RcodeSuccess {
		return w.ResponseWriter.WriteMsg(m)
	}
	c := *m
	c.Answer = Shuffle(m.Answer)
	c.Ns = Shuffle(m.Ns)
	c.Extra = Shuffle(m.Extra)
	return w.ResponseWriter.WriteMsg(&c)
}

// WritePacked has a packed NOERROR reply shuffled as WriteMsg shuffles a
// message (by the cache, which keeps a few shuffled orders packed). It
// sets p's Shuffle: a Packed is one reply to one query, passed down the
// writers.
func (w *writer) WritePacked(p *serve.Packed) error {
	if p.Rcode == dns.RcodeSuccess {
		p.Shuffle = Shuffle
	}
	return serve.WritePacked(w.ResponseWriter, p)
}

// Shuffle returns a new slice: rrs's CNAMEs in order, then the records
// other than A, AAAA and MX in order, then the A and AAAA records
// shuffled, then the MX records shuffled. rrs is not modified; with fewer
// than two records to shuffle, rrs itself is returned.
func Shuffle(rrs []dns.RR) []dns.RR {
	n := 0
	for _, rr := range rrs {
		switch rr.Header().Rrtype {
		case dns.TypeA, dns.TypeAAAA, dns.TypeMX:
			n++
		}
	}
	if n < 2 {
		return rrs
	}
	out := make([]dns.RR, 0, len(rrs))
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeCNAME {
			out = append(out, rr)
		}
	}
	for _, rr := range rrs {
		switch rr.Header().Rrtype {
		case dns.TypeCNAME, dns.TypeA, dns.TypeAAAA, dns.TypeMX:
		default:
			out = append(out, rr)
		}
	}
	for _, types := range [][]uint16{{dns.TypeA, dns.TypeAAAA}, {dns.TypeMX}} {
		start := len(out)
		for _, rr := range rrs {
			if t := rr.Header().Rrtype; t == types[0] || (len(types) > 1 && t == types[1]) {
				out = append(out, rr)
			}
		}
		part := out[start:]
		rand.Shuffle(len(part), func(i, j int) { part[i], part[j] = part[j], part[i] })
	}
	return out
}
