package metrics_test

import (
	"context"
	"errors"
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

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	st := store.New()
	st.Replace(store.Objects{Namespaces: []*store.Namespace{{Name: "default"}}})
	next := serve.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		if r.Question[0].Qtype == dns.TypeMX {
			return dns.RcodeServerFailure, errors.New("boom")
		}
		m := serve.NewRequest(w, r).Reply(dns.RcodeNameError)
		return dns.RcodeNameError, w.WriteMsg(m)
	})
	ms, err := metrics.NewMetrics(reg, st)
	if err != nil {
		t.Fatal(err)
	}
	m, err := metrics.New(metrics.Config{}, metrics.Deps{Next: next, Metrics: ms, Zones: []string{"cluster.local."}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := serve.NewServer(serve.Options{Addr: "127.0.0.1:0", Handler: m, UDPSockets: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	dnstest.Exchange(t, srv.Addr(), "udp", dnstest.Query("a.default.svc.Cluster.Local.", dns.TypeA, 0))
	dnstest.Exchange(t, srv.Addr(), "tcp", dnstest.Query("example.com.", dns.TypeAAAA, 0))
	dnstest.Exchange(t, srv.Addr(), "udp", dnstest.Query("example.com.", dns.TypeMX, 0))
	dnstest.Exchange(t, srv.Addr(), "udp", dnstest.Query("example.com.", dns.TypeNAPTR, 0))

	want := `
# HELP poddns_dns_requests_total DNS queries received, by zone, transport, client address family and query type.
# TYPE poddns_dns_requests_total counter
poddns_dns_requests_total{family="1",proto="tcp",type="AAAA",zone="."} 1
poddns_dns_requests_total{family="1",proto="udp",type="A",zone="cluster.local."} 1
poddns_dns_requests_total{family="1",proto="udp",type="MX",zone="."} 1
poddns_dns_requests_total{family="1",proto="udp",type="other",zone="."} 1
# HELP poddns_dns_responses_total DNS replies sent, by zone and rcode.
# TYPE poddns_dns_responses_total counter
poddns_dns_responses_total{rcode="NXDOMAIN",zone="."} 2
poddns_dns_responses_total{rcode="NXDOMAIN",zone="cluster.local."} 1
poddns_dns_responses_total{rcode="SERVFAIL",zone="."} 1
# HELP poddns_dns_errors_total Errors returned by DNS handlers, by handler.
# TYPE poddns_dns_errors_total counter
poddns_dns_errors_total{handler="func"} 1
# HELP poddns_dns_store_objects Objects in the record store, by kind.
# TYPE poddns_dns_store_objects gauge
poddns_dns_store_objects{kind="endpoints"} 0
poddns_dns_store_objects{kind="endpointslices"} 0
poddns_dns_store_objects{kind="namespaces"} 1
poddns_dns_store_objects{kind="pods"} 0
poddns_dns_store_objects{kind="services"} 0
# HELP poddns_dns_store_synced 1 once the record store has synced with its source.
# TYPE poddns_dns_store_synced gauge
poddns_dns_store_synced 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "poddns_dns_requests_total", "poddns_dns_responses_total",
		"poddns_dns_errors_total", "poddns_dns_store_objects", "poddns_dns_store_synced"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "poddns_dns_request_duration_seconds"); err != nil || n != 4 {
		t.Errorf("duration series: %d, %v; want 4", n, err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil || len(problems) > 0 {
		t.Errorf("promlint: %v %v", problems, err)
	}
}

func TestNewNeedsMetrics(t *testing.T) {
	if _, err := metrics.New(metrics.Config{}, metrics.Deps{}); err == nil {
		t.Error("New without metrics succeeded")
	}
	reg := prometheus.NewRegistry()
	if _, err := metrics.NewMetrics(reg, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := metrics.NewMetrics(reg, nil); err == nil {
		t.Error("registering twice succeeded")
	}
}
