package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve/cluster"
	"github.com/poddns/poddns/pkg/serve/daemon"
	"github.com/poddns/poddns/pkg/serve/dnstest"
)

const exampleCluster = "../../testdata/cluster.yaml"

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func loadArgs(t *testing.T, args ...string) (daemon.Config, error) {
	t.Helper()
	cmd, err := parseArgs(args, io.Discard)
	if err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return cmd.load()
}

func TestConfigPrecedence(t *testing.T) {
	file := writeFile(t, "dnsd.yaml", `
apiVersion: poddns.io/v1alpha1
kind: DNSDConfig
listen: 127.0.0.1:1053
zones: [example.internal]
ttl: 10
pods: verified
source: {file: /from/file.yaml}
lameduck: 2s
`)
	cfg, err := loadArgs(t, "--config", file, "--listen", "127.0.0.1:2053", "--source", exampleCluster)
	if err != nil {
		t.Fatal(err)
	}
	// Flags win; the file wins over defaults; defaults fill the rest.
	if cfg.Listen != "127.0.0.1:2053" || cfg.Source.File != exampleCluster {
		t.Errorf("flags did not override: listen %q source %+v", cfg.Listen, cfg.Source)
	}
	if cfg.TTL != 10 || cfg.Pods != cluster.PodsVerified || cfg.Zones[0] != "example.internal" || cfg.Lameduck.D() != 2*time.Second {
		t.Errorf("file values lost: %+v", cfg)
	}
	if cfg.HealthListen != daemon.DefaultHealthListen || cfg.MetricsListen != daemon.DefaultMetricsListen || cfg.LogLevel != "info" {
		t.Errorf("defaults lost: %+v", cfg)
	}
	// Flags alone, with their defaults.
	cfg, err = loadArgs(t, "--source", exampleCluster, "--zone", "a.test", "--zone", "b.test", "--ttl", "0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != daemon.DefaultListen || len(cfg.Zones) != 2 || cfg.TTL != 0 || cfg.Pods != cluster.PodsInsecure {
		t.Errorf("flags only: %+v", cfg)
	}
}

// TestFlagsOverFile: a flag given wins over the file whatever its value,
// zero and empty included; a source or upstream flag replaces the file's
// source or upstreams as a whole.
func TestFlagsOverFile(t *testing.T) {
	file := writeFile(t, "dnsd.yaml", `
apiVersion: poddns.io/v1alpha1
kind: DNSDConfig
udpSockets: 4
pprofListen: 127.0.0.1:6060
ttl: 10
source: {kubeconfig: /from/file}
forward: {resolvConf: /etc/resolv.conf}
`)
	cfg, err := loadArgs(t, "--config", file, "--udp-sockets=0", "--pprof-listen=", "--ttl=0", "--source", exampleCluster,
		"--upstream", "192.0.2.1", "--upstream", "192.0.2.2")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.UDPSockets != 0 || cfg.PprofListen != "" || cfg.TTL != 0 {
		t.Errorf("zero flags lost to the file: udpSockets %d, pprofListen %q, ttl %d", cfg.UDPSockets, cfg.PprofListen, cfg.TTL)
	}
	if cfg.Source != (daemon.SourceConfig{File: exampleCluster}) {
		t.Errorf("--source did not replace the file's source: %+v", cfg.Source)
	}
	if cfg.Forward.ResolvConf != "" || strings.Join(cfg.Forward.Upstreams, ",") != "192.0.2.1,192.0.2.2" {
		t.Errorf("--upstream did not replace the file's upstreams: %v %q", cfg.Forward.Upstreams, cfg.Forward.ResolvConf)
	}
	// Both source flags given is an error, as both in the file.
	if _, err := loadArgs(t, "--config", file, "--source", "a", "--kubeconfig", "b"); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("--source and --kubeconfig: err = %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	header := "apiVersion: poddns.io/v1alpha1\nkind: DNSDConfig\n"
	for _, tc := range []struct {
		name string
		file string // config file content, "" for none
		args []string
		want string
	}{
		{"unknown field", header + "lissten: x\n", nil, "unknown field"},
		{"wrong kind", "apiVersion: poddns.io/v1alpha1\nkind: Policy\n", nil, "kind"},
		{"empty file", "\n", nil, "no document"},
		{"field case", header + "Listen: x\n", nil, "unknown field"},
		{"second document", header + "---\n" + header, nil, "2 documents"},
		{"both sources", header + "source: {file: a, kubeconfig: b}\n", nil, "not both"},
		{"pods", "", []string{"--source", "x", "--pods", "maybe"}, "pods"},
		{"ttl", "", []string{"--source", "x", "--ttl", "4000"}, "ttl"},
		{"listen", "", []string{"--source", "x", "--listen", "nope"}, "listen"},
		{"log level", "", []string{"--source", "x", "--log-level", "loud"}, "logLevel"},
		{"zone", "", []string{"--source", "x", "--zone", "a..b"}, "zone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = append(args, "--config", writeFile(t, "c.yaml", tc.file))
			}
			if _, err := loadArgs(t, args...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// startDaemon runs a daemon on loopback ports chosen by the kernel.
func startDaemon(t *testing.T, source string) *daemon.Daemon {
	t.Helper()
	return startDaemonArgs(t, "--source", source)
}

// startDaemonArgs runs a daemon with args on loopback ports chosen by the
// kernel.
func startDaemonArgs(t *testing.T, args ...string) *daemon.Daemon {
	t.Helper()
	cfg, err := loadArgs(t, append(args, "--listen", "127.0.0.1:0", "--health-listen", "127.0.0.1:0",
		"--metrics-listen", "127.0.0.1:0", "--udp-sockets", "2")...)
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.New(cfg, daemon.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Shutdown(0) })
	return d
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestQuickStart is the README's quick start: the example cluster served,
// and the dig it shows answered, over UDP and TCP.
func TestQuickStart(t *testing.T) {
	d := startDaemon(t, exampleCluster)
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
	if code, body := get(t, "http://"+d.HTTPAddr("health")+"/health"); code != 200 || body != "OK" {
		t.Errorf("/health = %d %q", code, body)
	}
	if code, _ := get(t, "http://"+d.HTTPAddr("health")+"/ready"); code != 200 {
		t.Errorf("/ready = %d, want 200", code)
	}
	_, body := get(t, "http://"+d.HTTPAddr("metrics")+"/metrics")
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
	src := writeFile(t, "objects.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: default}\n")
	d := startDaemon(t, src)
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
			before := metricValue(t, d, `poddns_source_reloads_refused_total{reason="`+tc.reason+`"}`)
			if err := d.Reload(cfg); err == nil {
				t.Error("reload succeeded")
			}
			if after := metricValue(t, d, `poddns_source_reloads_refused_total{reason="`+tc.reason+`"}`); after != before+1 {
				t.Errorf("reloads_refused_total{reason=%q}: %v then %v, want one more", tc.reason, before, after)
			}
			dnstest.Check(t, q, dnstest.Exchange(t, d.DNSAddr(), "udp", q.Msg()))
			if code, body := get(t, "http://"+d.HTTPAddr("health")+"/ready"); code != http.StatusOK {
				t.Errorf("/ready after a refused reload: %d %s", code, body)
			}
		})
	}
}

// metricValue is the value of the sample line of /metrics that starts with
// series, or 0 without one.
func metricValue(t *testing.T, d *daemon.Daemon, series string) float64 {
	t.Helper()
	_, body := get(t, "http://"+d.HTTPAddr("metrics")+"/metrics")
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return 0
}

func TestLameduck(t *testing.T) {
	d := startDaemon(t, exampleCluster)
	done := make(chan struct{})
	go func() { d.Shutdown(time.Second); close(done) }()
	deadline := time.Now().Add(3 * time.Second)
	for {
		code, _ := get(t, "http://"+d.HTTPAddr("health")+"/ready")
		if code == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/ready did not fail during lame duck")
		}
		time.Sleep(10 * time.Millisecond) // polling a state change, bounded above
	}
	if code, _ := get(t, "http://"+d.HTTPAddr("health")+"/health"); code != 200 {
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

func TestRun(t *testing.T) {
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"--bogus"}, &stderr, nil); code != 2 {
		t.Errorf("bad flag: exit %d, want 2", code)
	}
	stderr.Reset()
	if code := run(context.Background(), []string{"--kubeconfig", "/nonexistent"}, &stderr, nil); code != 1 || !strings.Contains(stderr.String(), "kubeconfig /nonexistent") {
		t.Errorf("--kubeconfig: exit %d, stderr %q", code, stderr.String())
	}
	stderr.Reset()
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	if code := run(context.Background(), nil, &stderr, nil); code != 1 || !strings.Contains(stderr.String(), "in-cluster") {
		t.Errorf("no source outside a cluster: exit %d, stderr %q", code, stderr.String())
	}
	sigs := make(chan os.Signal, 2)
	sigs <- syscall.SIGHUP
	sigs <- syscall.SIGTERM
	stderr.Reset()
	code := run(context.Background(), []string{"--source", exampleCluster, "--listen", "127.0.0.1:0", "--health-listen", "127.0.0.1:0",
		"--metrics-listen", "127.0.0.1:0", "--lameduck", "0s"}, &stderr, sigs)
	if code != 0 {
		t.Errorf("exit %d, want 0; stderr:\n%s", code, stderr.String())
	}
	for _, want := range []string{`"msg":"serving DNS"`, `"msg":"reloaded"`, `"msg":"shutting down"`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("log has no %s:\n%s", want, stderr.String())
		}
	}
}

// TestExampleConfig loads the example configuration file of the README.
func TestExampleConfig(t *testing.T) {
	cfg, err := loadArgs(t, "--config", "../../testdata/dnsd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:5353" || cfg.Source.File != "../../testdata/cluster.yaml" || cfg.Pods != cluster.PodsInsecure || cfg.TTL != 30 {
		t.Errorf("testdata/dnsd.yaml: %+v", cfg)
	}
}

// TestPprof: /debug/pprof/ is served only with --pprof-listen, on its own
// address, never on the health or metrics one.
func TestPprof(t *testing.T) {
	off := startDaemon(t, exampleCluster)
	if a := off.HTTPAddr("pprof"); a != "" {
		t.Errorf("pprof listening at %s without --pprof-listen", a)
	}
	if code, _ := get(t, "http://"+off.HTTPAddr("health")+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ on the health address = %d, want 404", code)
	}
	on := startDaemonArgs(t, "--source", exampleCluster, "--pprof-listen", "127.0.0.1:0")
	code, body := get(t, "http://"+on.HTTPAddr("pprof")+"/debug/pprof/heap?debug=1")
	if code != http.StatusOK || !strings.Contains(body, "heap profile") {
		t.Errorf("/debug/pprof/heap = %d %.80q, want 200 and a heap profile", code, body)
	}
	if _, err := loadArgs(t, "--source", exampleCluster, "--pprof-listen", "nohost"); err == nil || !strings.Contains(err.Error(), "pprofListen") {
		t.Errorf("--pprof-listen nohost: err = %v, want a pprofListen error", err)
	}
}
