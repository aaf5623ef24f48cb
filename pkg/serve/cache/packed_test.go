package cache_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/cache"
	"github.com/poddns/poddns/pkg/serve/dnstest"
	"github.com/poddns/poddns/pkg/serve/loadbalance"
)

// packedSink takes packed replies and remembers the last one.
type packedSink struct {
	dnstest.Recorder
	packed *serve.Packed
}

func (s *packedSink) WritePacked(p *serve.Packed) error { s.packed = p; return nil }

// TestHitIsPacked: a hit reaches a writer that takes packed replies as one,
// and its bytes are the reply for that client: its ID, its spelling of the
// question, the remaining TTL in every section's records, AA clear.
func TestHitIsPacked(t *testing.T) {
	clk := newClock()
	up := newUpstream(func(r *dns.Msg) *dns.Msg {
		m := records(dns.RcodeSuccess, []string{"%s 60 IN CNAME b.example.", "b.example. 90 IN A 192.0.2.1"},
			[]string{"example. 120 IN NS ns.example."})(r)
		m.Authoritative = true
		m.Extra = dnstest.RRs("ns.example. 300 IN A 192.0.2.53")
		return m
	})
	c, err := cache.New(cache.Defaults(), cache.Deps{Next: up, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.ServeDNS(context.Background(), &dnstest.Recorder{}, dnstest.Query("a.example.", dns.TypeA, 0)); err != nil {
		t.Fatal(err)
	}
	clk.Advance(7 * time.Second)
	q := dnstest.Query("A.ExAmple.", dns.TypeA, 0)
	q.Id = 0xBEEF
	w := &packedSink{}
	if _, err := c.ServeDNS(context.Background(), w, q); err != nil {
		t.Fatal(err)
	}
	if w.packed == nil || w.Msg != nil {
		t.Fatalf("hit written as a message (%v), want a packed reply", w.Msg)
	}
	if w.packed.Rcode != dns.RcodeSuccess || w.packed.Answers != 2 {
		t.Errorf("packed rcode %d, %d answers; want 0, 2", w.packed.Rcode, w.packed.Answers)
	}
	b, ok := w.packed.Src.AppendWire([]byte("prefix"), nil)
	if !ok || string(b[:6]) != "prefix" {
		t.Fatalf("AppendWire: ok %v, did not append (%q)", ok, b)
	}
	m := new(dns.Msg)
	if err := m.Unpack(b[6:]); err != nil {
		t.Fatal(err)
	}
	if m.Id != 0xBEEF || m.Authoritative {
		t.Errorf("ID %#x, AA %v; want 0xbeef, false", m.Id, m.Authoritative)
	}
	dnstest.Check(t, dnstest.Case{Qname: "A.ExAmple.", Qtype: dns.TypeA, NoAA: true,
		Answer: dnstest.RRs("A.ExAmple. 53 IN CNAME b.example.", "b.example. 53 IN A 192.0.2.1"),
		Ns:     dnstest.RRs("example. 53 IN NS ns.example."),
		Extra:  dnstest.RRs("ns.example. 53 IN A 192.0.2.53")}, m)
	if got, want := m.String(), w.packed.Msg().String(); got != want {
		t.Errorf("packed reply:\n%s\nthe message for writers without packed replies:\n%s", got, want)
	}
}

// TestHitIDs: every client gets its own ID back from the same entry.
func TestHitIDs(t *testing.T) {
	up := newUpstream(records(dns.RcodeSuccess, []string{"%s 60 IN A 192.0.2.1"}, nil))
	_, addr := newCache(t, cache.Deps{Next: up})
	for _, id := range []uint16{1, 0x1234, 0xFFFF, 7} {
		q := dnstest.Query("id.example.", dns.TypeA, 0)
		q.Id = id
		c := &dns.Client{Net: "udp", Timeout: dnstest.Timeout}
		m, _, err := c.Exchange(q, addr)
		if err != nil {
			t.Fatalf("ID %#x: %v", id, err)
		}
		if m.Id != id {
			t.Errorf("reply ID %#x, want %#x", m.Id, id)
		}
	}
	if n := up.n.Load(); n != 1 {
		t.Errorf("upstream asked %d times, want 1", n)
	}
}

// TestHitTTLsAndCaseEverySection: the TTLs of the answer, authority and
// additional records count down together, and the question and the
// records of the question's name follow the client's spelling, on hits
// served through the server.
func TestHitTTLsAndCaseEverySection(t *testing.T) {
	clk := newClock()
	up := newUpstream(func(r *dns.Msg) *dns.Msg {
		m := records(dns.RcodeSuccess, []string{"%s 60 IN A 192.0.2.1", "%s 60 IN A 192.0.2.2"},
			[]string{"example. 100 IN NS ns.example."})(r)
		m.Extra = dnstest.RRs("ns.example. 100 IN A 192.0.2.53")
		return m
	})
	_, addr := newCache(t, cache.Deps{Next: up, Now: clk.Now})
	query(t, addr, "mixed.example.", dns.TypeA)
	for i, name := range []string{"MIXED.example.", "mIxEd.ExAmPlE.", "mixed.example."} {
		clk.Advance(10 * time.Second)
		ttl := 60 - 10*(i+1)
		m := query(t, addr, name, dns.TypeA)
		dnstest.Check(t, dnstest.Case{Qname: name, Qtype: dns.TypeA, NoAA: true,
			Answer: dnstest.RRs(fmt.Sprintf("%s %d IN A 192.0.2.1", name, ttl), fmt.Sprintf("%s %d IN A 192.0.2.2", name, ttl)),
			Ns:     dnstest.RRs(fmt.Sprintf("example. %d IN NS ns.example.", ttl)),
			Extra:  dnstest.RRs(fmt.Sprintf("ns.example. %d IN A 192.0.2.53", ttl))}, m)
		if m.Question[0].Name != name {
			t.Errorf("question %q, want the client's %q", m.Question[0].Name, name)
		}
	}
}

// TestHitShuffledByLoadbalance: with loadbalance in front, hits come in
// more than one order (each with the same records), as replies shuffled
// per query do.
func TestHitShuffledByLoadbalance(t *testing.T) {
	var ans []string
	for i := range 6 {
		ans = append(ans, fmt.Sprintf("%%s 60 IN A 192.0.2.%d", i+1))
	}
	up := newUpstream(records(dns.RcodeSuccess, ans, nil))
	c, err := cache.New(cache.Defaults(), cache.Deps{Next: up})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	lb, err := loadbalance.New(loadbalance.Config{}, loadbalance.Deps{Next: c})
	if err != nil {
		t.Fatal(err)
	}
	addr := dnstest.StartServer(t, lb)
	// Records are compared without their TTLs: the 64 hits may cross a
	// second on a busy machine, and the TTL then ticks from 60 to 59.
	noTTL := func(rrs []dns.RR) []dns.RR {
		for _, rr := range rrs {
			if ttl := rr.Header().Ttl; ttl == 0 || ttl > 60 {
				t.Fatalf("%v: TTL %d, want 1..60", rr, ttl)
			}
			rr.Header().Ttl = 0
		}
		return rrs
	}
	want := dnstest.Strings(noTTL(query(t, addr, "lb.example.", dns.TypeA).Answer))
	slices.Sort(want)
	orders := map[string]bool{}
	firsts := map[string]bool{}
	for range 64 {
		m := query(t, addr, "lb.example.", dns.TypeA)
		var got []string // in the reply's order
		for _, rr := range noTTL(m.Answer) {
			got = append(got, strings.ReplaceAll(rr.String(), "\t", " "))
		}
		firsts[got[0]] = true
		orders[fmt.Sprint(got)] = true
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("hit answered %v, want the records %v", got, want)
		}
	}
	if len(orders) < 2 || len(firsts) < 2 {
		t.Errorf("64 hits came in %d orders with %d different first records; want them shuffled", len(orders), len(firsts))
	}
	if n := up.n.Load(); n != 1 {
		t.Errorf("upstream asked %d times, want 1", n)
	}
}

// TestHitFitsClient: a hit larger than the client's UDP size (512 without
// EDNS, its advertised size with) is truncated with TC set; one that fits
// is whole, with an OPT record exactly when the query had one.
func TestHitFitsClient(t *testing.T) {
	var ans []string
	for i := range 40 {
		ans = append(ans, fmt.Sprintf("%%s 60 IN A 192.0.2.%d", i+1))
	}
	up := newUpstream(records(dns.RcodeSuccess, ans, nil))
	_, addr := newCache(t, cache.Deps{Next: up})
	name := "big.example."
	if m := dnstest.Exchange(t, addr, "tcp", dnstest.Query(name, dns.TypeA, 0)); len(m.Answer) != 40 || m.Truncated {
		t.Fatalf("over TCP: %d answers, TC %v; want 40, false", len(m.Answer), m.Truncated)
	}
	for _, tc := range []struct {
		bufsize   uint16
		truncated bool
		opt       bool
	}{{0, true, false}, {600, true, true}, {1232, false, true}, {4096, false, true}} {
		m := dnstest.Exchange(t, addr, "udp", dnstest.Query(name, dns.TypeA, tc.bufsize))
		size := 512
		if tc.bufsize > 0 {
			size = int(min(tc.bufsize, serve.MaxUDPSize))
		}
		m.Compress = true // as sent: Len is then the wire size
		if m.Truncated != tc.truncated || m.Len() > size {
			t.Errorf("bufsize %d: TC %v, %d bytes, %d answers; want TC %v within %d bytes", tc.bufsize, m.Truncated, m.Len(), len(m.Answer), tc.truncated, size)
		}
		if !tc.truncated && len(m.Answer) != 40 {
			t.Errorf("bufsize %d: %d answers, want 40", tc.bufsize, len(m.Answer))
		}
		if opt := m.IsEdns0(); (opt != nil) != tc.opt || (opt != nil && opt.UDPSize() != serve.MaxUDPSize) {
			t.Errorf("bufsize %d: OPT %v, want one (size %d): %v", tc.bufsize, opt, serve.MaxUDPSize, tc.opt)
		}
	}
	if n := up.n.Load(); n != 1 {
		t.Errorf("upstream asked %d times, want 1 (every UDP reply a hit)", n)
	}
}

// TestHitDOBit: a query with DO set is answered from its own entry (with
// the records its upstream answer had for DO), never from a query's
// without, and the reverse; the reply's OPT record is dnsd's, DO clear.
func TestHitDOBit(t *testing.T) {
	up := newUpstream(func(r *dns.Msg) *dns.Msg {
		ans := []string{"%s 60 IN A 192.0.2.1"}
		if opt := r.IsEdns0(); opt != nil && opt.Do() {
			ans = append(ans, "%s 60 IN RRSIG A 8 2 60 20300101000000 20200101000000 1 example. AAAA")
		}
		return records(dns.RcodeSuccess, ans, nil)(r)
	})
	_, addr := newCache(t, cache.Deps{Next: up})
	mk := func(do bool) *dns.Msg {
		m := dnstest.Query("do.example.", dns.TypeA, 0)
		m.SetEdns0(1232, do)
		return m
	}
	for round := range 3 {
		for _, do := range []bool{false, true} {
			m := dnstest.Exchange(t, addr, "udp", mk(do))
			want := 1
			if do {
				want = 2
			}
			if len(m.Answer) != want {
				t.Errorf("round %d DO %v: %d answers, want %d", round, do, len(m.Answer), want)
			}
			if opt := m.IsEdns0(); opt == nil || opt.Do() {
				t.Errorf("round %d DO %v: OPT %v, want dnsd's (DO clear)", round, do, opt)
			}
		}
	}
	if n := up.n.Load(); n != 2 {
		t.Errorf("upstream asked %d times, want 2 (one entry per DO bit)", n)
	}
}

// BenchmarkCacheHitPacked is BenchmarkCacheHit on a writer that takes
// packed replies, assembling the bytes as the server's writer does.
func BenchmarkCacheHitPacked(b *testing.B) {
	w := &assembler{buf: make([]byte, 0, 512)}
	benchmarkCacheHit(b, w)
	if w.n == 0 {
		b.Fatal("not served packed")
	}
}

type assembler struct {
	dnstest.Recorder
	buf []byte
	n   int
}

func (a *assembler) WritePacked(p *serve.Packed) error {
	b, ok := p.Src.AppendWire(a.buf[:0], p.Shuffle)
	if ok {
		a.n = len(b)
	}
	return nil
}
