// Package acl keeps dnsd from being an open resolver: it hands a query on
// only when the client's address is in one of the configured networks, and
// answers REFUSED otherwise. dnsd puts it after the cluster records (cluster
// names are answered to anyone who can reach dnsd) and before the cache and
// the forwarder (recursion only for the cluster's clients).
package acl

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve"
)

// DefaultNetworks are loopback, the RFC 1918 private networks and IPv6
// unique local addresses: where pods and nodes usually are.
var DefaultNetworks = []string{"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"}

// ACL is the client-network filter.
type ACL struct {
	Next serve.Handler
	nets []netip.Prefix
}

// Config is the filter's configuration: the clientNetworks field of the
// forward block of dnsd's DNSDConfig.
type Config struct {
	// ClientNetworks are the client networks (CIDR prefixes, or single
	// addresses) served names outside the cluster zones; others get
	// REFUSED. Default: DefaultNetworks.
	ClientNetworks []string `json:"clientNetworks"`
}

// Defaults returns the configuration of the usual pod and node networks
// (a copy: a file decoded over it reuses its slice).
func Defaults() Config { return Config{ClientNetworks: slices.Clone(DefaultNetworks)} }

// Validate checks c.
func (c Config) Validate() error {
	_, err := c.prefixes()
	return err
}

func (c Config) prefixes() ([]netip.Prefix, error) {
	if len(c.ClientNetworks) == 0 {
		return nil, errors.New("acl: no client network")
	}
	var out []netip.Prefix
	for _, s := range c.ClientNetworks {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			ip, err2 := netip.ParseAddr(s)
			if err2 != nil {
				return nil, fmt.Errorf("acl: client network %q: %w", s, err)
			}
			p = netip.PrefixFrom(ip, ip.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Deps are what the filter is given besides its configuration.
type Deps struct {
	// Next gets the queries of allowed clients.
	Next serve.Handler
}

// New checks c and returns the filter.
func New(c Config, d Deps) (*ACL, error) {
	nets, err := c.prefixes()
	if err != nil {
		return nil, err
	}
	return &ACL{Next: d.Next, nets: nets}, nil
}

// Name implements serve.Handler.
func (a *ACL) Name() string { return "acl" }

// Allowed reports whether ip is in one of the networks.
func (a *ACL) Allowed(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range a.nets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ServeDNS hands r on for allowed clients and refuses the others.
//
// Past the ACL, dnsd recurses for the client, so a SERVFAIL from behind it
// (every upstream failed, a cached SERVFAIL) is written here with RA set:
// a SERVFAIL without RA reads as "this server does not recurse for you",
// and some stub resolvers then give up on the server instead of retrying.
func (a *ACL) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if !a.Allowed(serve.NewRequest(w, r).IP()) {
		return dns.RcodeRefused, nil
	}
	tw := trackWriters.Get().(*trackWriter)
	*tw = trackWriter{ResponseWriter: w}
	rcode, err := serve.NextOrFailure(ctx, a.Name(), a.Next, tw, r)
	written := tw.written
	*tw = trackWriter{}
	trackWriters.Put(tw) // the handlers below are done with it (serve's handler contract)
	if rcode == dns.RcodeServerFailure && !written {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeServerFailure)
		m.RecursionAvailable = true
		if werr := w.WriteMsg(m); werr != nil && err == nil {
			err = werr
		}
	}
	return rcode, err
}

var trackWriters = sync.Pool{New: func() any { return new(trackWriter) }}

// trackWriter remembers whether a reply was written through it.
type trackWriter struct {
	dns.ResponseWriter
	written bool
}

func (w *trackWriter) WriteMsg(m *dns.Msg) error {
	w.written = true
	return w.ResponseWriter.WriteMsg(m)
}

func (w *trackWriter) WritePacked(p *serve.Packed) error {
	w.written = true
	return serve.WritePacked(w.ResponseWriter, p)
}

func (w *trackWriter) Write(b []byte) (int, error) {
	w.written = true
	return w.ResponseWriter.Write(b)
}
