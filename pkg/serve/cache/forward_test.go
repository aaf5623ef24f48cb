package cache_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve/cache"
	"github.com/poddns/poddns/pkg/serve/dnstest"
	"github.com/poddns/poddns/pkg/serve/forward"
)

// TestStaleWhenUpstreamSilent runs cache → forward against a real UDP
// upstream on loopback that falls silent: with serve-stale the client gets
// the expired answer once the forwarder's deadline passed, without it
// SERVFAIL, both within the deadline (+ slack).
func TestStaleWhenUpstreamSilent(t *testing.T) {
	for _, stale := range []time.Duration{0, time.Hour} {
		t.Run(stale.String(), func(t *testing.T) {
			var silent atomic.Bool
			up := dnstest.RawUDPServer(t, func(q *dns.Msg) []*dns.Msg {
				if silent.Load() {
					return nil
				}
				m := new(dns.Msg)
				m.SetReply(q)
				m.Answer = dnstest.RRs(q.Question[0].Name + " 60 IN A 192.0.2.1")
				return []*dns.Msg{m}
			})
			fwd, err := forward.New(forward.Options{Upstreams: []string{up},
				TryTimeout: 100 * time.Millisecond, Deadline: 300 * time.Millisecond, HealthCheck: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(fwd.Close)
			clk := newClock()
			_, addr := newCache(t, cache.Options{Next: fwd, Now: clk.Now, ServeStale: stale})
			m := query(t, addr, "ext.example.", dns.TypeA)
			dnstest.Check(t, dnstest.Case{Qname: "ext.example.", Qtype: dns.TypeA, NoAA: true, Answer: dnstest.RRs("ext.example. 60 IN A 192.0.2.1")}, m)
			silent.Store(true)
			clk.Advance(61 * time.Second)
			start := time.Now()
			m = query(t, addr, "ext.example.", dns.TypeA)
			if took := time.Since(start); took > time.Second {
				t.Errorf("answer after %s, want within the 300ms deadline (+ slack)", took)
			}
			want := dnstest.Case{Qname: "ext.example.", Qtype: dns.TypeA, NoAA: true, Rcode: dns.RcodeServerFailure}
			if stale > 0 {
				want = dnstest.Case{Qname: "ext.example.", Qtype: dns.TypeA, NoAA: true, Answer: dnstest.RRs("ext.example. 30 IN A 192.0.2.1")}
			}
			dnstest.Check(t, want, m)
		})
	}
}
