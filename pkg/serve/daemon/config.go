package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/poddns/poddns/pkg/configfile"
	"github.com/poddns/poddns/pkg/serve/aaaa"
	"github.com/poddns/poddns/pkg/serve/acl"
	"github.com/poddns/poddns/pkg/serve/cache"
	"github.com/poddns/poddns/pkg/serve/cluster"
	"github.com/poddns/poddns/pkg/serve/completion"
	"github.com/poddns/poddns/pkg/serve/errorlog"
	"github.com/poddns/poddns/pkg/serve/forward"
	"github.com/poddns/poddns/pkg/serve/nodelocal"
	"github.com/poddns/poddns/pkg/serve/querylog"
	"github.com/poddns/poddns/pkg/serve/rewrite"
	"github.com/poddns/poddns/pkg/serve/static"
)

// Identity is the apiVersion and kind of dnsd's configuration file.
var Identity = configfile.Identity{APIVersion: "poddns.io/v1alpha1", Kind: "DNSDConfig"}

// The handlers' configurations whose fields a file writes inline (at the
// level of the block that embeds them). An alias gives each its own field
// name: two embedded fields cannot both be called Config.
type (
	// ClusterConfig is package cluster's configuration: zones, ttl, pods
	// and reverseFallthrough at the top of the file.
	ClusterConfig = cluster.Config
	// ACLConfig is package acl's configuration: clientNetworks in the
	// forward block.
	ACLConfig = acl.Config
)

// Config is dnsd's configuration file (apiVersion poddns.io/v1alpha1, kind
// DNSDConfig). Each handler's section is that handler package's Config,
// with its defaults and its validation; this type only gathers them and
// adds what the daemon itself uses (listeners, source, logs). Defaults
// returns the values of the fields a file leaves out; the most used fields
// have a flag in cmd/dnsd, bound onto the same fields.
type Config struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`

	// Listen is the DNS address, served over UDP and TCP (default
	// 127.0.0.1:53).
	Listen string `json:"listen"`
	// UDPSockets is the number of SO_REUSEPORT UDP sockets; 0 (default):
	// one per core.
	UDPSockets int `json:"udpSockets"`
	// ClusterConfig answers the cluster zones: zones, ttl, pods.
	ClusterConfig
	// Source says where the cluster objects come from.
	Source SourceConfig `json:"source"`
	// HealthListen serves /health and /ready (default 127.0.0.1:8080).
	HealthListen string `json:"healthListen"`
	// MetricsListen serves /metrics (default 127.0.0.1:9153); it may equal
	// HealthListen.
	MetricsListen string `json:"metricsListen"`
	// PprofListen serves Go's profiles under /debug/pprof/ (net/http/pprof)
	// on an address of its own; empty (default): off. Like CoreDNS's pprof
	// plugin, for finding where the time or memory goes under load; keep it
	// on loopback.
	PprofListen string `json:"pprofListen"`
	// Lameduck is how long DNS keeps being served after a shutdown signal
	// while /ready reports not ready (default 5s).
	Lameduck configfile.Duration `json:"lameduck"`
	// Reload is how often dnsd checks its config file and the objects file
	// for a change (read through their paths, so kubelet's ..data swap of
	// a ConfigMap mount is seen): a change reloads as SIGHUP does, an
	// invalid one is logged and counted and the last good configuration
	// keeps serving. Default 2s; 0: only on SIGHUP. Read at start.
	Reload configfile.Duration `json:"reload"`
	// LogLevel is info (default) or debug.
	LogLevel string `json:"logLevel"`
	// Forward sends names outside the cluster zones to upstream resolvers,
	// for the clients in its client networks. Without upstreams such names
	// are refused.
	Forward ForwardConfig `json:"forward"`
	// Cache caches the forwarded answers (only when there are upstreams).
	Cache cache.Config `json:"cache"`
	// LoadBalance shuffles A/AAAA records in replies, CNAMEs first
	// (default true).
	LoadBalance bool `json:"loadBalance"`
	// Completion configures server-side search completion.
	Completion completion.Config `json:"completion"`
	// Rewrite rewrites query names (exact, suffix, regex) and answers with
	// the asked name (CoreDNS rewrite name ... answer auto); never inside
	// the cluster zones unless a rule says cluster.
	Rewrite rewrite.Config `json:"rewrite,omitempty"`
	// Static are static records (CoreDNS hosts): inline entries and
	// watched hosts files, answered after the cluster zones and before
	// forwarding.
	Static static.Config `json:"static,omitempty"`
	// AAAA answers AAAA queries for names outside the cluster NODATA
	// without asking an upstream, for IPv4-only pods or every client
	// (default off).
	AAAA aaaa.Config `json:"aaaa"`
	// QueryLog logs one JSON line per query, with the client pod's
	// namespace and name (off by default; --query-log).
	QueryLog querylog.Config `json:"queryLog"`
	// Errors logs the errors handlers return at error level, repeats
	// consolidated (off by default: debug level).
	Errors errorlog.Config `json:"errors"`
	// NodeLocal, when the block is present, runs dnsd as the node-local
	// server of one node (package nodelocal): listen is replaced by the
	// node-local IPs, only the node's pods are watched, completion takes
	// the node profile from the node's kubelet configuration (on by
	// default), and upstreams default to the node's resolv.conf. Its fields
	// left out take their defaults once the configuration is loaded
	// (nodelocal.Config.WithDefaults).
	NodeLocal *nodelocal.Config `json:"nodeLocal,omitempty"`
}

// ForwardConfig is the forward block: package forward's configuration and
// package acl's (clientNetworks), which keeps recursion to the clients.
type ForwardConfig struct {
	forward.Config
	ACLConfig
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
	DefaultReload        = 2 * time.Second
)

// Defaults returns the configuration used for everything neither the file
// nor a flag sets.
func Defaults() Config {
	return Config{
		APIVersion:    Identity.APIVersion,
		Kind:          Identity.Kind,
		Listen:        DefaultListen,
		ClusterConfig: cluster.Defaults(),
		HealthListen:  DefaultHealthListen,
		MetricsListen: DefaultMetricsListen,
		Lameduck:      configfile.Duration(DefaultLameduck),
		LogLevel:      "info",
		Reload:        configfile.Duration(DefaultReload),
		Forward:       ForwardConfig{Config: forward.Defaults(), ACLConfig: acl.Defaults()},
		Cache:         cache.Defaults(),
		LoadBalance:   true,
		Completion:    completion.Defaults(),
		QueryLog:      querylog.Defaults(),
		Errors:        errorlog.Defaults(),
		AAAA:          aaaa.Defaults(),
	}
}

// Paths are the files the configuration names; a config file's relative
// paths are relative to its directory.
func (c *Config) Paths() []*string {
	paths := append([]*string{&c.Source.File, &c.Source.Kubeconfig}, append(c.Forward.Paths(), c.Completion.Paths()...)...)
	paths = append(paths, c.QueryLog.Paths()...)
	paths = append(paths, c.Static.Paths()...)
	if c.NodeLocal != nil {
		paths = append(paths, c.NodeLocal.Paths()...)
	}
	return paths
}

// ParseConfig decodes a config file's content (named name in errors)
// strictly over the defaults; it neither resolves paths nor validates.
func ParseConfig(data []byte, name string) (Config, error) {
	cfg := Defaults()
	err := configfile.Decode(data, name, Identity, &cfg)
	return cfg, err
}

// Load builds a configuration: the defaults, then the config file at path
// (when not empty), then bind (when not nil), which parses the command
// line onto the configuration's fields so that every flag given wins;
// and validates it. dnsd calls it at start and on every SIGHUP.
func Load(path string, bind func(*Config) error) (Config, error) {
	cfg := Defaults()
	err := configfile.Load(path, Identity, &cfg, func() error {
		if bind != nil {
			if err := bind(&cfg); err != nil {
				return err
			}
		}
		cfg.nodeLocalDefaults()
		return nil
	})
	return cfg, err
}

// nodeLocalDefaults applies node-local mode's defaults once the file and
// the flags are in: the setup's and the node name's, and upstreams — the
// central server when named (over TCP, as NodeLocal DNSCache's force_tcp:
// no conntrack entry lingers per query), else the node's resolv.conf — when
// none are configured.
func (c *Config) nodeLocalDefaults() {
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
		c.Forward.ForceTCP = true
		return
	}
	c.Forward.ResolvConf = nl.UpstreamResolvConf()
}

// Validate checks the configuration without opening, reading or building
// anything: each handler's section by its own Validate, then the daemon's
// fields.
func (c Config) Validate() error {
	errs := []error{c.ClusterConfig.Validate(), c.Forward.Config.Validate(), c.Forward.ACLConfig.Validate(),
		c.Cache.Validate(), c.Completion.Validate(), c.QueryLog.Validate(), c.Errors.Validate(), c.Static.Validate(), c.AAAA.Validate(), c.Rewrite.Validate()}
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
	if c.Reload < 0 {
		errs = append(errs, fmt.Errorf("reload: %s is negative", c.Reload))
	}
	if c.Lameduck < 0 {
		errs = append(errs, fmt.Errorf("lameduck: %s is negative", c.Lameduck))
	}
	if _, err := ParseLogLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if c.Completion.Enabled != nil && *c.Completion.Enabled && !c.hasNodeProfile() {
		errs = append(errs, errors.New("completion: enabled without a nodeProfile (or nodeLocal.kubeletConfig)"))
	}
	if c.NodeLocal != nil {
		errs = append(errs, c.NodeLocal.Validate())
		if c.Pods == cluster.PodsVerified {
			// Its store holds only its node's pods: the names of the others
			// are asked of the central server, never a false NXDOMAIN.
			errs = append(errs, c.NodeLocal.ValidatePodsServer())
		}
	}
	return errors.Join(errs...)
}

// hasNodeProfile reports whether completion has a node profile: a file, or
// in node-local mode the node's kubelet configuration.
func (c Config) hasNodeProfile() bool {
	return c.Completion.NodeProfile != "" || (c.NodeLocal != nil && c.NodeLocal.Completion())
}

// completion reports whether search completion is on: with a node profile,
// unless turned off.
func (c Config) completion() bool {
	return c.hasNodeProfile() && (c.Completion.Enabled == nil || *c.Completion.Enabled)
}

// watchPods reports whether the API source must watch pods: for verified
// pod records, completion, the query log's pod identity and the AAAA
// filter of IPv4-only pods.
func (c Config) watchPods() bool {
	return c.Pods == cluster.PodsVerified || c.completion() || c.QueryLog.Enabled || c.AAAA.Filter == aaaa.ModeIPv4Pods
}

// ParseLogLevel parses a logLevel value.
func ParseLogLevel(s string) (slog.Level, error) {
	switch s {
	case "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	}
	return 0, fmt.Errorf("logLevel %q: want info or debug", s)
}
