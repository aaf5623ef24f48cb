package daemon_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/daemon"
	"github.com/poddns/poddns/pkg/serve/dnstest"
)

// TestMetricsLint runs promlint over everything a dnsd registers (every
// handler's metrics, the store's, the source's), not only one package's.
func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := daemon.Defaults()
	cfg.Source.File = exampleCluster
	cfg.Forward.Upstreams = []string{"127.0.0.1:1"}
	if _, err := daemon.New(cfg, daemon.Options{Registry: reg}); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "poddns_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "poddns_") {
			n++
		}
	}
	// Vectors without series are not gathered: the plain metrics of every
	// handler and of the store are.
	if n < 12 {
		t.Errorf("%d poddns metrics gathered, want the handlers' too (at least 12)", n)
	}
}

// TestMetricsCountQueriesReceived: the metrics handler counts the queries
// dnsd receives, not the lookups the chain makes of itself: the external
// target of an ExternalName Service is asked of the chain behind it.
func TestMetricsCountQueriesReceived(t *testing.T) {
	up := dnstest.StartServer(t, serve.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		m := new(dns.Msg)
		m.SetReply(r)
		if r.Question[0].Name == "search.example.com." && r.Question[0].Qtype == dns.TypeA {
			m.Answer = dnstest.RRs("search.example.com. 60 IN A 192.0.2.10")
		}
		return dns.RcodeSuccess, w.WriteMsg(m)
	}))
	objects, err := filepath.Abs(exampleCluster)
	if err != nil {
		t.Fatal(err)
	}
	d := start(t, dnstest.WriteFile(t, "dnsd.yaml", "apiVersion: poddns.io/v1alpha1\nkind: DNSDConfig\nsource: {file: "+objects+"}\nforward: {upstreams: [\""+up+"\"]}\n"))
	const search = "search.default.svc.cluster.local."
	r := dnstest.Exchange(t, d.DNSAddr(), "udp", dnstest.Query(search, dns.TypeA, 0))
	if diff := dnstest.Diff(r.Answer, dnstest.RRs(search+" 30 IN CNAME search.example.com.", "search.example.com. 60 IN A 192.0.2.10")); diff != "" {
		t.Fatalf("answer:\n%s", diff)
	}
	_, body := dnstest.HTTPGet(t, "http://"+d.HTTPAddr("metrics")+"/metrics")
	var requests []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "poddns_dns_requests_total{") {
			requests = append(requests, l)
		}
	}
	if want := `poddns_dns_requests_total{family="1",proto="udp",type="A",zone="cluster.local."} 1`; len(requests) != 1 || requests[0] != want {
		t.Errorf("requests counted:\n%s\nwant only %s", strings.Join(requests, "\n"), want)
	}
}
