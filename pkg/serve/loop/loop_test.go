package loop_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/dnstest"
	"github.com/poddns/poddns/pkg/serve/forward"
	"github.com/poddns/poddns/pkg/serve/loop"
)

// startDNSD serves loop → forward on loopback, with the upstreams ups plus,
// when self is set, the server's own address: a forwarding loop. It
// returns the handler and the server's address.
func startDNSD(t *testing.T, self bool, ups ...string) (*loop.Loop, string) {
	t.Helper()
	a := serve.NewAtomic(serve.Refused)
	addr := dnstest.StartServer(t, a)
	if self {
		ups = append(ups, addr)
	}
	f := dnstest.Forward(t, ups, forward.Deps{}, dnstest.Timeouts(500*time.Millisecond, time.Second),
		func(c *forward.Config) { c.Policy = forward.Sequential })
	l, err := loop.New(loop.Config{}, loop.Deps{Next: f, Forwarder: f})
	if err != nil {
		t.Fatal(err)
	}
	a.Store(l)
	return l, addr
}

// check runs Check within 3s and times it.
func check(t *testing.T, l *loop.Loop) ([]string, time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	un, err := l.Check(ctx)
	return un, time.Since(start), err
}

func TestLoopToItself(t *testing.T) {
	l, addr := startDNSD(t, true)
	un, took, err := check(t, l)
	var le *loop.Error
	if !errors.As(err, &le) || le.Upstream != addr || le.Seen != loop.Threshold+1 || !strings.HasSuffix(le.Probe, ".poddns-loop.") {
		t.Fatalf("Check = %v, %v; want a loop through %s cut after %d arrivals", un, err, addr, loop.Threshold+1)
	}
	if !strings.Contains(err.Error(), "forwarding loop through upstream "+addr) {
		t.Errorf("error %q does not name the upstream", err)
	}
	if took > time.Second {
		t.Errorf("loop found after %s, want at once", took)
	}
	if un != nil {
		t.Errorf("unanswered = %v, want none", un)
	}
}

// TestLoopAmongUpstreams: one looping upstream among good ones is found
// and named every time, the good ones are not.
func TestLoopAmongUpstreams(t *testing.T) {
	good := dnstest.RawUDPServer(t, nxdomain(nil))
	l, self := startDNSD(t, true, good)
	for range 3 {
		_, _, err := check(t, l)
		if err == nil || !strings.Contains(err.Error(), "upstream "+self+":") || strings.Contains(err.Error(), good) {
			t.Fatalf("Check = %v, want a loop through %s only", err, self)
		}
	}
}

func TestNoLoop(t *testing.T) {
	var mu sync.Mutex
	var seen []dns.Question
	up := dnstest.RawUDPServer(t, nxdomain(func(q dns.Question) { mu.Lock(); seen = append(seen, q); mu.Unlock() }))
	l, _ := startDNSD(t, false, up)
	un, _, err := check(t, l)
	if err != nil || un != nil {
		t.Fatalf("Check = %v, %v; want no loop, every upstream answered", un, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0].Qtype != dns.TypeHINFO || !dns.IsSubDomain(loop.Zone, seen[0].Name) || dns.CountLabel(seen[0].Name) != 3 {
		t.Errorf("upstream saw %v, want one probe <random>.<random>.%s HINFO", seen, loop.Zone)
	}
}

func TestSilentUpstreamUnchecked(t *testing.T) {
	silent := dnstest.RawUDPServer(t, func(*dns.Msg) []*dns.Msg { return nil })
	l, _ := startDNSD(t, false, silent)
	un, took, err := check(t, l)
	if err != nil || len(un) != 1 || un[0] != silent {
		t.Errorf("Check = %v, %v; want no loop and %s unanswered", un, err, silent)
	}
	if took > 2*time.Second {
		t.Errorf("Check took %s, want within the forwarder's 1s deadline (+ slack)", took)
	}
}

// TestOtherNamesHandedOn: with no probe in flight, names under the zone go
// to Next like any other.
func TestOtherNamesHandedOn(t *testing.T) {
	up := dnstest.RawUDPServer(t, nxdomain(nil))
	_, addr := startDNSD(t, false, up)
	m := dnstest.Exchange(t, addr, "udp", dnstest.Query("a.b."+loop.Zone, dns.TypeHINFO, 0))
	if m.Rcode != dns.RcodeNameError {
		t.Errorf("rcode %s, want the upstream's NXDOMAIN", dns.RcodeToString[m.Rcode])
	}
}

// nxdomain answers NXDOMAIN, telling seen each question.
func nxdomain(seen func(dns.Question)) func(q *dns.Msg) []*dns.Msg {
	return func(q *dns.Msg) []*dns.Msg {
		if seen != nil {
			seen(q.Question[0])
		}
		m := new(dns.Msg)
		m.SetRcode(q, dns.RcodeNameError)
		return []*dns.Msg{m}
	}
}
