package metrics_test

import (
	"context"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/dnstest"
	"github.com/poddns/poddns/pkg/serve/metrics"
	"github.com/poddns/poddns/pkg/serve/store"
)

// TestPackedReplyCounted: a packed reply (a cache hit) is counted with its
// rcode and passed on packed.
func TestPackedReplyCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	ms, err := metrics.NewMetrics(reg, store.New())
	if err != nil {
		t.Fatal(err)
	}
	var pr *dnstest.PackedReply
	next := serve.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		pr = &dnstest.PackedReply{M: serve.NewRequest(w, r).Reply(dns.RcodeNameError)}
		return dns.RcodeNameError, serve.WritePacked(w, pr.Packed())
	})
	m, err := metrics.New(metrics.Config{}, metrics.Deps{Next: next, Metrics: ms})
	if err != nil {
		t.Fatal(err)
	}
	rec := &dnstest.Recorder{}
	if _, err := serve.Handle(context.Background(), m, rec, dnstest.Query("example.com.", dns.TypeA, 0)); err != nil {
		t.Fatal(err)
	}
	if rec.Msg == nil || rec.Msg.Rcode != dns.RcodeNameError || pr.MsgCalls.Load() != 0 {
		t.Errorf("reply %v, message made %d times; want the packed NXDOMAIN", rec.Msg, pr.MsgCalls.Load())
	}
	want := `
# HELP poddns_dns_responses_total DNS replies sent, by zone and rcode.
# TYPE poddns_dns_responses_total counter
poddns_dns_responses_total{rcode="NXDOMAIN",zone="."} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "poddns_dns_responses_total"); err != nil {
		t.Error(err)
	}
}
