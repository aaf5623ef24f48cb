package main

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/poddns/poddns/pkg/serve/cluster"
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
	// Lameduck is how long DNS keeps being served after a shutdown signal
	// while /ready reports not ready.
	Lameduck *metav1.Duration `json:"lameduck,omitempty"`
	// LogLevel is info or debug.
	LogLevel string `json:"logLevel,omitempty"`
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

// defaults returns the configuration used for everything neither the file
// nor a flag sets.
func defaults() Config {
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

// parseConfig decodes a config file strictly (unknown fields are errors)
// over the defaults.
func parseConfig(data []byte, name string) (Config, error) {
	cfg := defaults()
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
	merge(&cfg, file)
	return cfg, nil
}

// merge sets in dst every field that src sets.
func merge(dst *Config, src Config) {
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
	if src.Lameduck != nil {
		dst.Lameduck = src.Lameduck
	}
	if src.LogLevel != "" {
		dst.LogLevel = src.LogLevel
	}
}

// validate checks what can be checked without opening anything.
func (c Config) validate() error {
	var errs []error
	for _, a := range []struct{ field, addr string }{{"listen", c.Listen}, {"healthListen", c.HealthListen}, {"metricsListen", c.MetricsListen}} {
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
	if _, err := logLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if _, err := cluster.New(c.clusterOptions(nil)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c Config) clusterOptions(src cluster.Source) cluster.Options {
	if src == nil {
		src = noSource{}
	}
	return cluster.Options{Zones: c.Zones, TTL: c.TTL, Pods: cluster.PodMode(c.Pods), Store: src}
}

func logLevel(s string) (slog.Level, error) {
	switch s {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	}
	return 0, fmt.Errorf("logLevel %q: want info or debug", s)
}

// flags are dnsd's command line. Each flag overrides the config file only
// when given.
type flags struct {
	fs     *pflag.FlagSet
	config string
	over   Config
	zones  []string
	ttl    uint32
	lame   time.Duration
}

// newFlagSet defines the flags on a FlagSet of our own (never the global
// one, where controller-runtime registers --kubeconfig).
func newFlagSet() *flags {
	f := &flags{fs: pflag.NewFlagSet("dnsd", pflag.ContinueOnError)}
	d := defaults()
	fs := f.fs
	fs.StringVar(&f.config, "config", "", "config file (apiVersion "+ConfigAPIVersion+", kind "+ConfigKind+"); flags override it")
	fs.StringVar(&f.over.Source.File, "source", "", "serve the Kubernetes objects in this YAML/JSON file (e.g. kubectl get svc,endpointslices,pods,ns -A -o yaml)")
	fs.StringVar(&f.over.Source.Kubeconfig, "kubeconfig", "", "watch the API server through this kubeconfig (default: in-cluster, when --source is not given)")
	fs.StringVar(&f.over.Listen, "listen", d.Listen, "DNS address ADDR:PORT, served over UDP and TCP")
	fs.IntVar(&f.over.UDPSockets, "udp-sockets", 0, "SO_REUSEPORT UDP sockets (0: one per core)")
	fs.StringSliceVar(&f.zones, "zone", d.Zones, "cluster domain (repeatable)")
	fs.Uint32Var(&f.ttl, "ttl", *d.TTL, "TTL of cluster records in seconds (0-3600)")
	fs.StringVar(&f.over.Pods, "pods", d.Pods, "pod records: disabled, insecure or verified")
	fs.StringVar(&f.over.HealthListen, "health-listen", d.HealthListen, "address of /health and /ready")
	fs.StringVar(&f.over.MetricsListen, "metrics-listen", d.MetricsListen, "address of /metrics (may equal --health-listen)")
	fs.DurationVar(&f.lame, "lameduck", d.Lameduck.Duration, "keep serving DNS this long after SIGTERM, with /ready failing")
	fs.StringVar(&f.over.LogLevel, "log-level", d.LogLevel, "log level: info or debug (debug logs handler errors)")
	return f
}

// overrides returns the fields of the flags that were given.
func (f *flags) overrides() Config {
	var o Config
	set := func(name string) bool { return f.fs.Changed(name) }
	if set("source") {
		o.Source.File = f.over.Source.File
	}
	if set("kubeconfig") {
		o.Source.Kubeconfig = f.over.Source.Kubeconfig
	}
	if set("source") || set("kubeconfig") {
		// A source flag replaces the file's source entirely.
		o.Source = SourceConfig{File: f.over.Source.File, Kubeconfig: f.over.Source.Kubeconfig}
	}
	if set("listen") {
		o.Listen = f.over.Listen
	}
	if set("udp-sockets") {
		o.UDPSockets = f.over.UDPSockets
	}
	if set("zone") {
		o.Zones = f.zones
	}
	if set("ttl") {
		ttl := f.ttl
		o.TTL = &ttl
	}
	if set("pods") {
		o.Pods = f.over.Pods
	}
	if set("health-listen") {
		o.HealthListen = f.over.HealthListen
	}
	if set("metrics-listen") {
		o.MetricsListen = f.over.MetricsListen
	}
	if set("lameduck") {
		o.Lameduck = &metav1.Duration{Duration: f.lame}
	}
	if set("log-level") {
		o.LogLevel = f.over.LogLevel
	}
	return o
}

// load builds the configuration: defaults, then the config file if any,
// then the flags given; and validates it. It is called at start and on
// every SIGHUP.
func (f *flags) load() (Config, error) {
	cfg := defaults()
	if f.config != "" {
		data, err := os.ReadFile(f.config)
		if err != nil {
			return cfg, fmt.Errorf("read config: %w", err)
		}
		if cfg, err = parseConfig(data, f.config); err != nil {
			return cfg, err
		}
	}
	merge(&cfg, f.overrides())
	if err := cfg.validate(); err != nil {
		return cfg, fmt.Errorf("invalid configuration: %w", err)
	}
	return cfg, nil
}
