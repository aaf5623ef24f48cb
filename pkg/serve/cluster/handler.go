package cluster

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/store"
)

// maxCNAMEChain bounds the ExternalName targets followed inside the zones.
const maxCNAMEChain = 10

// ServeDNS implements serve.Handler.
func (c *Cluster) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	req := serve.NewRequest(w, r)
	qname := req.Name()
	zone, reverse := c.match(qname)
	if zone == "" {
		return serve.NextOrFailure(ctx, c.Name(), c.Next, w, r)
	}
	if req.QClass() != dns.ClassINET {
		// The cluster zones exist in class IN only. A query of another
		// class (CH, HS, ANY) for a name in them is refused, as BIND
		// refuses a class it has no view for; forwarding it would ask an
		// upstream about the cluster's names.
		return dns.RcodeRefused, nil
	}
	switch req.QType() {
	case dns.TypeAXFR, dns.TypeIXFR:
		return dns.RcodeRefused, nil
	}
	if !c.store.Synced() {
		return dns.RcodeServerFailure, nil
	}
	snap := c.store.Snapshot()
	if !reverse && c.remotePod(snap, zone, qname) {
		return c.remote.ServeDNS(ctx, w, r)
	}
	// A reply of this snapshot asked before is written packed (memo.go).
	var mm *memo
	mk := memoKey{name: qname, qtype: req.QType()}
	if _, packed := w.(serve.PackedWriter); packed && c.memoSize > 0 {
		mm = c.memoFor(snap)
		if e := mm.get(mk); e != nil {
			serve.SetSource(ctx, serve.SourceCluster)
			if err := writeMemo(w, e, r); err != nil {
				return dns.RcodeServerFailure, err
			}
			return e.msg.Rcode, nil
		}
	}

	var res result
	if reverse {
		res = c.reverse(snap, qname, req.QType(), req.QName())
		if !res.exists && c.revFall {
			return serve.NextOrFailure(ctx, c.Name(), c.Next, w, r)
		}
	} else {
		res = c.lookup(ctx, w, snap, zone, qname, req.QType(), req.QName(), 0)
	}

	m := req.Reply(dns.RcodeSuccess)
	m.Answer = res.answer
	m.Extra = append(res.extra, m.Extra...) // the OPT record, if any, last
	if len(res.answer) == 0 {
		if !res.exists {
			m.Rcode = dns.RcodeNameError
		}
		m.Ns = []dns.RR{c.soa(zone, snap)}
	}
	serve.SetSource(ctx, serve.SourceCluster)
	if mm != nil {
		c.put(mm, mk, m)
	}
	if err := w.WriteMsg(m); err != nil {
		return dns.RcodeServerFailure, err
	}
	return m.Rcode, nil
}

// match returns the zone qname is in, and whether it is a reverse zone.
func (c *Cluster) match(qname string) (string, bool) {
	for _, z := range c.zones {
		if inZone(qname, z) {
			return z, false
		}
	}
	for _, z := range ReverseZones {
		if inZone(qname, z) {
			return z, true
		}
	}
	return "", false
}

// inZone reports whether name is zone or below it; both are lower-case and
// fully qualified.
func inZone(name, zone string) bool {
	return name == zone || (strings.HasSuffix(name, zone) && name[len(name)-len(zone)-1] == '.')
}

// result is the answer to one name: its records, the additional records,
// and whether the name exists (NODATA rather than NXDOMAIN when there are
// no records).
type result struct {
	answer, extra []dns.RR
	exists        bool
}

func (c *Cluster) hdr(owner string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: owner, Rrtype: t, Class: dns.ClassINET, Ttl: c.ttl}
}

func (c *Cluster) soa(zone string, snap *store.Snapshot) dns.RR {
	h := c.hdr(zone, dns.TypeSOA)
	h.Ttl = min(c.ttl, 300)
	return &dns.SOA{Hdr: h, Ns: "ns.dns." + zone, Mbox: "hostmaster." + zone, Serial: snap.Serial(),
		Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: c.ttl}
}

// addr makes an A or AAAA record of ip at owner, or nil when ip is not of
// the family qtype asks for.
func (c *Cluster) addr(owner string, qtype uint16, ip netip.Addr) dns.RR {
	switch {
	case qtype == dns.TypeA && ip.Is4():
		return &dns.A{Hdr: c.hdr(owner, dns.TypeA), A: net.IP(ip.AsSlice())}
	case qtype == dns.TypeAAAA && ip.Is6():
		return &dns.AAAA{Hdr: c.hdr(owner, dns.TypeAAAA), AAAA: net.IP(ip.AsSlice())}
	}
	return nil
}

// addrAny makes the A or AAAA record of ip, whatever its family.
func (c *Cluster) addrAny(owner string, ip netip.Addr) dns.RR {
	if ip.Is4() {
		return c.addr(owner, dns.TypeA, ip)
	}
	return c.addr(owner, dns.TypeAAAA, ip)
}

// lookup answers qname (lower case, inside zone) for qtype, with owner as
// the owner name of the answer records.
func (c *Cluster) lookup(ctx context.Context, w dns.ResponseWriter, snap *store.Snapshot, zone, qname string, qtype uint16, owner string, depth int) result {
	rel := strings.TrimSuffix(strings.TrimSuffix(qname, zone), ".")
	if rel == "" {
		return c.apex(snap, zone, qtype, owner)
	}
	labels := strings.Split(rel, ".")
	n := len(labels)
	switch last := labels[n-1]; {
	case (last == "svc" || last == "pod") && n <= 2:
		// svc and pod exist, and so do <namespace>.svc and <namespace>.pod
		// for every namespace: names without records of their own.
		return result{exists: n == 1 || snap.HasNamespace(labels[0])}
	case last == "svc":
		switch n {
		case 3:
			return c.service(ctx, w, snap, zone, labels[1], labels[0], qtype, owner, depth)
		case 4:
			return c.endpoint(snap, labels[2], labels[1], labels[0], qtype, owner)
		case 5:
			return c.srv(snap, zone, labels[3], labels[2], labels[0], labels[1], qtype, owner)
		}
	case last == "pod" && n == 3:
		return c.pod(snap, labels[1], labels[0], qtype, owner)
	case n == 1 && last == "dns-version":
		if qtype == dns.TypeTXT {
			h := c.hdr(owner, dns.TypeTXT)
			h.Ttl = dnsVersionTTL
			return result{exists: true, answer: []dns.RR{&dns.TXT{Hdr: h, Txt: []string{DNSSchemaVersion}}}}
		}
		return result{exists: true}
	}
	return result{}
}

func (c *Cluster) apex(snap *store.Snapshot, zone string, qtype uint16, owner string) result {
	switch qtype {
	case dns.TypeSOA:
		soa := c.soa(zone, snap)
		soa.Header().Name = owner
		return result{exists: true, answer: []dns.RR{soa}}
	case dns.TypeNS:
		return result{exists: true, answer: []dns.RR{&dns.NS{Hdr: c.hdr(owner, dns.TypeNS), Ns: "ns.dns." + zone}}}
	}
	return result{exists: true}
}

// service answers <name>.<ns>.svc.<zone>.
func (c *Cluster) service(ctx context.Context, w dns.ResponseWriter, snap *store.Snapshot, zone, ns, name string, qtype uint16, owner string, depth int) result {
	svc := snap.Service(ns, name)
	if svc == nil {
		return result{}
	}
	switch svc.Kind {
	case store.ExternalName:
		if qtype == dns.TypeSRV {
			return result{exists: true}
		}
		return c.externalName(ctx, w, snap, svc, qtype, owner, depth)
	case store.Headless:
		if len(svc.Endpoints) == 0 {
			return result{} // the specification: NXDOMAIN without ready endpoints
		}
		res := result{exists: true}
		switch qtype {
		case dns.TypeA, dns.TypeAAAA:
			for _, e := range svc.Endpoints {
				if rr := c.addr(owner, qtype, e.Addr); rr != nil {
					res.answer = append(res.answer, rr)
				}
			}
		case dns.TypeSRV:
			c.endpointSRVs(&res, zone, svc, "", "", owner)
		}
		return res
	}
	res := result{exists: true}
	switch qtype {
	case dns.TypeA, dns.TypeAAAA:
		for _, ip := range svc.ClusterIPs {
			if rr := c.addr(owner, qtype, ip); rr != nil {
				res.answer = append(res.answer, rr)
			}
		}
	case dns.TypeSRV:
		c.serviceSRVs(&res, zone, svc, "", "", owner)
	}
	return res
}

// externalName answers an ExternalName Service: the CNAME, then the
// target's records — from the store when the target is inside a cluster
// zone (at most maxCNAMEChain links), else from Options.Upstream if set.
func (c *Cluster) externalName(ctx context.Context, w dns.ResponseWriter, snap *store.Snapshot, svc *store.ServiceRecord, qtype uint16, owner string, depth int) result {
	target := svc.ExternalName
	if target == "" {
		return result{exists: true}
	}
	res := result{exists: true, answer: []dns.RR{&dns.CNAME{Hdr: c.hdr(owner, dns.TypeCNAME), Target: target}}}
	if qtype == dns.TypeCNAME || depth >= maxCNAMEChain || target == strings.ToLower(owner) {
		return res
	}
	z, reverse := c.match(target)
	switch {
	case z != "" && !reverse:
		next := c.lookup(ctx, w, snap, z, target, qtype, target, depth+1)
		res.answer = append(res.answer, next.answer...)
		res.extra = append(res.extra, next.extra...)
	case c.upstream != nil:
		q := new(dns.Msg)
		q.SetQuestion(target, qtype)
		capture := serve.NewCapture(w)
		rcode, err := c.upstream.ServeDNS(ctx, capture, q)
		if err == nil && serve.ClientWrite(rcode) && capture.Msg != nil {
			res.answer = append(res.answer, capture.Msg.Answer...)
		}
	}
	return res
}

// endpoint answers <ep>.<name>.<ns>.svc.<zone>.
func (c *Cluster) endpoint(snap *store.Snapshot, ns, name, ep string, qtype uint16, owner string) result {
	svc := snap.Service(ns, name)
	if svc == nil || svc.Kind == store.ExternalName {
		return result{}
	}
	var res result
	for _, e := range svc.Endpoints {
		if e.Label != ep {
			continue
		}
		res.exists = true
		if rr := c.addr(owner, qtype, e.Addr); rr != nil {
			res.answer = append(res.answer, rr)
		}
	}
	return res
}

// srv answers _<port>._<proto>.<name>.<ns>.svc.<zone>.
func (c *Cluster) srv(snap *store.Snapshot, zone, ns, name, port, proto string, qtype uint16, owner string) result {
	port, okPort := strings.CutPrefix(port, "_")
	proto, okProto := strings.CutPrefix(proto, "_")
	if !okPort || !okProto || port == "" || proto == "" {
		return result{}
	}
	svc := snap.Service(ns, name)
	if svc == nil || svc.Kind == store.ExternalName {
		return result{}
	}
	var res result
	if svc.Kind == store.Headless {
		c.endpointSRVs(&res, zone, svc, port, proto, owner)
	} else {
		c.serviceSRVs(&res, zone, svc, port, proto, owner)
	}
	if len(res.answer) > 0 {
		res.exists = true
		if qtype != dns.TypeSRV {
			res.answer, res.extra = nil, nil
		}
	}
	return res
}

// portMatches: an empty port and proto (a SRV query at the Service name)
// match every port; otherwise only a named port with that name and
// protocol.
func portMatches(p store.Port, port, proto string) bool {
	if port == "" && proto == "" {
		return true
	}
	return p.Name != "" && p.Name == port && p.Protocol == proto
}

func (c *Cluster) serviceSRVs(res *result, zone string, svc *store.ServiceRecord, port, proto, owner string) {
	target := svc.Name() + "." + zone
	var srvs []*dns.SRV
	for _, p := range svc.Ports {
		if portMatches(p, port, proto) {
			srvs = appendSRV(srvs, c, owner, target, p.Port)
		}
	}
	if len(srvs) == 0 {
		return
	}
	finishSRVs(res, srvs)
	for _, ip := range svc.ClusterIPs {
		res.extra = append(res.extra, c.addrAny(target, ip))
	}
}

func (c *Cluster) endpointSRVs(res *result, zone string, svc *store.ServiceRecord, port, proto, owner string) {
	var srvs []*dns.SRV
	var extra []dns.RR
	seen := map[netip.Addr]bool{}
	for _, e := range svc.Endpoints {
		target := e.Label + "." + svc.Name() + "." + zone
		matched := false
		for _, p := range e.Ports {
			if portMatches(p, port, proto) {
				srvs = appendSRV(srvs, c, owner, target, p.Port)
				matched = true
			}
		}
		if matched && !seen[e.Addr] {
			seen[e.Addr] = true
			extra = append(extra, c.addrAny(target, e.Addr))
		}
	}
	if len(srvs) == 0 {
		return
	}
	finishSRVs(res, srvs)
	res.extra = append(res.extra, extra...)
}

// appendSRV adds a SRV record unless the same target and port is there
// (an endpoint with an IPv4 and an IPv6 address is one target).
func appendSRV(srvs []*dns.SRV, c *Cluster, owner, target string, port int32) []*dns.SRV {
	for _, s := range srvs {
		if s.Target == target && s.Port == uint16(port) {
			return srvs
		}
	}
	return append(srvs, &dns.SRV{Hdr: c.hdr(owner, dns.TypeSRV), Target: target, Port: uint16(port)})
}

// finishSRVs sets the weights as CoreDNS does (priority 0, weight 100/n,
// at least 1) and appends the records to the answer.
func finishSRVs(res *result, srvs []*dns.SRV) {
	w := uint16(max(1, 100/len(srvs)))
	for _, s := range srvs {
		s.Weight = w
		res.answer = append(res.answer, s)
	}
}

// pod answers <a-b-c-d>.<ns>.pod.<zone>.
func (c *Cluster) pod(snap *store.Snapshot, ns, label string, qtype uint16, owner string) result {
	if c.pods == PodsDisabled || !snap.HasNamespace(ns) {
		return result{}
	}
	ip, ok := parseDashedIP(label)
	if !ok {
		return result{}
	}
	if c.pods == PodsVerified && !hasPod(snap, ns, ip) {
		return result{}
	}
	res := result{exists: true}
	if rr := c.addr(owner, qtype, ip); rr != nil {
		res.answer = []dns.RR{rr}
	}
	return res
}

// hasPod reports whether the store has a pod of namespace ns with ip.
func hasPod(snap *store.Snapshot, ns string, ip netip.Addr) bool {
	for _, p := range snap.PodsByIP(ip) {
		if p.Namespace == ns {
			return true
		}
	}
	return false
}

// remotePod reports whether qname (lower case, inside zone) is a pod name
// that Deps.RemotePods answers: verified mode, a namespace that exists, an
// IP no pod of that namespace has in the store. Only a query for the pod
// name itself goes there; an ExternalName Service whose target is such a
// name is answered from the store.
func (c *Cluster) remotePod(snap *store.Snapshot, zone, qname string) bool {
	if c.remote == nil || c.pods != PodsVerified {
		return false
	}
	labels := strings.Split(strings.TrimSuffix(strings.TrimSuffix(qname, zone), "."), ".")
	if len(labels) != 3 || labels[2] != "pod" || !snap.HasNamespace(labels[1]) {
		return false
	}
	ip, ok := parseDashedIP(labels[0])
	return ok && !hasPod(snap, labels[1], ip)
}

// parseDashedIP reads 10-1-2-3 or fd00--1 (an IPv6 address with dashes).
func parseDashedIP(label string) (netip.Addr, bool) {
	if strings.Count(label, "-") == 3 {
		if ip, err := netip.ParseAddr(strings.ReplaceAll(label, "-", ".")); err == nil && ip.Is4() {
			return ip, true
		}
	}
	ip, err := netip.ParseAddr(strings.ReplaceAll(label, "-", ":"))
	if err != nil || !ip.Is6() || ip.Zone() != "" {
		return netip.Addr{}, false
	}
	return ip, true
}

// reverse answers a name in a reverse zone.
func (c *Cluster) reverse(snap *store.Snapshot, qname string, qtype uint16, owner string) result {
	ip, ok := reverseIP(qname)
	if !ok {
		return result{}
	}
	targets := snap.Reverse(ip)
	if len(targets) == 0 {
		return result{}
	}
	res := result{exists: true}
	if qtype != dns.TypePTR {
		return res
	}
	for _, t := range targets {
		res.answer = append(res.answer, &dns.PTR{Hdr: c.hdr(owner, dns.TypePTR), Ptr: t + "." + c.primary})
	}
	return res
}

// reverseIP reads the address of a complete in-addr.arpa or ip6.arpa name.
func reverseIP(qname string) (netip.Addr, bool) {
	if rest, ok := strings.CutSuffix(qname, ".in-addr.arpa."); ok {
		labels := strings.Split(rest, ".")
		if len(labels) != 4 {
			return netip.Addr{}, false
		}
		var b [4]byte
		for i, l := range labels {
			v, err := strconv.ParseUint(l, 10, 8)
			if err != nil || (len(l) > 1 && l[0] == '0') {
				return netip.Addr{}, false
			}
			b[3-i] = byte(v)
		}
		return netip.AddrFrom4(b), true
	}
	if rest, ok := strings.CutSuffix(qname, ".ip6.arpa."); ok {
		labels := strings.Split(rest, ".")
		if len(labels) != 32 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i, l := range labels {
			if len(l) != 1 {
				return netip.Addr{}, false
			}
			v, err := strconv.ParseUint(l, 16, 8)
			if err != nil {
				return netip.Addr{}, false
			}
			pos := 31 - i // nibble index from the start of the address
			if pos%2 == 0 {
				b[pos/2] |= byte(v) << 4
			} else {
				b[pos/2] |= byte(v)
			}
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}
