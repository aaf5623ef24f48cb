// Package minimalany answers queries of type ANY minimally, as RFC 8482
// recommends (section 4.2, "Answer with a Synthesized HINFO RRset"): the
// reply is NOERROR with a single record
//
//	<qname> 8482 IN HINFO "RFC8482" ""
//
// whatever the name, over UDP and TCP alike, for cluster names and
// forwarded names: nothing below this handler sees an ANY query, so no
// record set is looked up, no upstream is asked and nothing is cached. This
// is what CoreDNS's any plugin answers (TTL 8482 too). It is not REFUSED or
// NOTIMP: RFC 8482 discourages them, because some clients treat them as
// hard errors. The reply has no AA bit (it is synthesized, not from a
// zone). Every other type is handed to Next unchanged.
package minimalany

import (
	"context"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve"
)

// TTL is the TTL of the synthesized HINFO record (CoreDNS's choice).
const TTL = 8482

// Any is the handler.
type Any struct {
	Next serve.Handler
}

// Config is the handler's configuration. It has no field: the handler is
// always in dnsd's chain.
type Config struct{}

// Deps are what the handler is given besides its configuration.
type Deps struct {
	// Next gets every query that is not of type ANY.
	Next serve.Handler
}

// New returns the handler.
func New(_ Config, d Deps) (*Any, error) { return &Any{Next: d.Next}, nil }

// Name implements serve.Handler.
func (a *Any) Name() string { return "any" }

// ServeDNS answers ANY queries, hands the rest on.
func (a *Any) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if len(r.Question) != 1 || r.Question[0].Qtype != dns.TypeANY {
		return serve.NextOrFailure(ctx, a.Name(), a.Next, w, r)
	}
	m := new(dns.Msg)
	m.SetReply(r)
	m.Answer = []dns.RR{&dns.HINFO{
		Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeHINFO, Class: dns.ClassINET, Ttl: TTL},
		Cpu: "RFC8482",
		Os:  "",
	}}
	if err := w.WriteMsg(m); err != nil {
		return dns.RcodeServerFailure, err
	}
	return dns.RcodeSuccess, nil
}
