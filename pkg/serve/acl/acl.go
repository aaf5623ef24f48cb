// Package acl keeps dnsd from being an open resolver: it hands a query on
// only when the client's address is in one of the configured networks, and
// answers REFUSED otherwise. dnsd puts it after the cluster records (cluster
// names are answered to anyone who can reach dnsd) and before the cache and
// the forwarder (recursion only for the cluster's clients).
package acl

import (
	"context"
	"fmt"
	"net/netip"

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

// New parses networks (CIDR prefixes, or single addresses); none means
// DefaultNetworks.
func New(networks []string, next serve.Handler) (*ACL, error) {
	if len(networks) == 0 {
		networks = DefaultNetworks
	}
	a := &ACL{Next: next}
	for _, s := range networks {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			ip, err2 := netip.ParseAddr(s)
			if err2 != nil {
				return nil, fmt.Errorf("acl: client network %q: %w", s, err)
			}
			p = netip.PrefixFrom(ip, ip.BitLen())
		}
		a.nets = append(a.nets, p.Masked())
	}
	return a, nil
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
	tw := &trackWriter{ResponseWriter: w}
	rcode, err := serve.NextOrFailure(ctx, a.Name(), a.Next, tw, r)
	if rcode == dns.RcodeServerFailure && !tw.written {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeServerFailure)
		m.RecursionAvailable = true
		if werr := w.WriteMsg(m); werr != nil && err == nil {
			err = werr
		}
	}
	return rcode, err
}

// trackWriter remembers whether a reply was written through it.
type trackWriter struct {
	dns.ResponseWriter
	written bool
}

func (w *trackWriter) WriteMsg(m *dns.Msg) error {
	w.written = true
	return w.ResponseWriter.WriteMsg(m)
}

func (w *trackWriter) Write(b []byte) (int, error) {
	w.written = true
	return w.ResponseWriter.Write(b)
}
