package cluster_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/cluster"
	"github.com/poddns/poddns/pkg/serve/dnstest"
	"github.com/poddns/poddns/pkg/serve/filesource"
	"github.com/poddns/poddns/pkg/serve/loadbalance"
)

// packedCount counts the replies written below it as serve.Packed (the
// memo's) and passes everything on.
type packedCount struct {
	serve.Handler
	n *atomic.Int32
}

func (p packedCount) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	return p.Handler.ServeDNS(ctx, &packedCountWriter{ResponseWriter: w, n: p.n}, r)
}

type packedCountWriter struct {
	dns.ResponseWriter
	n *atomic.Int32
}

func (w *packedCountWriter) WritePacked(p *serve.Packed) error {
	w.n.Add(1)
	return serve.WritePacked(w.ResponseWriter, p)
}

// TestMemoSameReply: a name asked again is answered from the memo (packed)
// with the reply the handler builds for that query: the client's ID,
// spelling, RD and CD bits and EDNS (an OPT record without DO), for every
// kind of name; the message path is a fresh handler's through a writer
// that takes no packed replies.
func TestMemoSameReply(t *testing.T) {
	st := newStore(t, fixture)
	var packed atomic.Int32
	addr := dnstest.StartServer(t, packedCount{Handler: newHandler(t, st, nil), n: &packed})
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{web, dns.TypeA},
		{"_http._tcp." + web, dns.TypeSRV},
		{db, dns.TypeA},
		{"db-0." + db, dns.TypeAAAA},
		{"20.0.96.10.in-addr.arpa.", dns.TypePTR},
		{"10-244-1-10.default.pod.cluster.local.", dns.TypeA},
		{"nosuch.default.svc.cluster.local.", dns.TypeA},
		{web, dns.TypeMX},
		{"cluster.local.", dns.TypeSOA},
	} {
		dnstest.Exchange(t, addr, "udp", dnstest.Query(q.name, q.qtype, 0)) // fills the memo
		for _, v := range []struct {
			name          string
			id            uint16
			rd, cd        bool
			bufsize       uint16
			do, upperCase bool
		}{
			{name: "plain", id: 1},
			{name: "case, RD", id: 0xBEEF, rd: true, upperCase: true},
			{name: "CD, EDNS with DO", id: 0xFFFF, cd: true, bufsize: 1232, do: true},
			{name: "EDNS 4096, RD and CD", id: 7, rd: true, cd: true, bufsize: 4096},
		} {
			t.Run(q.name+"/"+dns.TypeToString[q.qtype]+"/"+v.name, func(t *testing.T) {
				qname := q.name
				if v.upperCase {
					qname = strings.ToUpper(qname[:3]) + qname[3:]
				}
				req := dnstest.Query(qname, q.qtype, v.bufsize)
				req.Id, req.RecursionDesired, req.CheckingDisabled = v.id, v.rd, v.cd
				if v.do {
					req.IsEdns0().SetDo()
				}
				before := packed.Load()
				got := dnstest.Exchange(t, addr, "udp", req)
				if packed.Load() != before+1 {
					t.Errorf("not answered from the memo (%d packed replies, want %d)", packed.Load(), before+1)
				}
				rec := &dnstest.Recorder{}
				if _, err := serve.Handle(context.Background(), newHandler(t, st, nil), rec, req); err != nil {
					t.Fatal(err)
				}
				b, err := rec.Msg.Pack()
				if err != nil {
					t.Fatal(err)
				}
				want := new(dns.Msg)
				if err := want.Unpack(b); err != nil {
					t.Fatal(err)
				}
				if got.String() != want.String() {
					t.Errorf("from the memo:\n%s\nbuilt:\n%s", got, want)
				}
			})
		}
	}
}

// TestMemoNewSnapshot: a change in the store shows in the next reply to a
// name the memo holds.
func TestMemoNewSnapshot(t *testing.T) {
	st := newStore(t, fixture)
	addr := dnstest.StartServer(t, newHandler(t, st, nil))
	ask := func() string {
		m := dnstest.Exchange(t, addr, "udp", dnstest.Query(web, dns.TypeA, 0))
		if len(m.Answer) != 1 {
			t.Fatalf("answer %v, want one A record", m.Answer)
		}
		return m.Answer[0].(*dns.A).A.String()
	}
	for range 2 {
		if ip := ask(); ip != "10.96.0.20" {
			t.Fatalf("web is %s, want 10.96.0.20", ip)
		}
	}
	res, err := filesource.Read(strings.NewReader(strings.ReplaceAll(fixture, "10.96.0.20", "10.96.0.99")), "changed")
	if err != nil {
		t.Fatal(err)
	}
	st.Replace(res.Objects)
	if ip := ask(); ip != "10.96.0.99" {
		t.Errorf("after the change web is %s, want 10.96.0.99", ip)
	}
}

// TestMemoShuffled: with loadbalance in front, a headless Service's
// addresses from the memo come in more than one order, each with every
// address.
func TestMemoShuffled(t *testing.T) {
	st := newStore(t, bigHeadless(6))
	lb, err := loadbalance.New(loadbalance.Config{}, loadbalance.Deps{Next: newHandler(t, st, nil)})
	if err != nil {
		t.Fatal(err)
	}
	addr := dnstest.StartServer(t, lb)
	const big = "big.default.svc.cluster.local."
	orders := map[string]bool{}
	for range 32 {
		m := dnstest.Exchange(t, addr, "udp", dnstest.Query(big, dns.TypeA, 0))
		if len(m.Answer) != 6 {
			t.Fatalf("%d answers, want 6", len(m.Answer))
		}
		var ips []string
		seen := map[string]bool{}
		for _, rr := range m.Answer {
			ip := rr.(*dns.A).A.String()
			ips, seen[ip] = append(ips, ip), true
		}
		if len(seen) != 6 {
			t.Fatalf("answer %v: an address twice", ips)
		}
		orders[strings.Join(ips, ",")] = true
	}
	if len(orders) < 2 {
		t.Errorf("32 replies came in one order %v: not shuffled", orders)
	}
}

// TestMemoSize: the memo keeps at most Deps.MemoSize replies (of names
// asked twice, no more than that many are answered from it the second
// time, and a name asked again at once is), and a negative size keeps none.
func TestMemoSize(t *testing.T) {
	names := []string{web, db, "nosuch.default.svc.cluster.local.", "20.0.96.10.in-addr.arpa.", "cluster.local."}
	for _, tc := range []struct {
		size, most int
		again      bool // a name asked twice in a row comes from the memo
	}{{0, len(names), true}, {2, 2, true}, {-1, 0, false}} {
		st := newStore(t, fixture)
		var packed atomic.Int32
		h := newHandler(t, st, func(_ *cluster.Config, d *cluster.Deps) { d.MemoSize = tc.size })
		addr := dnstest.StartServer(t, packedCount{Handler: h, n: &packed})
		ask := func(n string) { dnstest.Exchange(t, addr, "udp", dnstest.Query(n, dns.TypeA, 0)) }
		for _, n := range names {
			ask(n)
		}
		for _, n := range names {
			ask(n)
		}
		if got := int(packed.Load()); got > tc.most || (tc.size == 0 && got != len(names)) {
			t.Errorf("MemoSize %d: %d of the %d names asked again came from the memo, want at most %d (all with the default)", tc.size, got, len(names), tc.most)
		}
		before := packed.Load()
		ask(web)
		ask(web)
		if got := packed.Load() > before; got != tc.again {
			t.Errorf("MemoSize %d: a name asked twice in a row came from the memo: %v, want %v", tc.size, got, tc.again)
		}
	}
}
