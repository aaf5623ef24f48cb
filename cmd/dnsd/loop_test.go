package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve/dnstest"
)

// freePort returns a loopback address whose UDP and TCP ports were both
// free a moment ago (dnsd listens on both).
func freePort(t *testing.T) string {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := pc.LocalAddr().String()
		l, err := net.Listen("tcp", addr)
		pc.Close()
		if err == nil {
			l.Close()
			return addr
		}
	}
	t.Fatal("no free UDP+TCP port on 127.0.0.1")
	return ""
}

// TestLoopRefusesToStart: a dnsd whose upstream is itself does not start;
// run returns 1 within a bounded time with an error naming the upstream.
func TestLoopRefusesToStart(t *testing.T) {
	self := freePort(t)
	var stderr bytes.Buffer
	done := make(chan int, 1)
	start := time.Now()
	go func() {
		done <- run(context.Background(), []string{"--source", exampleCluster, "--listen", self, "--upstream", self,
			"--health-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"}, &stderr, nil)
	}()
	select {
	case code := <-done:
		if code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("dnsd with itself as upstream still running after 10s")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("refused to start after %s, want within the 3s probe bound (+ slack)", took)
	}
	out := stderr.String()
	t.Logf("stderr:\n%s", out)
	if !strings.Contains(out, "cannot start") || !strings.Contains(out, "forwarding loop through upstream "+self) {
		t.Errorf("stderr does not name the loop and the upstream %s:\n%s", self, out)
	}
	if n := strings.Count(out, "\n"); n > 2 {
		t.Errorf("%d log lines, want a short, clear error:\n%s", n, out)
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
	d := startDaemonArgs(t, "--source", exampleCluster, "--upstream", up)
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

// TestMinimalAnyInChain: ANY is answered with RFC 8482's HINFO for cluster
// and external names, without asking the upstream; other types are not.
func TestMinimalAnyInChain(t *testing.T) {
	up, n := startUpstream(t, "192.0.2.10")
	d := startDaemonArgs(t, "--source", exampleCluster, "--upstream", up)
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
