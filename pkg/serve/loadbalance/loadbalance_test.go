package loadbalance_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/dnstest"
	"github.com/poddns/poddns/pkg/serve/loadbalance"
)

func TestShuffle(t *testing.T) {
	answer := dnstest.RRs("www.example. 60 IN CNAME web.example.", "web.example. 60 IN CNAME lb.example.")
	for i := range 10 {
		answer = append(answer, dnstest.RR(fmt.Sprintf("lb.example. 60 IN A 192.0.2.%d", i)))
	}
	answer = append(answer, dnstest.RR("lb.example. 60 IN AAAA 2001:db8::1"))
	orig := slices.Clone(answer)
	for _, tc := range []struct {
		name    string
		rcode   int
		shuffle bool
	}{{"NOERROR", dns.RcodeSuccess, true}, {"SERVFAIL", dns.RcodeServerFailure, false}} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := loadbalance.New(loadbalance.Config{}, loadbalance.Deps{Next: serve.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
				m := new(dns.Msg)
				m.SetRcode(r, tc.rcode)
				m.Answer = answer // shared by every reply
				return dns.RcodeSuccess, w.WriteMsg(m)
			})})
			if err != nil {
				t.Fatal(err)
			}
			addr := dnstest.StartServer(t, h)
			firsts := map[string]bool{}
			for range 40 {
				m := dnstest.Exchange(t, addr, "udp", dnstest.Query("www.example.", dns.TypeA, 0))
				if d := dnstest.Diff(m.Answer, orig); d != "" {
					t.Fatalf("records changed:\n%s", d)
				}
				if m.Answer[0].Header().Rrtype != dns.TypeCNAME || m.Answer[0].(*dns.CNAME).Target != "web.example." ||
					m.Answer[1].(*dns.CNAME).Target != "lb.example." {
					t.Fatalf("CNAME chain not first and in order: %v", m.Answer[:2])
				}
				firsts[m.Answer[2].String()] = true
			}
			if got := len(firsts) > 1; got != tc.shuffle {
				t.Errorf("%d distinct first addresses in 40 replies; shuffled = %v, want %v", len(firsts), got, tc.shuffle)
			}
			if !slices.Equal(answer, orig) {
				t.Error("the handler's shared slice was reordered")
			}
		})
	}
}
