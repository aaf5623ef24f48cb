package forward

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/configfile"
	"github.com/poddns/poddns/pkg/serve"
)

// Config is the forwarder's configuration: the forward block of dnsd's
// DNSDConfig. Defaults returns the values of the fields a file leaves out;
// every value is taken as it is, zero included.
type Config struct {
	// Upstreams answer every name no stub covers: "IP" or "IP:port" (port
	// 53 by default; "dns://" may prefix it), or "tls://IP" or
	// "tls://IP:port" for DNS over TLS (port 853 by default).
	Upstreams []string `json:"upstreams,omitempty"`
	// ResolvConf takes the upstreams from the nameservers of a resolv.conf
	// file instead (e.g. the node's /etc/resolv.conf), read when the
	// forwarder is built; never implied.
	ResolvConf string `json:"resolvConf,omitempty"`
	// Stubs are per-zone upstreams (stub domains).
	Stubs []Stub `json:"stubs,omitempty"`
	// Policy orders the upstreams of a query: random (default),
	// round_robin or sequential.
	Policy Policy `json:"policy"`
	// MaxConcurrent bounds the queries in flight (default 1000); beyond it
	// queries are refused. 0: no limit.
	MaxConcurrent int `json:"maxConcurrent"`
	// TryTimeout bounds one try to one upstream, the UDP try and its TCP
	// retry together (default 2s).
	TryTimeout configfile.Duration `json:"tryTimeout"`
	// Deadline bounds all the tries of one query (default 5s).
	Deadline configfile.Duration `json:"deadline"`
	// MaxFails is the number of failed tries in a row that marks an
	// upstream down (default 2); 0: never marked down.
	MaxFails int `json:"maxFails"`
	// HealthCheck is how often a down upstream is probed (default 0.5s).
	HealthCheck configfile.Duration `json:"healthCheck"`
	// Expire closes pooled TCP and TLS connections idle this long (default
	// 10s).
	Expire configfile.Duration `json:"expire"`
	// PoolSize is the most idle TCP connections kept per upstream, and the
	// most TLS connections open to a tls:// upstream (default 16; each
	// carries up to MaxPipelined queries at once). UDP sockets are never
	// pooled.
	PoolSize int `json:"poolSize"`
	// RandomizeCase sends query names upstream in random case (0x20) and
	// accepts only replies that echo it exactly; an upstream that does not
	// keep case is detected by its first such reply, counted, and sent
	// names unchanged for CaseFallback (default false).
	RandomizeCase bool `json:"randomizeCase"`
	// ForceTCP sends every query over TCP, never UDP (CoreDNS's
	// force_tcp; default false). tls:// upstreams always get TLS.
	ForceTCP bool `json:"forceTCP"`
	// TLSServerName is the name the certificates of the tls:// upstreams
	// must carry (CoreDNS's tls_servername), also sent as SNI; a stub's own
	// wins for its upstreams. Without one, a tls:// upstream's certificate
	// must carry its IP address, as with CoreDNS. An IP address is taken
	// as such (a stub can so name its one upstream's address when the
	// forward block names a server).
	TLSServerName string `json:"tlsServerName,omitempty"`
	// TLSCA is a PEM file of the CA certificates that the tls:// upstreams'
	// certificates are verified against (relative to the config file's
	// directory), read when the forwarder is built; without one, the
	// system's pool. A stub's own wins for its upstreams.
	TLSCA string `json:"tlsCA,omitempty"`
}

// Stub sends the names in Zone (and below) to its own upstreams.
type Stub struct {
	Zone      string   `json:"zone"`
	Upstreams []string `json:"upstreams"`
	// TLSServerName and TLSCA replace the forward block's for this stub's
	// tls:// upstreams.
	TLSServerName string `json:"tlsServerName,omitempty"`
	TLSCA         string `json:"tlsCA,omitempty"`
}

// Defaults returns CoreDNS's forward settings with the Kubernetes
// Corefile's max_concurrent, and no upstream.
func Defaults() Config {
	return Config{
		Policy:        Random,
		MaxConcurrent: DefaultMaxConcurrent,
		TryTimeout:    configfile.Duration(DefaultTryTimeout),
		Deadline:      configfile.Duration(DefaultDeadline),
		MaxFails:      DefaultMaxFails,
		HealthCheck:   configfile.Duration(DefaultHealthCheck),
		Expire:        configfile.Duration(DefaultExpire),
		PoolSize:      DefaultPoolSize,
	}
}

// Enabled reports whether c names any upstream: without one, dnsd leaves
// the forwarder (and the cache in front of it) out of its chain.
func (c Config) Enabled() bool {
	return len(c.Upstreams) > 0 || c.ResolvConf != "" || len(c.Stubs) > 0
}

// Paths are the files c names.
func (c *Config) Paths() []*string {
	paths := []*string{&c.ResolvConf, &c.TLSCA}
	for i := range c.Stubs {
		paths = append(paths, &c.Stubs[i].TLSCA)
	}
	return paths
}

// CAFiles are the tlsCA files c names (the forward block's, the stubs'),
// for a watcher: the files are read when the forwarder is built.
func (c Config) CAFiles() []string {
	var out []string
	for _, f := range append([]string{c.TLSCA}, stubCAs(c.Stubs)...) {
		if f != "" && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

func stubCAs(stubs []Stub) []string {
	out := make([]string, len(stubs))
	for i, s := range stubs {
		out[i] = s.TLSCA
	}
	return out
}

// Validate checks c without reading or building anything (the resolv.conf
// file is read by New).
func (c Config) Validate() error {
	var errs []error
	switch c.Policy {
	case Random, RoundRobin, Sequential:
	default:
		errs = append(errs, fmt.Errorf("forward: policy %q: want random, round_robin or sequential", c.Policy))
	}
	if len(c.Upstreams) > 0 && c.ResolvConf != "" {
		errs = append(errs, errors.New("forward: set upstreams or resolvConf, not both"))
	}
	for _, d := range []struct {
		name string
		d    configfile.Duration
	}{{"tryTimeout", c.TryTimeout}, {"deadline", c.Deadline}, {"healthCheck", c.HealthCheck}, {"expire", c.Expire}} {
		if d.d <= 0 {
			errs = append(errs, fmt.Errorf("forward: %s: %s is not positive", d.name, d.d))
		}
	}
	for _, n := range []struct {
		name string
		n    int
	}{{"maxConcurrent", c.MaxConcurrent}, {"maxFails", c.MaxFails}} {
		if n.n < 0 {
			errs = append(errs, fmt.Errorf("forward: %s: %d is negative", n.name, n.n))
		}
	}
	if c.PoolSize < 1 {
		errs = append(errs, fmt.Errorf("forward: poolSize: %d is below 1", c.PoolSize))
	}
	if _, err := c.zones(c.Upstreams); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// zone is the upstream addresses ("IP:port" or "tls://IP:port") of one
// zone, with the TLS settings of its tls:// upstreams.
type zone struct {
	name    string // lower-case FQDN; "." for the default upstreams
	addrs   []string
	tlsName string // the certificates' name; "" for the IP address
	tlsCA   string // CA file; "" for the system's pool
}

// hasTLS reports whether any of z's upstreams is tls://.
func (z zone) hasTLS() bool {
	return slices.ContainsFunc(z.addrs, func(a string) bool { return strings.HasPrefix(a, tlsScheme) })
}

// zones checks the upstreams (the default ones, then the stubs') and
// returns them by zone, the default zone (when any) last and the stubs
// longest first.
func (c Config) zones(upstreams []string) ([]zone, error) {
	var stubs []zone
	var def *zone
	if err := checkServerName("forward: tlsServerName", c.TLSServerName); err != nil {
		return nil, err
	}
	// Whether some zone's tls:// upstreams use c's TLS settings.
	var usesName, usesCA bool
	if len(upstreams) > 0 {
		def = &zone{name: ".", tlsName: c.TLSServerName, tlsCA: c.TLSCA}
		if err := def.parse(upstreams); err != nil {
			return nil, err
		}
		usesName, usesCA = def.hasTLS(), def.hasTLS()
	}
	seen := map[string]bool{}
	for _, s := range c.Stubs {
		z := zone{name: dns.Fqdn(strings.ToLower(strings.TrimSpace(s.Zone))), tlsName: c.TLSServerName, tlsCA: c.TLSCA}
		if _, ok := dns.IsDomainName(z.name); !ok {
			return nil, fmt.Errorf("forward: stub zone %q is not a domain name", s.Zone)
		}
		if seen[z.name] {
			return nil, fmt.Errorf("forward: stub zone %q given twice", z.name)
		}
		seen[z.name] = true
		if err := z.parse(s.Upstreams); err != nil {
			return nil, err
		}
		if err := checkServerName("forward: stub zone "+z.name+": tlsServerName", s.TLSServerName); err != nil {
			return nil, err
		}
		if (s.TLSServerName != "" || s.TLSCA != "") && !z.hasTLS() {
			return nil, fmt.Errorf("forward: stub zone %s: tlsServerName or tlsCA set, but no tls:// upstream uses it", z.name)
		}
		if s.TLSServerName != "" {
			z.tlsName = s.TLSServerName
		} else if z.hasTLS() {
			usesName = true
		}
		if s.TLSCA != "" {
			z.tlsCA = s.TLSCA
		} else if z.hasTLS() {
			usesCA = true
		}
		if z.name == "." {
			if def != nil {
				return nil, errors.New("forward: stub zone \".\" and default upstreams both given")
			}
			def = &z
			continue
		}
		stubs = append(stubs, z)
	}
	if c.TLSServerName != "" && !usesName {
		return nil, errors.New("forward: tlsServerName set, but no tls:// upstream uses it")
	}
	if c.TLSCA != "" && !usesCA {
		return nil, errors.New("forward: tlsCA set, but no tls:// upstream uses it")
	}
	slices.SortStableFunc(stubs, func(a, b zone) int { return len(b.name) - len(a.name) })
	if def != nil {
		stubs = append(stubs, *def)
	}
	return stubs, nil
}

func (z *zone) parse(addrs []string) error {
	if len(addrs) == 0 {
		return fmt.Errorf("forward: zone %s: no upstream", z.name)
	}
	if len(addrs) > MaxUpstreams {
		return fmt.Errorf("forward: zone %s: %d upstreams, at most %d", z.name, len(addrs), MaxUpstreams)
	}
	for _, a := range addrs {
		addr, err := ParseUpstream(a)
		if err != nil {
			return fmt.Errorf("forward: zone %s: %w", z.name, err)
		}
		z.addrs = append(z.addrs, addr)
	}
	return nil
}

// checkServerName checks a TLS server name: empty (the upstream's IP
// address is then verified), a host name or an IP address.
func checkServerName(what, name string) error {
	if _, err := netip.ParseAddr(name); name == "" || err == nil {
		return nil
	}
	if _, ok := dns.IsDomainName(name); !ok || strings.HasSuffix(name, ".") || strings.ContainsAny(name, " *\\") {
		return fmt.Errorf("%s %q: want a host name (e.g. dns.example.net) or an IP address", what, name)
	}
	return nil
}

// Deps are what the forwarder is given besides its configuration.
type Deps struct {
	// Next gets the names no upstream set covers.
	Next serve.Handler
	// Metrics, if set, receive the forwarder's metrics; make them once with
	// NewMetrics: they outlive the forwarders a reload replaces.
	Metrics *Metrics
	// Logger, if set, receives the failed TLS handshakes.
	Logger *slog.Logger
}

// New checks c, reads its resolv.conf file if it names one, and returns
// the forwarder. It starts nothing: sockets are dialled and health checks
// started when needed.
func New(c Config, d Deps) (*Forward, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	upstreams := c.Upstreams
	if c.ResolvConf != "" {
		var err error
		if upstreams, err = ResolvConfUpstreams(c.ResolvConf); err != nil {
			return nil, err
		}
	}
	zones, err := c.zones(upstreams)
	if err != nil {
		return nil, err
	}
	if len(zones) == 0 {
		return nil, errors.New("forward: no upstream")
	}

	f := &Forward{Next: d.Next, policy: c.Policy, tryTO: c.TryTimeout.D(), deadline: c.Deadline.D(), maxFails: c.MaxFails,
		hcEvery: c.HealthCheck.D(), expire: c.Expire.D(), poolSize: c.PoolSize, maxConc: int64(c.MaxConcurrent), case0x20: c.RandomizeCase, forceTCP: c.ForceTCP, m: d.Metrics,
		stop: make(chan struct{}), log: d.Logger}
	if f.m == nil {
		f.m, _ = NewMetrics(nil)
	}
	if f.log == nil {
		f.log = discardLogger
	}
	for _, z := range zones {
		g := &group{zone: z.name}
		var conf *tls.Config
		if z.hasTLS() {
			if conf, err = tlsConfig(z.tlsName, z.tlsCA, len(z.addrs)); err != nil {
				return nil, fmt.Errorf("forward: zone %s: %w", z.name, err)
			}
		}
		for _, a := range z.addrs {
			g.ups = append(g.ups, newUpstream(f, a, conf))
		}
		if z.name == "." {
			f.def = g
		} else {
			f.stubs = append(f.stubs, g)
		}
	}
	return f, nil
}
