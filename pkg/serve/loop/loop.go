// Package loop detects forwarding loops at startup, as CoreDNS's loop
// plugin does (../shared/reference/kubernetes-dns.md §2.5), but as a clear
// startup error instead of a fatal log line and a crash loop.
//
// Check sends, through the forwarder, one probe per default upstream: a
// query for a random name "<random>.<random>.poddns-loop." of type HINFO
// (the same shape as CoreDNS's). The handler, placed first in dnsd's chain,
// recognizes the probe names it sent: an arriving probe is counted and
// sent on to the same upstream it was first sent to (so a loop through one
// upstream among several is found, and named, every time). When a probe
// arrives more than Threshold times it has gone round a loop: the handler
// answers it SERVFAIL, which unwinds the loop at once, and Check returns an
// *Error naming the upstream. A typical cause is an upstream resolv.conf
// naming a node-local stub (127.0.0.53, systemd-resolved) that forwards
// back to dnsd.
//
// Like CoreDNS's, the check catches the loops that exist at startup only.
// An upstream that does not answer the probe in time is reported as
// unchecked, not as a loop (CoreDNS retries for 30 s; dnsd does not delay
// its start that long). Names under poddns-loop. that are not probes of
// this process are handed on like any other name.
package loop

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve"
)

// Zone is the parent of the probe names.
const Zone = "poddns-loop."

// Threshold is the most times a probe may arrive without being a loop
// (CoreDNS's: a loop is a probe seen more than 2 times).
const Threshold = 2

// Forwarder is what Check sends probes through: the forwarder's default
// upstreams, and one exchange with a given upstream.
type Forwarder interface {
	Upstreams() []string
	ExchangeVia(ctx context.Context, addr string, r *dns.Msg) (*dns.Msg, error)
}

// Loop is the probe-recognizing handler; everything that is not one of its
// probes goes to Next.
type Loop struct {
	Next serve.Handler

	fwd    Forwarder
	active atomic.Int32 // probes in flight: 0 is the fast path
	mu     sync.Mutex
	probes map[string]*probe // by lower-case name
}

type probe struct {
	upstream string
	seen     int
}

// Error is a forwarding loop found through Upstream.
type Error struct {
	Upstream string
	Probe    string // the probe's name
	Seen     int    // arrivals at dnsd when the loop was cut
}

func (e *Error) Error() string {
	return fmt.Sprintf("forwarding loop through upstream %s: the probe %s HINFO sent there came back to dnsd %d times "+
		"(more than %d); that upstream forwards to dnsd itself (a node-local stub such as 127.0.0.53 in the upstream resolv.conf?), "+
		"configure upstreams that do not lead back to dnsd", e.Upstream, e.Probe, e.Seen, Threshold)
}

// Config is the handler's configuration. It has no field: dnsd puts the
// handler in its chain whenever there are default upstreams to probe.
type Config struct{}

// Deps are what the handler is given besides its configuration.
type Deps struct {
	// Next gets everything that is not one of the handler's probes.
	Next serve.Handler
	// Forwarder sends the probes. Required.
	Forwarder Forwarder
}

// New returns the handler.
func New(_ Config, d Deps) (*Loop, error) {
	if d.Forwarder == nil {
		return nil, errors.New("loop: no forwarder")
	}
	return &Loop{Next: d.Next, fwd: d.Forwarder, probes: map[string]*probe{}}, nil
}

// Name implements serve.Handler.
func (l *Loop) Name() string { return "loop" }

// ServeDNS counts and sends on the handler's own probes; it hands the rest
// to Next.
func (l *Loop) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if l.active.Load() == 0 || len(r.Question) != 1 {
		return serve.NextOrFailure(ctx, l.Name(), l.Next, w, r)
	}
	name := strings.ToLower(r.Question[0].Name)
	if !dns.IsSubDomain(Zone, name) {
		return serve.NextOrFailure(ctx, l.Name(), l.Next, w, r)
	}
	l.mu.Lock()
	p := l.probes[name]
	var seen int
	var upstream string
	if p != nil {
		p.seen++
		seen, upstream = p.seen, p.upstream
	}
	l.mu.Unlock()
	if p == nil {
		return serve.NextOrFailure(ctx, l.Name(), l.Next, w, r)
	}
	if seen > Threshold {
		return dns.RcodeServerFailure, nil // cut the loop; the server writes SERVFAIL
	}
	reply, err := l.fwd.ExchangeVia(ctx, upstream, r)
	if err != nil {
		return dns.RcodeServerFailure, err
	}
	if err := w.WriteMsg(reply); err != nil {
		return dns.RcodeServerFailure, err
	}
	return dns.RcodeSuccess, nil
}

// Check probes every default upstream of the forwarder at once, within ctx.
// It returns an error joining one *Error per upstream that loops back to
// dnsd, and the upstreams whose probe got no reply (not checked).
func (l *Loop) Check(ctx context.Context) (unanswered []string, err error) {
	ups := l.fwd.Upstreams()
	type result struct {
		loop       *Error
		unanswered bool
	}
	results := make([]result, len(ups))
	var wg sync.WaitGroup
	for i, up := range ups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i].loop, results[i].unanswered = l.probe(ctx, up)
		}()
	}
	wg.Wait()
	var errs []error
	for i, r := range results {
		switch {
		case r.loop != nil:
			errs = append(errs, r.loop)
		case r.unanswered:
			unanswered = append(unanswered, ups[i])
		}
	}
	return unanswered, errors.Join(errs...)
}

// probe sends one probe to upstream and reports a loop, or no reply.
func (l *Loop) probe(ctx context.Context, upstream string) (*Error, bool) {
	name := fmt.Sprintf("%016x.%016x.%s", rand.Uint64(), rand.Uint64(), Zone)
	p := &probe{upstream: upstream}
	l.mu.Lock()
	l.probes[name] = p
	l.mu.Unlock()
	l.active.Add(1)
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeHINFO)
	_, err := l.fwd.ExchangeVia(ctx, upstream, q)
	l.active.Add(-1)
	l.mu.Lock()
	seen := p.seen
	delete(l.probes, name)
	l.mu.Unlock()
	if seen > Threshold {
		return &Error{Upstream: upstream, Probe: name, Seen: seen}, false
	}
	return nil, err != nil
}
