package main

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/poddns/poddns/pkg/nodesetup"
	"github.com/poddns/poddns/pkg/serve/daemon"
	"github.com/poddns/poddns/pkg/serve/nodelocal"
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
	// node-local mode (issue 11)
	nodeLocal                                bool
	nl                                       nodelocal.Config
	nlIPs                                    []string
	setupInterface, setupRules, skipTeardown bool
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
	fs.BoolVar(&f.nodeLocal, "node-local", false, "serve as the node-local DNS server of this node (nodeLocal: in the config file); implied by --node-local-ip")
	fs.StringSliceVar(&f.nlIPs, "node-local-ip", nil, "node-local listen IPs, IP[,IP] (IPv4 and IPv6; default "+nodesetup.DefaultLinkLocalIP+"; add the cluster DNS IP for transparent mode)")
	fs.StringVar(&f.nl.Interface, "node-local-interface", nodesetup.DefaultInterface, "node-local: the interface made to hold the listen IPs")
	fs.StringVar(&f.nl.NodeName, "node-name", "", "node-local: this node's name (default $"+nodelocal.NodeNameEnv+")")
	fs.StringVar(&f.nl.KubeletConfig, "kubelet-config", "", "node-local: the node's kubelet configuration file (e.g. /var/lib/kubelet/config.yaml); search completion takes its node profile from it and is on by default")
	fs.StringVar(&f.nl.Central, "node-local-central", "", "node-local: forward names outside the cluster to the central dnsd at IP[:port] instead of the node's resolv.conf")
	fs.BoolVar(&f.setupInterface, "setup-interface", true, "node-local: create the interface and its addresses (off: they must exist)")
	fs.BoolVar(&f.setupRules, "setup-rules", true, "node-local: install the NOTRACK and accept nftables rules")
	fs.BoolVar(&f.skipTeardown, "skip-teardown", false, "node-local: leave the interface and rules when the last instance on the node stops")
	return f
}

// nodeLocalFlags are the flags that only mean something in node-local mode.
var nodeLocalFlags = []string{"node-local-interface", "node-name", "kubelet-config", "node-local-central", "setup-interface", "setup-rules", "skip-teardown"}

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
	if f.nodeLocal || set("node-local-ip") {
		nl := nodelocal.Config{}
		if set("node-local-ip") {
			nl.IPs = f.nlIPs
		}
		if set("node-local-interface") {
			nl.Interface = f.nl.Interface
		}
		if set("node-name") {
			nl.NodeName = f.nl.NodeName
		}
		if set("kubelet-config") {
			nl.KubeletConfig = f.nl.KubeletConfig
		}
		if set("node-local-central") {
			nl.Central = f.nl.Central
		}
		if set("setup-interface") {
			v := f.setupInterface
			nl.SetupInterface = &v
		}
		if set("setup-rules") {
			v := f.setupRules
			nl.SetupRules = &v
		}
		nl.SkipTeardown = f.skipTeardown
		o.NodeLocal = &nl
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
	cfg, err := daemon.Load(f.config, f.overrides())
	if err == nil && cfg.NodeLocal == nil {
		for _, name := range nodeLocalFlags {
			if f.fs.Changed(name) {
				return cfg, fmt.Errorf("--%s needs node-local mode (--node-local, --node-local-ip or nodeLocal: in the config file)", name)
			}
		}
	}
	return cfg, err
}
