package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/poddns/poddns/pkg/nodeprofile"
	"github.com/poddns/poddns/pkg/resolvconf"
	"github.com/poddns/poddns/pkg/serve/acl"
	"github.com/poddns/poddns/pkg/serve/cache"
	"github.com/poddns/poddns/pkg/serve/cluster"
	"github.com/poddns/poddns/pkg/serve/forward"
	"github.com/poddns/poddns/pkg/serve/nodelocal"
)

// Config file identity.
const (
	ConfigAPIVersion = "poddns.io/v1alpha1"
	ConfigKind       = "DNSDConfig"
)

// Config is dnsd's configuration file (apiVersion poddns.io/v1alpha1, kind
// DNSDConfig). Every field has a flag that overrides it; see newFlagSet.
type Config struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`

	// Listen is the DNS address, served over UDP and TCP.
	Listen string `json:"listen,omitempty"`
	// UDPSockets is the number of SO_REUSEPORT UDP sockets; 0: one per core.
	UDPSockets int `json:"udpSockets,omitempty"`
	// Zones are the cluster domains.
	Zones []string `json:"zones,omitempty"`
	// TTL of cluster records, 0..3600.
	TTL *uint32 `json:"ttl,omitempty"`
	// Pods: disabled, insecure or verified.
	Pods string `json:"pods,omitempty"`
	// Source says where the cluster objects come from.
	Source SourceConfig `json:"source,omitempty"`
	// HealthListen serves /health and /ready.
	HealthListen string `json:"healthListen,omitempty"`
	// MetricsListen serves /metrics; it may equal HealthListen.
	MetricsListen string `json:"metricsListen,omitempty"`
	// PprofListen serves Go's profiles under /debug/pprof/ (net/http/pprof)
	// on an address of its own; empty (default): off. Like CoreDNS's pprof
	// plugin, for finding where the time or memory goes under load; keep it
	// on loopback.
	PprofListen string `json:"pprofListen,omitempty"`
	// Lameduck is how long DNS keeps being served after a shutdown signal
	// while /ready reports not ready.
	Lameduck *metav1.Duration `json:"lameduck,omitempty"`
	// LogLevel is info or debug.
	LogLevel string `json:"logLevel,omitempty"`
	// Forward sends names outside the cluster zones to upstream
	// resolvers. Without upstreams such names are refused.
	Forward ForwardConfig `json:"forward,omitempty"`
	// Cache caches the forwarded answers (only when there are upstreams).
	Cache CacheConfig `json:"cache,omitempty"`
	// LoadBalance shuffles A/AAAA records in replies, CNAMEs first
	// (default true).
	LoadBalance *bool `json:"loadBalance,omitempty"`
	// Completion configures server-side search completion.
	Completion CompletionConfig `json:"completion,omitempty"`
	// NodeLocal, when set, runs dnsd as the node-local server of one node
	// (package pkg/serve/nodelocal): listen is replaced by the node-local
	// IPs, only the node's pods are watched, completion takes the node
	// profile from the node's kubelet configuration (on by default), and
	// upstreams default to the node's resolv.conf.
	NodeLocal *nodelocal.Config `json:"nodeLocal,omitempty"`
}

// CompletionConfig configures search completion (package
// pkg/serve/completion).
type CompletionConfig struct {
	// Enabled turns completion on or off; by default it is on when
	// NodeProfile is set. It cannot be on without a node profile.
	Enabled *bool `json:"enabled,omitempty"`
	// NodeProfile is the path of the node profile (kind NodeProfile, the
	// webhook's --profile format) the pods' resolv.conf is derived with.
	NodeProfile string `json:"nodeProfile,omitempty"`
}

// ForwardConfig configures forwarding (package pkg/serve/forward).
type ForwardConfig struct {
	// Upstreams are "IP" or "IP:port" (port 53 by default).
	Upstreams []string `json:"upstreams,omitempty"`
	// ResolvConf takes the upstreams from the nameservers of a resolv.conf
	// file instead (e.g. /etc/resolv.conf of the node); never implied.
	ResolvConf string `json:"resolvConf,omitempty"`
	// Stubs are per-zone upstreams (stub domains).
	Stubs []StubConfig `json:"stubs,omitempty"`
	// Policy is random (default), round_robin or sequential.
	Policy string `json:"policy,omitempty"`
	// MaxConcurrent bounds the queries in flight (default 1000); beyond it
	// queries are refused.
	MaxConcurrent int `json:"maxConcurrent,omitempty"`
	// TryTimeout bounds one try to one upstream (default 2s).
	TryTimeout *metav1.Duration `json:"tryTimeout,omitempty"`
	// Deadline bounds all the tries of one query (default 5s).
	Deadline *metav1.Duration `json:"deadline,omitempty"`
	// ClientNetworks are the client networks (CIDR) served names outside
	// the cluster zones; others get REFUSED. Default: loopback, RFC 1918,
	// and IPv6 ULA (fc00::/7).
	ClientNetworks []string `json:"clientNetworks,omitempty"`
	// RandomizeCase sends query names upstream in random case (0x20) and
	// accepts only replies that echo it; an upstream that does not is
	// detected and sent names unchanged for an hour (default false).
	RandomizeCase *bool `json:"randomizeCase,omitempty"`
}

// StubConfig sends one zone to its own upstreams.
type StubConfig struct {
	Zone      string   `json:"zone"`
	Upstreams []string `json:"upstreams"`
}

// CacheConfig configures the cache of forwarded answers (package
// pkg/serve/cache). Zero values mean the defaults.
type CacheConfig struct {
	// Disabled turns the cache off.
	Disabled bool `json:"disabled,omitempty"`
	// Capacity is the entries of each of the success and denial caches
	// (default 9984, at least 1024).
	Capacity int `json:"capacity,omitempty"`
	// SuccessTTL caps the TTL of positive answers (default 1h).
	SuccessTTL *metav1.Duration `json:"successTTL,omitempty"`
	// DenialTTL caps the TTL of NXDOMAIN and NODATA (default 30m).
	DenialTTL *metav1.Duration `json:"denialTTL,omitempty"`
	// MinTTL floors both (default 5s).
	MinTTL *metav1.Duration `json:"minTTL,omitempty"`
	// ServfailTTL is how long SERVFAIL is cached (default 5s, at most 5m).
	ServfailTTL *metav1.Duration `json:"servfailTTL,omitempty"`
	// Prefetch refreshes entries hit this many times within a minute
	// before they expire; 0 (default) turns prefetch off.
	Prefetch int `json:"prefetch,omitempty"`
	// ServeStale serves expired answers for this long when the upstreams
	// fail (RFC 8767); 0 (default) turns it off.
	ServeStale *metav1.Duration `json:"serveStale,omitempty"`
}

// SourceConfig selects the source of cluster objects: a file, or the API
// server (a kubeconfig, or in-cluster when both are empty).
type SourceConfig struct {
	File       string `json:"file,omitempty"`
	Kubeconfig string `json:"kubeconfig,omitempty"`
}

// Defaults.
const (
	DefaultListen        = "127.0.0.1:53"
	DefaultHealthListen  = "127.0.0.1:8080"
	DefaultMetricsListen = "127.0.0.1:9153"
	DefaultLameduck      = 5 * time.Second
	DefaultPods          = string(cluster.PodsInsecure)
)

// Defaults returns the configuration used for everything neither the file
// nor a flag sets.
func Defaults() Config {
	ttl := uint32(cluster.DefaultTTL)
	return Config{
		APIVersion:    ConfigAPIVersion,
		Kind:          ConfigKind,
		Listen:        DefaultListen,
		Zones:         []string{"cluster.local"},
		TTL:           &ttl,
		Pods:          DefaultPods,
		HealthListen:  DefaultHealthListen,
		MetricsListen: DefaultMetricsListen,
		Lameduck:      &metav1.Duration{Duration: DefaultLameduck},
		LogLevel:      "info",
	}
}

// ParseConfig decodes a config file strictly (unknown fields are errors)
// over the defaults.
func ParseConfig(data []byte, name string) (Config, error) {
	cfg := Defaults()
	if len(bytes.TrimSpace(data)) == 0 {
		return cfg, fmt.Errorf("config %s: empty", name)
	}
	var file Config
	if err := yaml.UnmarshalStrict(data, &file); err != nil {
		return cfg, fmt.Errorf("config %s: %w", name, err)
	}
	if file.APIVersion != ConfigAPIVersion || file.Kind != ConfigKind {
		return cfg, fmt.Errorf("config %s: apiVersion %q kind %q: want %s %s", name, file.APIVersion, file.Kind, ConfigAPIVersion, ConfigKind)
	}
	Merge(&cfg, file)
	return cfg, nil
}

// Merge sets in dst every field that src sets.
func Merge(dst *Config, src Config) {
	if src.Listen != "" {
		dst.Listen = src.Listen
	}
	if src.UDPSockets != 0 {
		dst.UDPSockets = src.UDPSockets
	}
	if len(src.Zones) > 0 {
		dst.Zones = src.Zones
	}
	if src.TTL != nil {
		dst.TTL = src.TTL
	}
	if src.Pods != "" {
		dst.Pods = src.Pods
	}
	if src.Source.File != "" || src.Source.Kubeconfig != "" {
		dst.Source = src.Source
	}
	if src.HealthListen != "" {
		dst.HealthListen = src.HealthListen
	}
	if src.MetricsListen != "" {
		dst.MetricsListen = src.MetricsListen
	}
	if src.PprofListen != "" {
		dst.PprofListen = src.PprofListen
	}
	if src.Lameduck != nil {
		dst.Lameduck = src.Lameduck
	}
	if src.LogLevel != "" {
		dst.LogLevel = src.LogLevel
	}
	mergeForward(&dst.Forward, src.Forward)
	if src.LoadBalance != nil {
		dst.LoadBalance = src.LoadBalance
	}
	mergeCache(&dst.Cache, src.Cache)
	if src.Completion.Enabled != nil {
		dst.Completion.Enabled = src.Completion.Enabled
	}
	if src.Completion.NodeProfile != "" {
		dst.Completion.NodeProfile = src.Completion.NodeProfile
	}
	if src.NodeLocal != nil {
		if dst.NodeLocal == nil {
			dst.NodeLocal = &nodelocal.Config{}
		}
		dst.NodeLocal.Merge(*src.NodeLocal)
	}
}

func mergeForward(dst *ForwardConfig, src ForwardConfig) {
	if len(src.Upstreams) > 0 || src.ResolvConf != "" {
		// Upstreams from one place replace those from the other.
		dst.Upstreams, dst.ResolvConf = src.Upstreams, src.ResolvConf
	}
	if len(src.Stubs) > 0 {
		dst.Stubs = src.Stubs
	}
	if src.Policy != "" {
		dst.Policy = src.Policy
	}
	if src.MaxConcurrent != 0 {
		dst.MaxConcurrent = src.MaxConcurrent
	}
	if src.TryTimeout != nil {
		dst.TryTimeout = src.TryTimeout
	}
	if src.Deadline != nil {
		dst.Deadline = src.Deadline
	}
	if len(src.ClientNetworks) > 0 {
		dst.ClientNetworks = src.ClientNetworks
	}
	if src.RandomizeCase != nil {
		dst.RandomizeCase = src.RandomizeCase
	}
}

func mergeCache(dst *CacheConfig, src CacheConfig) {
	if src.Disabled {
		dst.Disabled = true
	}
	if src.Capacity != 0 {
		dst.Capacity = src.Capacity
	}
	for _, p := range []struct{ d, s **metav1.Duration }{{&dst.SuccessTTL, &src.SuccessTTL}, {&dst.DenialTTL, &src.DenialTTL},
		{&dst.MinTTL, &src.MinTTL}, {&dst.ServfailTTL, &src.ServfailTTL}, {&dst.ServeStale, &src.ServeStale}} {
		if *p.s != nil {
			*p.d = *p.s
		}
	}
	if src.Prefetch != 0 {
		dst.Prefetch = src.Prefetch
	}
}

// forwarding reports whether names outside the cluster zones are
// forwarded (some upstream is configured).
func (c Config) forwarding() bool {
	return len(c.Forward.Upstreams) > 0 || c.Forward.ResolvConf != "" || len(c.Forward.Stubs) > 0
}

// dur is d's duration, 0 when unset.
func dur(d *metav1.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return d.Duration
}

// ForwardOptions returns the forwarder's options; it reads the resolv.conf
// file when one is configured.
func (c Config) ForwardOptions() (forward.Options, error) {
	f := c.Forward
	o := forward.Options{Upstreams: f.Upstreams, Policy: forward.Policy(f.Policy), MaxConcurrent: f.MaxConcurrent,
		TryTimeout: dur(f.TryTimeout), Deadline: dur(f.Deadline), RandomizeCase: f.RandomizeCase != nil && *f.RandomizeCase}
	if len(f.Upstreams) > 0 && f.ResolvConf != "" {
		return o, errors.New("forward: set upstreams or resolvConf, not both")
	}
	if f.ResolvConf != "" {
		ups, err := forward.ResolvConfUpstreams(f.ResolvConf)
		if err != nil {
			return o, err
		}
		o.Upstreams = ups
	}
	for _, s := range f.Stubs {
		o.Stubs = append(o.Stubs, forward.Stub{Zone: s.Zone, Upstreams: s.Upstreams})
	}
	for _, d := range []struct {
		name string
		d    *metav1.Duration
	}{{"tryTimeout", f.TryTimeout}, {"deadline", f.Deadline}} {
		if dur(d.d) < 0 {
			return o, fmt.Errorf("forward: %s: %s is negative", d.name, d.d.Duration)
		}
	}
	return o, nil
}

// CacheOptions returns the cache's options.
func (c Config) CacheOptions() (cache.Options, error) {
	k := c.Cache
	o := cache.Options{Capacity: k.Capacity, SuccessMaxTTL: dur(k.SuccessTTL), DenialMaxTTL: dur(k.DenialTTL),
		SuccessMinTTL: dur(k.MinTTL), DenialMinTTL: dur(k.MinTTL), ServfailTTL: dur(k.ServfailTTL),
		Prefetch: k.Prefetch, ServeStale: dur(k.ServeStale)}
	if k.MinTTL != nil && k.MinTTL.Duration == 0 {
		o.SuccessMinTTL, o.DenialMinTTL = -1, -1 // an explicit 0 floor
	}
	if k.ServfailTTL != nil && k.ServfailTTL.Duration == 0 {
		o.ServfailTTL = -1 // an explicit 0 disables
	}
	for _, d := range []struct {
		name string
		d    *metav1.Duration
	}{{"successTTL", k.SuccessTTL}, {"denialTTL", k.DenialTTL}, {"minTTL", k.MinTTL}, {"servfailTTL", k.ServfailTTL}} {
		if dur(d.d) < 0 {
			return o, fmt.Errorf("cache: %s: %s is negative", d.name, d.d.Duration)
		}
	}
	return o, nil
}

// Validate checks what can be checked without opening anything.
func (c Config) Validate() error {
	var errs []error
	for _, a := range []struct {
		field, addr string
		optional    bool
	}{{"listen", c.Listen, false}, {"healthListen", c.HealthListen, false}, {"metricsListen", c.MetricsListen, false}, {"pprofListen", c.PprofListen, true}} {
		if a.optional && a.addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a.field, err))
		}
	}
	if c.UDPSockets < 0 {
		errs = append(errs, fmt.Errorf("udpSockets: %d is negative", c.UDPSockets))
	}
	if c.Source.File != "" && c.Source.Kubeconfig != "" {
		errs = append(errs, errors.New("source: set file or kubeconfig, not both"))
	}
	if c.Lameduck != nil && c.Lameduck.Duration < 0 {
		errs = append(errs, fmt.Errorf("lameduck: %s is negative", c.Lameduck.Duration))
	}
	if _, err := ParseLogLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if _, err := cluster.New(c.clusterOptions(nil)); err != nil {
		errs = append(errs, err)
	}
	if c.Completion.Enabled != nil && *c.Completion.Enabled && c.Completion.NodeProfile == "" && (c.NodeLocal == nil || !c.NodeLocal.Completion()) {
		errs = append(errs, errors.New("completion: enabled without a nodeProfile (or nodeLocal.kubeletConfig)"))
	}
	if c.NodeLocal != nil {
		if err := c.NodeLocal.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.completion() {
		if _, err := c.nodeProfile(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.forwarding() {
		if o, err := c.ForwardOptions(); err != nil {
			errs = append(errs, err)
		} else if _, err := forward.New(o); err != nil { // starts nothing
			errs = append(errs, err)
		}
		if _, err := acl.New(c.Forward.ClientNetworks, nil); err != nil {
			errs = append(errs, err)
		}
		if !c.Cache.Disabled {
			if o, err := c.CacheOptions(); err != nil {
				errs = append(errs, err)
			} else if ch, err := cache.New(o); err != nil {
				errs = append(errs, err)
			} else {
				ch.Close()
			}
		}
	}
	return errors.Join(errs...)
}

// completion reports whether search completion is on.
func (c Config) completion() bool {
	profile := c.Completion.NodeProfile != "" || (c.NodeLocal != nil && c.NodeLocal.Completion())
	return profile && (c.Completion.Enabled == nil || *c.Completion.Enabled)
}

// watchPods reports whether the API source must watch pods: for verified
// pod records and for completion.
func (c Config) watchPods() bool {
	return c.Pods == string(cluster.PodsVerified) || c.completion()
}

// nodeProfile reads the completion node profile over the built-in defaults,
// as the webhook's --profile does. A profile whose node resolv.conf cannot
// be read is an error: every pod's resolv.conf would be unknown.
func (c Config) nodeProfile() (*resolvconf.NodeProfile, error) {
	if c.Completion.NodeProfile == "" && c.NodeLocal != nil {
		return c.NodeLocal.NodeProfile() // the node's own kubelet
	}
	f, err := nodeprofile.ReadFile(c.Completion.NodeProfile)
	if err != nil {
		return nil, fmt.Errorf("completion: %w", err)
	}
	nc := nodeprofile.Defaults()
	f.Apply(&nc)
	p, err := resolvconf.NewNodeProfile(nc)
	if err != nil {
		return nil, fmt.Errorf("completion: node profile %s: %w", c.Completion.NodeProfile, err)
	}
	if err := p.HostError(); err != nil {
		return nil, fmt.Errorf("completion: node profile %s: %w", c.Completion.NodeProfile, err)
	}
	return p, nil
}

// clusterZones are the cluster zones as the cluster handler serves them.
func (c Config) clusterZones() ([]string, error) {
	h, err := cluster.New(c.clusterOptions(nil))
	if err != nil {
		return nil, err
	}
	return h.Zones(), nil
}

func (c Config) clusterOptions(src cluster.Source) cluster.Options {
	if src == nil {
		src = noSource{}
	}
	return cluster.Options{Zones: c.Zones, TTL: c.TTL, Pods: cluster.PodMode(c.Pods), Store: src}
}

// ParseLogLevel parses a logLevel value.
func ParseLogLevel(s string) (slog.Level, error) {
	switch s {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	}
	return 0, fmt.Errorf("logLevel %q: want info or debug", s)
}

// Load builds a configuration: the defaults, then the config file at path
// (when not empty), then overrides (the fields of it that are set, e.g. from
// flags); and validates it. dnsd calls it at start and on every SIGHUP.
func Load(path string, overrides Config) (Config, error) {
	cfg := Defaults()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("read config: %w", err)
		}
		if cfg, err = ParseConfig(data, path); err != nil {
			return cfg, err
		}
	}
	Merge(&cfg, overrides)
	nodeLocalDefaults(&cfg)
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("invalid configuration: %w", err)
	}
	return cfg, nil
}

// nodeLocalDefaults applies node-local mode's defaults: the setup's and
// the node name's, and upstreams — the central server when named, else the
// node's resolv.conf — when none are configured.
func nodeLocalDefaults(c *Config) {
	if c.NodeLocal == nil {
		return
	}
	nl := c.NodeLocal.WithDefaults()
	c.NodeLocal = &nl
	if len(c.Forward.Upstreams) > 0 || c.Forward.ResolvConf != "" {
		return
	}
	if nl.Central != "" {
		c.Forward.Upstreams = []string{nl.Central}
		return
	}
	c.Forward.ResolvConf = nodelocal.DefaultUpstreamResolvConf
}
