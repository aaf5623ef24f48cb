package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve/dnstest"
)

// queryLogCluster is a pod of namespace shop on the loopback alias
// 127.0.0.41 and one service.
const queryLogCluster = `apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {type: ClusterIP, clusterIP: 10.96.0.20, clusterIPs: [10.96.0.20]}
---
apiVersion: v1
kind: Pod
metadata: {name: cart-7f9c, namespace: shop, uid: u1}
spec: {dnsPolicy: ClusterFirst}
status: {phase: Running, podIP: 127.0.0.41, podIPs: [{ip: 127.0.0.41}]}
`

// TestQueryLogWired: with the queryLog block, a query from a pod's IP is
// logged with the pod's namespace and name and where the answer came from
// (cluster, upstream, then cache); the denial filter leaves answers out;
// without the block (or --query-log) nothing is logged.
func TestQueryLogWired(t *testing.T) {
	up, _ := startUpstream(t, "192.0.2.10")
	dir := t.TempDir()
	out := filepath.Join(dir, "queries.log")
	cfg := writeFile(t, "dnsd.yaml", `apiVersion: poddns.io/v1alpha1
kind: DNSDConfig
queryLog:
  enabled: true
  output: `+out+`
`)
	src := writeFile(t, "cluster.yaml", queryLogCluster)
	d := startDaemonArgs(t, "--config", cfg, "--source", src, "--upstream", up)
	ask := func(name string, qtype uint16) {
		t.Helper()
		c := &dns.Client{Timeout: dnstest.Timeout, Dialer: &net.Dialer{Timeout: dnstest.Timeout, LocalAddr: &net.UDPAddr{IP: net.ParseIP("127.0.0.41")}}}
		if _, _, err := c.Exchange(dnstest.Query(name, qtype, 0), d.DNSAddr()); err != nil {
			t.Fatal(err)
		}
	}
	ask("web.shop.svc.cluster.local.", dns.TypeA)
	ask("example.com.", dns.TypeA)
	ask("example.com.", dns.TypeA)
	ask("nothere.shop.svc.cluster.local.", dns.TypeAAAA)
	type line struct{ Namespace, Pod, Name, Type, Rcode, Source string }
	want := []line{
		{"shop", "cart-7f9c", "web.shop.svc.cluster.local.", "A", "NOERROR", "cluster"},
		{"shop", "cart-7f9c", "example.com.", "A", "NOERROR", "upstream"},
		{"shop", "cart-7f9c", "example.com.", "A", "NOERROR", "cache"},
		{"shop", "cart-7f9c", "nothere.shop.svc.cluster.local.", "AAAA", "NXDOMAIN", "cluster"},
	}
	var got []line
	deadline := time.Now().Add(5 * time.Second) // lines are flushed every 100ms
	for len(got) < len(want) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		got = nil
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			var l line
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatalf("%q: %v", sc.Text(), err)
			}
			got = append(got, l)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("logged %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: %+v, want %+v", i, got[i], want[i])
		}
	}

	// Off by default: the flag turns it on (on stdout), the file's block
	// configures it.
	for _, tc := range []struct {
		args []string
		on   bool
	}{{nil, false}, {[]string{"--query-log"}, true}, {[]string{"--config", cfg, "--query-log=false"}, false}} {
		c, err := loadArgs(t, tc.args...)
		if err != nil {
			t.Fatal(err)
		}
		if c.QueryLog.Enabled != tc.on {
			t.Errorf("%v: queryLog.enabled %v, want %v", tc.args, c.QueryLog.Enabled, tc.on)
		}
	}
}
