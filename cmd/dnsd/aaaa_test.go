package main

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/dnstest"
	"github.com/poddns/poddns/pkg/serve/loop"
)

// aaaaCluster: an IPv4-only pod on 127.0.0.51, a dual-stack pod on
// 127.0.0.52, a dual-stack Service.
const aaaaCluster = `apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {type: ClusterIP, clusterIP: 10.96.0.20, clusterIPs: [10.96.0.20, "fd00:96::20"], ipFamilies: [IPv4, IPv6]}
---
apiVersion: v1
kind: Pod
metadata: {name: v4, namespace: shop, uid: u1}
status: {phase: Running, podIP: 127.0.0.51, podIPs: [{ip: 127.0.0.51}]}
---
apiVersion: v1
kind: Pod
metadata: {name: dual, namespace: shop, uid: u2}
status: {phase: Running, podIP: 127.0.0.52, podIPs: [{ip: 127.0.0.52}, {ip: "fd00::52"}]}
`

// TestAAAAFilterWired: with --aaaa-filter ipv4Pods, an IPv4-only pod's
// lookup of an external name costs one upstream query (A; the AAAA is
// answered NODATA by dnsd and counted), a dual-stack pod's AAAA is
// forwarded, and the AAAA of a dual-stack Service is answered for both.
func TestAAAAFilterWired(t *testing.T) {
	var mu sync.Mutex
	asked := map[string]int{}
	up := dnstest.StartServer(t, serve.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		q := r.Question[0]
		m := new(dns.Msg)
		m.SetReply(r)
		if !dns.IsSubDomain(loop.Zone, q.Name) {
			mu.Lock()
			asked[strings.ToLower(q.Name)+" "+dns.TypeToString[q.Qtype]]++
			mu.Unlock()
		}
		switch q.Qtype {
		case dns.TypeA:
			m.Answer = dnstest.RRs(q.Name + " 60 IN A 192.0.2.10")
		case dns.TypeAAAA:
			m.Answer = dnstest.RRs(q.Name + " 60 IN AAAA 2001:db8::10")
		}
		return dns.RcodeSuccess, w.WriteMsg(m)
	}))
	d := startDaemonArgs(t, "--source", dnstest.WriteFile(t, "cluster.yaml", aaaaCluster), "--upstream", up, "--aaaa-filter", "ipv4Pods")
	ask := func(from, name string, qtype uint16) *dns.Msg {
		t.Helper()
		c := &dns.Client{Timeout: dnstest.Timeout, Dialer: &net.Dialer{Timeout: dnstest.Timeout, LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}}}
		r, _, err := c.Exchange(dnstest.Query(name, qtype, 0), d.DNSAddr())
		if err != nil {
			t.Fatal(err)
		}
		return r
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
	mu.Lock()
	defer mu.Unlock()
	want := map[string]int{"v4only.example.com. A": 1, "dual.example.com. AAAA": 1}
	if len(asked) != len(want) || asked["v4only.example.com. A"] != 1 || asked["dual.example.com. AAAA"] != 1 {
		t.Errorf("upstream asked %v, want %v", asked, want)
	}
	_, body := dnstest.HTTPGet(t, "http://"+d.HTTPAddr("metrics")+"/metrics")
	if !strings.Contains(body, "poddns_aaaa_filtered_total 1\n") {
		t.Errorf("/metrics has no poddns_aaaa_filtered_total 1")
	}
}
