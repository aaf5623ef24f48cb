package rewrite_test

import (
	"context"
	"testing"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/dnstest"
	"github.com/poddns/poddns/pkg/serve/rewrite"
)

// answer knows a few names: an A record each, and NXDOMAIN for the rest.
var answer = serve.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	q := r.Question[0]
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	switch q.Name {
	case "target.example.net.", "api.new.example.", "web.shop.svc.cluster.local.", "db.prod.svc.cluster.local.", "eu-app.example.org.":
		m.Answer = dnstest.RRs(q.Name + " 30 IN A 192.0.2.1")
	default:
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{dnstest.SOA("example.", 1)}
	}
	return m.Rcode, w.WriteMsg(m)
})

func TestRewrite(t *testing.T) {
	h, err := rewrite.New(rewrite.Config{
		{Match: "exact", From: "old.example.com", To: "target.example.net"},
		{Match: "suffix", From: "old.example", To: "new.example"},
		{Match: "exact", From: "shop.corp.example", To: "web.shop.svc.cluster.local"},
		{Match: "regex", From: `^app\.([a-z]+)\.example\.org\.$`, To: "${1}-app.example.org."},
		// Inside the cluster zone: only with cluster: true.
		{Match: "suffix", From: "staging.svc.cluster.local", To: "prod.svc.cluster.local", Cluster: true},
		{Match: "exact", From: "web.default.svc.cluster.local", To: "target.example.net"},
	}, rewrite.Deps{Next: answer, Zones: []string{"cluster.local."}})
	if err != nil {
		t.Fatal(err)
	}
	addr := dnstest.StartServer(t, h)
	for _, c := range []dnstest.Case{
		{Qname: "old.example.com.", Qtype: dns.TypeA, Answer: dnstest.RRs("old.example.com. 30 IN A 192.0.2.1")},
		{Qname: "OLD.Example.COM.", Qtype: dns.TypeA, Answer: dnstest.RRs("OLD.Example.COM. 30 IN A 192.0.2.1")},
		{Qname: "api.old.example.", Qtype: dns.TypeA, Answer: dnstest.RRs("api.old.example. 30 IN A 192.0.2.1")},
		{Qname: "shop.corp.example.", Qtype: dns.TypeA, Answer: dnstest.RRs("shop.corp.example. 30 IN A 192.0.2.1")},
		{Qname: "app.eu.example.org.", Qtype: dns.TypeA, Answer: dnstest.RRs("app.eu.example.org. 30 IN A 192.0.2.1")},
		{Qname: "db.staging.svc.cluster.local.", Qtype: dns.TypeA, Answer: dnstest.RRs("db.staging.svc.cluster.local. 30 IN A 192.0.2.1")},
		// A cluster name without cluster: true is not rewritten.
		{Qname: "web.default.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{dnstest.SOA("example.", 1)}},
		// No rule: unchanged.
		{Qname: "other.example.com.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{dnstest.SOA("example.", 1)}},
		// A rewritten name that does not exist: the denial, question as asked.
		{Qname: "nothere.old.example.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{dnstest.SOA("example.", 1)}},
	} {
		r := dnstest.Exchange(t, addr, "udp", c.Msg())
		dnstest.Check(t, c, r)
		if r.Question[0].Name != c.Qname {
			t.Errorf("%s: question %s", c.Qname, r.Question[0].Name)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []rewrite.Config{
		{{Match: "prefix", From: "a.example", To: "b.example"}},
		{{Match: "exact", From: "", To: "b.example"}},
		{{Match: "suffix", From: "a..example", To: "b.example"}},
		{{Match: "regex", From: "(", To: "x"}},
		{{Match: "regex", From: "a", To: ""}},
	} {
		if c.Validate() == nil {
			t.Errorf("%+v valid", c)
		}
	}
}
