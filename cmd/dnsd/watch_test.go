package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/internal/syncbuf"
	"github.com/poddns/poddns/pkg/serve/dnstest"
)

// TestConfigWatch: a ConfigMap-style ..data swap of the config file and of
// the objects file (the source) applies without a signal; an invalid or
// empty config, and an empty, truncated or malformed objects file, are
// refused (logged and counted) and the last good state keeps serving.
func TestConfigWatch(t *testing.T) {
	dir := t.TempDir()
	// One List, kind after items (kubectl get -o yaml): reloads accept it.
	const web = `apiVersion: v1
items:
- apiVersion: v1
  kind: Service
  metadata: {name: web, namespace: shop}
  spec: {type: ClusterIP, clusterIP: 10.96.0.20, clusterIPs: [10.96.0.20]}
kind: List
`
	webAndAPI := strings.Replace(web, "kind: List\n", `- apiVersion: v1
  kind: Service
  metadata: {name: api, namespace: shop}
  spec: {type: ClusterIP, clusterIP: 10.96.0.21, clusterIPs: [10.96.0.21]}
kind: List
`, 1)
	gen := 0
	// swap is kubelet's atomic update of a ConfigMap volume holding both
	// files: a new timestamped directory, ..data switched to it by rename,
	// the files' own names symlinks through ..data.
	swap := func(config, objects string) {
		t.Helper()
		gen++
		ts := filepath.Join(dir, "..gen"+strings.Repeat("x", gen))
		if err := os.Mkdir(ts, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, content := range map[string]string{"dnsd.yaml": config, "cluster.yaml": objects} {
			if err := os.WriteFile(filepath.Join(ts, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"dnsd.yaml", "cluster.yaml"} {
			if _, err := os.Lstat(filepath.Join(dir, name)); err != nil {
				if err := os.Symlink("..data/"+name, filepath.Join(dir, name)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	config := func(ttl int) string {
		return "apiVersion: poddns.io/v1alpha1\nkind: DNSDConfig\nreload: 20ms\nttl: " + string(rune('0'+ttl)) + "\nsource: {file: " + filepath.Join(dir, "cluster.yaml") + "}\n" +
			"listen: 127.0.0.1:0\nhealthListen: 127.0.0.1:0\nmetricsListen: 127.0.0.1:0\nlameduck: 0s\n"
	}
	swap(config(7), web)
	addr, waitLog := runForLogs(t, filepath.Join(dir, "dnsd.yaml"))
	metrics := waitLog(`"msg":"serving DNS".*"metrics":"([^"]+)"`, 1)[1]
	answers := func(name string) int {
		return len(dnstest.Exchange(t, addr, "udp", dnstest.Query(name, dns.TypeA, 0)).Answer)
	}
	ttl := func() uint32 {
		r := dnstest.Exchange(t, addr, "udp", dnstest.Query("web.shop.svc.cluster.local.", dns.TypeA, 0))
		if len(r.Answer) != 1 {
			t.Fatalf("answer %v", r.Answer)
		}
		return r.Answer[0].Header().Ttl
	}
	if got := ttl(); got != 7 {
		t.Fatalf("ttl %d, want 7", got)
	}
	applied, refused := 0, 0
	swap(config(3), web)
	applied++
	waitLog(`"msg":"reloaded".*"trigger":"file changed"`, applied)
	if got := ttl(); got != 3 {
		t.Errorf("after the swap: ttl %d, want 3", got)
	}
	// The objects file, swapped the same way.
	swap(config(3), webAndAPI)
	applied++
	waitLog(`"msg":"reloaded".*"trigger":"file changed"`, applied)
	if n := answers("api.shop.svc.cluster.local."); n != 1 {
		t.Errorf("a Service added to the objects file: %d answers, want 1", n)
	}
	for i, bad := range []string{"", "apiVersion: poddns.io/v1alpha1\nkind: DNSDConfig\nttl: 9999\n", "apiVersion: poddns.io/v1alpha1\nkind: DNSDConfig\nttl: [\n"} {
		swap(bad, webAndAPI)
		refused++
		waitLog(`"msg":"reload failed, keeping the last good configuration","trigger":"file changed"`, refused)
		if got := ttl(); got != 3 {
			t.Errorf("after invalid config %d: ttl %d, want the last good 3", i, got)
		}
	}
	// Bad objects files under the good config: the last good objects keep
	// serving, and each refusal is counted with its reason.
	for _, bad := range []struct{ name, objects, reason string }{
		{"empty", "", "incomplete"},
		{"truncated before kind", webAndAPI[:strings.Index(webAndAPI, "kind: List")], "parse"},
		{"malformed", "kind: [\n", "parse"},
	} {
		key := `poddns_source_reloads_refused_total{reason="` + bad.reason + `"}`
		before := dnstest.MetricValue(t, metrics, key)
		swap(config(3), bad.objects)
		refused++
		waitLog(`"msg":"reload failed, keeping the last good configuration","trigger":"file changed"`, refused)
		if n := answers("api.shop.svc.cluster.local."); n != 1 {
			t.Errorf("after a %s objects file: api has %d answers, want the last good 1", bad.name, n)
		}
		if after := dnstest.MetricValue(t, metrics, key); after != before+1 {
			t.Errorf("after a %s objects file: %s went %v -> %v, want one more", bad.name, key, before, after)
		}
	}
	// poddns_config_reloads_total counts what the log says: every reload
	// applied and every one refused (nothing changes any more: the counts
	// are final).
	logs := waitLog(`(?s).+`, 1)[0] // the whole log so far
	for result, line := range map[string]string{"applied": `"msg":"reloaded"`, "refused": `"msg":"reload failed, keeping the last good configuration"`} {
		want := len(regexp.MustCompile(line).FindAllString(logs, -1))
		if got := dnstest.MetricValue(t, metrics, `poddns_config_reloads_total{result="`+result+`"}`); got != float64(want) || want < map[string]int{"applied": applied, "refused": refused}[result] {
			t.Errorf("poddns_config_reloads_total{result=%q} = %v, the log has %d such reloads", result, got, want)
		}
	}
}

// TestCAWatch: a change of a tls:// upstream's CA file (tlsCA) reloads the
// configuration: a CA that does not sign the upstream's certificate makes
// its queries fail, the right one back makes them answered.
func TestCAWatch(t *testing.T) {
	ca, other := dnstest.NewTLSCA(t), dnstest.NewTLSCA(t)
	up, _ := dnstest.StartTLSUpstream(t, ca, "192.0.2.10")
	good, err := os.ReadFile(ca.File)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := os.ReadFile(other.File)
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := filepath.Abs("../../testdata/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	put := func(b []byte) {
		t.Helper()
		if err := os.WriteFile(caFile+".tmp", b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(caFile+".tmp", caFile); err != nil {
			t.Fatal(err)
		}
	}
	put(good)
	config := dnstest.WriteFile(t, "dnsd.yaml", "apiVersion: poddns.io/v1alpha1\nkind: DNSDConfig\nreload: 20ms\nsource: {file: "+cluster+"}\n"+
		"listen: 127.0.0.1:0\nhealthListen: 127.0.0.1:0\nmetricsListen: 127.0.0.1:0\nlameduck: 0s\n"+
		"forward: {upstreams: [\""+up+"\"], tlsServerName: "+dnstest.TLSServerName+", tlsCA: "+caFile+", tryTimeout: 300ms, deadline: 600ms}\ncache: {disabled: true}\n")
	addr, waitLog := runForLogs(t, config)
	rcode := func() string {
		return dns.RcodeToString[dnstest.Exchange(t, addr, "udp", dnstest.Query("example.com.", dns.TypeA, 0)).Rcode]
	}
	if got := rcode(); got != "NOERROR" {
		t.Fatalf("rcode %s with the upstream's CA, want NOERROR", got)
	}
	put(bad)
	waitLog(`"msg":"reloaded".*"trigger":"file changed"`, 1)
	if got := rcode(); got != "SERVFAIL" {
		t.Errorf("rcode %s with another CA, want SERVFAIL", got)
	}
	put(good)
	waitLog(`"msg":"reloaded".*"trigger":"file changed"`, 2)
	if got := rcode(); got != "NOERROR" {
		t.Errorf("rcode %s with the upstream's CA back, want NOERROR", got)
	}
}

// runForLogs runs dnsd with config until the test ends (failing it when
// dnsd exits other than 0) and returns once it serves DNS: its address and
// waitLog, waitForLog on its logs.
func runForLogs(t *testing.T, config string) (addr string, waitLog func(re string, n int) []string) {
	t.Helper()
	var logs syncbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() { done <- run(ctx, []string{"--config", config}, &logs, nil) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("exit %d:\n%s", code, logs.String())
		}
	})
	waitLog = func(re string, n int) []string { t.Helper(); return waitForLog(t, &logs, re, n) }
	return waitLog(`"msg":"serving DNS","listen":"([^"]+)"`, 1)[1], waitLog
}

// waitForLog waits up to 5 seconds for the n-th line of logs matching re
// and returns its submatches.
func waitForLog(t *testing.T, logs *syncbuf.Buffer, re string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if m := regexp.MustCompile(re).FindAllStringSubmatch(logs.String(), -1); len(m) >= n {
			return m[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %d lines matching %s in the log:\n%s", n, re, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
