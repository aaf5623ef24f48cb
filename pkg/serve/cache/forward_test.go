package cache_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/poddns/poddns/pkg/configfile"
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
			fwd := dnstest.Forward(t, []string{up}, forward.Deps{}, dnstest.Timeouts(100*time.Millisecond, 300*time.Millisecond))
			clk := newClock()
			_, addr := newCache(t, cache.Deps{Next: fwd, Now: clk.Now}, func(c *cache.Config) { c.ServeStale = configfile.Duration(stale) })
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

// upQuestion is what the upstream saw of one query: the cache key's parts.
type upQuestion struct {
	name          string // lower-cased
	qtype, qclass uint16
	do, cd        bool
}

// TestCoalesceConcurrentMisses runs cache → forward against a real UDP
// upstream on loopback that holds its replies until every caller is
// waiting: 8 concurrent misses of each of 6 keys (differing in qtype,
// class, DO, CD or name; the name spelt differently by each caller) cost
// exactly one upstream query per key, and every caller gets its key's
// answer with its own ID and its own spelling of the question.
func TestCoalesceConcurrentMisses(t *testing.T) {
	const perKey = 8
	release := make(chan struct{})
	var mu sync.Mutex
	var seen []upQuestion
	up := dnstest.RawUDPServer(t, func(q *dns.Msg) []*dns.Msg {
		qq := q.Question[0]
		u := upQuestion{name: strings.ToLower(qq.Name), qtype: qq.Qtype, qclass: qq.Qclass, cd: q.CheckingDisabled}
		if opt := q.IsEdns0(); opt != nil {
			u.do = opt.Do()
		}
		mu.Lock()
		seen = append(seen, u)
		mu.Unlock()
		<-release
		m := new(dns.Msg)
		m.SetReply(q)
		if qq.Qclass == dns.ClassINET {
			m.Answer = dnstest.RRs(strings.ToLower(qq.Name) + " 60 IN " + dns.TypeToString[qq.Qtype] + " " + addrFor(u))
		} // CHAOS: an empty NOERROR, which is not cached
		return []*dns.Msg{m}
	})
	c, m := slowUpstreamCache(t, up)

	keys := []upQuestion{
		{name: "co.example.", qtype: dns.TypeA, qclass: dns.ClassINET},
		{name: "co.example.", qtype: dns.TypeAAAA, qclass: dns.ClassINET},
		{name: "co.example.", qtype: dns.TypeA, qclass: dns.ClassINET, do: true},
		{name: "co.example.", qtype: dns.TypeA, qclass: dns.ClassINET, cd: true},
		{name: "co.example.", qtype: dns.TypeA, qclass: dns.ClassCHAOS},
		{name: "other.example.", qtype: dns.TypeA, qclass: dns.ClassINET},
	}
	type call struct {
		key   upQuestion
		q     *dns.Msg
		rec   *dnstest.Recorder
		rcode int
		err   error
	}
	var calls []*call
	for ki, k := range keys {
		for i := range perKey {
			// Each caller spells the name its own way (0x20).
			b := []byte(k.name)
			for j := range b {
				if (i>>(j%3))&1 == 1 && b[j] >= 'a' && b[j] <= 'z' {
					b[j] -= 'a' - 'A'
				}
			}
			q := new(dns.Msg)
			q.SetQuestion(string(b), k.qtype)
			q.Question[0].Qclass = k.qclass
			q.Id = uint16(1000 + ki*perKey + i)
			q.CheckingDisabled = k.cd
			if k.do {
				q.SetEdns0(1232, true)
			}
			calls = append(calls, &call{key: k, q: q, rec: &dnstest.Recorder{}})
		}
	}
	var wg sync.WaitGroup
	for _, cl := range calls {
		wg.Go(func() { cl.rcode, cl.err = c.ServeDNS(context.Background(), cl.rec, cl.q) })
	}
	want := float64(len(keys) * (perKey - 1))
	for deadline := time.Now().Add(20 * time.Second); testutil.ToFloat64(m.Coalesced()) < want; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			close(release)
			wg.Wait()
			t.Fatalf("after 20s, %v callers wait for a flight, want %v", testutil.ToFloat64(m.Coalesced()), want)
		}
	}
	close(release)
	wg.Wait()

	mu.Lock()
	got := slices.Clone(seen)
	mu.Unlock()
	slices.SortFunc(got, cmpQuestion)
	slices.SortFunc(keys, cmpQuestion)
	if !slices.Equal(got, keys) {
		t.Errorf("the upstream received\n\t%v\nwant each key once:\n\t%v", got, keys)
	}
	if n := testutil.ToFloat64(m.Coalesced()); n != want {
		t.Errorf("poddns_cache_coalesced_total = %v, want %v", n, want)
	}
	for _, cl := range calls {
		r := cl.rec.Msg
		label := fmt.Sprintf("caller %d (%s %s class %d DO %v CD %v)", cl.q.Id, cl.q.Question[0].Name,
			dns.TypeToString[cl.key.qtype], cl.key.qclass, cl.key.do, cl.key.cd)
		if cl.err != nil || cl.rcode != dns.RcodeSuccess || r == nil || cl.rec.Writes != 1 {
			t.Errorf("%s: rcode %d, err %v, %d writes, reply %v", label, cl.rcode, cl.err, cl.rec.Writes, r)
			continue
		}
		if r.Id != cl.q.Id || len(r.Question) != 1 || r.Question[0] != cl.q.Question[0] || r.Rcode != dns.RcodeSuccess {
			t.Errorf("%s: reply ID %d, question %v, rcode %d; want ID %d, question %v, NOERROR", label, r.Id, r.Question, r.Rcode, cl.q.Id, cl.q.Question[0])
		}
		var wantAnswer []dns.RR
		if cl.key.qclass == dns.ClassINET {
			wantAnswer = dnstest.RRs(cl.q.Question[0].Name + " 60 IN " + dns.TypeToString[cl.key.qtype] + " " + addrFor(cl.key))
		}
		if d := dnstest.Diff(r.Answer, wantAnswer); d != "" {
			t.Errorf("%s: answer:\n%s", label, d)
		}
	}
}

// TestCoalesceWaiterGivesUp: a caller waiting for a flight whose context
// ends gets SERVFAIL at once; the flight goes on and answers its leader.
func TestCoalesceWaiterGivesUp(t *testing.T) {
	release := make(chan struct{})
	var n atomic.Int32
	up := dnstest.RawUDPServer(t, func(q *dns.Msg) []*dns.Msg {
		n.Add(1)
		<-release
		m := new(dns.Msg)
		m.SetReply(q)
		m.Answer = dnstest.RRs(q.Question[0].Name + " 60 IN A 192.0.2.1")
		return []*dns.Msg{m}
	})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	c, _ := slowUpstreamCache(t, up)

	leader := &dnstest.Recorder{}
	done := make(chan int, 1)
	go func() {
		rcode, _ := c.ServeDNS(context.Background(), leader, dnstest.Query("slow.example.", dns.TypeA, 0))
		done <- rcode
	}()
	for deadline := time.Now().Add(10 * time.Second); n.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the leader's query did not reach the upstream")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	waiter := &dnstest.Recorder{}
	start := time.Now()
	rcode, err := c.ServeDNS(ctx, waiter, dnstest.Query("slow.example.", dns.TypeA, 0))
	if took := time.Since(start); rcode != dns.RcodeServerFailure || err == nil || waiter.Msg != nil || took > 5*time.Second {
		t.Errorf("waiter: rcode %d, err %v, reply %v after %s; want SERVFAIL with the context's error, no reply, about 100ms",
			rcode, err, waiter.Msg, took)
	}
	close(release)
	if rcode := <-done; rcode != dns.RcodeSuccess || leader.Msg == nil || len(leader.Msg.Answer) != 1 {
		t.Errorf("leader: rcode %d, reply %v; want the answer", rcode, leader.Msg)
	}
	if got := n.Load(); got != 1 {
		t.Errorf("the upstream received %d queries, want 1", got)
	}
}

// addrFor is the address the coalescing test's upstream answers for a key,
// different for each key.
func addrFor(u upQuestion) string {
	last := 1
	switch {
	case u.do:
		last = 2
	case u.cd:
		last = 3
	case u.name == "other.example.":
		last = 4
	}
	if u.qtype == dns.TypeAAAA {
		return fmt.Sprintf("2001:db8::%d", last)
	}
	return fmt.Sprintf("192.0.2.%d", last)
}

func cmpQuestion(a, b upQuestion) int {
	return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
}

// slowUpstreamCache is a cache in front of a forwarder to up whose timeouts
// leave the upstream all the time it wants (it holds replies back on
// purpose), with the cache's metrics.
func slowUpstreamCache(t *testing.T, up string) (*cache.Cache, *cache.Metrics) {
	t.Helper()
	fwd := dnstest.Forward(t, []string{up}, forward.Deps{}, dnstest.Timeouts(20*time.Second, 30*time.Second))
	m, _ := cache.NewMetrics(nil)
	c, err := cache.New(cache.Defaults(), cache.Deps{Next: fwd, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, m
}
