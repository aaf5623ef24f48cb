package serve

import (
	"testing"

	"github.com/miekg/dns"
)

// TestFitCopiesOnlyWhenNeeded: a reply built with Request.Reply that fits
// is sent as is (no copy on the hot path); any change is made on a copy.
func TestFitCopiesOnlyWhenNeeded(t *testing.T) {
	q := new(dns.Msg)
	q.SetQuestion("a.example.", dns.TypeA)
	q.SetEdns0(1232, false)
	r := NewRequest(nil, q)

	m := r.Reply(dns.RcodeSuccess)
	if got := fit(q, m, "udp"); got != m {
		t.Error("a reply that fits, with OPT, was copied")
	}

	plain := new(dns.Msg)
	plain.SetReply(q)
	got := fit(q, plain, "udp")
	if got == plain || got.IsEdns0() == nil || plain.IsEdns0() != nil {
		t.Errorf("adding OPT: copied %v, reply OPT %v, original OPT %v", got != plain, got.IsEdns0(), plain.IsEdns0())
	}

	noEDNS := new(dns.Msg)
	noEDNS.SetQuestion("a.example.", dns.TypeA)
	got = fit(noEDNS, m, "tcp")
	if got == m || got.IsEdns0() != nil || m.IsEdns0() == nil {
		t.Errorf("removing OPT: copied %v, reply OPT %v, original OPT %v", got != m, got.IsEdns0(), m.IsEdns0())
	}
}
