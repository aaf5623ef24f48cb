package integration

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/serve/cluster"
	"github.com/poddns/poddns/pkg/serve/cluster/clustertest"
	"github.com/poddns/poddns/pkg/serve/dnstest"
)

// createFixture creates the objects of the cluster handler's conformance
// table (clustertest.Fixture) through the API and sets the pods' IPs as
// kubelet does; the Namespace default exists already.
func createFixture(t *testing.T, c client.Client) {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(clustertest.Fixture))
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Items []json.RawMessage }
	if err := json.Unmarshal(j, &list); err != nil {
		t.Fatal(err)
	}
	var pods []*corev1.Pod
	for _, raw := range list.Items {
		o, _, err := clientgoscheme.Codecs.UniversalDeserializer().Decode(raw, nil, nil)
		if err != nil {
			t.Fatalf("fixture: %v", err)
		}
		if ns, ok := o.(*corev1.Namespace); ok && ns.Name == metav1.NamespaceDefault {
			continue
		}
		if p, ok := o.(*corev1.Pod); ok {
			pods = append(pods, p.DeepCopy()) // Create drops the status
		}
		testenv.Create(t, c, o.(client.Object))
	}
	for _, p := range pods {
		var ips []string
		for _, ip := range p.Status.PodIPs {
			ips = append(ips, ip.IP)
		}
		setPodIP(t, c, p.Namespace, p.Name, ips...)
	}
}

func testPod(name, ns string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/none"}}}}
}

// setPodIP sets the pod's IPs through the status subresource, as kubelet does.
func setPodIP(t *testing.T, c client.Client, ns, name string, ips ...string) {
	t.Helper()
	var p corev1.Pod
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &p); err != nil {
		t.Fatal(err)
	}
	p.Status.PodIP = ips[0]
	p.Status.PodIPs = nil
	for _, ip := range ips {
		p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: ip})
	}
	if err := c.Status().Update(t.Context(), &p); err != nil {
		t.Fatalf("pod %s/%s status: %v", ns, name, err)
	}
}

const (
	cWeb = clustertest.Web
	cDB  = clustertest.DB
)

var (
	ans   = dnstest.Answer
	extra = dnstest.Case.WithExtra
	rev   = clustertest.Rev
)

// TestDNSConformance is issue 4's conformance suite: the dnsd binary,
// watching a real API server through a kubeconfig, answers every record kind
// and every row of the NXDOMAIN/NODATA table exactly (rcode, AA, every
// section, TTLs, SOA) over UDP and TCP; writes through the API (create,
// update, delete of Services, EndpointSlices, Pods and Namespaces) show in
// the answers, and the time from each write to the changed answer, as the
// client sees it, is logged.
func TestDNSConformance(t *testing.T) {
	start := time.Now()
	env := testenv.Start(t, withDualStack)
	c := env.Client
	createFixture(t, c)
	addr := startDnsd(t, buildDnsd(t), env.AdminKubeconfig(t, "dnsd"), "--pods", "verified")
	// The pod IPs were written last: once the last answers, everything is in.
	pollAnswer(t, addr, dnstest.Query("10-244-9-9.other.pod.cluster.local.", dns.TypeA, 0), func(m *dns.Msg) bool { return len(m.Answer) == 1 })

	t.Run("records", func(t *testing.T) {
		for _, proto := range []string{"udp", "tcp"} {
			for _, tc := range (clustertest.Table{}).All(cluster.PodsVerified) {
				t.Run(proto+"/"+tc.Qname+"/"+dns.TypeToString[tc.Qtype], func(t *testing.T) {
					m := dnstest.Exchange(t, addr, proto, tc.Msg())
					normalizeSerials(t, m, start, time.Now())
					dnstest.Check(t, tc, m)
				})
			}
		}
	})

	// A second dnsd on the same API server: --ttl and insecure pod records.
	t.Run("ttl 5 and insecure pods", func(t *testing.T) {
		a := startDnsd(t, buildDnsd(t), env.AdminKubeconfig(t, "dnsd-ttl"), "--ttl", "5", "--pods", "insecure")
		soa5 := dnstest.RR("cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 0 7200 1800 86400 5")
		const p = "10-1-2-3.default.pod.cluster.local."
		for _, proto := range []string{"udp", "tcp"} {
			for _, tc := range []dnstest.Case{
				ans(cWeb, dns.TypeA, cWeb+" 5 IN A 10.96.0.20"),
				extra(ans("_http._tcp."+cWeb, dns.TypeSRV, "_http._tcp."+cWeb+" 5 IN SRV 0 100 80 "+cWeb), cWeb+" 5 IN A 10.96.0.20"),
				ans(rev("10.244.1.20"), dns.TypePTR, rev("10.244.1.20")+" 5 IN PTR db-0."+cDB),
				{Qname: "nosuch.default.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa5}},
				{Qname: cWeb, Qtype: dns.TypeAAAA, Ns: []dns.RR{soa5}},
				ans(`dns-version.cluster.local.`, dns.TypeTXT, `dns-version.cluster.local. 28800 IN TXT "1.1.0"`),
				// insecure: any IP in an existing namespace is echoed.
				ans(p, dns.TypeA, p+" 5 IN A 10.1.2.3"),
				{Qname: "10-1-2-3.nosuch.pod.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa5}},
			} {
				m := dnstest.Exchange(t, a, proto, tc.Msg())
				normalizeSerials(t, m, start, time.Now())
				dnstest.Check(t, tc, m)
			}
		}
	})

	t.Run("truncation", func(t *testing.T) {
		ready := true
		eps := make([]discoveryv1.Endpoint, 100)
		for i := range eps {
			eps[i] = discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.245.%d.%d", i/200, i%200+1)}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}
		}
		testenv.Create(t, c, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "big", Namespace: metav1.NamespaceDefault},
			Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}},
			&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "big-1", Namespace: metav1.NamespaceDefault, Labels: map[string]string{discoveryv1.LabelServiceName: "big"}},
				AddressType: discoveryv1.AddressTypeIPv4, Endpoints: eps})
		q := dnstest.Query("big.default.svc.cluster.local.", dns.TypeA, 0)
		pollAnswer(t, addr, q, func(m *dns.Msg) bool { return m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0 })
		u := dnstest.Exchange(t, addr, "udp", q)
		if !u.Truncated || len(u.Answer) >= 100 || !u.Authoritative {
			t.Errorf("UDP without EDNS0: TC=%v AA=%v with %d answers, want TC, AA and fewer than 100", u.Truncated, u.Authoritative, len(u.Answer))
		}
		u.Compress = true
		if u.Len() > 512 {
			t.Errorf("UDP reply is %d bytes, want at most 512", u.Len())
		}
		tc := dnstest.Exchange(t, addr, "tcp", q)
		if tc.Truncated || len(tc.Answer) != 100 {
			t.Errorf("TCP: TC=%v with %d answers, want the 100 in full", tc.Truncated, len(tc.Answer))
		}
	})

	t.Run("propagation", func(t *testing.T) {
		testPropagation(t, env, addr)
	})
}

// testPropagation writes through the API and polls until the answer
// changes, logging each write-to-answer time.
func testPropagation(t *testing.T, env *testenv.Env, addr string) {
	ctx := t.Context()
	c := env.Client
	lat := map[string]time.Duration{}
	var order []string
	measure := func(what string, q *dns.Msg, write func(), ok func(*dns.Msg) bool) {
		t.Helper()
		t0 := time.Now()
		write()
		pollAnswer(t, addr, q, ok)
		d := time.Since(t0) // from the start of the API call
		lat[what] = d
		order = append(order, what)
		t.Logf("%s: changed answer after %s", what, d.Round(10*time.Microsecond))
	}
	answers := func(rrs ...string) func(*dns.Msg) bool {
		return func(m *dns.Msg) bool {
			return m.Rcode == dns.RcodeSuccess && dnstest.Diff(m.Answer, dnstest.RRs(rrs...)) == ""
		}
	}
	rcode := func(rc int) func(*dns.Msg) bool {
		return func(m *dns.Msg) bool { return m.Rcode == rc && len(m.Answer) == 0 }
	}

	const late = "late.default.svc.cluster.local."
	measure("create ClusterIP Service -> A", dnstest.Query(late, dns.TypeA, 0), func() {
		testenv.Create(t, c, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "late", Namespace: metav1.NamespaceDefault},
			Spec: corev1.ServiceSpec{ClusterIP: "10.96.10.50", Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})
	}, answers(late+" 30 IN A 10.96.10.50"))

	measure("update Service ports -> new SRV", dnstest.Query("_metrics._tcp."+late, dns.TypeSRV, 0), func() {
		var s corev1.Service
		if err := c.Get(ctx, client.ObjectKey{Namespace: metav1.NamespaceDefault, Name: "late"}, &s); err != nil {
			t.Fatal(err)
		}
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "metrics", Port: 9090, Protocol: corev1.ProtocolTCP})
		if err := c.Update(ctx, &s); err != nil {
			t.Fatal(err)
		}
	}, answers("_metrics._tcp."+late+" 30 IN SRV 0 100 9090 "+late))

	measure("update EndpointSlice readiness -> headless A", dnstest.Query(cDB, dns.TypeA, 0), func() {
		var s discoveryv1.EndpointSlice
		if err := c.Get(ctx, client.ObjectKey{Namespace: metav1.NamespaceDefault, Name: "db-v4"}, &s); err != nil {
			t.Fatal(err)
		}
		unready := false
		s.Endpoints[1].Conditions.Ready = &unready // db-1
		if err := c.Update(ctx, &s); err != nil {
			t.Fatal(err)
		}
	}, answers(cDB+" 30 IN A 10.244.1.20"))

	const p3 = "10-244-7-7.default.pod.cluster.local."
	testenv.Create(t, c, testPod("p3", metav1.NamespaceDefault))
	measure("set pod IP (status) -> pod A", dnstest.Query(p3, dns.TypeA, 0), func() {
		setPodIP(t, c, metav1.NamespaceDefault, "p3", "10.244.7.7")
	}, answers(p3+" 30 IN A 10.244.7.7"))

	measure("delete Pod -> NXDOMAIN", dnstest.Query(p3, dns.TypeA, 0), func() {
		if err := c.Delete(ctx, testPod("p3", metav1.NamespaceDefault)); err != nil {
			t.Fatal(err)
		}
	}, rcode(dns.RcodeNameError))

	measure("delete EndpointSlices -> headless NXDOMAIN", dnstest.Query(cDB, dns.TypeA, 0), func() {
		if err := c.DeleteAllOf(ctx, &discoveryv1.EndpointSlice{}, client.InNamespace(metav1.NamespaceDefault),
			client.MatchingLabels{discoveryv1.LabelServiceName: "db"}); err != nil {
			t.Fatal(err)
		}
	}, rcode(dns.RcodeNameError))

	measure("delete Service -> NXDOMAIN", dnstest.Query(late, dns.TypeA, 0), func() {
		if err := c.Delete(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "late", Namespace: metav1.NamespaceDefault}}); err != nil {
			t.Fatal(err)
		}
	}, rcode(dns.RcodeNameError))

	const fresh = "fresh.svc.cluster.local."
	measure("create Namespace -> <ns>.svc NODATA", dnstest.Query(fresh, dns.TypeA, 0), func() {
		testenv.Create(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "fresh"}})
	}, rcode(dns.RcodeSuccess))

	// No namespace controller runs: delete, then drop the finalizer as it would.
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	measure("delete Namespace (finalized) -> NXDOMAIN", dnstest.Query(fresh, dns.TypeA, 0), func() {
		if err := cs.CoreV1().Namespaces().Delete(ctx, "fresh", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		ns, err := cs.CoreV1().Namespaces().Get(ctx, "fresh", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ns.Spec.Finalizers = nil
		if _, err := cs.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}, rcode(dns.RcodeNameError))

	t.Logf("API write -> changed answer (client side: from the start of the API call, polling over UDP every 2ms):\n%s", fmtDurations(lat, order))
}
