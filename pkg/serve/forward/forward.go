package forward

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"

	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/resolvconf"
	"github.com/poddns/poddns/pkg/serve"
)

// Policy orders the upstreams tried for one query.
type Policy string

// Policies.
const (
	Random     Policy = "random"
	RoundRobin Policy = "round_robin"
	Sequential Policy = "sequential"
)

// Defaults (CoreDNS's, with the Kubernetes Corefile's max_concurrent).
const (
	DefaultTryTimeout    = 2 * time.Second
	DefaultDeadline      = 5 * time.Second
	DefaultMaxFails      = 2
	DefaultHealthCheck   = 500 * time.Millisecond
	DefaultExpire        = 10 * time.Second
	DefaultMaxConcurrent = 1000
	DefaultPoolSize      = 16
	// MaxUpstreams is the most upstreams of one zone (CoreDNS's limit).
	MaxUpstreams = 15
)

// Stub sends the names in Zone (and below) to its own upstreams.
type Stub struct {
	Zone      string
	Upstreams []string
}

// Options configure a Forward.
type Options struct {
	// Upstreams answer every name no stub covers: "IP" or "IP:port"
	// (port 53 by default). May be empty when Stubs are set.
	Upstreams []string
	// Stubs are per-zone upstreams.
	Stubs []Stub
	// Policy orders the upstreams; "" means Random.
	Policy Policy
	// TryTimeout bounds one try (UDP, and the TCP retry together); 0 means
	// DefaultTryTimeout.
	TryTimeout time.Duration
	// Deadline bounds all the tries of one query; 0 means DefaultDeadline.
	Deadline time.Duration
	// MaxFails is the number of failed tries in a row that marks an
	// upstream down; 0 means DefaultMaxFails, negative never marks down.
	MaxFails int
	// HealthCheck is the probe interval of a down upstream; 0 means
	// DefaultHealthCheck.
	HealthCheck time.Duration
	// Expire closes pooled TCP connections idle this long; 0 means
	// DefaultExpire.
	Expire time.Duration
	// PoolSize is the most idle TCP connections kept per upstream; 0
	// means DefaultPoolSize. (UDP sockets are never pooled.)
	PoolSize int
	// MaxConcurrent bounds the queries in flight; 0 means
	// DefaultMaxConcurrent, negative means no limit.
	MaxConcurrent int
	// RandomizeCase sends query names in random case (0x20) and accepts
	// only replies that echo it exactly; an upstream that does not keep
	// case is detected by its first such reply, counted, and sent names
	// unchanged for CaseFallback.
	RandomizeCase bool
	// Metrics, if set, receive the forwarder's metrics.
	Metrics *Metrics
	// Next gets the names no upstream set covers.
	Next serve.Handler
}

// Forward is the forwarding handler. Close stops its health checks and
// closes its sockets.
type Forward struct {
	Next serve.Handler

	def      *group   // nil without default upstreams
	stubs    []*group // longest zone first
	policy   Policy
	tryTO    time.Duration
	deadline time.Duration
	maxFails int
	hcEvery  time.Duration
	expire   time.Duration
	poolSize int
	maxConc  int64
	case0x20 bool
	inflight atomic.Int64
	m        *Metrics

	rr      atomic.Uint32
	stop    chan struct{}
	stopped atomic.Bool
	wg      sync.WaitGroup
}

// group is the upstreams of one zone.
type group struct {
	zone string // lower-case FQDN; "." for the default group
	ups  []*upstream
}

// ResolvConfUpstreams returns the nameservers of a resolv.conf file as
// upstream addresses, parsed with kubelet's rules. A file without a usable
// nameserver is an error.
func ResolvConfUpstreams(path string) ([]string, error) {
	f, err := resolvconf.ParseFile(path)
	if err != nil {
		return nil, fmt.Errorf("forward: resolv.conf %s: %w", path, err)
	}
	var out []string
	for _, ns := range f.Nameservers {
		ip, err := netip.ParseAddr(ns)
		if err != nil {
			return nil, fmt.Errorf("forward: resolv.conf %s: nameserver %q is not an IP address", path, ns)
		}
		out = append(out, netip.AddrPortFrom(ip.Unmap(), 53).String())
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("forward: resolv.conf %s: no nameserver", path)
	}
	return out, nil
}

// ParseUpstream turns "IP" or "IP:port" into "IP:port".
func ParseUpstream(s string) (string, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "dns://")
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return "", fmt.Errorf("upstream %q: port 0", s)
		}
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String(), nil
	}
	ip, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return "", fmt.Errorf("upstream %q: want IP or IP:port", s)
	}
	return netip.AddrPortFrom(ip.Unmap(), 53).String(), nil
}

// New checks o and returns the forwarder. It starts nothing: sockets are
// dialled and health checks started when needed.
func New(o Options) (*Forward, error) {
	f := &Forward{Next: o.Next, policy: o.Policy, tryTO: o.TryTimeout, deadline: o.Deadline, maxFails: o.MaxFails,
		hcEvery: o.HealthCheck, expire: o.Expire, poolSize: o.PoolSize, maxConc: int64(o.MaxConcurrent), case0x20: o.RandomizeCase, m: o.Metrics, stop: make(chan struct{})}
	switch f.policy {
	case "":
		f.policy = Random
	case Random, RoundRobin, Sequential:
	default:
		return nil, fmt.Errorf("forward: policy %q: want random, round_robin or sequential", o.Policy)
	}
	if f.tryTO <= 0 {
		f.tryTO = DefaultTryTimeout
	}
	if f.deadline <= 0 {
		f.deadline = DefaultDeadline
	}
	if f.maxFails == 0 {
		f.maxFails = DefaultMaxFails
	}
	if f.hcEvery <= 0 {
		f.hcEvery = DefaultHealthCheck
	}
	if f.expire <= 0 {
		f.expire = DefaultExpire
	}
	if f.poolSize <= 0 {
		f.poolSize = DefaultPoolSize
	}
	if f.maxConc == 0 {
		f.maxConc = DefaultMaxConcurrent
	}
	if f.m == nil {
		f.m, _ = NewMetrics(nil)
	}
	var err error
	if len(o.Upstreams) > 0 {
		if f.def, err = f.newGroup(".", o.Upstreams); err != nil {
			return nil, err
		}
	}
	seen := map[string]bool{}
	for _, s := range o.Stubs {
		z := dns.Fqdn(strings.ToLower(strings.TrimSpace(s.Zone)))
		if _, ok := dns.IsDomainName(z); !ok {
			return nil, fmt.Errorf("forward: stub zone %q is not a domain name", s.Zone)
		}
		if seen[z] {
			return nil, fmt.Errorf("forward: stub zone %q given twice", z)
		}
		seen[z] = true
		g, err := f.newGroup(z, s.Upstreams)
		if err != nil {
			return nil, err
		}
		if z == "." {
			if f.def != nil {
				return nil, errors.New("forward: stub zone \".\" and default upstreams both given")
			}
			f.def = g
			continue
		}
		f.stubs = append(f.stubs, g)
	}
	slices.SortStableFunc(f.stubs, func(a, b *group) int { return len(b.zone) - len(a.zone) })
	if f.def == nil && len(f.stubs) == 0 {
		return nil, errors.New("forward: no upstream")
	}
	return f, nil
}

func (f *Forward) newGroup(zone string, addrs []string) (*group, error) {
	if len(addrs) == 0 {
		return nil, fmt.Errorf("forward: zone %s: no upstream", zone)
	}
	if len(addrs) > MaxUpstreams {
		return nil, fmt.Errorf("forward: zone %s: %d upstreams, at most %d", zone, len(addrs), MaxUpstreams)
	}
	g := &group{zone: zone}
	for _, a := range addrs {
		addr, err := ParseUpstream(a)
		if err != nil {
			return nil, fmt.Errorf("forward: zone %s: %w", zone, err)
		}
		g.ups = append(g.ups, newUpstream(f, addr))
	}
	return g, nil
}

// Name implements serve.Handler.
func (f *Forward) Name() string { return "forward" }

// Close stops the health checks and closes the idle sockets; queries in
// flight finish, and their sockets are closed afterwards.
func (f *Forward) Close() {
	if f.stopped.Swap(true) {
		return
	}
	close(f.stop)
	f.wg.Wait()
	for _, g := range f.groups() {
		for _, u := range g.ups {
			u.tcp.drain()
		}
	}
}

func (f *Forward) groups() []*group {
	gs := slices.Clone(f.stubs)
	if f.def != nil {
		gs = append(gs, f.def)
	}
	return gs
}

// match returns the upstream group of qname (lower case), or nil.
func (f *Forward) match(qname string) *group {
	for _, g := range f.stubs {
		if dns.IsSubDomain(g.zone, qname) {
			return g
		}
	}
	return f.def
}

// ServeDNS forwards r to the upstreams of its zone.
func (f *Forward) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	req := serve.NewRequest(w, r)
	g := f.match(req.Name())
	if g == nil {
		return serve.NextOrFailure(ctx, f.Name(), f.Next, w, r)
	}
	if n := f.inflight.Add(1); f.maxConc > 0 && n > f.maxConc {
		f.inflight.Add(-1)
		f.m.rejects.Inc()
		return dns.RcodeRefused, nil
	}
	f.m.inflight.Inc()
	defer func() { f.inflight.Add(-1); f.m.inflight.Dec() }()

	ctx, cancel := context.WithTimeout(ctx, f.deadline)
	defer cancel()
	reply, err := f.exchange(ctx, g, r)
	if err != nil {
		return dns.RcodeServerFailure, err
	}
	reply.Id = r.Id
	reply.Question = r.Question
	// dnsd recurses (through its upstreams) for this client: an upstream
	// that is an authoritative server, or a cleared AA, must not make a
	// NODATA look like a referral (glibc resends a NOERROR reply with no
	// records and neither AA nor RA, then tries the next nameserver).
	reply.RecursionAvailable = true
	reply.Extra = slices.DeleteFunc(reply.Extra, func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeOPT })
	if err := w.WriteMsg(reply); err != nil {
		return dns.RcodeServerFailure, err
	}
	return dns.RcodeSuccess, nil
}

// exchange sends r to the upstreams of g in policy order until one answers
// or ctx ends, and returns the upstream's reply (its own ID and question).
func (f *Forward) exchange(ctx context.Context, g *group, r *dns.Msg) (*dns.Msg, error) {
	q := upstreamQuery(r)
	order := f.order(g)
	var lastErr error
	// Every upstream at most twice (CoreDNS's max_connect_attempts), all
	// within ctx's deadline.
	for attempt := 0; attempt < 2*len(order); attempt++ {
		if ctx.Err() != nil {
			break
		}
		u := order[attempt%len(order)]
		reply, err := u.exchange(ctx, q)
		if err == nil {
			return reply, nil
		}
		lastErr = err
	}
	if lastErr == nil {
		lastErr = ctx.Err()
	}
	return nil, fmt.Errorf("%s %s: every upstream failed: %w", r.Question[0].Name, dns.TypeToString[r.Question[0].Qtype], lastErr)
}

// order returns the upstreams in the order to try: by policy, healthy ones
// first; when all are down, they are still all tried.
func (f *Forward) order(g *group) []*upstream {
	ups := slices.Clone(g.ups)
	switch f.policy {
	case Random:
		rand.Shuffle(len(ups), func(i, j int) { ups[i], ups[j] = ups[j], ups[i] })
	case RoundRobin:
		k := int(f.rr.Add(1)-1) % len(ups)
		ups = append(ups[k:], ups[:k]...)
	}
	healthy := ups[:0:0]
	var down []*upstream
	for _, u := range ups {
		if u.down.Load() {
			down = append(down, u)
		} else {
			healthy = append(healthy, u)
		}
	}
	if len(healthy) == 0 {
		f.m.hcBroken.Inc()
	}
	return append(healthy, down...)
}

// upstreamQuery builds the query sent upstream for the client's query r.
func upstreamQuery(r *dns.Msg) *dns.Msg {
	q := new(dns.Msg)
	q.Question = []dns.Question{r.Question[0]}
	q.RecursionDesired = r.RecursionDesired
	q.CheckingDisabled = r.CheckingDisabled
	do := false
	if opt := r.IsEdns0(); opt != nil {
		do = opt.Do()
	}
	q.SetEdns0(serve.MaxUDPSize, do)
	return q
}

// Down returns the addresses of the upstreams marked down.
func (f *Forward) Down() []string {
	var out []string
	for _, g := range f.groups() {
		for _, u := range g.ups {
			if u.down.Load() {
				out = append(out, u.addr)
			}
		}
	}
	return out
}

// Upstreams returns the addresses of the default upstreams (those of no
// stub zone), in configuration order.
func (f *Forward) Upstreams() []string {
	if f.def == nil {
		return nil
	}
	out := make([]string, 0, len(f.def.ups))
	for _, u := range f.def.ups {
		out = append(out, u.addr)
	}
	return out
}

// ExchangeVia sends r to the upstream addr (as Upstreams or a stub lists
// it) with one try, as ServeDNS would, bounded by ctx and the deadline,
// and returns the reply with r's ID and question. It is for the loop
// probe, which must know which upstream a query went to.
func (f *Forward) ExchangeVia(ctx context.Context, addr string, r *dns.Msg) (*dns.Msg, error) {
	var u *upstream
	for _, g := range f.groups() {
		for _, x := range g.ups {
			if x.addr == addr {
				u = x
			}
		}
	}
	if u == nil {
		return nil, fmt.Errorf("forward: no upstream %s", addr)
	}
	ctx, cancel := context.WithTimeout(ctx, f.deadline)
	defer cancel()
	reply, err := u.exchange(ctx, upstreamQuery(r))
	if err != nil {
		return nil, err
	}
	reply.Id = r.Id
	reply.Question = r.Question
	reply.Extra = slices.DeleteFunc(reply.Extra, func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeOPT })
	return reply, nil
}
