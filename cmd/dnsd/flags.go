package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/poddns/poddns/pkg/nodesetup"
	"github.com/poddns/poddns/pkg/serve/daemon"
	"github.com/poddns/poddns/pkg/serve/nodelocal"
)

// command is dnsd's command line once checked: the config file and the
// arguments, parsed again onto each configuration it loads.
type command struct {
	config string
	args   []string
}

// newFlagSet defines dnsd's flags on a FlagSet of our own (never the
// global one, where controller-runtime registers --kubeconfig), each bound
// to the field of c it sets, so that a flag given wins over the config
// file whatever its value, zero and empty included. The defaults shown are
// c's values. A knob with a flag is one line here.
func newFlagSet(c *daemon.Config, config *string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("dnsd", pflag.ContinueOnError)
	source := &group{reset: func() { c.Source = daemon.SourceConfig{} }}
	upstreams := &group{reset: func() { c.Forward.Upstreams, c.Forward.ResolvConf = nil, "" }}
	fs.StringVar(config, "config", "", "config file (apiVersion "+daemon.Identity.APIVersion+", kind "+daemon.Identity.Kind+"); flags override it")
	fs.Var(source.member(&stringValue{&c.Source.File}), "source", "serve the Kubernetes objects in this YAML/JSON file (e.g. kubectl get svc,endpointslices,pods,ns -A -o yaml)")
	fs.Var(source.member(&stringValue{&c.Source.Kubeconfig}), "kubeconfig", "watch the API server through this kubeconfig (default: in-cluster, when --source is not given)")
	fs.StringVar(&c.Listen, "listen", c.Listen, "DNS address ADDR:PORT, served over UDP and TCP")
	fs.IntVar(&c.UDPSockets, "udp-sockets", c.UDPSockets, "SO_REUSEPORT UDP sockets (0: one per core)")
	fs.StringSliceVar(&c.Zones, "zone", c.Zones, "cluster domain (repeatable)")
	fs.Uint32Var(&c.TTL, "ttl", c.TTL, "TTL of cluster records in seconds (0-3600)")
	fs.StringVar((*string)(&c.Pods), "pods", string(c.Pods), "pod records: disabled, insecure or verified")
	fs.StringVar(&c.HealthListen, "health-listen", c.HealthListen, "address of /health and /ready")
	fs.StringVar(&c.MetricsListen, "metrics-listen", c.MetricsListen, "address of /metrics (may equal --health-listen)")
	fs.StringVar(&c.PprofListen, "pprof-listen", c.PprofListen, "address of Go's profiles under /debug/pprof/ (default: off; keep it on loopback)")
	fs.DurationVar((*time.Duration)(&c.Lameduck), "lameduck", c.Lameduck.D(), "keep serving DNS this long after SIGTERM, with /ready failing")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: info or debug (debug logs handler errors)")
	fs.Var(upstreams.member(&appendValue{p: &c.Forward.Upstreams}), "upstream", "forward names outside the cluster zones to this resolver, IP or IP:port, or tls://IP[:port] for DNS over TLS (server name and CA in the config file) (repeatable; default: none, such names are refused)")
	fs.Var(upstreams.member(&stringValue{&c.Forward.ResolvConf}), "upstream-resolv-conf", "forward names outside the cluster zones to the nameservers of this resolv.conf file")
	fs.StringVar((*string)(&c.AAAA.Filter), "aaaa-filter", string(c.AAAA.Filter), "answer AAAA queries for names outside the cluster NODATA without asking upstream: none, ipv4Pods (pods with no IPv6 address) or all")
	boolVar(fs, &boolValue{set: func(on bool) { c.QueryLog.Enabled = on }}, "query-log", "log one JSON line per query on stdout, with the client pod's namespace and name (queryLog: in the config file sets output, filters, sampling)")
	// Node-local mode: the nodeLocal block, made when the first of these
	// flags is given.
	nl := func() *nodelocal.Config {
		if c.NodeLocal == nil {
			c.NodeLocal = &nodelocal.Config{}
		}
		return c.NodeLocal
	}
	boolVar(fs, &boolValue{set: func(on bool) {
		nl()
		if !on {
			c.NodeLocal = nil
		}
	}}, "node-local", "serve as the node-local DNS server of this node (nodeLocal: in the config file); implied by --node-local-ip")
	fs.Var(&listValue{p: func() *[]string { return &nl().IPs }}, "node-local-ip", "node-local listen IPs, IP[,IP] (IPv4 and IPv6; default "+nodesetup.DefaultLinkLocalIP+"; add the cluster DNS IP for transparent mode)")
	fs.Var(&lazyString{func() *string { return &nl().Interface }}, "node-local-interface", "node-local: the interface made to hold the listen IPs (default "+nodesetup.DefaultInterface+")")
	fs.Var(&lazyString{func() *string { return &nl().NodeName }}, "node-name", "node-local: this node's name (default $"+nodelocal.NodeNameEnv+")")
	fs.Var(&lazyString{func() *string { return &nl().KubeletConfig }}, "kubelet-config", "node-local: the node's kubelet configuration file (e.g. /var/lib/kubelet/config.yaml); search completion takes its node profile from it and is on by default")
	fs.Var(&lazyString{func() *string { return &nl().Central }}, "node-local-central", "node-local: forward names outside the cluster to the central dnsd at IP[:port] instead of the node's resolv.conf (and, with --pods verified, other nodes' pod names)")
	boolVar(fs, &boolValue{set: func(on bool) { nl().SetupInterface = &on }, def: "true"}, "setup-interface", "node-local: create the interface and its addresses (off: they must exist)")
	boolVar(fs, &boolValue{set: func(on bool) { nl().SetupRules = &on }, def: "true"}, "setup-rules", "node-local: install the NOTRACK and accept nftables rules")
	boolVar(fs, &boolValue{set: func(on bool) { nl().SkipTeardown = on }}, "skip-teardown", "node-local: leave the interface and rules when the last instance on the node stops")
	return fs
}

// nodeLocalFlags are the flags that only mean something in node-local mode.
var nodeLocalFlags = []string{"node-local-interface", "node-name", "kubelet-config", "node-local-central", "setup-interface", "setup-rules", "skip-teardown"}

// checkNodeLocal refuses node-local flags outside node-local mode: a
// nodeLocal block in the file, --node-local or --node-local-ip turn it on,
// the others do not.
func checkNodeLocal(fs *pflag.FlagSet, fromFile bool) error {
	if fromFile || fs.Changed("node-local") && fs.Lookup("node-local").Value.String() == "true" || fs.Changed("node-local-ip") {
		return nil
	}
	for _, name := range nodeLocalFlags {
		if fs.Changed(name) {
			return fmt.Errorf("--%s needs node-local mode (--node-local, --node-local-ip or nodeLocal: in the config file)", name)
		}
	}
	return nil
}

// parseArgs checks the command line (flag syntax, --help) and returns it.
func parseArgs(args []string, stderr io.Writer) (*command, error) {
	cfg, cmd := daemon.Defaults(), &command{}
	fs := newFlagSet(&cfg, &cmd.config)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: dnsd [flags]\n       dnsd migrate --corefile FILE [...]   translate a CoreDNS configuration (dnsd migrate --help)\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, &argsError{fs.Args()}
	}
	cmd.args = args
	return cmd, nil
}

type argsError struct{ args []string }

func (e *argsError) Error() string { return "unexpected arguments " + strings.Join(e.args, " ") }

// load builds the configuration: defaults, the config file, then the flags
// parsed onto it (daemon.Load). It is called at start and on every SIGHUP.
func (c *command) load() (daemon.Config, error) {
	return daemon.Load(c.config, func(cfg *daemon.Config) error {
		fromFile := cfg.NodeLocal != nil
		fs := newFlagSet(cfg, new(string))
		fs.SetOutput(io.Discard)
		if err := fs.Parse(c.args); err != nil {
			return err
		}
		return checkNodeLocal(fs, fromFile)
	})
}

// group ties flags that replace one setting of the file as a whole (the
// source, the upstreams): the first of them given clears what the file set
// in any of them.
type group struct {
	reset func()
	given bool
}

func (g *group) member(v pflag.Value) pflag.Value { return &groupValue{Value: v, g: g} }

type groupValue struct {
	pflag.Value
	g *group
}

func (v *groupValue) Set(s string) error {
	if !v.g.given {
		v.g.given = true
		v.g.reset()
	}
	return v.Value.Set(s)
}

// stringValue is a string flag bound to a field.
type stringValue struct{ p *string }

func (v *stringValue) Set(s string) error { *v.p = s; return nil }
func (v *stringValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}
func (v *stringValue) Type() string { return "string" }

// appendValue is a repeatable flag bound to a list field: each value is
// one element.
type appendValue struct{ p *[]string }

func (v *appendValue) Set(s string) error { *v.p = append(*v.p, s); return nil }
func (v *appendValue) String() string {
	if v.p == nil {
		return ""
	}
	return strings.Join(*v.p, ",")
}
func (v *appendValue) Type() string { return "stringArray" }

// lazyString is a string flag bound to a field that exists once the flag is
// given (a field of an optional block).
type lazyString struct{ p func() *string }

func (v *lazyString) Set(s string) error { *v.p() = s; return nil }
func (v *lazyString) String() string     { return "" }
func (v *lazyString) Type() string       { return "string" }

// listValue is a repeatable flag of comma-separated values bound to a list
// field of an optional block: the first value given replaces the list.
type listValue struct {
	p     func() *[]string
	given bool
}

func (v *listValue) Set(s string) error {
	p := v.p()
	if !v.given {
		*p, v.given = nil, true
	}
	for item := range strings.SplitSeq(s, ",") {
		*p = append(*p, strings.TrimSpace(item))
	}
	return nil
}
func (v *listValue) String() string { return "" }
func (v *listValue) Type() string   { return "strings" }

// boolVar defines a boolean flag: --name alone means true.
func boolVar(fs *pflag.FlagSet, v *boolValue, name, usage string) {
	fs.Var(v, name, usage)
	fs.Lookup(name).NoOptDefVal = "true"
}

// boolValue is a boolean flag whose value set calls set.
type boolValue struct {
	set func(bool)
	def string // the default shown in --help
	val string
}

func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	v.val = strconv.FormatBool(b)
	v.set(b)
	return nil
}
func (v *boolValue) String() string {
	if v.val != "" {
		return v.val
	}
	if v.def != "" {
		return v.def
	}
	return "false"
}
func (v *boolValue) Type() string     { return "bool" }
func (v *boolValue) IsBoolFlag() bool { return true }
