package main

import (
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/poddns/poddns/pkg/serve/daemon"
)

// flags are dnsd's command line. Each flag overrides the config file only
// when given.
type flags struct {
	fs     *pflag.FlagSet
	config string
	over   daemon.Config
	zones  []string
	ttl    uint32
	lame   time.Duration
}

// newFlagSet defines the flags on a FlagSet of our own (never the global
// one, where controller-runtime registers --kubeconfig).
func newFlagSet() *flags {
	f := &flags{fs: pflag.NewFlagSet("dnsd", pflag.ContinueOnError)}
	d := daemon.Defaults()
	fs := f.fs
	fs.StringVar(&f.config, "config", "", "config file (apiVersion "+daemon.ConfigAPIVersion+", kind "+daemon.ConfigKind+"); flags override it")
	fs.StringVar(&f.over.Source.File, "source", "", "serve the Kubernetes objects in this YAML/JSON file (e.g. kubectl get svc,endpointslices,pods,ns -A -o yaml)")
	fs.StringVar(&f.over.Source.Kubeconfig, "kubeconfig", "", "watch the API server through this kubeconfig (default: in-cluster, when --source is not given)")
	fs.StringVar(&f.over.Listen, "listen", d.Listen, "DNS address ADDR:PORT, served over UDP and TCP")
	fs.IntVar(&f.over.UDPSockets, "udp-sockets", 0, "SO_REUSEPORT UDP sockets (0: one per core)")
	fs.StringSliceVar(&f.zones, "zone", d.Zones, "cluster domain (repeatable)")
	fs.Uint32Var(&f.ttl, "ttl", *d.TTL, "TTL of cluster records in seconds (0-3600)")
	fs.StringVar(&f.over.Pods, "pods", d.Pods, "pod records: disabled, insecure or verified")
	fs.StringVar(&f.over.HealthListen, "health-listen", d.HealthListen, "address of /health and /ready")
	fs.StringVar(&f.over.MetricsListen, "metrics-listen", d.MetricsListen, "address of /metrics (may equal --health-listen)")
	fs.StringVar(&f.over.PprofListen, "pprof-listen", "", "address of Go's profiles under /debug/pprof/ (default: off; keep it on loopback)")
	fs.DurationVar(&f.lame, "lameduck", d.Lameduck.Duration, "keep serving DNS this long after SIGTERM, with /ready failing")
	fs.StringVar(&f.over.LogLevel, "log-level", d.LogLevel, "log level: info or debug (debug logs handler errors)")
	fs.StringArrayVar(&f.over.Forward.Upstreams, "upstream", nil, "forward names outside the cluster zones to this resolver, IP or IP:port (repeatable; default: none, such names are refused)")
	fs.StringVar(&f.over.Forward.ResolvConf, "upstream-resolv-conf", "", "forward names outside the cluster zones to the nameservers of this resolv.conf file")
	return f
}

// overrides returns the fields of the flags that were given.
func (f *flags) overrides() daemon.Config {
	var o daemon.Config
	set := func(name string) bool { return f.fs.Changed(name) }
	if set("source") {
		o.Source.File = f.over.Source.File
	}
	if set("kubeconfig") {
		o.Source.Kubeconfig = f.over.Source.Kubeconfig
	}
	if set("source") || set("kubeconfig") {
		// A source flag replaces the file's source entirely.
		o.Source = daemon.SourceConfig{File: f.over.Source.File, Kubeconfig: f.over.Source.Kubeconfig}
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
	if set("pprof-listen") {
		o.PprofListen = f.over.PprofListen
	}
	if set("lameduck") {
		o.Lameduck = &metav1.Duration{Duration: f.lame}
	}
	if set("log-level") {
		o.LogLevel = f.over.LogLevel
	}
	if set("upstream") || set("upstream-resolv-conf") {
		// Upstream flags replace the file's upstreams entirely.
		o.Forward.Upstreams = f.over.Forward.Upstreams
		o.Forward.ResolvConf = f.over.Forward.ResolvConf
	}
	return o
}

// load builds the configuration from the config file and the flags given
// (daemon.Load). It is called at start and on every SIGHUP.
func (f *flags) load() (daemon.Config, error) {
	return daemon.Load(f.config, f.overrides())
}
