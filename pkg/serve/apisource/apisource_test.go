package apisource_test

import (
	"context"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientfeatures "k8s.io/client-go/features"
	clientfeaturestesting "k8s.io/client-go/features/testing"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/apisource"
	"github.com/poddns/poddns/pkg/serve/cluster"
	"github.com/poddns/poddns/pkg/serve/dnstest"
	"github.com/poddns/poddns/pkg/serve/store"
)

// pollAnswer queries until check accepts the reply, at most 10s; it
// returns how long that took.
func pollAnswer(t *testing.T, addr string, q *dns.Msg, check func(*dns.Msg) bool) time.Duration {
	t.Helper()
	start := time.Now()
	for i := 0; ; i++ {
		m := dnstest.Exchange(t, addr, "udp", q)
		if check(m) {
			return time.Since(start)
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("after %d queries in %s: last reply\n%v", i+1, time.Since(start), m)
		}
		time.Sleep(5 * time.Millisecond) // polling the effect of an API write, bounded above
	}
}

// TestAPISource runs the source against a real API server: SERVFAIL until
// synced, then Services, EndpointSlices, Pods and Namespaces created, changed
// and deleted through the API show in the answers. It logs the time from API
// write to changed answer, as the client sees it. It runs twice: with
// client-go's streaming lists (WatchList, which kube-apiserver serves: no
// page is listed) and with WatchList off, as against an API server without
// it (paged lists, pages of 2 objects here, converted page by page).
func TestAPISource(t *testing.T) {
	for _, tc := range []struct {
		name      string
		watchList bool
	}{{"watchlist", true}, {"paged list", false}} {
		t.Run(tc.name, func(t *testing.T) {
			clientfeaturestesting.SetFeatureDuringTest(t, clientfeatures.WatchListClient, tc.watchList)
			t.Cleanup(apisource.SetPageSize(2))
			testAPISource(t, tc.watchList)
		})
	}
}

func testAPISource(t *testing.T, watchList bool) {
	env := testenv.Start(t)
	ctx := t.Context()
	c := env.Client
	testenv.Create(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "dns"}})
	testenv.Create(t, c, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "dns"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.5.5", Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})
	for _, n := range []string{"a", "b", "c"} { // more than a page of 2
		testenv.Create(t, c, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "extra-" + n, Namespace: "dns"},
			Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone}})
	}
	// A pod with an IP is a record; one without (not yet scheduled) is not.
	for _, n := range []string{"p1", "p2"} {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: "dns"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}}
		testenv.Create(t, c, p)
		if n == "p1" {
			p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.9.1", PodIPs: []corev1.PodIP{{IP: "10.244.9.1"}}}
			if err := c.Status().Update(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	pagesBefore := apisource.PagesListed()

	st := store.New()
	h, err := cluster.New(cluster.Defaults(), cluster.Deps{Store: st, Next: serve.Refused})
	if err != nil {
		t.Fatal(err)
	}
	addr := dnstest.StartServer(t, h)
	q := dnstest.Query("web.dns.svc.cluster.local.", dns.TypeA, 0)
	if m := dnstest.Exchange(t, addr, "udp", q); m.Rcode != dns.RcodeServerFailure {
		t.Fatalf("before sync: %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}

	srcCtx, cancel := context.WithCancel(ctx)
	reg := prometheus.NewRegistry()
	src, err := apisource.Start(srcCtx, apisource.Options{Config: env.Config, Store: st, Pods: true, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); src.Shutdown() })
	select {
	case <-src.Synced():
	case <-time.After(30 * time.Second):
		t.Fatal("not synced after 30s")
	}
	dnstest.Check(t, dnstest.Case{Qname: q.Question[0].Name, Qtype: dns.TypeA,
		Answer: dnstest.RRs("web.dns.svc.cluster.local. 30 IN A 10.96.5.5")}, dnstest.Exchange(t, addr, "tcp", q))
	n := st.Snapshot().Counts()
	if n.Services != 5 || n.Pods != 1 || n.Namespaces < 5 { // 4 + default's kubernetes; the namespaces of the API server and dns
		t.Errorf("synced counts %+v, want 5 Services, 1 Pod (the one with an IP), at least 5 namespaces", n)
	}
	pages := apisource.PagesListed() - pagesBefore
	// With WatchList on, the initial state is streamed (no page) if the API
	// server can: kube-apiserver refuses it over etcd 3.4.23 (no
	// RequestWatchProgress), and then the source falls back to paged
	// lists as with WatchList off.
	switch {
	case watchList && pages == 0:
		t.Log("initial state streamed (WatchList)")
	case pages < 4+3+1:
		t.Errorf("%d pages listed, want the 4 kinds in pages of 2 (Services and namespaces: 3 each)", pages)
	default:
		t.Logf("initial state listed in %d pages of 2", pages)
	}

	// A new headless Service with an EndpointSlice.
	testenv.Create(t, c, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "dns"},
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "pg", Port: 5432}}}})
	hostname, ready, port, pname := "db-0", true, int32(5432), "pg"
	testenv.Create(t, c, &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "db-1", Namespace: "dns", Labels: map[string]string{discoveryv1.LabelServiceName: "db"},
			Annotations: map[string]string{corev1.EndpointsLastChangeTriggerTime: time.Now().Format(time.RFC3339Nano)}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &pname, Port: &port}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.7"}, Hostname: &hostname,
			Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
	})
	lat := pollAnswer(t, addr, dnstest.Query("db-0.db.dns.svc.cluster.local.", dns.TypeA, 0), func(m *dns.Msg) bool { return len(m.Answer) == 1 })
	t.Logf("create Service+EndpointSlice -> endpoint answered: %s", lat)
	if n := testutil.CollectAndCount(reg, "poddns_dns_programming_duration_seconds"); n != 1 {
		t.Errorf("programming duration series: %d, want 1 (service_kind=headless)", n)
	}

	// Deleting the Service makes it NXDOMAIN.
	if err := c.Delete(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "dns"}}); err != nil {
		t.Fatal(err)
	}
	lat = pollAnswer(t, addr, q, func(m *dns.Msg) bool { return m.Rcode == dns.RcodeNameError })
	t.Logf("delete Service -> NXDOMAIN: %s", lat)

	// A new namespace makes <ns>.svc NODATA instead of NXDOMAIN.
	nsq := dnstest.Query("fresh.svc.cluster.local.", dns.TypeA, 0)
	if m := dnstest.Exchange(t, addr, "udp", nsq); m.Rcode != dns.RcodeNameError {
		t.Fatalf("fresh.svc before the namespace: %s, want NXDOMAIN", dns.RcodeToString[m.Rcode])
	}
	testenv.Create(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "fresh"}})
	lat = pollAnswer(t, addr, nsq, func(m *dns.Msg) bool { return m.Rcode == dns.RcodeSuccess })
	t.Logf("create Namespace -> NODATA: %s", lat)
}

// TestAPISourceNodeName: with NodeName the store holds only the pods
// scheduled on that node (a field selector on spec.nodeName, as a
// node-local dnsd watches), including one bound there later, and loses a
// pod deleted there; Services stay cluster-wide.
func TestAPISourceNodeName(t *testing.T) {
	env := testenv.Start(t)
	ctx := t.Context()
	c := env.Client
	mkPod := func(name, node, ip string) {
		t.Helper()
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "i"}}}}
		if err := c.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}
		if err := c.Status().Update(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	mkPod("here", "node-1", "10.244.1.2")
	mkPod("there", "node-2", "10.244.2.2")
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
	if err := c.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	st := store.New()
	src, err := apisource.Start(ctx, apisource.Options{Config: env.Config, Store: st, Pods: true, NodeName: "node-1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Shutdown)
	select {
	case <-src.Synced():
	case <-time.After(30 * time.Second):
		t.Fatal("not synced")
	}
	pods := func() []string {
		var out []string
		for _, ip := range []string{"10.244.1.2", "10.244.2.2", "10.244.1.3"} {
			for _, p := range st.Snapshot().PodsByIP(netip.MustParseAddr(ip)) {
				out = append(out, p.Name)
			}
		}
		return out
	}
	if got := pods(); !reflect.DeepEqual(got, []string{"here"}) {
		t.Fatalf("pods in the store: %v, want only node-1's", got)
	}
	if st.Snapshot().Service("default", "web") == nil {
		t.Fatal("the Service is missing: Services are watched cluster-wide")
	}
	mkPod("later", "node-1", "10.244.1.3")
	if err := c.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "here", Namespace: "default"}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !reflect.DeepEqual(pods(), []string{"later"}) {
		if time.Now().After(deadline) {
			t.Fatalf("pods in the store: %v, want [later]", pods())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
