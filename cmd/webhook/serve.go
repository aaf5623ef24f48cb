package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/poddns/poddns/pkg/configfile"
	"github.com/poddns/poddns/pkg/memlimit"
	"github.com/poddns/poddns/pkg/nodeprofile"
	"github.com/poddns/poddns/pkg/policy"
	padmission "github.com/poddns/poddns/pkg/policy/admission"
	"github.com/poddns/poddns/pkg/report/scan"
)

// webhookIdentity is the apiVersion and kind of the webhook's
// configuration file.
var webhookIdentity = configfile.Identity{APIVersion: "poddns.io/v1alpha1", Kind: "WebhookConfig"}

// WebhookConfig is the configuration of `webhook serve` (apiVersion
// poddns.io/v1alpha1, kind WebhookConfig), read by package configfile as
// every poddns file is: defaults, then the file, then the flags bound onto
// the same fields (an explicit flag wins, zero and empty included), then
// validation. Each field has the flag named in brackets:
//
//	apiVersion: poddns.io/v1alpha1
//	kind: WebhookConfig
//	policies: [/etc/poddns/policies]   # [-p, --policies] files or directories
//	mode: per-policy                    # [--mode] enforce | audit | per-policy
//	nodeProfile: /etc/poddns/node.yaml  # [--profile] a NodeProfile or NodeProfileSet file (pkg/nodeprofile)
//	kubeletConfig: ""                   # [--kubelet-config] or a KubeletConfiguration file
//	host: ""                            # [--host] webhook listen address ("" = all)
//	port: 9443                          # [--port]
//	certDir: /tls                       # [--cert-dir] tls.crt and tls.key, reloaded on change
//	healthProbeAddress: ":8081"         # [--health-probe-bind-address] /healthz, /readyz
//	metricsAddress: ":8443"             # [--metrics-bind-address] /metrics ("0" = off)
//	metricsSecure: true                 # [--metrics-secure] HTTPS, TokenReview + SubjectAccessReview; false = plain HTTP
//	metricsCertDir: ""                  # [--metrics-cert-dir] tls.crt and tls.key ("" = self-signed)
//	excludedNamespaces: [poddns-system] # [--excluded-namespaces] besides kube-system
//	policyResync: 1m                    # [--policy-resync] periodic reload, 0s = only on change
//	logLevel: info                      # [--log-level] info | debug
//	enableHTTP2: false                  # [--enable-http2] offer HTTP/2 on the webhook port (off: CVE-2023-44487)
//	reportScanInterval: 0s              # [--report-scan-interval] background scan into policy reports (0s = off)
//	reportScanQPS: 20                   # [--report-scan-qps] the scan's API requests a second, at most
//	reportNamespaceSelector: poddns.io/enabled=true  # [--report-namespace-selector] the MutatingWebhookConfiguration's
//	leaderElectionNamespace: ""         # [--leader-election-namespace] the scan's Lease ("" = in-cluster namespace)
//
// Relative paths are relative to the file's directory. The kubelet-style
// node profile flags (--cluster-dns, --cluster-domain, --resolv-conf,
// --node-ip) override the profile file field by field.
type WebhookConfig struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Policies   []string `json:"policies"`
	Mode       string   `json:"mode"`
	// Node is the node profile: nodeProfile, kubeletConfig.
	nodeprofile.Options
	Host               string              `json:"host"`
	Port               int                 `json:"port"`
	CertDir            string              `json:"certDir"`
	HealthProbeAddress string              `json:"healthProbeAddress"`
	MetricsAddress     string              `json:"metricsAddress"`
	MetricsSecure      bool                `json:"metricsSecure"`
	MetricsCertDir     string              `json:"metricsCertDir"`
	ExcludedNamespaces []string            `json:"excludedNamespaces"`
	PolicyResync       configfile.Duration `json:"policyResync"`
	LogLevel           string              `json:"logLevel"`
	EnableHTTP2        bool                `json:"enableHTTP2"`
	// The background report scan (reportscan.go).
	ReportScanInterval      configfile.Duration `json:"reportScanInterval"`
	ReportScanQPS           int                 `json:"reportScanQPS"`
	ReportNamespaceSelector string              `json:"reportNamespaceSelector"`
	LeaderElectionNamespace string              `json:"leaderElectionNamespace"`
}

// Defaults of `webhook serve`.
const (
	defaultPort               = 9443
	defaultCertDir            = "/tls"
	defaultHealthProbeAddress = ":8081"
	defaultMetricsAddress     = ":8443"
	defaultPolicyResync       = time.Minute
)

// defaultWebhookConfig is the configuration of whatever neither the file
// nor a flag sets.
func defaultWebhookConfig() WebhookConfig {
	return WebhookConfig{
		APIVersion: webhookIdentity.APIVersion, Kind: webhookIdentity.Kind,
		Mode: string(policy.GlobalPerPolicy), Port: defaultPort, CertDir: defaultCertDir,
		HealthProbeAddress: defaultHealthProbeAddress, MetricsAddress: defaultMetricsAddress, MetricsSecure: true,
		PolicyResync: configfile.Duration(defaultPolicyResync), LogLevel: "info",
		ReportScanQPS: scan.DefaultQPS, ReportNamespaceSelector: defaultNamespaceSelector,
	}
}

// Paths are the files the configuration names.
func (c *WebhookConfig) Paths() []*string {
	paths := append(c.Options.Paths(), &c.CertDir, &c.MetricsCertDir)
	for i := range c.Policies {
		paths = append(paths, &c.Policies[i])
	}
	return paths
}

// Validate checks the configuration without reading anything.
func (c *WebhookConfig) Validate() error {
	var errs []error
	if len(c.Policies) == 0 {
		errs = append(errs, errors.New("no policies: give -p PATH or policies in --config"))
	}
	if _, err := policy.ParseGlobalMode(c.Mode); err != nil {
		errs = append(errs, fmt.Errorf("mode: %w", err))
	}
	if c.Port <= 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d: want 1 to 65535", c.Port))
	}
	if c.PolicyResync < 0 {
		errs = append(errs, fmt.Errorf("policyResync %s is negative", c.PolicyResync))
	}
	errs = append(errs, c.validateReportScan()...)
	if c.LogLevel != "info" && c.LogLevel != "debug" {
		errs = append(errs, fmt.Errorf("log-level %q: want info or debug", c.LogLevel))
	}
	return errors.Join(errs...)
}

// bindServeFlags defines the flags of `webhook serve` on fs, each bound to
// the field of c it sets; the defaults shown are c's values. A knob with a
// flag is one line here.
func bindServeFlags(fs *pflag.FlagSet, c *WebhookConfig) {
	fs.StringArrayVarP(&c.Policies, "policies", "p", c.Policies, "DNSPolicy file or directory (a ConfigMap mount works); repeatable")
	fs.StringVar(&c.Mode, "mode", c.Mode, "global policy mode: enforce, audit or per-policy")
	fs.StringVar(&c.Host, "host", c.Host, "webhook server listen host (empty: all addresses)")
	fs.IntVar(&c.Port, "port", c.Port, "webhook server port")
	fs.StringVar(&c.CertDir, "cert-dir", c.CertDir, "directory holding tls.crt and tls.key (e.g. a cert-manager Secret volume)")
	fs.StringVar(&c.HealthProbeAddress, "health-probe-bind-address", c.HealthProbeAddress, "address of /healthz and /readyz (\"0\": off)")
	fs.StringVar(&c.MetricsAddress, "metrics-bind-address", c.MetricsAddress, "address of /metrics (\"0\": off)")
	fs.BoolVar(&c.MetricsSecure, "metrics-secure", c.MetricsSecure, "serve /metrics over HTTPS to clients the API server authenticates and authorizes (get /metrics); false: plain HTTP to anyone")
	fs.StringVar(&c.MetricsCertDir, "metrics-cert-dir", c.MetricsCertDir, "directory holding tls.crt and tls.key of the metrics server (empty: a self-signed certificate)")
	fs.StringSliceVar(&c.ExcludedNamespaces, "excluded-namespaces", c.ExcludedNamespaces, "namespaces never mutated besides kube-system (the webhook's own); comma-separated or repeated")
	fs.DurationVar((*time.Duration)(&c.PolicyResync), "policy-resync", c.PolicyResync.D(), "reload the policies this often besides on file changes (0: only on changes)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: info or debug")
	fs.BoolVar(&c.EnableHTTP2, "enable-http2", c.EnableHTTP2, "offer HTTP/2 on the webhook port; off by default since HTTP/2 rapid reset (CVE-2023-44487), the API server speaks HTTP/1.1 as well")
	bindReportScanFlags(fs, c)
	c.Options.AddFlags(fs)
}

// serveOptions are the command line of `webhook serve`: the configuration
// file, the kubeconfig, and the configuration the flags are bound to.
type serveOptions struct {
	config     string
	kubeconfig string
	cfg        WebhookConfig
}

func newServeCommand(s streams) *cobra.Command {
	return newServeCommandWith(s, &serveOptions{})
}

func newServeCommandWith(s streams, o *serveOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve --config FILE | -p POLICIES [flags]",
		Short: "Serve the mutating admission webhook for pods",
		Long: `serve runs the admission webhook: it answers the API server's AdmissionReviews
for pods on ` + padmission.Path + ` over TLS (tls.crt and tls.key in --cert-dir,
reloaded when they change, e.g. when cert-manager renews them), mutating pods
on CREATE with the DNS policies. The policies are reloaded when their files
change (a ConfigMap volume's ..data swap included); a bad reload keeps the
policies in use, is logged and counted, and the server stays ready.

/healthz and /readyz are served on --health-probe-bind-address (ready once the
policies are loaded and the TLS server is up), Prometheus metrics on
--metrics-bind-address. SIGTERM or SIGINT stop it gracefully.

Settings come from defaults, then the --config file (kind WebhookConfig), then
flags, later ones winning.`,
		Example: `  webhook serve --config /etc/poddns/webhook.yaml
  webhook serve -p /etc/poddns/policies --cert-dir /tls --excluded-namespaces poddns-system`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.complete(cmd.Flags()); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return o.run(ctx, s)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.config, "config", "", "configuration file (apiVersion: "+webhookIdentity.APIVersion+", kind: "+webhookIdentity.Kind+"); flags override it")
	// A pflag of the command, not of the standard flag set, where
	// controller-runtime registers its own --kubeconfig.
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
	o.cfg = defaultWebhookConfig()
	bindServeFlags(fs, &o.cfg)
	return cmd
}

// complete builds the configuration as configfile.Load does: the
// defaults, the --config file, then every flag given on the command line
// (fs) set again onto the result, then validation.
func (o *serveOptions) complete(fs *pflag.FlagSet) error {
	cfg := defaultWebhookConfig()
	err := configfile.Load(o.config, webhookIdentity, &cfg, func() error {
		bound := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		bindServeFlags(bound, &cfg)
		return configfile.SetFlags(fs, bound)
	})
	if err != nil {
		return err
	}
	o.cfg = cfg
	return nil
}

func (o *serveOptions) logger(s streams) logr.Logger {
	level := slog.LevelInfo
	if o.cfg.LogLevel == "debug" {
		level = slog.LevelDebug
	}
	return logr.FromSlogHandler(slog.NewJSONHandler(s.err, &slog.HandlerOptions{Level: level}))
}

// run serves until ctx ends.
func (o *serveOptions) run(ctx context.Context, s streams) error {
	log := o.logger(s)
	ctrl.SetLogger(log)
	// The Go heap sized to the container (GOMEMLIMIT from its memory
	// limit; see pkg/memlimit). A limit that cannot be read leaves Go's
	// default: admitting pods matters more.
	if r, err := memlimit.Set(memlimit.Options{}); err != nil {
		log.Error(err, "memory limit not applied")
	} else if r.Source != "" {
		log.Info("Go memory limit", "limit", r.Limit, "source", r.Source, "softLimit", r.SoftLimit)
	}
	c := o.cfg
	profile, pools, warnings, err := c.Profiles()
	if err != nil {
		return err
	}
	for _, w := range warnings {
		log.Info("node profile warning", "warning", w)
	}
	cfg, err := restConfig(o.kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	return padmission.Serve(ctx, padmission.ServeOptions{
		RESTConfig: cfg, Policies: c.Policies, Mode: policy.GlobalMode(c.Mode), Profile: profile, Pools: pools,
		Host: c.Host, Port: c.Port, CertDir: c.CertDir,
		HealthProbeAddress: c.HealthProbeAddress, MetricsAddress: c.MetricsAddress,
		MetricsSecure: c.MetricsSecure, MetricsCertDir: c.MetricsCertDir,
		ExcludedNamespaces: c.ExcludedNamespaces, PolicyResync: c.PolicyResync.D(), HTTP2: c.EnableHTTP2, Log: log,
		Runnables: o.reportScanner(cfg, log),
	})
}
