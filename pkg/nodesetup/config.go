package nodesetup

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Defaults.
const (
	// DefaultInterface is the name of the interface holding the listen IPs.
	DefaultInterface = "poddns0"
	// DefaultLinkLocalIP is the conventional node-local DNS address (the
	// one NodeLocal DNSCache uses).
	DefaultLinkLocalIP = "169.254.20.10"
	// DefaultTable is the nftables table (inet family) holding the rules.
	DefaultTable = "poddns-nodelocal"
	// DefaultLockDir holds the lock file the instances on a node share.
	DefaultLockDir = "/run/poddns"
	// DefaultSyncInterval is how often the setup is checked and repaired.
	DefaultSyncInterval = 10 * time.Second
	// DNSPort is the port the rules cover.
	DNSPort = 53
)

// Config is the node setup part of dnsd's nodeLocal configuration. The
// switches mirror NodeLocal DNSCache's -setupinterface, -setupiptables and
// -skipteardown: a demo can serve on addresses that already exist without
// touching the host's network.
type Config struct {
	// IPs are the listen addresses put on the interface, IPv4 and IPv6
	// (e.g. 169.254.20.10 and, in transparent mode, the cluster DNS IP).
	IPs []string `json:"ips,omitempty"`
	// Interface is the name of the interface made to hold them (default
	// poddns0, at most 15 bytes).
	Interface string `json:"interface,omitempty"`
	// SetupInterface creates the interface and its addresses (default
	// true). Off: the addresses must exist already.
	SetupInterface *bool `json:"setupInterface,omitempty"`
	// SetupRules installs the NOTRACK and accept rules (default true).
	SetupRules *bool `json:"setupRules,omitempty"`
	// SkipTeardown leaves the interface and rules in place when the last
	// instance stops (default false).
	SkipTeardown bool `json:"skipTeardown,omitempty"`
	// SyncInterval is how often the setup is checked and repaired
	// (default 10s).
	SyncInterval *metav1.Duration `json:"syncInterval,omitempty"`
	// LockFile is shared by the instances on the node (default
	// /run/poddns/<interface>.lock; mount /run/poddns from the host so
	// that every instance on the node sees the same file).
	LockFile string `json:"lockFile,omitempty"`
	// Table is the nftables table of the rules (inet family, default
	// poddns-nodelocal).
	Table string `json:"table,omitempty"`
}

// WithDefaults returns c with every unset field at its default. IPs
// default to the link-local IP alone.
func (c Config) WithDefaults() Config {
	if len(c.IPs) == 0 {
		c.IPs = []string{DefaultLinkLocalIP}
	}
	if c.Interface == "" {
		c.Interface = DefaultInterface
	}
	if c.SetupInterface == nil {
		c.SetupInterface = ptr(true)
	}
	if c.SetupRules == nil {
		c.SetupRules = ptr(true)
	}
	if c.SyncInterval == nil {
		c.SyncInterval = &metav1.Duration{Duration: DefaultSyncInterval}
	}
	if c.LockFile == "" {
		c.LockFile = filepath.Join(DefaultLockDir, c.Interface+".lock")
	}
	if c.Table == "" {
		c.Table = DefaultTable
	}
	return c
}

func ptr[T any](v T) *T { return &v }

// Validate checks c (after WithDefaults) without touching the node.
func (c Config) Validate() error {
	var errs []error
	if _, err := c.Addrs(); err != nil {
		errs = append(errs, err)
	}
	if n := len(c.Interface); n == 0 || n > 15 || strings.ContainsAny(c.Interface, "/: \t\n") || c.Interface == "." || c.Interface == ".." {
		errs = append(errs, fmt.Errorf("nodeLocal: interface %q: want a Linux interface name of 1 to 15 bytes without '/', ':' or blanks", c.Interface))
	}
	if c.SyncInterval != nil && c.SyncInterval.Duration < time.Second {
		errs = append(errs, fmt.Errorf("nodeLocal: syncInterval %s: at least 1s", c.SyncInterval.Duration))
	}
	if c.LockFile != "" && !filepath.IsAbs(c.LockFile) {
		errs = append(errs, fmt.Errorf("nodeLocal: lockFile %q is not an absolute path", c.LockFile))
	}
	if n := len(c.Table); n == 0 || n > 255 {
		errs = append(errs, fmt.Errorf("nodeLocal: table %q: want 1 to 255 bytes", c.Table))
	}
	return errors.Join(errs...)
}

// Addrs parses IPs: each a plain IPv4 or IPv6 address (no zone, not
// unspecified, loopback or multicast), each once.
func (c Config) Addrs() ([]netip.Addr, error) {
	if len(c.IPs) == 0 {
		return nil, errors.New("nodeLocal: no ips")
	}
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, s := range c.IPs {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("nodeLocal: ip %q: %w", s, err)
		}
		a = a.Unmap()
		switch {
		case a.Zone() != "":
			return nil, fmt.Errorf("nodeLocal: ip %q: no zone allowed", s)
		case a.IsUnspecified() || a.IsLoopback() || a.IsMulticast():
			return nil, fmt.Errorf("nodeLocal: ip %q: not an address a node can hold for pods (unspecified, loopback or multicast)", s)
		case seen[a]:
			return nil, fmt.Errorf("nodeLocal: ip %q given twice", s)
		}
		seen[a] = true
		out = append(out, a)
	}
	return out, nil
}
