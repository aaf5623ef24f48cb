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
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/apisource"
	"github.com/poddns/poddns/pkg/serve/cluster"
	"github.com/poddns/poddns/pkg/serve/dnstest"
	"github.com/poddns/poddns/pkg/serve/store"
)

func TestTrim(t *testing.T) {
	ready := true
	port := int32(80)
	in := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns", ResourceVersion: "7",
			Labels:        map[string]string{discoveryv1.LabelServiceName: "web", "app": "x"},
			Annotations:   map[string]string{"big": "annotation"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager"}}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Port: &port}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "p"}, NodeName: new(string)}},
	}
	out, err := apisource.Trim(in)
	if err != nil {
		t.Fatal(err)
	}
	sl := out.(*discoveryv1.EndpointSlice)
	if len(sl.ManagedFields) != 0 || len(sl.Annotations) != 0 || len(sl.Labels) != 1 || sl.Endpoints[0].TargetRef != nil || sl.Endpoints[0].NodeName != nil {
		t.Errorf("Trim kept too much: %+v", sl)
	}
	if sl.ResourceVersion != "7" || sl.Name != "s" || *sl.Endpoints[0].Conditions.Ready != true || *sl.Ports[0].Port != 80 {
		t.Errorf("Trim lost what DNS or the informer needs: %+v", sl)
	}
	// What DNS reads is the same before and after trimming.
	a, _ := store.ToEndpointSlice(in)
	b, _ := store.ToEndpointSlice(sl)
	if a.Name != b.Name || a.Service != b.Service || len(a.Endpoints) != len(b.Endpoints) || a.Endpoints[0].Ready != b.Endpoints[0].Ready {
		t.Errorf("ToEndpointSlice differs after Trim: %+v vs %+v", a, b)
	}
}

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
// synced, then Services, EndpointSlices and Namespaces created, changed and
// deleted through the API show in the answers. It logs the time from API
// write to changed answer, as the client sees it.
func TestAPISource(t *testing.T) {
	env := testenv.Start(t)
	ctx := t.Context()
	c := env.Client
	mustCreate := func(o client.Object) {
		t.Helper()
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
	mustCreate(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "dns"}})
	mustCreate(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "dns"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.5.5", Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})

	st := store.New()
	h, err := cluster.New(cluster.Options{Store: st, Next: serve.Refused})
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

	// A new headless Service with an EndpointSlice.
	mustCreate(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "dns"},
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "pg", Port: 5432}}}})
	hostname, ready, port, pname := "db-0", true, int32(5432), "pg"
	mustCreate(&discoveryv1.EndpointSlice{
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
	mustCreate(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "fresh"}})
	lat = pollAnswer(t, addr, nsq, func(m *dns.Msg) bool { return m.Rcode == dns.RcodeSuccess })
	t.Logf("create Namespace -> NODATA: %s", lat)
}

// TestTrimPod: a trimmed pod keeps what search completion reads: UID,
// phase, hostNetwork and the DNS fields.
func TestTrimPod(t *testing.T) {
	ndots := "2"
	in := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u1", ResourceVersion: "3", Labels: map[string]string{"app": "x"}},
		Spec: corev1.PodSpec{DNSPolicy: corev1.DNSNone, Containers: []corev1.Container{{Name: "c", Image: "i"}},
			DNSConfig: &corev1.PodDNSConfig{Nameservers: []string{"10.0.0.10"}, Searches: []string{"corp.example"},
				Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &ndots}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1", PodIPs: []corev1.PodIP{{IP: "10.0.0.1"}}},
	}
	out, err := apisource.Trim(in)
	if err != nil {
		t.Fatal(err)
	}
	e := out.(*apisource.PodEntry)
	if len(e.Labels) != 0 || e.Name != "p" || e.Namespace != "ns" || e.ResourceVersion != "3" {
		t.Errorf("Trim kept too much or lost the informer's metadata: %+v", e.ObjectMeta)
	}
	a, _ := store.ToPod(in)
	b := e.Pod
	if b == nil || !reflect.DeepEqual(a, b) || b.UID != "u1" || b.Phase != corev1.PodRunning || b.DNSPolicy != corev1.DNSNone || b.DNSConfig == nil {
		t.Errorf("the entry's pod differs from ToPod: %+v vs %+v", a, b)
	}
	// A copy (the informer may make one) shares the record, not the metadata.
	c := e.DeepCopyObject().(*apisource.PodEntry)
	if c.Pod != e.Pod || &c.ObjectMeta == &e.ObjectMeta || c.Name != "p" {
		t.Errorf("DeepCopyObject = %+v", c)
	}
	// A pod without an IP, or terminating, is kept without a record.
	in.Status.PodIP, in.Status.PodIPs = "", nil
	out, _ = apisource.Trim(in)
	if e := out.(*apisource.PodEntry); e.Pod != nil || e.Name != "p" {
		t.Errorf("Trim of a pod without IP = %+v, want an entry without a record", e)
	}
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
