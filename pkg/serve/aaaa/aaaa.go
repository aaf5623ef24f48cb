// Package aaaa answers AAAA queries for names outside the cluster NODATA
// itself, without asking an upstream: on IPv4-only clusters most AAAA
// queries (glibc and musl ask A and AAAA for every lookup, and every step
// of a search walk) are pure cost, and CoreDNS's usual remedy, a
// `template ANY AAAA { rcode NOERROR }` block, also hides the AAAA records
// of dual-stack cluster Services.
//
// dnsd puts the handler behind the cluster and static handlers and acl:
// cluster names (a dual-stack Service's AAAA included) and static records
// are answered before it, and clients outside the client networks are
// still refused. Mode says whose queries it answers:
//
//   - ipv4Pods: clients that are pods whose status shows no IPv6 address
//     (from the store's pod index); other clients, and pods with an IPv6
//     address, are forwarded as usual.
//   - all: every client.
//
// The reply is NOERROR with no records and no SOA (as the template hack's),
// RA set; every one is counted in poddns_aaaa_filtered_total. Without
// upstreams the handler is left out: names outside the cluster are
// refused anyway.
package aaaa

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"

	"github.com/poddns/poddns/pkg/promopts"
	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/store"
)

// Mode says which clients' AAAA queries are answered NODATA.
type Mode string

// The modes.
const (
	ModeNone     Mode = "none"
	ModeIPv4Pods Mode = "ipv4Pods"
	ModeAll      Mode = "all"
)

// Config is the aaaa block of dnsd's DNSDConfig.
type Config struct {
	// Filter is none (default), ipv4Pods or all. (Not "off": YAML reads an
	// unquoted off as false.)
	Filter Mode `json:"filter"`
}

// Defaults returns no filter.
func Defaults() Config { return Config{Filter: ModeNone} }

// Enabled reports whether the handler is in the chain.
func (c Config) Enabled() bool { return c.Filter == ModeIPv4Pods || c.Filter == ModeAll }

// Validate checks c.
func (c Config) Validate() error {
	switch c.Filter {
	case ModeNone, ModeIPv4Pods, ModeAll:
		return nil
	}
	return fmt.Errorf("aaaa: filter %q: want none, ipv4Pods or all", c.Filter)
}

// Metrics count the filtered queries; made once, they outlive reloads.
type Metrics struct{ filtered prometheus.Counter }

// NewMetrics makes the metrics and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{filtered: prometheus.NewCounter(promopts.Counter("aaaa", "filtered_total",
		"AAAA queries for names outside the cluster answered NODATA by dnsd without asking an upstream."))}
	if err := promopts.Register(reg, "aaaa", m.filtered); err != nil {
		return nil, err
	}
	return m, nil
}

// Filtered returns the counter (for tests).
func (m *Metrics) Filtered() prometheus.Counter { return m.filtered }

// Deps are what the handler is given besides its configuration.
type Deps struct {
	// Next gets every other query.
	Next serve.Handler
	// Store is the pod index (needed by ipv4Pods).
	Store interface{ Snapshot() *store.Snapshot }
	// Metrics; nil: unregistered ones.
	Metrics *Metrics
}

// Filter is the handler.
type Filter struct {
	next  serve.Handler
	all   bool
	store interface{ Snapshot() *store.Snapshot }
	m     *Metrics
}

// New returns the handler.
func New(c Config, d Deps) (*Filter, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Filter == ModeIPv4Pods && d.Store == nil {
		return nil, fmt.Errorf("aaaa: filter %s needs the pod index", c.Filter)
	}
	f := &Filter{next: d.Next, all: c.Filter == ModeAll, store: d.Store, m: d.Metrics}
	if f.m == nil {
		f.m, _ = NewMetrics(nil)
	}
	return f, nil
}

// Name implements serve.Handler.
func (f *Filter) Name() string { return "aaaa" }

// ServeDNS answers AAAA queries of the chosen clients NODATA; it hands
// everything else on.
func (f *Filter) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	q := r.Question[0]
	if q.Qtype != dns.TypeAAAA || q.Qclass != dns.ClassINET {
		return serve.NextOrFailure(ctx, f.Name(), f.next, w, r)
	}
	if !f.all && !f.ipv4Pod(serve.NewRequest(w, r).IP()) {
		return serve.NextOrFailure(ctx, f.Name(), f.next, w, r)
	}
	f.m.filtered.Inc()
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	serve.SetSource(ctx, serve.SourceFiltered)
	if err := w.WriteMsg(m); err != nil {
		return dns.RcodeServerFailure, err
	}
	return dns.RcodeSuccess, nil
}

// ipv4Pod reports whether ip is the address of exactly one live pod of its
// own network namespace, and that pod's status shows no IPv6 address.
func (f *Filter) ipv4Pod(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	var pod *store.Pod
	for _, p := range f.store.Snapshot().PodsByIP(ip) {
		if p.Phase == corev1.PodSucceeded || p.Phase == corev1.PodFailed {
			continue
		}
		if pod != nil {
			return false
		}
		pod = p
	}
	if pod == nil || pod.HostNetwork {
		return false
	}
	for _, a := range pod.IPs {
		if a.Is6() && !a.Is4In6() {
			return false
		}
	}
	return true
}
