package daemon_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/internal/syncbuf"
	"github.com/poddns/poddns/pkg/serve/daemon"
	"github.com/poddns/poddns/pkg/serve/dnstest"
)

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
	file := dnstest.WriteFile(t, "dnsd.yaml", header+`errors: {enabled: true, consolidate: 1h}
forward: {tryTimeout: 200ms, deadline: 500ms}
`)
	var logs syncbuf.Buffer
	d := dnstest.StartDaemon(t, load(t, file, podsSource(t), upstreams(dead)), daemon.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
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

// TestQueryLogWired: with the queryLog block, a query from a pod's IP is
// logged with the pod's namespace and name and where the answer came from
// (cluster, upstream, then cache). (cmd/dnsd tests --query-log.)
func TestQueryLogWired(t *testing.T) {
	up, _ := dnstest.StartUpstream(t, "192.0.2.10")
	out := dnstest.WriteFile(t, "queries.log", "") // the query log appends
	cfg := dnstest.WriteFile(t, "dnsd.yaml", header+`queryLog:
  enabled: true
  output: `+out+`
`)
	d := start(t, cfg, podsSource(t), upstreams(up))
	ask := func(name string, qtype uint16) {
		t.Helper()
		askFrom(t, "127.0.0.41", d.DNSAddr(), dnstest.Query(name, qtype, 0))
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
}
