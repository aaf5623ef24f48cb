package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve/dnstest"
)

// TestStaticWired: static records from the config (inline and a hosts
// file) answer before forwarding, cluster names stay the cluster's, and a
// change of the hosts file applies without a restart and without flushing
// the cache (a cached external name is not asked upstream again).
func TestStaticWired(t *testing.T) {
	up, n := dnstest.StartUpstream(t, "192.0.2.10")
	dir := t.TempDir()
	hosts := filepath.Join(dir, "NodeHosts")
	if err := os.WriteFile(hosts, []byte("192.168.1.10 node-a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := dnstest.WriteFile(t, "dnsd.yaml", `apiVersion: poddns.io/v1alpha1
kind: DNSDConfig
static:
- zones: [corp.example]
  entries: ["10.1.0.1 db.corp.example", "10.1.0.2 web.shop.svc.cluster.local"]
  ttl: 60
- hostsFile: `+hosts+`
  reload: 20ms
  fallthrough: true
`)
	d := startDaemonArgs(t, "--config", cfg, "--source", dnstest.WriteFile(t, "cluster.yaml", queryLogCluster), "--upstream", up)
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
	cfg := dnstest.WriteFile(t, "dnsd.yaml", `apiVersion: poddns.io/v1alpha1
kind: DNSDConfig
rewrite:
- {match: exact, from: shop.corp.example, to: web.shop.svc.cluster.local}
- {match: suffix, from: legacy.example, to: corp.example}
- {match: exact, from: web.shop.svc.cluster.local, to: db.corp.example}
static:
- zones: [corp.example]
  entries: ["10.1.0.1 db.corp.example"]
`)
	d := startDaemonArgs(t, "--config", cfg, "--source", dnstest.WriteFile(t, "cluster.yaml", queryLogCluster), "--upstream", up)
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

// TestExampleSwitchBlocks: the commented-out queryLog, errors, static, aaaa
// and rewrite blocks of testdata/dnsd.yaml, uncommented, load.
func TestExampleSwitchBlocks(t *testing.T) {
	b, err := os.ReadFile("../../testdata/dnsd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := "apiVersion: poddns.io/v1alpha1\nkind: DNSDConfig\n"
	blocks := map[string]bool{}
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "# ")
		switch {
		case ok && !in && slices.Contains([]string{"queryLog:", "errors:", "static:", "aaaa:", "rewrite:"}, rest):
			in = true
			blocks[rest] = true
		case ok && in && (strings.HasPrefix(rest, "  ") || strings.HasPrefix(rest, "- ")):
		default:
			in = false
		}
		if in {
			out += rest + "\n"
		}
	}
	if len(blocks) != 5 {
		t.Fatalf("found the blocks %v in testdata/dnsd.yaml, want 5", blocks)
	}
	cfg, err := loadArgs(t, "--config", dnstest.WriteFile(t, "dnsd.yaml", out), "--source", "x")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !cfg.QueryLog.Enabled || !cfg.Errors.Enabled || len(cfg.Static) != 2 || cfg.AAAA.Filter != "none" || len(cfg.Rewrite) != 3 {
		t.Errorf("loaded %+v", cfg)
	}
}
