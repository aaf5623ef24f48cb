package minimalany_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/dnstest"
	"github.com/poddns/poddns/pkg/serve/minimalany"
)

func TestMinimalAny(t *testing.T) {
	var next atomic.Int32
	h, err := minimalany.New(minimalany.Config{}, minimalany.Deps{Next: serve.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		next.Add(1)
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		m.Answer = dnstest.RRs(r.Question[0].Name + " 30 IN A 192.0.2.1")
		return dns.RcodeSuccess, w.WriteMsg(m)
	})})
	if err != nil {
		t.Fatal(err)
	}
	addr := dnstest.StartServer(t, h)
	for _, proto := range []string{"udp", "tcp"} {
		for _, name := range []string{"example.com.", "Web.Default.svc.cluster.local.", "nowhere.invalid."} {
			c := dnstest.Case{Qname: name, Qtype: dns.TypeANY, NoAA: true, Answer: dnstest.RRs(name + ` 8482 IN HINFO "RFC8482" ""`)}
			dnstest.Check(t, c, dnstest.Exchange(t, addr, proto, c.Msg()))
		}
	}
	if n := next.Load(); n != 0 {
		t.Errorf("ANY queries reached the next handler %d times, want 0", n)
	}
	c := dnstest.Case{Qname: "example.com.", Qtype: dns.TypeA, Answer: dnstest.RRs("example.com. 30 IN A 192.0.2.1")}
	dnstest.Check(t, c, dnstest.Exchange(t, addr, "udp", c.Msg()))
	if n := next.Load(); n != 1 {
		t.Errorf("an A query reached the next handler %d times, want 1", n)
	}
}
