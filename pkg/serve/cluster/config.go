package cluster

import (
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/store"
)

// PodMode says how <a-b-c-d>.<ns>.pod.<zone> names are answered.
type PodMode string

const (
	// PodsDisabled answers NXDOMAIN for pod names (CoreDNS's default).
	PodsDisabled PodMode = "disabled"
	// PodsInsecure answers the IP written in the name when the namespace
	// exists, as kube-dns did (the stock Kubernetes Corefile).
	PodsInsecure PodMode = "insecure"
	// PodsVerified answers only for a pod with that IP in that namespace.
	PodsVerified PodMode = "verified"
)

// Defaults.
const (
	DefaultZone = "cluster.local."
	DefaultTTL  = 30
	// MaxTTL is the largest TTL accepted (as CoreDNS).
	MaxTTL = 3600
	// DNSSchemaVersion is the version of the Kubernetes DNS specification
	// served in dns-version.<zone>.
	DNSSchemaVersion = "1.1.0"
	// dnsVersionTTL is the TTL of the dns-version record (as CoreDNS).
	dnsVersionTTL = 28800
)

// ReverseZones are the reverse zones answered for cluster IPs.
var ReverseZones = []string{"in-addr.arpa.", "ip6.arpa."}

// Source is what the handler reads: the store.
type Source interface {
	Snapshot() *store.Snapshot
	Synced() bool
}

// Options configure the handler.
type Options struct {
	// Zones are the cluster domains, e.g. "cluster.local"; default
	// DefaultZone.
	Zones []string
	// TTL of every record except dns-version; nil means DefaultTTL.
	TTL *uint32
	// Pods is how pod names are answered; "" means PodsDisabled.
	Pods PodMode
	// NoReverseFallthrough answers NXDOMAIN for reverse names of unknown
	// IPs instead of handing them to the next handler.
	NoReverseFallthrough bool
	// Store holds the records.
	Store Source
	// Next gets the names the handler does not answer.
	Next serve.Handler
	// Upstream, if set, resolves ExternalName targets outside the zones
	// (usually the whole chain, so that the cache and forwarder answer);
	// without it such a CNAME is answered alone, and the client follows it.
	Upstream serve.Handler
}

// Cluster is the cluster-records handler.
type Cluster struct {
	zones    []string // lower-case FQDNs, longest first
	primary  string   // the first zone configured: PTR targets are in it
	ttl      uint32
	pods     PodMode
	revFall  bool
	store    Source
	Next     serve.Handler
	upstream serve.Handler
}

// New checks o and returns the handler.
func New(o Options) (*Cluster, error) {
	if o.Store == nil {
		return nil, errors.New("cluster: no store")
	}
	c := &Cluster{ttl: DefaultTTL, pods: PodsDisabled, revFall: !o.NoReverseFallthrough, store: o.Store, Next: o.Next, upstream: o.Upstream}
	if o.TTL != nil {
		if *o.TTL > MaxTTL {
			return nil, fmt.Errorf("cluster: ttl %d is above %d", *o.TTL, MaxTTL)
		}
		c.ttl = *o.TTL
	}
	switch o.Pods {
	case "":
	case PodsDisabled, PodsInsecure, PodsVerified:
		c.pods = o.Pods
	default:
		return nil, fmt.Errorf("cluster: pods %q: want %s, %s or %s", o.Pods, PodsDisabled, PodsInsecure, PodsVerified)
	}
	zones := o.Zones
	if len(zones) == 0 {
		zones = []string{DefaultZone}
	}
	for _, z := range zones {
		z = dns.Fqdn(strings.ToLower(strings.TrimSpace(z)))
		if _, ok := dns.IsDomainName(z); !ok || z == "." {
			return nil, fmt.Errorf("cluster: zone %q is not a domain name", z)
		}
		for _, r := range ReverseZones {
			if dns.IsSubDomain(r, z) {
				return nil, fmt.Errorf("cluster: zone %q is inside the reverse zone %s", z, r)
			}
		}
		c.zones = append(c.zones, z)
	}
	c.primary = c.zones[0]
	// Longest zone first, so that a zone inside another wins.
	sortLongestFirst(c.zones)
	return c, nil
}

func sortLongestFirst(zs []string) {
	for i := 1; i < len(zs); i++ {
		for j := i; j > 0 && len(zs[j]) > len(zs[j-1]); j-- {
			zs[j], zs[j-1] = zs[j-1], zs[j]
		}
	}
}

// Zones are the cluster zones served, lower-case and fully qualified.
func (c *Cluster) Zones() []string { return append([]string(nil), c.zones...) }

// Name implements serve.Handler.
func (c *Cluster) Name() string { return "cluster" }
