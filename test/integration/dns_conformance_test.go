package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/serve/dnstest"
)

// confObjects are the Services, EndpointSlices, Pods and Namespaces of the
// conformance suite, in creation order. Pod IPs are set separately, through
// the status subresource (no kubelet runs).
func confObjects() []client.Object {
	ready, unready := true, false
	str := func(s string) *string { return &s }
	port := func(p int32) *int32 { return &p }
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	slice := func(name, svc string, af discoveryv1.AddressType, ports []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: "conf", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
			AddressType: af, Ports: ports, Endpoints: eps,
		}
	}
	ep := func(ip string, hostname *string, r *bool) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{Addresses: []string{ip}, Hostname: hostname, Conditions: discoveryv1.EndpointConditions{Ready: r}}
	}
	svc := func(name string, spec corev1.ServiceSpec) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "conf"}, Spec: spec}
	}
	dualPolicy := corev1.IPFamilyPolicyRequireDualStack
	return []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "conf"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "empty-ns"}},
		svc("web", corev1.ServiceSpec{ClusterIP: "10.96.10.20", Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, Protocol: tcp}, {Name: "dns", Port: 53, Protocol: udp}}}),
		slice("web-1", "web", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{{Name: str("http"), Port: port(8080), Protocol: &tcp}},
			ep("10.244.1.10", nil, &ready), ep("10.244.1.11", nil, &unready), ep("10.244.1.12", str("web-host"), nil)),
		svc("single", corev1.ServiceSpec{ClusterIP: "10.96.10.21", Ports: []corev1.ServicePort{{Port: 8080, Protocol: tcp}}}),
		svc("dual", corev1.ServiceSpec{IPFamilyPolicy: &dualPolicy, IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol},
			ClusterIP: "10.96.10.30", ClusterIPs: []string{"10.96.10.30", "fd00:10:96::30"}, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}),
		svc("v6only", corev1.ServiceSpec{IPFamilies: []corev1.IPFamily{corev1.IPv6Protocol}, ClusterIP: "fd00:10:96::40", ClusterIPs: []string{"fd00:10:96::40"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}),
		svc("db", corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "postgres", Port: 5432}}}),
		slice("db-v4", "db", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{{Name: str("postgres"), Port: port(5432), Protocol: &tcp}},
			ep("10.244.1.20", str("db-0"), &ready), ep("10.244.2.21", str("db-1"), &ready), ep("10.244.3.22", str("db-2"), &unready)),
		slice("db-v6", "db", discoveryv1.AddressTypeIPv6, []discoveryv1.EndpointPort{{Name: str("postgres"), Port: port(5432), Protocol: &tcp}},
			ep("fd00:244::20", str("db-0"), &ready)),
		svc("idle", corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}),
		svc("ext", corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "search.example.com"}),
		svc("alias", corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "web.conf.svc.cluster.local"}),
		testPod("p1", "conf"),
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

func mustCreate(t *testing.T, c client.Client, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := c.Create(t.Context(), o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

const (
	cWeb  = "web.conf.svc.cluster.local."
	cDB   = "db.conf.svc.cluster.local."
	cDual = "dual.conf.svc.cluster.local."
	cExt  = "ext.conf.svc.cluster.local."
)

var (
	soaZone = dnstest.SOA("cluster.local.", 0)
	soaV4   = dnstest.SOA("in-addr.arpa.", 0)
	soaV6   = dnstest.SOA("ip6.arpa.", 0)
)

func nx(name string, t uint16) dnstest.Case     { return dnstest.NXDomain(name, t, soaZone) }
func nodata(name string, t uint16) dnstest.Case { return dnstest.NoData(name, t, soaZone) }

var (
	ans   = dnstest.Answer
	extra = dnstest.Case.WithExtra
)

func rev(ip string) string { s, _ := dns.ReverseAddr(ip); return s }

// conformanceCases is every record kind and every row of the NXDOMAIN/NODATA
// table (kubernetes-dns.md §1.3) against confObjects, with dnsd's default
// TTL 30, verified pod records, and REFUSED as the end of the chain.
func conformanceCases() []dnstest.Case {
	refused := func(name string, t uint16) dnstest.Case {
		return dnstest.Case{Qname: name, Qtype: t, Rcode: dns.RcodeRefused, NoAA: true}
	}
	return []dnstest.Case{
		// ClusterIP A; the family missing and other types are NODATA; case kept.
		ans(cWeb, dns.TypeA, cWeb+" 30 IN A 10.96.10.20"),
		ans("WEB.Conf.SVC.Cluster.LOCAL.", dns.TypeA, "WEB.Conf.SVC.Cluster.LOCAL. 30 IN A 10.96.10.20"),
		nodata(cWeb, dns.TypeAAAA),
		nodata(cWeb, dns.TypeTXT),
		nodata(cWeb, dns.TypeMX),
		// Dual-stack from clusterIPs; IPv6-only.
		ans(cDual, dns.TypeA, cDual+" 30 IN A 10.96.10.30"),
		ans(cDual, dns.TypeAAAA, cDual+" 30 IN AAAA fd00:10:96::30"),
		nodata("v6only.conf.svc.cluster.local.", dns.TypeA),
		ans("v6only.conf.svc.cluster.local.", dns.TypeAAAA, "v6only.conf.svc.cluster.local. 30 IN AAAA fd00:10:96::40"),
		// Headless: ready endpoints per family; none ready is NXDOMAIN.
		ans(cDB, dns.TypeA, cDB+" 30 IN A 10.244.1.20", cDB+" 30 IN A 10.244.2.21"),
		ans(cDB, dns.TypeAAAA, cDB+" 30 IN AAAA fd00:244::20"),
		nodata(cDB, dns.TypeTXT),
		nx("idle.conf.svc.cluster.local.", dns.TypeA),
		nx("idle.conf.svc.cluster.local.", dns.TypeTXT),
		nx("_http._tcp.idle.conf.svc.cluster.local.", dns.TypeSRV),
		// Endpoint hostnames and dashed IPs, ready (or unknown) only.
		ans("db-0."+cDB, dns.TypeA, "db-0."+cDB+" 30 IN A 10.244.1.20"),
		ans("db-0."+cDB, dns.TypeAAAA, "db-0."+cDB+" 30 IN AAAA fd00:244::20"),
		nodata("db-1."+cDB, dns.TypeAAAA),
		nx("db-2."+cDB, dns.TypeA),
		nx("db-9."+cDB, dns.TypeA),
		ans("10-244-1-10."+cWeb, dns.TypeA, "10-244-1-10."+cWeb+" 30 IN A 10.244.1.10"),
		ans("web-host."+cWeb, dns.TypeA, "web-host."+cWeb+" 30 IN A 10.244.1.12"),
		nx("10-244-1-11."+cWeb, dns.TypeA),
		nx("x."+cDual, dns.TypeA),
		// ExternalName: CNAME; a target inside the zone is resolved too.
		ans(cExt, dns.TypeA, cExt+" 30 IN CNAME search.example.com."),
		ans(cExt, dns.TypeCNAME, cExt+" 30 IN CNAME search.example.com."),
		nodata(cExt, dns.TypeSRV),
		ans("alias.conf.svc.cluster.local.", dns.TypeA, "alias.conf.svc.cluster.local. 30 IN CNAME web.conf.svc.cluster.local.", cWeb+" 30 IN A 10.96.10.20"),
		// SRV for named ports, weights 100/n, targets' addresses in additional.
		extra(ans("_http._tcp."+cWeb, dns.TypeSRV, "_http._tcp."+cWeb+" 30 IN SRV 0 100 80 "+cWeb), cWeb+" 30 IN A 10.96.10.20"),
		extra(ans("_DNS._UDP."+cWeb, dns.TypeSRV, "_DNS._UDP."+cWeb+" 30 IN SRV 0 100 53 "+cWeb), cWeb+" 30 IN A 10.96.10.20"),
		extra(ans("_http._tcp."+cDual, dns.TypeSRV, "_http._tcp."+cDual+" 30 IN SRV 0 100 80 "+cDual),
			cDual+" 30 IN A 10.96.10.30", cDual+" 30 IN AAAA fd00:10:96::30"),
		extra(ans(cWeb, dns.TypeSRV, cWeb+" 30 IN SRV 0 50 80 "+cWeb, cWeb+" 30 IN SRV 0 50 53 "+cWeb), cWeb+" 30 IN A 10.96.10.20"),
		extra(ans("single.conf.svc.cluster.local.", dns.TypeSRV, "single.conf.svc.cluster.local. 30 IN SRV 0 100 8080 single.conf.svc.cluster.local."),
			"single.conf.svc.cluster.local. 30 IN A 10.96.10.21"),
		extra(ans("_postgres._tcp."+cDB, dns.TypeSRV,
			"_postgres._tcp."+cDB+" 30 IN SRV 0 50 5432 db-0."+cDB, "_postgres._tcp."+cDB+" 30 IN SRV 0 50 5432 db-1."+cDB),
			"db-0."+cDB+" 30 IN A 10.244.1.20", "db-0."+cDB+" 30 IN AAAA fd00:244::20", "db-1."+cDB+" 30 IN A 10.244.2.21"),
		nx("_dns._tcp."+cWeb, dns.TypeSRV),
		nx("_nope._tcp."+cWeb, dns.TypeSRV),
		nx("_postgres._udp."+cDB, dns.TypeSRV),
		nx("http.tcp."+cWeb, dns.TypeSRV),
		nodata("_http._tcp."+cWeb, dns.TypeA),
		nx("_http._tcp."+cExt, dns.TypeSRV),
		nx("_http._tcp.nosuch.conf.svc.cluster.local.", dns.TypeSRV),
		// PTR for Service and endpoint IPs, both families.
		ans(rev("10.96.10.20"), dns.TypePTR, rev("10.96.10.20")+" 30 IN PTR "+cWeb),
		ans(rev("10.96.10.30"), dns.TypePTR, rev("10.96.10.30")+" 30 IN PTR "+cDual),
		ans(rev("fd00:10:96::30"), dns.TypePTR, rev("fd00:10:96::30")+" 30 IN PTR "+cDual),
		ans(rev("10.244.1.20"), dns.TypePTR, rev("10.244.1.20")+" 30 IN PTR db-0."+cDB),
		ans(rev("fd00:244::20"), dns.TypePTR, rev("fd00:244::20")+" 30 IN PTR db-0."+cDB),
		ans(rev("10.244.1.10"), dns.TypePTR, rev("10.244.1.10")+" 30 IN PTR 10-244-1-10."+cWeb),
		{Qname: rev("10.96.10.20"), Qtype: dns.TypeA, Ns: []dns.RR{soaV4}},
		{Qname: rev("fd00:10:96::30"), Qtype: dns.TypeTXT, Ns: []dns.RR{soaV6}},
		refused(rev("192.0.2.1"), dns.TypePTR),      // not a cluster IP: the next handler
		refused(rev("10.244.3.22"), dns.TypePTR),    // not ready
		refused("96.10.in-addr.arpa.", dns.TypePTR), // not a whole address
		// Pod records (verified): only a pod with that IP in that namespace.
		ans("10-244-1-10.conf.pod.cluster.local.", dns.TypeA, "10-244-1-10.conf.pod.cluster.local. 30 IN A 10.244.1.10"),
		nodata("10-244-1-10.conf.pod.cluster.local.", dns.TypeAAAA),
		nx("10-1-2-3.conf.pod.cluster.local.", dns.TypeA),
		nx("10-244-1-10.empty-ns.pod.cluster.local.", dns.TypeA),
		nx("not-an-ip.conf.pod.cluster.local.", dns.TypeA),
		// The NXDOMAIN/NODATA table, row by row.
		ans("cluster.local.", dns.TypeSOA, "cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 0 7200 1800 86400 30"),
		ans("Cluster.Local.", dns.TypeNS, "Cluster.Local. 30 IN NS ns.dns.cluster.local."),
		nodata("cluster.local.", dns.TypeA),
		nodata("svc.cluster.local.", dns.TypeA),
		nodata("pod.cluster.local.", dns.TypeAAAA),
		ans("dns-version.cluster.local.", dns.TypeTXT, `dns-version.cluster.local. 28800 IN TXT "1.1.0"`),
		nodata("dns-version.cluster.local.", dns.TypeA), // CoreDNS: NXDOMAIN (a listed difference)
		nx("foo.cluster.local.", dns.TypeA),
		nx("a.b.foo.cluster.local.", dns.TypeA),
		nodata("conf.svc.cluster.local.", dns.TypeA),
		nodata("empty-ns.svc.cluster.local.", dns.TypeA),
		nx("nosuch.svc.cluster.local.", dns.TypeA),
		nx("nosuch.conf.svc.cluster.local.", dns.TypeA),
		nx("web.empty-ns.svc.cluster.local.", dns.TypeA),
		nx("web.nosuch.svc.cluster.local.", dns.TypeA),
		nx("a._http._tcp."+cWeb, dns.TypeA),
		nx("x.y.z.pod.cluster.local.", dns.TypeA),
		nodata(cWeb, dns.TypeNS),
		nx("nosuch.conf.svc.cluster.local.", dns.TypeMX),
		refused("cluster.local.", dns.TypeAXFR),
		refused("example.com.", dns.TypeA),
		refused("cluster.local.example.com.", dns.TypeA),
	}
}

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
	for _, o := range confObjects() {
		mustCreate(t, c, o)
	}
	setPodIP(t, c, "conf", "p1", "10.244.1.10")
	addr := startDnsd(t, buildDnsd(t), writeKubeconfig(t, env, "dnsd"), "--pods", "verified")
	// The pod IP was written last: once it answers, everything is in.
	pollAnswer(t, addr, dnstest.Query("10-244-1-10.conf.pod.cluster.local.", dns.TypeA, 0), func(m *dns.Msg) bool { return len(m.Answer) == 1 })

	t.Run("records", func(t *testing.T) {
		for _, proto := range []string{"udp", "tcp"} {
			for _, tc := range conformanceCases() {
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
		a := startDnsd(t, buildDnsd(t), writeKubeconfig(t, env, "dnsd-ttl"), "--ttl", "5", "--pods", "insecure")
		soa5 := dnstest.RR("cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 0 7200 1800 86400 5")
		const p = "10-1-2-3.conf.pod.cluster.local."
		for _, proto := range []string{"udp", "tcp"} {
			for _, tc := range []dnstest.Case{
				ans(cWeb, dns.TypeA, cWeb+" 5 IN A 10.96.10.20"),
				extra(ans("_http._tcp."+cWeb, dns.TypeSRV, "_http._tcp."+cWeb+" 5 IN SRV 0 100 80 "+cWeb), cWeb+" 5 IN A 10.96.10.20"),
				ans(rev("10.244.1.20"), dns.TypePTR, rev("10.244.1.20")+" 5 IN PTR db-0."+cDB),
				{Qname: "nosuch.conf.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa5}},
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
		mustCreate(t, c, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "big", Namespace: "conf"},
			Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}},
			&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "big-1", Namespace: "conf", Labels: map[string]string{discoveryv1.LabelServiceName: "big"}},
				AddressType: discoveryv1.AddressTypeIPv4, Endpoints: eps})
		q := dnstest.Query("big.conf.svc.cluster.local.", dns.TypeA, 0)
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

	const late = "late.conf.svc.cluster.local."
	measure("create ClusterIP Service -> A", dnstest.Query(late, dns.TypeA, 0), func() {
		mustCreate(t, c, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "late", Namespace: "conf"},
			Spec: corev1.ServiceSpec{ClusterIP: "10.96.10.50", Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})
	}, answers(late+" 30 IN A 10.96.10.50"))

	measure("update Service ports -> new SRV", dnstest.Query("_metrics._tcp."+late, dns.TypeSRV, 0), func() {
		var s corev1.Service
		if err := c.Get(ctx, client.ObjectKey{Namespace: "conf", Name: "late"}, &s); err != nil {
			t.Fatal(err)
		}
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "metrics", Port: 9090, Protocol: corev1.ProtocolTCP})
		if err := c.Update(ctx, &s); err != nil {
			t.Fatal(err)
		}
	}, answers("_metrics._tcp."+late+" 30 IN SRV 0 100 9090 "+late))

	measure("update EndpointSlice readiness -> headless A", dnstest.Query(cDB, dns.TypeA, 0), func() {
		var s discoveryv1.EndpointSlice
		if err := c.Get(ctx, client.ObjectKey{Namespace: "conf", Name: "db-v4"}, &s); err != nil {
			t.Fatal(err)
		}
		unready := false
		s.Endpoints[1].Conditions.Ready = &unready // db-1
		if err := c.Update(ctx, &s); err != nil {
			t.Fatal(err)
		}
	}, answers(cDB+" 30 IN A 10.244.1.20"))

	const p2 = "10-244-7-7.conf.pod.cluster.local."
	mustCreate(t, c, testPod("p2", "conf"))
	measure("set pod IP (status) -> pod A", dnstest.Query(p2, dns.TypeA, 0), func() {
		setPodIP(t, c, "conf", "p2", "10.244.7.7")
	}, answers(p2+" 30 IN A 10.244.7.7"))

	measure("delete Pod -> NXDOMAIN", dnstest.Query(p2, dns.TypeA, 0), func() {
		if err := c.Delete(ctx, testPod("p2", "conf")); err != nil {
			t.Fatal(err)
		}
	}, rcode(dns.RcodeNameError))

	measure("delete EndpointSlices -> headless NXDOMAIN", dnstest.Query(cDB, dns.TypeA, 0), func() {
		if err := c.DeleteAllOf(ctx, &discoveryv1.EndpointSlice{}, client.InNamespace("conf"),
			client.MatchingLabels{discoveryv1.LabelServiceName: "db"}); err != nil {
			t.Fatal(err)
		}
	}, rcode(dns.RcodeNameError))

	measure("delete Service -> NXDOMAIN", dnstest.Query(late, dns.TypeA, 0), func() {
		if err := c.Delete(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "late", Namespace: "conf"}}); err != nil {
			t.Fatal(err)
		}
	}, rcode(dns.RcodeNameError))

	const fresh = "fresh.svc.cluster.local."
	measure("create Namespace -> <ns>.svc NODATA", dnstest.Query(fresh, dns.TypeA, 0), func() {
		mustCreate(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "fresh"}})
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
