package forward_test

import (
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/poddns/poddns/pkg/serve/dnstest"
	"github.com/poddns/poddns/pkg/serve/forward"
)

// recordingUpstream answers A queries with 192.0.2.1 and records each
// query's source port and name as received; lower, when set, answers with
// the name lower-cased (an upstream that does not keep case).
type recordingUpstream struct {
	addr  string
	mu    sync.Mutex
	ports []int
	names []string
}

func newRecordingUpstream(t testing.TB, lower bool) *recordingUpstream {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &recordingUpstream{addr: pc.LocalAddr().String()}
	dnstest.ServeRawUDP(t, pc, func(q *dns.Msg, from net.Addr) []*dns.Msg {
		if len(q.Question) != 1 {
			return nil
		}
		u.mu.Lock()
		u.ports = append(u.ports, from.(*net.UDPAddr).Port)
		u.names = append(u.names, q.Question[0].Name)
		u.mu.Unlock()
		m := answerA("192.0.2.1")(q)[0]
		if lower {
			m.Question[0].Name = strings.ToLower(m.Question[0].Name)
			m.Answer[0].Header().Name = m.Question[0].Name
		}
		return []*dns.Msg{m}
	})
	return u
}

// TestSourcePortsRandom: over 5,000 forwarded queries, at least 4,500
// distinct source ports spread over a range of at least 16k (Linux's
// default ephemeral range has 28,232 ports: about 4,580 distinct expected).
// A pooled socket (the code this replaced) used one port for all of them.
func TestSourcePortsRandom(t *testing.T) {
	const queries = 5000
	up := newRecordingUpstream(t, false)
	f := newForward(t, forward.Deps{}, func(c *forward.Config) { c.Upstreams = []string{up.addr} })
	q := dnstest.Query("example.com.", dns.TypeA, 0)
	for i := range queries {
		w := &dnstest.Recorder{}
		if rc, err := f.ServeDNS(t.Context(), w, q); err != nil || rc != dns.RcodeSuccess {
			t.Fatalf("query %d: %s %v", i, dns.RcodeToString[rc], err)
		}
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if len(up.ports) != queries {
		t.Fatalf("upstream saw %d queries, want %d", len(up.ports), queries)
	}
	distinct := map[int]bool{}
	for _, p := range up.ports {
		distinct[p] = true
	}
	spread := slices.Max(up.ports) - slices.Min(up.ports)
	t.Logf("%d queries: %d distinct source ports, %d..%d", queries, len(distinct), slices.Min(up.ports), slices.Max(up.ports))
	if len(distinct) < 4500 || spread < 16384 {
		t.Errorf("%d distinct source ports over a range of %d, want at least 4500 over at least 16384", len(distinct), spread)
	}
}

// TestRandomizeCase: with 0x20 on, names reach an upstream that keeps case
// in random case, and the client gets its own spelling back; an upstream
// that lower-cases is detected on its first reply (counted, the query
// answered by an immediate retry with the client's spelling) and then gets
// names unchanged.
func TestRandomizeCase(t *testing.T) {
	const name = "abcdefghijklmnopqrstuvwxyz.example." // 33 letters
	t.Run("echoing upstream", func(t *testing.T) {
		up := newRecordingUpstream(t, false)
		fm, _ := forward.NewMetrics(nil)
		f := newForward(t, forward.Deps{Metrics: fm}, func(c *forward.Config) { c.Upstreams = []string{up.addr}; c.RandomizeCase = true })
		for range 10 {
			w := &dnstest.Recorder{}
			f.ServeDNS(t.Context(), w, dnstest.Query(name, dns.TypeA, 0))
			dnstest.Check(t, dnstest.Case{Qname: name, Qtype: dns.TypeA, NoAA: true, Answer: dnstest.RRs(name + " 60 IN A 192.0.2.1")}, w.Msg)
		}
		up.mu.Lock()
		defer up.mu.Unlock()
		spellings := map[string]bool{}
		for _, n := range up.names {
			if !strings.EqualFold(n, name) {
				t.Fatalf("upstream got %q", n)
			}
			spellings[n] = true
		}
		if len(spellings) < 9 || spellings[name] {
			t.Errorf("10 queries reached the upstream in %d spellings (the client's among them: %v), want random case", len(spellings), spellings[name])
		}
		if n := testutil.ToFloat64(fm.CaseMismatches(up.addr)); n != 0 {
			t.Errorf("case mismatches %v, want 0", n)
		}
	})
	t.Run("upstream that does not keep case", func(t *testing.T) {
		up := newRecordingUpstream(t, true)
		fm, _ := forward.NewMetrics(nil)
		f := newForward(t, forward.Deps{Metrics: fm}, func(c *forward.Config) { c.Upstreams = []string{up.addr}; c.RandomizeCase = true })
		for i := range 3 {
			w := &dnstest.Recorder{}
			rc, err := f.ServeDNS(t.Context(), w, dnstest.Query(name, dns.TypeA, 0))
			if err != nil || rc != dns.RcodeSuccess {
				t.Fatalf("query %d: %s %v", i, dns.RcodeToString[rc], err)
			}
			dnstest.Check(t, dnstest.Case{Qname: name, Qtype: dns.TypeA, NoAA: true, Answer: dnstest.RRs(name + " 60 IN A 192.0.2.1")}, w.Msg)
		}
		if n := testutil.ToFloat64(fm.CaseMismatches(up.addr)); n != 1 {
			t.Errorf("case mismatches %v, want 1 (detected once, then remembered)", n)
		}
		up.mu.Lock()
		defer up.mu.Unlock()
		// The first query twice (0x20, then as spelt), then as spelt.
		if len(up.names) != 4 || up.names[0] == name || up.names[1] != name || up.names[2] != name || up.names[3] != name {
			t.Errorf("upstream got %q, want one 0x20 spelling then the client's three times", up.names)
		}
	})
}
