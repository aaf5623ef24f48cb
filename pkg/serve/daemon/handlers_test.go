package daemon_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve/aaaa"
	"github.com/poddns/poddns/pkg/serve/daemon"
	"github.com/poddns/poddns/pkg/serve/dnstest"
)

// TestAAAAFilterWired: with the aaaa filter ipv4Pods, an IPv4-only pod's
// lookup of an external name costs one upstream query (A; the AAAA is
// answered NODATA by dnsd and counted), a dual-stack pod's AAAA is
// forwarded, and the AAAA of a dual-stack Service is answered for both.
func TestAAAAFilterWired(t *testing.T) {
	up, asked := countingUpstream(t, func(q dns.Question, m *dns.Msg) {
		switch q.Qtype {
		case dns.TypeA:
			m.Answer = dnstest.RRs(q.Name + " 60 IN A 192.0.2.10")
		case dns.TypeAAAA:
			m.Answer = dnstest.RRs(q.Name + " 60 IN AAAA 2001:db8::10")
		}
	})
	d := start(t, "", podsSource(t), upstreams(up), func(c *daemon.Config) { c.AAAA.Filter = aaaa.ModeIPv4Pods })
	ask := func(from, name string, qtype uint16) *dns.Msg {
		t.Helper()
		return askFrom(t, from, d.DNSAddr(), dnstest.Query(name, qtype, 0))
	}
	// glibc and musl ask both types; the IPv4-only pod's AAAA never leaves dnsd.
	if r := ask("127.0.0.51", "v4only.example.com.", dns.TypeA); len(r.Answer) != 1 {
		t.Errorf("A: %v", r)
	}
	if r := ask("127.0.0.51", "v4only.example.com.", dns.TypeAAAA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
		t.Errorf("IPv4-only pod's AAAA: %v, want NODATA", r)
	}
	if r := ask("127.0.0.52", "dual.example.com.", dns.TypeAAAA); len(r.Answer) != 1 {
		t.Errorf("dual-stack pod's AAAA: %v, want the upstream's", r)
	}
	for _, from := range []string{"127.0.0.51", "127.0.0.52"} {
		r := ask(from, "web.shop.svc.cluster.local.", dns.TypeAAAA)
		if got := dnstest.Strings(r.Answer); len(got) != 1 || got[0] != "web.shop.svc.cluster.local. 30 IN AAAA fd00:96::20" {
			t.Errorf("dual-stack Service's AAAA from %s: %v", from, got)
		}
	}
	want := map[string]int{"v4only.example.com. A": 1, "dual.example.com. AAAA": 1}
	if got := asked.take(); len(got) != len(want) || got["v4only.example.com. A"] != 1 || got["dual.example.com. AAAA"] != 1 {
		t.Errorf("upstream asked %v, want %v", got, want)
	}
	_, body := dnstest.HTTPGet(t, "http://"+d.HTTPAddr("metrics")+"/metrics")
	if !strings.Contains(body, "poddns_aaaa_filtered_total 1\n") {
		t.Errorf("/metrics has no poddns_aaaa_filtered_total 1")
	}
}

// TestStaticWired: static records from the config (inline and a hosts
// file) answer before forwarding, cluster names stay the cluster's, and a
// change of the hosts file applies without a restart and without flushing
// the cache (a cached external name is not asked upstream again).
func TestStaticWired(t *testing.T) {
	up, n := dnstest.StartUpstream(t, "192.0.2.10")
	hosts := dnstest.WriteFile(t, "NodeHosts", "192.168.1.10 node-a\n")
	cfg := dnstest.WriteFile(t, "dnsd.yaml", header+`static:
- zones: [corp.example]
  entries: ["10.1.0.1 db.corp.example", "10.1.0.2 web.shop.svc.cluster.local"]
  ttl: 60
- hostsFile: `+hosts+`
  reload: 20ms
  fallthrough: true
`)
	d := start(t, cfg, podsSource(t), upstreams(up))
	addr := d.DNSAddr()
	for _, c := range []dnstest.Case{
		{Qname: "db.corp.example.", Qtype: dns.TypeA, Answer: dnstest.RRs("db.corp.example. 60 IN A 10.1.0.1")},
		{Qname: "nothere.corp.example.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError},
		{Qname: "node-a.", Qtype: dns.TypeA, Answer: dnstest.RRs("node-a. 3600 IN A 192.168.1.10")},
		{Qname: "web.shop.svc.cluster.local.", Qtype: dns.TypeA, Answer: dnstest.RRs("web.shop.svc.cluster.local. 30 IN A 10.96.0.20")},
		{Qname: "example.com.", Qtype: dns.TypeA, NoAA: true, Answer: dnstest.RRs("example.com. 60 IN A 192.0.2.10")},
	} {
		dnstest.Check(t, c, dnstest.Exchange(t, addr, "udp", c.Msg()))
	}
	if got := n.Load(); got != 1 {
		t.Fatalf("upstream asked %d times, want 1 (example.com)", got)
	}
	tmp := hosts + ".tmp"
	if err := os.WriteFile(tmp, []byte("192.168.1.10 node-a\n192.168.1.11 node-b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, hosts); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := dnstest.Exchange(t, addr, "udp", dnstest.Query("node-b.", dns.TypeA, 0))
		if len(r.Answer) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node-b never served after the hosts file changed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// (node-b was forwarded while unknown, before the reload applied.)
	asked := n.Load()
	for _, name := range []string{"example.com.", "node-b."} {
		if r := dnstest.Exchange(t, addr, "udp", dnstest.Query(name, dns.TypeA, 0)); len(r.Answer) != 1 {
			t.Errorf("%s after the reload: %v", name, r.Answer)
		}
	}
	// The cached example.com is not asked again, node-b is answered by the
	// static block.
	if got := n.Load(); got != asked {
		t.Errorf("upstream asked %d more times, want 0: the hosts reload flushed the cache or node-b was forwarded", got-asked)
	}
}

// TestRewriteWired: rewrite rules from the config: an outside name
// rewritten to a cluster Service's name and to a static name answers with
// the asked name; a cluster name is not rewritten without cluster: true.
func TestRewriteWired(t *testing.T) {
	up, n := dnstest.StartUpstream(t, "192.0.2.10")
	cfg := dnstest.WriteFile(t, "dnsd.yaml", header+`rewrite:
- {match: exact, from: shop.corp.example, to: web.shop.svc.cluster.local}
- {match: suffix, from: legacy.example, to: corp.example}
- {match: exact, from: web.shop.svc.cluster.local, to: db.corp.example}
static:
- zones: [corp.example]
  entries: ["10.1.0.1 db.corp.example"]
`)
	d := start(t, cfg, podsSource(t), upstreams(up))
	for _, c := range []dnstest.Case{
		{Qname: "shop.corp.example.", Qtype: dns.TypeA, Answer: dnstest.RRs("shop.corp.example. 30 IN A 10.96.0.20")},
		{Qname: "db.Legacy.example.", Qtype: dns.TypeA, Answer: dnstest.RRs("db.Legacy.example. 3600 IN A 10.1.0.1")},
		{Qname: "web.shop.svc.cluster.local.", Qtype: dns.TypeA, Answer: dnstest.RRs("web.shop.svc.cluster.local. 30 IN A 10.96.0.20")},
	} {
		dnstest.Check(t, c, dnstest.Exchange(t, d.DNSAddr(), "udp", c.Msg()))
	}
	if got := n.Load(); got != 0 {
		t.Errorf("upstream asked %d times, want 0", got)
	}
}
