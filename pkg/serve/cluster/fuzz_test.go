package cluster_test

import (
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/dnstest"
	"github.com/poddns/poddns/pkg/serve/metrics"
	"github.com/poddns/poddns/pkg/serve/store"
)

// newChain is what dnsd runs per query of the cluster zones: the metrics
// handler (with the store's metrics), then the cluster handler over st, in
// front of serve.Refused.
func newChain(tb testing.TB, st *store.Store) serve.Handler {
	tb.Helper()
	ms, err := metrics.NewMetrics(prometheus.NewRegistry(), st)
	if err != nil {
		tb.Fatal(err)
	}
	m, err := metrics.New(metrics.Config{}, metrics.Deps{Next: newHandler(tb, st, nil), Metrics: ms, Zones: []string{"cluster.local."}})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// FuzzChain feeds random packets through dnsd's chain (metrics, cluster,
// refused) as the server does: whatever unpacks is handled, and the reply
// must be well formed — it packs, answers the same ID as a response, and
// fits the client's limit — or not be written at all (responses are
// dropped). Nothing may panic.
func FuzzChain(f *testing.F) {
	m := newChain(f, newStore(f, fixture))
	for _, q := range []struct {
		name  string
		qtype uint16
		edns  uint16
	}{
		{web, dns.TypeA, 0}, {db, dns.TypeSRV, 1232}, {"_postgres._tcp." + db, dns.TypeSRV, 0},
		{"20.0.96.10.in-addr.arpa.", dns.TypePTR, 0}, {"10-244-1-10.default.pod.cluster.local.", dns.TypeA, 4096},
		{"alias.default.svc.cluster.local.", dns.TypeA, 0}, {"example.com.", dns.TypeAAAA, 0},
	} {
		b, err := dnstest.Query(q.name, q.qtype, q.edns).Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b, true)
	}
	f.Fuzz(func(t *testing.T, packet []byte, tcp bool) {
		req := new(dns.Msg)
		if err := req.Unpack(packet); err != nil {
			return // miekg answers FORMERR or drops it before the chain
		}
		w := &dnstest.Recorder{TCP: tcp}
		_, _ = serve.Handle(t.Context(), m, w, req)
		if req.Response {
			if w.Writes != 0 {
				t.Fatalf("answered a response: %v", w.Msg)
			}
			return
		}
		if w.Writes != 1 {
			t.Fatalf("%d replies written, want 1", w.Writes)
		}
		reply := w.Msg
		b, err := reply.Pack()
		if err != nil {
			t.Fatalf("reply does not pack: %v\n%v", err, reply)
		}
		if reply.Id != req.Id || !reply.Response {
			t.Fatalf("reply id %d response %v, want id %d and QR", reply.Id, reply.Response, req.Id)
		}
		limit := dns.MaxMsgSize
		if !tcp {
			limit = serve.MaxUDPSize
		}
		if len(b) > limit {
			t.Fatalf("reply is %d bytes, limit %d", len(b), limit)
		}
		if (req.IsEdns0() != nil) != (reply.IsEdns0() != nil) {
			t.Fatalf("query OPT %v but reply OPT %v", req.IsEdns0(), reply.IsEdns0())
		}
	})
}
