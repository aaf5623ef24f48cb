package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/internal/syncbuf"
	"github.com/poddns/poddns/pkg/serve/daemon"
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
	up, _ := dnstest.StartUpstream(t, "192.0.2.10")
	dir := t.TempDir()
	out := filepath.Join(dir, "queries.log")
	cfg := dnstest.WriteFile(t, "dnsd.yaml", `apiVersion: poddns.io/v1alpha1
kind: DNSDConfig
queryLog:
  enabled: true
  output: `+out+`
`)
	src := dnstest.WriteFile(t, "cluster.yaml", queryLogCluster)
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
	type line struct {
		Namespace, Pod, Name, Type, Rcode, Source string
		Time                                      time.Time `json:"-"`
	}
	want := []line{
		{"shop", "cart-7f9c", "web.shop.svc.cluster.local.", "A", "NOERROR", "cluster", time.Time{}},
		{"shop", "cart-7f9c", "example.com.", "A", "NOERROR", "upstream", time.Time{}},
		{"shop", "cart-7f9c", "example.com.", "A", "NOERROR", "cache", time.Time{}},
		{"shop", "cart-7f9c", "nothere.shop.svc.cluster.local.", "AAAA", "NXDOMAIN", "cluster", time.Time{}},
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
			var at struct{ Time time.Time }
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil || json.Unmarshal(sc.Bytes(), &at) != nil {
				t.Fatalf("%q: %v", sc.Text(), err)
			}
			l.Time = at.Time
			got = append(got, l)
		}
	}
	// Lines are written as replies complete; time is when each query came.
	slices.SortStableFunc(got, func(a, b line) int { return a.Time.Compare(b.Time) })
	for i := range got {
		got[i].Time = time.Time{}
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

// TestErrorsLogWired: with errors.enabled, the errors of a dead upstream
// make one line at once, and its repeats one line with their count when
// the daemon stops.
func TestErrorsLogWired(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close() // nothing listens: every query gets "connection refused" at once
	file := dnstest.WriteFile(t, "dnsd.yaml", `apiVersion: poddns.io/v1alpha1
kind: DNSDConfig
errors: {enabled: true, consolidate: 1h}
forward: {tryTimeout: 200ms, deadline: 500ms}
`)
	cfg, err := loadArgs(t, "--config", file, "--source", dnstest.WriteFile(t, "cluster.yaml", queryLogCluster), "--upstream", dead,
		"--listen", "127.0.0.1:0", "--health-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs syncbuf.Buffer
	d, err := daemon.New(cfg, daemon.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	const n = 5
	for i := range n {
		r := dnstest.Exchange(t, d.DNSAddr(), "udp", dnstest.Query(fmt.Sprintf("q%d.example.com.", i), dns.TypeA, 0))
		if r.Rcode != dns.RcodeServerFailure {
			t.Fatalf("rcode %s, want SERVFAIL from a dead upstream", dns.RcodeToString[r.Rcode])
		}
	}
	d.Shutdown(0)
	first, repeated := 0, 0
	for _, l := range strings.Split(logs.String(), "\n") {
		var e struct {
			Level, Msg string
			Count      int
		}
		if l == "" || json.Unmarshal([]byte(l), &e) != nil {
			continue
		}
		switch e.Msg {
		case "handler error":
			first++
		case "handler errors repeated":
			repeated += e.Count
		}
	}
	// A loaded machine may rate-limit the ICMP port-unreachable replies, so
	// some queries time out instead: at most three kinds (refused, i/o
	// timeout, deadline).
	if first+repeated != n || first > 3 {
		t.Errorf("%d errors logged, %d counted as repeats; want %d in all, most as repeats:\n%s", first, repeated, n, logs.String())
	}
}

// TestSwitchConfigErrors: bad queryLog and errors blocks are refused.
func TestSwitchConfigErrors(t *testing.T) {
	header := "apiVersion: poddns.io/v1alpha1\nkind: DNSDConfig\n"
	for _, tc := range []struct{ file, want string }{
		{header + "queryLog: {classes: [denials]}\n", "queryLog: class"},
		{header + "queryLog: {sample: 0}\n", "sample"},
		{header + "queryLog: {enabld: true}\n", "unknown field"},
		{header + "errors: {patterns: ['(']}\n", "errors: pattern"},
	} {
		if _, err := loadArgs(t, "--config", dnstest.WriteFile(t, "c.yaml", tc.file), "--source", "x"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want one containing %q", tc.file, err, tc.want)
		}
	}
}
