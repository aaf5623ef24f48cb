package cluster

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

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
	DefaultTTL = 30
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

// Config is the handler's configuration: the zones, ttl and pods fields of
// dnsd's DNSDConfig. Defaults returns the values of the fields a file
// leaves out; every value is taken as it is (0 is a TTL of 0 seconds).
type Config struct {
	// Zones are the cluster domains, e.g. cluster.local (default
	// [cluster.local]); the first is the one PTR targets are in.
	Zones []string `json:"zones"`
	// TTL of every record but dns-version, in seconds, 0 to 3600 (default
	// 30).
	TTL uint32 `json:"ttl"`
	// Pods is how pod names are answered: disabled, insecure (default, as
	// the stock Kubernetes Corefile) or verified.
	Pods PodMode `json:"pods"`
	// ReverseFallthrough hands reverse names of IPs the cluster does not
	// own to the next handler (default true, as the stock Corefile's
	// fallthrough in-addr.arpa ip6.arpa); false answers them NXDOMAIN.
	ReverseFallthrough bool `json:"reverseFallthrough"`
}

// Defaults returns the configuration of a stock Kubernetes cluster.
func Defaults() Config {
	return Config{Zones: []string{"cluster.local"}, TTL: DefaultTTL, Pods: PodsInsecure, ReverseFallthrough: true}
}

// Validate checks c without building anything.
func (c Config) Validate() error {
	_, err := c.FQDNs()
	if c.TTL > MaxTTL {
		err = errors.Join(err, fmt.Errorf("cluster: ttl %d is above %d", c.TTL, MaxTTL))
	}
	switch c.Pods {
	case PodsDisabled, PodsInsecure, PodsVerified:
	default:
		err = errors.Join(err, fmt.Errorf("cluster: pods %q: want %s, %s or %s", c.Pods, PodsDisabled, PodsInsecure, PodsVerified))
	}
	return err
}

// FQDNs are the zones as served: lower-case, fully qualified, in the
// configured order.
func (c Config) FQDNs() ([]string, error) {
	if len(c.Zones) == 0 {
		return nil, errors.New("cluster: no zone")
	}
	var out []string
	for _, z := range c.Zones {
		z = dns.Fqdn(strings.ToLower(strings.TrimSpace(z)))
		if _, ok := dns.IsDomainName(z); !ok || z == "." {
			return nil, fmt.Errorf("cluster: zone %q is not a domain name", z)
		}
		for _, r := range ReverseZones {
			if dns.IsSubDomain(r, z) {
				return nil, fmt.Errorf("cluster: zone %q is inside the reverse zone %s", z, r)
			}
		}
		out = append(out, z)
	}
	return out, nil
}

// Deps are what the handler is given besides its configuration.
type Deps struct {
	// Store holds the records. Required.
	Store Source
	// Next gets the names the handler does not answer.
	Next serve.Handler
	// Upstream, if set, resolves ExternalName targets outside the zones
	// (usually the whole chain, so that the cache and forwarder answer);
	// without it such a CNAME is answered alone, and the client follows it.
	Upstream serve.Handler
	// RemotePods, if set, is asked for the pod names of verified mode whose
	// IP no pod of that namespace has in the store, instead of answering
	// them NXDOMAIN: a node-local dnsd holds only its node's pods, and a pod
	// of another node exists all the same (dnsd: a forwarder to the central
	// server, which holds every pod). Its reply is the client's as it is.
	RemotePods serve.Handler
	// MemoSize is the most replies of one snapshot kept packed (memo.go);
	// 0 is DefaultMemoSize, and a negative size keeps none.
	MemoSize int
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
	remote   serve.Handler        // verified pod names the store lacks
	memo     atomic.Pointer[memo] // the packed replies of the current snapshot (memo.go)
	memoSize int                  // at most this many (none when 0)
}

// New checks c and returns the handler.
func New(c Config, d Deps) (*Cluster, error) {
	if d.Store == nil {
		return nil, errors.New("cluster: no store")
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	zones, _ := c.FQDNs()
	h := &Cluster{zones: zones, primary: zones[0], ttl: c.TTL, pods: c.Pods, revFall: c.ReverseFallthrough,
		store: d.Store, Next: d.Next, upstream: d.Upstream, remote: d.RemotePods, memoSize: max(d.MemoSize, 0)}
	if d.MemoSize == 0 {
		h.memoSize = DefaultMemoSize
	}
	// Longest zone first, so that a zone inside another wins.
	sortLongestFirst(h.zones)
	return h, nil
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
