package static

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/configfile"
)

// Config is the static block of dnsd's DNSDConfig: a list of blocks, each
// like one CoreDNS hosts plugin.
type Config []Block

// Block is one set of static records and the zones it answers.
type Block struct {
	// Zones are the names the block answers (default ["."]: every name
	// outside the cluster zones that reaches it). Entries outside them
	// are ignored.
	Zones []string `json:"zones,omitempty"`
	// Entries are hosts-format lines ("IP name [name...]"), as in
	// /etc/hosts.
	Entries []string `json:"entries,omitempty"`
	// CNAMEs map an alias to its target name.
	CNAMEs map[string]string `json:"cnames,omitempty"`
	// HostsFile is a hosts-format file (relative to the config file),
	// watched: a valid change applies within Reload, an empty, invalid or
	// partial one is refused and counted, and the last good one keeps
	// serving.
	HostsFile string `json:"hostsFile,omitempty"`
	// Reload is how often HostsFile is checked (default 5s, CoreDNS's;
	// 0: never).
	Reload *configfile.Duration `json:"reload,omitempty"`
	// TTL of the records (default 3600, CoreDNS hosts').
	TTL *uint32 `json:"ttl,omitempty"`
	// Fallthrough hands a name of the zones that the block does not know
	// to the next handler (forwarding) instead of answering NXDOMAIN.
	Fallthrough bool `json:"fallthrough,omitempty"`
	// NoReverse leaves out the PTR records made from the entries.
	NoReverse bool `json:"noReverse,omitempty"`
}

// Defaults.
const (
	DefaultTTL    = 3600
	DefaultReload = 5 * time.Second
)

// Paths are the files the configuration names.
func (c Config) Paths() []*string {
	var ps []*string
	for i := range c {
		if c[i].HostsFile != "" {
			ps = append(ps, &c[i].HostsFile)
		}
	}
	return ps
}

func (b Block) ttl() uint32 {
	if b.TTL == nil {
		return DefaultTTL
	}
	return *b.TTL
}

func (b Block) reload() time.Duration {
	if b.Reload == nil {
		return DefaultReload
	}
	return b.Reload.D()
}

func (b Block) zones() []string {
	if len(b.Zones) == 0 {
		return []string{"."}
	}
	zs := make([]string, len(b.Zones))
	for i, z := range b.Zones {
		zs[i] = dns.CanonicalName(z)
	}
	return zs
}

// Validate checks c without reading any file.
func (c Config) Validate() error {
	var errs []error
	for i, b := range c {
		at := fmt.Sprintf("static[%d]", i)
		if len(b.Entries) == 0 && len(b.CNAMEs) == 0 && b.HostsFile == "" {
			errs = append(errs, fmt.Errorf("%s: no entries, cnames or hostsFile", at))
		}
		for _, z := range b.Zones {
			if _, ok := dns.IsDomainName(z); !ok || z == "" {
				errs = append(errs, fmt.Errorf("%s: zone %q is not a domain name", at, z))
			}
		}
		if _, _, err := parseHosts(strings.Join(b.Entries, "\n")+"\n", b.zones()); err != nil {
			errs = append(errs, fmt.Errorf("%s: entries: %w", at, err))
		}
		for alias, target := range b.CNAMEs {
			for _, n := range []string{alias, target} {
				if _, ok := dns.IsDomainName(n); !ok || n == "" || n == "." {
					errs = append(errs, fmt.Errorf("%s: cnames: %q is not a domain name", at, n))
				}
			}
		}
		if b.Reload != nil && *b.Reload < 0 {
			errs = append(errs, fmt.Errorf("%s: reload %s is negative", at, *b.Reload))
		}
		if b.TTL != nil && *b.TTL > 604800 {
			errs = append(errs, fmt.Errorf("%s: ttl %d is above a week", at, *b.TTL))
		}
	}
	return errors.Join(errs...)
}
