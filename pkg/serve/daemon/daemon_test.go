package daemon_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/internal/syncbuf"
	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/cluster"
	"github.com/poddns/poddns/pkg/serve/daemon"
	"github.com/poddns/poddns/pkg/serve/dnstest"
	"github.com/poddns/poddns/pkg/serve/loop"
)

// load is the configuration of the config file at path ("": none)
// changed by mods, as dnsd's flags change it (daemon.Load).
func load(t *testing.T, path string, mods ...func(*daemon.Config)) daemon.Config {
	t.Helper()
	cfg, err := daemon.Load(path, func(c *daemon.Config) error {
		for _, m := range mods {
			m(c)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// start runs a daemon of the config file at path ("": none) changed by
// mods, on loopback ports the kernel chooses, and stops it after the test.
func start(t *testing.T, path string, mods ...func(*daemon.Config)) *daemon.Daemon {
	t.Helper()
	return dnstest.StartDaemon(t, load(t, path, mods...), daemon.Options{})
}

// source serves the objects file.
func source(file string) func(*daemon.Config) {
	return func(c *daemon.Config) { c.Source.File = file }
}

// upstreams forwards to addrs.
func upstreams(addrs ...string) func(*daemon.Config) {
	return func(c *daemon.Config) { c.Forward.Upstreams = addrs }
}

// podsCluster are the objects of the tests that ask as a pod (askFrom): the
// dual-stack Service web of namespace shop, and pods on loopback aliases:
// client (namespace default, 127.0.0.21), cart-7f9c (shop, 127.0.0.41),
// v4 (shop, IPv4 only, 127.0.0.51) and dual (shop, dual-stack, 127.0.0.52).
const podsCluster = `apiVersion: v1
kind: Namespace
metadata: {name: default}
---
apiVersion: v1
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
metadata: {name: client, namespace: default, uid: u1}
spec: {dnsPolicy: ClusterFirst}
status: {phase: Running, podIP: 127.0.0.21, podIPs: [{ip: 127.0.0.21}]}
---
apiVersion: v1
kind: Pod
metadata: {name: cart-7f9c, namespace: shop, uid: u2}
spec: {dnsPolicy: ClusterFirst}
status: {phase: Running, podIP: 127.0.0.41, podIPs: [{ip: 127.0.0.41}]}
---
apiVersion: v1
kind: Pod
metadata: {name: v4, namespace: shop, uid: u3}
status: {phase: Running, podIP: 127.0.0.51, podIPs: [{ip: 127.0.0.51}]}
---
apiVersion: v1
kind: Pod
metadata: {name: dual, namespace: shop, uid: u4}
status: {phase: Running, podIP: 127.0.0.52, podIPs: [{ip: 127.0.0.52}, {ip: "fd00::52"}]}
`

// podsSource serves podsCluster.
func podsSource(t *testing.T) func(*daemon.Config) {
	return source(dnstest.WriteFile(t, "cluster.yaml", podsCluster))
}

// askFrom sends m to the DNS server at addr over UDP from the address
// from (a pod's IP in podsCluster) and returns the reply.
func askFrom(t *testing.T, from, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Timeout: dnstest.Timeout, Dialer: &net.Dialer{Timeout: dnstest.Timeout, LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}}}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// questions are the questions an upstream got, as "name TYPE" with the
// name lowercased, and how often each.
type questions struct {
	mu sync.Mutex
	n  map[string]int
}

// take returns the questions counted since the last take.
func (q *questions) take() map[string]int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := q.n
	q.n = map[string]int{}
	return n
}

// countingUpstream starts an upstream that fills in the reply to each
// query by answer and counts the questions; dnsd's loop probes are neither
// counted nor answered (an empty reply).
func countingUpstream(t *testing.T, answer func(q dns.Question, m *dns.Msg)) (string, *questions) {
	asked := &questions{n: map[string]int{}}
	addr := dnstest.StartServer(t, serve.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		q := r.Question[0]
		m := new(dns.Msg)
		m.SetReply(r)
		if !dns.IsSubDomain(loop.Zone, q.Name) {
			asked.mu.Lock()
			asked.n[strings.ToLower(q.Name)+" "+dns.TypeToString[q.Qtype]]++
			asked.mu.Unlock()
			answer(q, m)
		}
		return dns.RcodeSuccess, w.WriteMsg(m)
	}))
	return addr, asked
}

// TestQuickStart is the README's quick start: the example cluster served,
// and the dig it shows answered, over UDP and TCP.
func TestQuickStart(t *testing.T) {
	d := start(t, "", source(exampleCluster))
	addr := d.DNSAddr()
	for _, proto := range []string{"udp", "tcp"} {
		for _, c := range []dnstest.Case{
			{Qname: "web.default.svc.cluster.local.", Qtype: dns.TypeA, Answer: dnstest.RRs("web.default.svc.cluster.local. 30 IN A 10.96.0.20")},
			{Qname: "dual.default.svc.cluster.local.", Qtype: dns.TypeAAAA, Answer: dnstest.RRs("dual.default.svc.cluster.local. 30 IN AAAA fd00:10:96::30")},
			{Qname: "_postgres._tcp.db.default.svc.cluster.local.", Qtype: dns.TypeSRV,
				Answer: dnstest.RRs("_postgres._tcp.db.default.svc.cluster.local. 30 IN SRV 0 50 5432 db-0.db.default.svc.cluster.local.",
					"_postgres._tcp.db.default.svc.cluster.local. 30 IN SRV 0 50 5432 db-1.db.default.svc.cluster.local."),
				Extra: dnstest.RRs("db-0.db.default.svc.cluster.local. 30 IN A 10.244.1.20", "db-1.db.default.svc.cluster.local. 30 IN A 10.244.2.21")},
			{Qname: "20.1.244.10.in-addr.arpa.", Qtype: dns.TypePTR, Answer: dnstest.RRs("20.1.244.10.in-addr.arpa. 30 IN PTR db-0.db.default.svc.cluster.local.")},
			{Qname: "www.default.svc.cluster.local.", Qtype: dns.TypeA, Answer: dnstest.RRs(
				"www.default.svc.cluster.local. 30 IN CNAME web.default.svc.cluster.local.", "web.default.svc.cluster.local. 30 IN A 10.96.0.20")},
			{Qname: "example.com.", Qtype: dns.TypeA, Rcode: dns.RcodeRefused, NoAA: true},
		} {
			dnstest.Check(t, c, dnstest.Exchange(t, addr, proto, c.Msg()))
		}
	}
	if code, body := dnstest.HTTPGet(t, "http://"+d.HTTPAddr("health")+"/health"); code != 200 || body != "OK" {
		t.Errorf("/health = %d %q", code, body)
	}
	if code, _ := dnstest.HTTPGet(t, "http://"+d.HTTPAddr("health")+"/ready"); code != 200 {
		t.Errorf("/ready = %d, want 200", code)
	}
	_, body := dnstest.HTTPGet(t, "http://"+d.HTTPAddr("metrics")+"/metrics")
	for _, want := range []string{
		`poddns_dns_requests_total{family="1",proto="udp",type="A",zone="cluster.local."}`,
		`poddns_dns_responses_total{rcode="REFUSED",zone="."} 2`,
		`poddns_dns_store_objects{kind="services"} 9`,
		"poddns_dns_request_duration_seconds_bucket",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
}

func TestReload(t *testing.T) {
	src := dnstest.WriteFile(t, "objects.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: default}\n")
	d := start(t, "", source(src))
	q := dnstest.Case{Qname: "new.default.svc.cluster.local.", Qtype: dns.TypeA}
	if m := dnstest.Exchange(t, d.DNSAddr(), "udp", q.Msg()); m.Rcode != dns.RcodeNameError {
		t.Fatalf("before reload: %s, want NXDOMAIN", dns.RcodeToString[m.Rcode])
	}
	// kubectl get -o yaml's shape: one List, kind after items.
	good := `apiVersion: v1
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: default}
- apiVersion: v1
  kind: Service
  metadata: {name: new, namespace: default}
  spec: {clusterIP: 10.96.9.9}
kind: List
metadata: {resourceVersion: ""}
`
	if err := os.WriteFile(src, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := d.Config()
	cfg.TTL = 7
	if err := d.Reload(cfg); err != nil {
		t.Fatalf("reload: %v", err)
	}
	q.Answer = dnstest.RRs("new.default.svc.cluster.local. 7 IN A 10.96.9.9")
	dnstest.Check(t, q, dnstest.Exchange(t, d.DNSAddr(), "udp", q.Msg()))

	// Bad reloads keep the last good configuration and objects.
	bad := cfg
	bad.Listen = "127.0.0.1:1"
	if err := d.Reload(bad); err == nil {
		t.Error("reload moving the listener succeeded")
	}
	stream := "apiVersion: v1\nkind: Namespace\nmetadata: {name: default}\n---\n" +
		"apiVersion: v1\nkind: Service\nmetadata: {name: new, namespace: default}\nspec: {clusterIP: 10.96.9.9}\n"
	for _, tc := range []struct{ name, body, reason string }{
		{"malformed", "kind: [\n", "parse"},
		{"empty file", "", "incomplete"},
		{"stream cut at ---", stream[:strings.Index(stream, "---")+4], "incomplete"},
		{"whole stream", stream, "incomplete"},
		{"List cut after an item", good[:strings.Index(good, "- apiVersion: v1\n  kind: Service")], "parse"},
		{"List cut before kind", good[:strings.Index(good, "kind: List")], "parse"},
		{"empty List", "apiVersion: v1\nitems: []\nkind: List\n", "empty"},
		{"only skipped kinds", "apiVersion: v1\nitems: [{apiVersion: apps/v1, kind: Deployment, metadata: {name: x}}]\nkind: List\n", "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(src, []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			before := dnstest.MetricValue(t, d.HTTPAddr("metrics"), `poddns_source_reloads_refused_total{reason="`+tc.reason+`"}`)
			if err := d.Reload(cfg); err == nil {
				t.Error("reload succeeded")
			}
			if after := dnstest.MetricValue(t, d.HTTPAddr("metrics"), `poddns_source_reloads_refused_total{reason="`+tc.reason+`"}`); after != before+1 {
				t.Errorf("reloads_refused_total{reason=%q}: %v then %v, want one more", tc.reason, before, after)
			}
			dnstest.Check(t, q, dnstest.Exchange(t, d.DNSAddr(), "udp", q.Msg()))
			if code, body := dnstest.HTTPGet(t, "http://"+d.HTTPAddr("health")+"/ready"); code != http.StatusOK {
				t.Errorf("/ready after a refused reload: %d %s", code, body)
			}
		})
	}
}

func TestLameduck(t *testing.T) {
	d := start(t, "", source(exampleCluster))
	done := make(chan struct{})
	go func() { d.Shutdown(time.Second); close(done) }()
	deadline := time.Now().Add(3 * time.Second)
	for {
		code, _ := dnstest.HTTPGet(t, "http://"+d.HTTPAddr("health")+"/ready")
		if code == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/ready did not fail during lame duck")
		}
		time.Sleep(10 * time.Millisecond) // polling a state change, bounded above
	}
	if code, _ := dnstest.HTTPGet(t, "http://"+d.HTTPAddr("health")+"/health"); code != 200 {
		t.Errorf("/health = %d during lame duck, want 200", code)
	}
	m := dnstest.Exchange(t, d.DNSAddr(), "udp", dnstest.Query("web.default.svc.cluster.local.", dns.TypeA, 0))
	if len(m.Answer) != 1 {
		t.Errorf("DNS not served during lame duck: %v", m)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown did not finish")
	}
}

// TestExampleConfig loads the example configuration file of the README.
func TestExampleConfig(t *testing.T) {
	cfg, err := daemon.Load("../../../testdata/dnsd.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:5353" || cfg.Source.File != "../../../testdata/cluster.yaml" || cfg.Pods != cluster.PodsInsecure || cfg.TTL != 30 {
		t.Errorf("testdata/dnsd.yaml: %+v", cfg)
	}
}

// TestExampleSwitchBlocks: the commented-out queryLog, errors, static, aaaa
// and rewrite blocks of testdata/dnsd.yaml, uncommented, load.
func TestExampleSwitchBlocks(t *testing.T) {
	b, err := os.ReadFile("../../../testdata/dnsd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := header
	names := map[string]bool{"queryLog:": true, "errors:": true, "static:": true, "aaaa:": true, "rewrite:": true}
	blocks := map[string]bool{}
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "# ")
		switch {
		case ok && !in && names[rest]:
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
	cfg, err := daemon.Load(dnstest.WriteFile(t, "dnsd.yaml", out), nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !cfg.QueryLog.Enabled || !cfg.Errors.Enabled || len(cfg.Static) != 2 || cfg.AAAA.Filter != "none" || len(cfg.Rewrite) != 3 {
		t.Errorf("loaded %+v", cfg)
	}
}

// TestPprof: /debug/pprof/ is served only with --pprof-listen, on its own
// address, never on the health or metrics one.
func TestPprof(t *testing.T) {
	off := start(t, "", source(exampleCluster))
	if a := off.HTTPAddr("pprof"); a != "" {
		t.Errorf("pprof listening at %s without --pprof-listen", a)
	}
	if code, _ := dnstest.HTTPGet(t, "http://"+off.HTTPAddr("health")+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ on the health address = %d, want 404", code)
	}
	on := start(t, "", source(exampleCluster), func(c *daemon.Config) { c.PprofListen = "127.0.0.1:0" })
	code, body := dnstest.HTTPGet(t, "http://"+on.HTTPAddr("pprof")+"/debug/pprof/heap?debug=1")
	if code != http.StatusOK || !strings.Contains(body, "heap profile") {
		t.Errorf("/debug/pprof/heap = %d %.80q, want 200 and a heap profile", code, body)
	}
}

// TestNoLoopStarts: with a normal upstream dnsd starts, and the probe went
// to the upstream once.
func TestNoLoopStarts(t *testing.T) {
	var mu sync.Mutex
	var probes []string
	up := dnstest.RawUDPServer(t, func(q *dns.Msg) []*dns.Msg {
		mu.Lock()
		probes = append(probes, q.Question[0].String())
		mu.Unlock()
		m := new(dns.Msg)
		m.SetRcode(q, dns.RcodeNameError)
		return []*dns.Msg{m}
	})
	d := start(t, "", source(exampleCluster), upstreams(up))
	if d.DNSAddr() == "" {
		t.Fatal("not serving")
	}
	// Only the probe has been sent by now (start returned after it).
	mu.Lock()
	defer mu.Unlock()
	if len(probes) != 1 || !strings.Contains(probes[0], ".poddns-loop.\tIN\t HINFO") {
		t.Errorf("upstream saw %q, want one loop probe", probes)
	}
}

// TestLoopRefusesToStart: a dnsd whose upstream is itself does not start;
// Start fails within the probe's bound with an error naming the upstream,
// and logs nothing else but the objects it loaded. (cmd/dnsd tests the
// exit status and the message.)
func TestLoopRefusesToStart(t *testing.T) {
	self := net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreeDNSPort(t)))
	cfg := load(t, "", source(exampleCluster), upstreams(self), func(c *daemon.Config) {
		c.Listen, c.HealthListen, c.MetricsListen = self, "127.0.0.1:0", "127.0.0.1:0"
	})
	var logs syncbuf.Buffer
	d, err := daemon.New(cfg, daemon.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	began := time.Now()
	go func() { done <- d.Start() }()
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("dnsd with itself as upstream still starting after 10s")
	}
	if err == nil {
		t.Cleanup(func() { d.Shutdown(0) })
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("refused to start after %s, want within the 3s probe bound (+ slack)", took)
	}
	if err == nil || !strings.Contains(err.Error(), "forwarding loop through upstream "+self) {
		t.Errorf("Start error %v, want one naming the loop and the upstream %s", err, self)
	}
	if n := strings.Count(logs.String(), "\n"); n > 1 {
		t.Errorf("%d log lines, want only the objects loaded:\n%s", n, logs.String())
	}
}

// TestMinimalAnyInChain: ANY is answered with RFC 8482's HINFO for cluster
// and external names, without asking the upstream; other types are not.
func TestMinimalAnyInChain(t *testing.T) {
	up, n := dnstest.StartUpstream(t, "192.0.2.10")
	d := start(t, "", source(exampleCluster), upstreams(up))
	addr := d.DNSAddr()
	for _, name := range []string{"web.default.svc.cluster.local.", "example.com."} {
		c := dnstest.Case{Qname: name, Qtype: dns.TypeANY, NoAA: true, Answer: dnstest.RRs(name + ` 8482 IN HINFO "RFC8482" ""`)}
		dnstest.Check(t, c, dnstest.Exchange(t, addr, "udp", c.Msg()))
	}
	if got := n.Load(); got != 0 {
		t.Errorf("upstream got %d queries for ANY, want 0", got)
	}
	c := dnstest.Case{Qname: "example.com.", Qtype: dns.TypeA, NoAA: true, Answer: dnstest.RRs("example.com. 60 IN A 192.0.2.10")}
	dnstest.Check(t, c, dnstest.Exchange(t, addr, "udp", c.Msg()))
}
