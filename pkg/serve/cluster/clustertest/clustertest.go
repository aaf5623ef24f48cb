// Package clustertest is the conformance table of the cluster handler: one
// fixture of Kubernetes objects and the exact replies the Kubernetes DNS
// specification (kubernetes-dns.md) requires for it, covering every record
// kind and every row of the NXDOMAIN/NODATA table (§1.3). It is written
// once and run at two levels: the handler's unit tests load the fixture into
// a store; the integration test creates it in a real API server and asks
// the dnsd binary watching it.
//
// This package is test support: only _test.go files may import it.
package clustertest

import (
	_ "embed"
	"fmt"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve/cluster"
	"github.com/poddns/poddns/pkg/serve/dnstest"
)

// Fixture is the objects of the table as one kubectl List (fixture.yaml),
// in creation order. An API server accepts every object as it is.
//
//go:embed fixture.yaml
var Fixture string

// Names of the fixture's Services the table asks most.
const (
	Web  = "web.default.svc.cluster.local."
	DB   = "db.default.svc.cluster.local."
	Dual = "dual.default.svc.cluster.local."
	Ext  = "ext.default.svc.cluster.local."
)

// Table is the replies of a cluster handler with the default settings
// (zone cluster.local, TTL 30, reverse fallthrough) over the Fixture,
// REFUSED standing for the next handler's reply. Serial is the SOA serial
// the replies carry.
type Table struct{ Serial uint32 }

func (tb Table) nx(name string, t uint16) dnstest.Case {
	return dnstest.NXDomain(name, t, dnstest.SOA("cluster.local.", tb.Serial))
}

func (tb Table) nodata(name string, t uint16) dnstest.Case {
	return dnstest.NoData(name, t, dnstest.SOA("cluster.local.", tb.Serial))
}

func refused(name string, t uint16) dnstest.Case {
	return dnstest.Case{Qname: name, Qtype: t, Rcode: dns.RcodeRefused, NoAA: true}
}

var (
	ans   = dnstest.Answer
	extra = dnstest.Case.WithExtra
)

// Rev is the reverse name of ip.
func Rev(ip string) string { s, _ := dns.ReverseAddr(ip); return s }

// All is the whole table, with pod records in mode pods.
func (tb Table) All(pods cluster.PodMode) []dnstest.Case {
	var all []dnstest.Case
	for _, part := range [][]dnstest.Case{tb.Services(), tb.SRV(), tb.PTR(), tb.Zone(), tb.Pods(pods)} {
		all = append(all, part...)
	}
	return all
}

// Services is the A, AAAA and CNAME records of Services and endpoints.
func (tb Table) Services() []dnstest.Case {
	return []dnstest.Case{
		// ClusterIP: A, family missing is NODATA, other types NODATA; case kept.
		ans(Web, dns.TypeA, Web+" 30 IN A 10.96.0.20"),
		ans("WEB.Default.SVC.Cluster.LOCAL.", dns.TypeA, "WEB.Default.SVC.Cluster.LOCAL. 30 IN A 10.96.0.20"),
		tb.nodata(Web, dns.TypeAAAA),
		tb.nodata(Web, dns.TypeTXT),
		tb.nodata(Web, dns.TypeMX),
		// Dual-stack from clusterIPs; IPv6-only.
		ans(Dual, dns.TypeA, Dual+" 30 IN A 10.96.0.30"),
		ans(Dual, dns.TypeAAAA, Dual+" 30 IN AAAA fd00:10:96::30"),
		tb.nodata("v6only.default.svc.cluster.local.", dns.TypeA),
		ans("v6only.default.svc.cluster.local.", dns.TypeAAAA, "v6only.default.svc.cluster.local. 30 IN AAAA fd00:10:96::40"),
		// Headless: one record per ready endpoint, per family.
		ans(DB, dns.TypeA, DB+" 30 IN A 10.244.1.20", DB+" 30 IN A 10.244.2.21"),
		ans(DB, dns.TypeAAAA, DB+" 30 IN AAAA fd00:244::20"),
		tb.nodata(DB, dns.TypeTXT),
		tb.nodata("h4.default.svc.cluster.local.", dns.TypeAAAA),
		ans("tolerant.default.svc.cluster.local.", dns.TypeA, "tolerant.default.svc.cluster.local. 30 IN A 10.244.5.5"),
		// Headless without ready endpoints: NXDOMAIN for every type.
		tb.nx("idle.default.svc.cluster.local.", dns.TypeA),
		tb.nx("idle.default.svc.cluster.local.", dns.TypeTXT),
		tb.nx("_http._tcp.idle.default.svc.cluster.local.", dns.TypeSRV),
		// Endpoint hostnames (and dashed IPs), ready (or unknown) only; ClusterIP services too.
		ans("db-0."+DB, dns.TypeA, "db-0."+DB+" 30 IN A 10.244.1.20"),
		ans("db-0."+DB, dns.TypeAAAA, "db-0."+DB+" 30 IN AAAA fd00:244::20"),
		tb.nodata("db-1."+DB, dns.TypeAAAA),
		tb.nx("db-2."+DB, dns.TypeA),
		tb.nx("db-9."+DB, dns.TypeA),
		ans("10-244-1-10."+Web, dns.TypeA, "10-244-1-10."+Web+" 30 IN A 10.244.1.10"),
		ans("web-host."+Web, dns.TypeA, "web-host."+Web+" 30 IN A 10.244.1.12"),
		tb.nx("10-244-1-11."+Web, dns.TypeA),
		tb.nx("x."+Dual, dns.TypeA),
		// ExternalName: CNAME; a target inside the zone is resolved too.
		ans(Ext, dns.TypeA, Ext+" 30 IN CNAME search.example.com."),
		ans(Ext, dns.TypeCNAME, Ext+" 30 IN CNAME search.example.com."),
		tb.nodata(Ext, dns.TypeSRV),
		ans("alias.default.svc.cluster.local.", dns.TypeA,
			"alias.default.svc.cluster.local. 30 IN CNAME web.default.svc.cluster.local.", Web+" 30 IN A 10.96.0.20"),
		ans("loop.default.svc.cluster.local.", dns.TypeA, "loop.default.svc.cluster.local. 30 IN CNAME loop.default.svc.cluster.local."),
	}
}

// SRV is the SRV records: weights 100/n, the targets' addresses in the
// additional section.
func (tb Table) SRV() []dnstest.Case {
	return []dnstest.Case{
		extra(ans("_http._tcp."+Web, dns.TypeSRV, "_http._tcp."+Web+" 30 IN SRV 0 100 80 "+Web), Web+" 30 IN A 10.96.0.20"),
		extra(ans("_DNS._UDP."+Web, dns.TypeSRV, "_DNS._UDP."+Web+" 30 IN SRV 0 100 53 "+Web), Web+" 30 IN A 10.96.0.20"),
		extra(ans("_http._tcp."+Dual, dns.TypeSRV, "_http._tcp."+Dual+" 30 IN SRV 0 100 80 "+Dual),
			Dual+" 30 IN A 10.96.0.30", Dual+" 30 IN AAAA fd00:10:96::30"),
		// SRV at the service name: every port, unnamed ones too.
		extra(ans(Web, dns.TypeSRV, Web+" 30 IN SRV 0 50 80 "+Web, Web+" 30 IN SRV 0 50 53 "+Web), Web+" 30 IN A 10.96.0.20"),
		extra(ans("single.default.svc.cluster.local.", dns.TypeSRV, "single.default.svc.cluster.local. 30 IN SRV 0 100 8080 single.default.svc.cluster.local."),
			"single.default.svc.cluster.local. 30 IN A 10.96.0.21"),
		// Headless: ready endpoints × named ports, targets' addresses added.
		extra(ans("_postgres._tcp."+DB, dns.TypeSRV,
			"_postgres._tcp."+DB+" 30 IN SRV 0 50 5432 db-0."+DB,
			"_postgres._tcp."+DB+" 30 IN SRV 0 50 5432 db-1."+DB),
			"db-0."+DB+" 30 IN A 10.244.1.20", "db-0."+DB+" 30 IN AAAA fd00:244::20", "db-1."+DB+" 30 IN A 10.244.2.21"),
		// Port or protocol not matching: NXDOMAIN; the name exists for other types: NODATA.
		tb.nx("_dns._tcp."+Web, dns.TypeSRV),
		tb.nx("_nope._tcp."+Web, dns.TypeSRV),
		tb.nx("_postgres._udp."+DB, dns.TypeSRV),
		tb.nx("http.tcp."+Web, dns.TypeSRV),
		tb.nodata("_http._tcp."+Web, dns.TypeA),
		tb.nx("_http._tcp."+Ext, dns.TypeSRV),
		tb.nx("_http._tcp.nosuch.default.svc.cluster.local.", dns.TypeSRV),
	}
}

// PTR is the PTR records of Service and endpoint IPs, both families.
func (tb Table) PTR() []dnstest.Case {
	ptr := func(ip, target string) dnstest.Case { return ans(Rev(ip), dns.TypePTR, Rev(ip)+" 30 IN PTR "+target) }
	return []dnstest.Case{
		ptr("10.96.0.20", Web),
		ptr("10.96.0.30", Dual),
		ptr("fd00:10:96::30", Dual),
		ptr("10.244.1.20", "db-0."+DB),
		ptr("fd00:244::20", "db-0."+DB),
		ptr("10.244.1.10", "10-244-1-10."+Web),
		ans("20.0.96.10.IN-ADDR.ARPA.", dns.TypePTR, "20.0.96.10.IN-ADDR.ARPA. 30 IN PTR "+Web),
		dnstest.NoData(Rev("10.96.0.20"), dns.TypeA, dnstest.SOA("in-addr.arpa.", tb.Serial)),
		dnstest.NoData(Rev("fd00:10:96::30"), dns.TypeTXT, dnstest.SOA("ip6.arpa.", tb.Serial)),
		// Not a cluster IP (or not a whole address): the next handler's answer.
		refused(Rev("192.0.2.1"), dns.TypePTR),
		refused("96.10.in-addr.arpa.", dns.TypePTR),
		refused(Rev("10.244.3.22"), dns.TypePTR), // not ready
	}
}

// Zone has one case per row of the NXDOMAIN/NODATA table in
// kubernetes-dns.md §1.3 (the rows on headless Services and SRV are in
// Services and SRV).
func (tb Table) Zone() []dnstest.Case {
	return []dnstest.Case{
		// Zone apex: SOA and NS answered, other types NODATA.
		ans("cluster.local.", dns.TypeSOA, fmt.Sprintf("cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. %d 7200 1800 86400 30", tb.Serial)),
		ans("Cluster.Local.", dns.TypeNS, "Cluster.Local. 30 IN NS ns.dns.cluster.local."),
		tb.nodata("cluster.local.", dns.TypeA),
		// svc.Z and pod.Z: NODATA.
		tb.nodata("svc.cluster.local.", dns.TypeA),
		tb.nodata("pod.cluster.local.", dns.TypeAAAA),
		// dns-version.Z.
		ans("dns-version.cluster.local.", dns.TypeTXT, `dns-version.cluster.local. 28800 IN TXT "1.1.0"`),
		tb.nodata("dns-version.cluster.local.", dns.TypeA), // CoreDNS: NXDOMAIN (a documented difference)
		// x.Z with x not svc or pod.
		tb.nx("foo.cluster.local.", dns.TypeA),
		tb.nx("a.b.foo.cluster.local.", dns.TypeA),
		// <ns>.svc.Z: NODATA when the namespace exists (even without Services).
		tb.nodata("default.svc.cluster.local.", dns.TypeA),
		tb.nodata("empty-ns.svc.cluster.local.", dns.TypeA),
		tb.nx("nosuch.svc.cluster.local.", dns.TypeA),
		// Service not found.
		tb.nx("nosuch.default.svc.cluster.local.", dns.TypeA),
		tb.nx("web.other.svc.cluster.local.", dns.TypeA),
		tb.nx("web.empty-ns.svc.cluster.local.", dns.TypeA),
		tb.nx("web.nosuch.svc.cluster.local.", dns.TypeA),
		// More labels than the grammar allows.
		tb.nx("a._http._tcp."+Web, dns.TypeA),
		tb.nx("x.y.z.pod.cluster.local.", dns.TypeA),
		// Other types on a name that exists: NODATA; on one that does not: NXDOMAIN.
		tb.nodata(Web, dns.TypeNS),
		tb.nx("nosuch.default.svc.cluster.local.", dns.TypeMX),
		// Transfers are refused.
		refused("cluster.local.", dns.TypeAXFR),
		// Names outside the zones go to the next handler.
		refused("example.com.", dns.TypeA),
		refused("cluster.local.example.com.", dns.TypeA),
	}
}

// P1 is the name of the fixture's pod p1 (10.244.1.10 in default).
const P1 = "10-244-1-10.default.pod.cluster.local."

// Pods is the pod records in mode pods.
func (tb Table) Pods(pods cluster.PodMode) []dnstest.Case {
	switch pods {
	case cluster.PodsInsecure:
		// Any IP in an existing namespace is echoed.
		return []dnstest.Case{
			ans(P1, dns.TypeA, P1+" 30 IN A 10.244.1.10"),
			ans("10-1-2-3.default.pod.cluster.local.", dns.TypeA, "10-1-2-3.default.pod.cluster.local. 30 IN A 10.1.2.3"),
			ans("fd00--1.default.pod.cluster.local.", dns.TypeAAAA, "fd00--1.default.pod.cluster.local. 30 IN AAAA fd00::1"),
			tb.nodata(P1, dns.TypeAAAA),
			tb.nodata("default.pod.cluster.local.", dns.TypeA),
			tb.nx("nosuch.pod.cluster.local.", dns.TypeA),
			tb.nx("10-244-1-10.nosuch.pod.cluster.local.", dns.TypeA),
			tb.nx("not-an-ip.default.pod.cluster.local.", dns.TypeA),
			tb.nx("10-244-1.default.pod.cluster.local.", dns.TypeA),
		}
	case cluster.PodsVerified:
		// Only a pod with that IP in that namespace.
		return []dnstest.Case{
			ans(P1, dns.TypeA, P1+" 30 IN A 10.244.1.10"),
			tb.nodata(P1, dns.TypeAAAA),
			tb.nx("10-1-2-3.default.pod.cluster.local.", dns.TypeA),
			tb.nx("10-244-9-9.default.pod.cluster.local.", dns.TypeA), // that pod is in "other"
			ans("10-244-9-9.other.pod.cluster.local.", dns.TypeA, "10-244-9-9.other.pod.cluster.local. 30 IN A 10.244.9.9"),
			tb.nx("10-244-1-10.empty-ns.pod.cluster.local.", dns.TypeA),
			tb.nx("not-an-ip.default.pod.cluster.local.", dns.TypeA),
		}
	default:
		return []dnstest.Case{tb.nx(P1, dns.TypeA)}
	}
}
