// Package completion answers a pod's search-list walk in one query: exact
// server-side search completion.
//
// A stub resolver (glibc, musl) asked for a name with fewer dots than its
// ndots option tries name+"."+search[0], name+"."+search[1], ... and then
// the name itself, stopping at the first name that answers. For a default
// ClusterFirst pod an external name costs 8 queries (4 names × A and AAAA).
// The handler recognises the first of those queries, walks the rest of the
// list itself and answers with where the client's own walk would stop.
//
// # When the handler completes
//
// All of these must hold, else the query is handed to the next handler
// untouched:
//
//   - the question is IN A or IN AAAA (each type is completed on its own);
//   - the client's address is the IP of exactly one pod in the store that
//     is not hostNetwork (its source address is the node's) and has not
//     finished (phase Succeeded or Failed). Terminating pods are not in the
//     store. Two pods with the same IP (informer lag, IP reuse) mean no
//     completion;
//   - the pod's resolv.conf, derived from its spec with resolvconf.Compute
//     and the node profile, has a search list whose first entry is not the
//     root, and whose "search" line musl would read (shorter than 256 bytes:
//     musl ignores a longer line and does not walk at all);
//   - the query name is base+"."+search[0] with base having fewer dots than
//     the pod's ndots. The search list is the pod's own (custom dnsConfig
//     searches included), and search[0] is in the pod's namespace for a
//     cluster policy: a query for another namespace never matches.
//
// # What the handler answers
//
// The asked name is first resolved by the next handler (cluster records,
// then cache and forward). If its reply is anything but NXDOMAIN, or the
// next handler fails, that reply (or failure) is the answer, unchanged.
//
// After an NXDOMAIN the handler asks A and AAAA for each later name of the
// client's walk: base+"."+search[i] for i ≥ 1, then base+".". For each:
//
//   - both NXDOMAIN: every client walks on; so does the handler;
//   - both NOERROR and at least one of them has an address of its type:
//     glibc (which stops at the first name with an address of either type)
//     and musl (which stops at any NOERROR) both stop here. The answer is
//     NOERROR, not authoritative: a CNAME from the asked name (as the client
//     wrote it) to this name, then this name's reply to the asked type —
//     its records, or, when it has none of that type (an AAAA-only name
//     asked for A), its authority section, so the client sees NODATA and
//     takes the other type's addresses;
//   - anything else — NOERROR without addresses of either type (glibc walks
//     on, musl stops: the clients disagree), an rcode other than NOERROR
//     and NXDOMAIN, a truncated or missing reply, A and AAAA that disagree
//     on the name's existence: the handler does not complete, and answers
//     the asked name's own NXDOMAIN so the client walks as it would without
//     dnsd's help.
//
// When every name is NXDOMAIN the answer is the asked name's NXDOMAIN: the
// client walks on and its follow-up queries are answered from the cluster
// store and the negative cache. The handler never invents an rcode
// (SERVFAIL or REFUSED would turn "not found" into a hard error).
//
// # Limits
//
// A query for base+"."+search[0] cannot be told apart from a client asking
// that very name literally (as its absolute try, first or last). When that
// literal name does not exist but a later name of the walk does, the
// completed answer differs from what the client would have got; CoreDNS
// autopath shares this. A client whose source address is hidden (SNAT, a
// node-local cache) shows the node's address: no pod, or a hostNetwork
// pod, so no completion. The pod's resolv.conf is derived from its spec and
// dnsd's node profile: a node whose kubelet differs from that profile gets
// a wrong list, and then a wrong completion.
//
// Each completed query counts, in
// poddns_completion_saved_queries_total{namespace}, the queries of its type
// the client did not have to send (the names skipped); the namespace label
// has at most MaxNamespaceLabels values and _other.
package completion

import (
	"context"
	"strconv"
	"strings"
	"sync"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/poddns/poddns/pkg/promopts"
	"github.com/poddns/poddns/pkg/resolvconf"
	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/store"
)

// Source is the part of the store the handler reads.
type Source interface {
	Snapshot() *store.Snapshot
}

// MaxNamespaceLabels bounds the namespace label of
// poddns_completion_saved_queries_total: the first namespaces counted get
// a series each, the others share the series namespace="_other", so that a
// cluster of many namespaces cannot grow the metric without bound.
const MaxNamespaceLabels = 200

// otherNamespaces is the label value of namespaces beyond
// MaxNamespaceLabels (not a valid namespace name).
const otherNamespaces = "_other"

// Metrics are the handler's metrics.
type Metrics struct {
	saved *prometheus.CounterVec
	mu    sync.Mutex
	named map[string]bool // namespaces with a series of their own
}

// addSaved counts n queries saved for a pod of namespace ns.
func (m *Metrics) addSaved(ns string, n int) {
	m.mu.Lock()
	if !m.named[ns] {
		if len(m.named) < MaxNamespaceLabels {
			m.named[ns] = true
		} else {
			ns = otherNamespaces
		}
	}
	m.mu.Unlock()
	m.saved.WithLabelValues(ns).Add(float64(n))
}

// NewMetrics makes the metrics and registers them with reg, if not nil.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{named: map[string]bool{}, saved: prometheus.NewCounterVec(promopts.Counter("completion", "saved_queries_total",
		"Queries pods did not send because dnsd completed their search-list walk, by pod namespace (the first 200; the others under _other)."), []string{"namespace"})}
	if err := promopts.Register(reg, "completion", m.saved); err != nil {
		return nil, err
	}
	return m, nil
}

// Saved is poddns_completion_saved_queries_total{namespace}.
func (m *Metrics) Saved() *prometheus.CounterVec { return m.saved }

// Completion is the handler.
type Completion struct {
	Next    serve.Handler
	profile *resolvconf.NodeProfile
	store   Source
	m       *Metrics

	mu    sync.Mutex
	cache map[*store.Pod]*podResolv
}

// Name implements serve.Handler.
func (c *Completion) Name() string { return "completion" }

// Saved is the counter of saved queries (for tests).
func (c *Completion) Saved() *prometheus.CounterVec { return c.m.saved }

// ServeDNS implements serve.Handler.
func (c *Completion) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	req := serve.NewRequest(w, r)
	qt := req.QType()
	if (qt != dns.TypeA && qt != dns.TypeAAAA) || req.QClass() != dns.ClassINET {
		return serve.NextOrFailure(ctx, c.Name(), c.Next, w, r)
	}
	names, ns := c.walk(req)
	if len(names) < 2 {
		return serve.NextOrFailure(ctx, c.Name(), c.Next, w, r)
	}
	// The asked name, as the client would get it without completion.
	capt := serve.NewCapture(w)
	rcode, err := serve.NextOrFailure(ctx, c.Name(), c.Next, capt, r)
	if err != nil || !serve.ClientWrite(rcode) || capt.Msg == nil {
		return rcode, err
	}
	src := serve.SourceOf(ctx) // the asked name's; the walk's lookups record theirs
	honest := func() (int, error) {
		serve.SetSource(ctx, src)
		return rcode, w.WriteMsg(capt.Msg)
	}
	if capt.Msg.Rcode != dns.RcodeNameError {
		return honest()
	}
	for i, name := range names[1:] {
		a := c.ask(ctx, w, r, name, dns.TypeA)
		aaaa := c.ask(ctx, w, r, name, dns.TypeAAAA)
		if a == nil || aaaa == nil {
			return honest()
		}
		if a.Rcode == dns.RcodeNameError && aaaa.Rcode == dns.RcodeNameError {
			continue
		}
		if a.Rcode != dns.RcodeSuccess || aaaa.Rcode != dns.RcodeSuccess ||
			(!hasType(a.Answer, dns.TypeA) && !hasType(aaaa.Answer, dns.TypeAAAA)) {
			return honest()
		}
		target := a
		if qt == dns.TypeAAAA {
			target = aaaa
		}
		m := req.Reply(dns.RcodeSuccess)
		m.Authoritative = false
		m.RecursionAvailable = target.RecursionAvailable || capt.Msg.RecursionAvailable
		m.Answer = append(make([]dns.RR, 0, len(target.Answer)+1), &dns.CNAME{
			Hdr:    dns.RR_Header{Name: req.QName(), Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: cnameTTL(target)},
			Target: name,
		})
		m.Answer = append(m.Answer, target.Answer...)
		if !hasType(target.Answer, qt) {
			m.Ns = append(m.Ns, target.Ns...)
		}
		c.m.addSaved(ns, i+1)
		serve.SetSource(ctx, serve.SourceCompletion)
		return dns.RcodeSuccess, w.WriteMsg(m)
	}
	return honest()
}

// walk returns the names the client walks through after asking req, the
// asked name first, or nil when the handler must not complete; and the
// namespace of the asking pod.
func (c *Completion) walk(req *serve.Request) ([]string, string) {
	ip := req.IP()
	if !ip.IsValid() {
		return nil, ""
	}
	var pod *store.Pod
	for _, p := range c.store.Snapshot().PodsByIP(ip) {
		if p.Phase == corev1.PodSucceeded || p.Phase == corev1.PodFailed {
			continue
		}
		if pod != nil {
			return nil, "" // two live pods claim the IP
		}
		pod = p
	}
	if pod == nil || pod.HostNetwork {
		return nil, ""
	}
	rc := c.resolv(pod)
	if rc == nil {
		return nil, ""
	}
	base, ok := strings.CutSuffix(req.Name(), "."+rc.searches[0])
	if !ok || base == "" || strings.Count(base, ".") >= rc.ndots {
		return nil, ""
	}
	names := make([]string, 0, len(rc.searches)+1)
	for _, s := range rc.searches {
		if s == "." {
			names = append(names, base+".")
			continue
		}
		names = append(names, base+"."+s)
	}
	return append(names, base+"."), pod.Namespace
}

// podResolv is what completion needs of a pod's resolv.conf: its search
// list, lower-cased and fully qualified ("." for the root), and ndots.
type podResolv struct {
	searches []string
	ndots    int
}

// maxResolvCache bounds the cache of computed resolv.conf files; it is
// emptied when full (pods are immutable in the store, so a changed pod is a
// new key and stale keys only wait for the next emptying).
const maxResolvCache = 1 << 16

// resolv derives pod's resolv.conf, once per stored pod; nil means no
// completion for the pod: Compute failed (kubelet would not start it), no
// search list, a first search entry that is the root, or a search line musl
// would ignore.
func (c *Completion) resolv(pod *store.Pod) *podResolv {
	c.mu.Lock()
	rc, ok := c.cache[pod]
	c.mu.Unlock()
	if ok {
		return rc
	}
	rc = computeResolv(pod, c.profile)
	c.mu.Lock()
	if len(c.cache) >= maxResolvCache {
		clear(c.cache)
	}
	c.cache[pod] = rc
	c.mu.Unlock()
	return rc
}

func computeResolv(pod *store.Pod, profile *resolvconf.NodeProfile) *podResolv {
	res, err := resolvconf.Compute(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		Spec:       corev1.PodSpec{DNSPolicy: pod.DNSPolicy, DNSConfig: pod.DNSConfig},
	}, profile)
	if err != nil {
		return nil
	}
	searches := res.Config.Searches
	if len(searches) == 0 || len("search "+strings.Join(searches, " ")+"\n") >= 256 {
		return nil
	}
	rc := &podResolv{ndots: ndots(res.Config.Options)}
	for _, s := range searches {
		rc.searches = append(rc.searches, dns.Fqdn(strings.ToLower(strings.TrimSuffix(s, "."))))
	}
	if rc.searches[0] == "." {
		return nil
	}
	return rc
}

// ndots is the resolver's ndots for options: the last ndots:N, capped at
// 15 as glibc and musl do; 1 by default.
func ndots(options []string) int {
	n := 1
	for _, o := range options {
		if v, ok := strings.CutPrefix(o, "ndots:"); ok {
			if i, err := strconv.Atoi(v); err == nil && i >= 0 {
				n = min(i, 15)
			}
		}
	}
	return n
}

// ask resolves name/qtype with the next handler as a query like r would,
// and returns the reply, or nil when the next handler failed or the reply
// was truncated.
func (c *Completion) ask(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = r.Id
	serve.AskLike(m, r, dns.DefaultMsgSize)
	capt := serve.NewCapture(w)
	rcode, err := serve.NextOrFailure(ctx, c.Name(), c.Next, capt, m)
	if err != nil || !serve.ClientWrite(rcode) || capt.Msg == nil || capt.Msg.Truncated {
		return nil
	}
	return capt.Msg
}

func hasType(rrs []dns.RR, t uint16) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == t {
			return true
		}
	}
	return false
}

// cnameTTL is the smallest TTL of the target's answer, or of its SOA for a
// negative answer; 5 seconds when it has neither.
func cnameTTL(m *dns.Msg) uint32 {
	ttl, found := uint32(0), false
	for _, rr := range append(m.Answer, m.Ns...) {
		if t := rr.Header().Ttl; !found || t < ttl {
			ttl, found = t, true
		}
	}
	if !found {
		return 5
	}
	return ttl
}
