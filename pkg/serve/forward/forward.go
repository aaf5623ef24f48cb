package forward

import (
	"context"
	"fmt"
	"log/slog"
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
	forceTCP bool
	inflight atomic.Int64
	m        *Metrics
	log      *slog.Logger

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
		out = append(out, netip.AddrPortFrom(ip.Unmap(), DNSPort).String())
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("forward: resolv.conf %s: no nameserver", path)
	}
	return out, nil
}

// tlsScheme prefixes the address of a DNS-over-TLS upstream.
const tlsScheme = "tls://"

// Default ports.
const (
	DNSPort = 53
	TLSPort = 853 // DNS over TLS (RFC 7858)
)

// ParseUpstream turns "IP" or "IP:port" (optionally prefixed "dns://")
// into "IP:port", and "tls://IP" or "tls://IP:port" into "tls://IP:port"
// (port 853 by default).
func ParseUpstream(s string) (string, error) {
	s = strings.TrimSpace(s)
	scheme, port, rest := "", uint16(DNSPort), s
	if i := strings.Index(s, "://"); i >= 0 {
		switch strings.ToLower(s[:i]) {
		case "dns":
		case "tls":
			scheme, port = tlsScheme, TLSPort
		default:
			return "", fmt.Errorf("upstream %q: scheme %s: want dns:// or tls://", s, s[:i])
		}
		rest = s[i+3:]
	}
	if ap, err := netip.ParseAddrPort(rest); err == nil {
		if ap.Port() == 0 {
			return "", fmt.Errorf("upstream %q: port 0", s)
		}
		return scheme + netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String(), nil
	}
	ip, err := netip.ParseAddr(strings.Trim(rest, "[]"))
	if err != nil {
		return "", fmt.Errorf("upstream %q: want IP or IP:port, optionally after dns:// or tls://", s)
	}
	return scheme + netip.AddrPortFrom(ip.Unmap(), port).String(), nil
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
			if u.tlsp != nil {
				u.tlsp.close()
			}
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
	serve.SetSource(ctx, serve.SourceUpstream)
	if err := w.WriteMsg(reply); err != nil {
		return dns.RcodeServerFailure, err
	}
	return dns.RcodeSuccess, nil
}

// exchange sends r to the upstreams of g in policy order until one answers
// or ctx ends, and returns the upstream's reply (its own ID and question).
func (f *Forward) exchange(ctx context.Context, g *group, r *dns.Msg) (*dns.Msg, error) {
	serve.Blocking(ctx) // nothing waits behind this query while it waits
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
	serve.AskLike(q, r, serve.MaxUDPSize)
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
	serve.Blocking(ctx)
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
