// Package cluster answers the cluster domain (cluster.local by default) and
// the reverse zones for Service and endpoint IPs from the record store,
// following the Kubernetes DNS-Based Service Discovery specification 1.1.0
// and, where the specification is silent, CoreDNS's kubernetes plugin (see
// ../shared/reference/kubernetes-dns.md, sections 1 and 2.1):
//
//	<svc>.<ns>.svc.<zone>            A/AAAA: cluster IPs (both families), or
//	                                 a headless Service's ready endpoints;
//	                                 CNAME for an ExternalName Service
//	<ep>.<svc>.<ns>.svc.<zone>       A/AAAA of an endpoint by hostname (or
//	                                 its dashed IP, 10-1-2-3)
//	_<port>._<proto>.<svc>.<ns>.svc.<zone>
//	                                 SRV per named port (× ready endpoint for
//	                                 headless), targets' addresses in the
//	                                 additional section
//	<svc>.<ns>.svc.<zone> SRV        SRV for every port of the Service
//	<a-b-c-d>.<ns>.pod.<zone>        pod A/AAAA: Config.Pods
//	dns-version.<zone> TXT           "1.1.0"
//	<reverse>.in-addr.arpa, ip6.arpa PTR for Service and endpoint IPs
//
// Negative answers follow the NXDOMAIN/NODATA table of the reference (a name
// that exists with no record of the asked type is NODATA, everything else
// NXDOMAIN) and carry the zone's SOA with minimum = TTL. Every answer has AA
// set. Names are matched case-insensitively and answered with the case of
// the question. Until the store has synced every name in the zones is
// SERVFAIL: an empty store must never produce a false NXDOMAIN that clients
// and caches keep.
//
// Names outside the zones, and reverse names of IPs the cluster does not
// own (Config.ReverseFallthrough), go to the next handler.
//
// Deliberate differences from CoreDNS 1.14: dns-version.<zone> with a type
// other than TXT is NODATA (CoreDNS answers NXDOMAIN, a quirk); the apex NS
// record has no glue address; an ExternalName target outside the zones is
// resolved through Deps.Upstream (in dnsd, the chain behind the metrics
// handler), and without an answer from it the CNAME is answered alone.
package cluster
