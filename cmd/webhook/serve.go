package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/yaml"

	"github.com/poddns/poddns/pkg/nodeprofile"
	"github.com/poddns/poddns/pkg/policy"
	padmission "github.com/poddns/poddns/pkg/policy/admission"
)

// The identity of the webhook's configuration file.
const (
	ConfigAPIVersion = "poddns.io/v1alpha1"
	ConfigKind       = "WebhookConfig"
)

// WebhookConfig is the configuration file of `webhook serve`
// (apiVersion poddns.io/v1alpha1, kind WebhookConfig). Every field has a
// flag of the same meaning that overrides it (in brackets):
//
//	apiVersion: poddns.io/v1alpha1
//	kind: WebhookConfig
//	policies: [/etc/poddns/policies]   # [-p, --policies] files or directories
//	mode: per-policy                    # [--mode] enforce | audit | per-policy
//	nodeProfile: /etc/poddns/node.yaml  # [--profile] a NodeProfile file (pkg/nodeprofile)
//	kubeletConfig: ""                   # [--kubelet-config] or a KubeletConfiguration file
//	host: ""                            # [--host] webhook listen address ("" = all)
//	port: 9443                          # [--port]
//	certDir: /tls                       # [--cert-dir] tls.crt and tls.key, reloaded on change
//	healthProbeAddress: ":8081"         # [--health-probe-bind-address] /healthz, /readyz
//	metricsAddress: ":8080"             # [--metrics-bind-address] /metrics ("0" = off)
//	excludedNamespaces: [poddns-system] # [--excluded-namespaces] besides kube-system
//	policyResync: 1m                    # [--policy-resync] periodic reload, 0 = only on change
//
// The kubelet-style node profile flags (--cluster-dns, --cluster-domain,
// --resolv-conf, --node-ip) override the profile file field by field.
type WebhookConfig struct {
	APIVersion         string   `json:"apiVersion"`
	Kind               string   `json:"kind"`
	Policies           []string `json:"policies,omitempty"`
	Mode               string   `json:"mode,omitempty"`
	NodeProfile        string   `json:"nodeProfile,omitempty"`
	KubeletConfig      string   `json:"kubeletConfig,omitempty"`
	Host               string   `json:"host,omitempty"`
	Port               int      `json:"port,omitempty"`
	CertDir            string   `json:"certDir,omitempty"`
	HealthProbeAddress string   `json:"healthProbeAddress,omitempty"`
	MetricsAddress     string   `json:"metricsAddress,omitempty"`
	ExcludedNamespaces []string `json:"excludedNamespaces,omitempty"`
	PolicyResync       string   `json:"policyResync,omitempty"`
}

// Defaults of `webhook serve`.
const (
	defaultPort               = 9443
	defaultCertDir            = "/tls"
	defaultHealthProbeAddress = ":8081"
	defaultMetricsAddress     = ":8080"
	defaultPolicyResync       = time.Minute
)

// serveOptions are the flags of `webhook serve`, after the configuration
// file has filled those not given on the command line.
type serveOptions struct {
	config             string
	kubeconfig         string
	policies           []string
	mode               string
	host               string
	port               int
	certDir            string
	healthProbeAddress string
	metricsAddress     string
	excludedNamespaces []string
	policyResync       time.Duration
	logLevel           string
	node               nodeprofile.Options
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
	fs.StringVar(&o.config, "config", "", "configuration file (apiVersion: "+ConfigAPIVersion+", kind: "+ConfigKind+"); flags override it")
	// A pflag of the command, not of the standard flag set, where
	// controller-runtime registers its own --kubeconfig.
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
	fs.StringArrayVarP(&o.policies, "policies", "p", nil, "DNSPolicy file or directory (a ConfigMap mount works); repeatable")
	fs.StringVar(&o.mode, "mode", string(policy.GlobalPerPolicy), "global policy mode: enforce, audit or per-policy")
	fs.StringVar(&o.host, "host", "", "webhook server listen host (empty: all addresses)")
	fs.IntVar(&o.port, "port", defaultPort, "webhook server port")
	fs.StringVar(&o.certDir, "cert-dir", defaultCertDir, "directory holding tls.crt and tls.key (e.g. a cert-manager Secret volume)")
	fs.StringVar(&o.healthProbeAddress, "health-probe-bind-address", defaultHealthProbeAddress, "address of /healthz and /readyz (\"0\": off)")
	fs.StringVar(&o.metricsAddress, "metrics-bind-address", defaultMetricsAddress, "address of /metrics (\"0\": off)")
	fs.StringSliceVar(&o.excludedNamespaces, "excluded-namespaces", nil, "namespaces never mutated besides kube-system (the webhook's own); comma-separated or repeated")
	fs.DurationVar(&o.policyResync, "policy-resync", defaultPolicyResync, "reload the policies this often besides on file changes (0: only on changes)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: info or debug")
	o.node.AddFlags(fs)
	return cmd
}

// readConfig decodes a WebhookConfig strictly.
func readConfig(path string) (*WebhookConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var c WebhookConfig
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if c.APIVersion != ConfigAPIVersion || c.Kind != ConfigKind {
		return nil, fmt.Errorf("config %s: apiVersion %q, kind %q: want %s, %s", path, c.APIVersion, c.Kind, ConfigAPIVersion, ConfigKind)
	}
	// Relative paths are relative to the configuration file.
	dir := filepath.Dir(path)
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	for i := range c.Policies {
		c.Policies[i] = rel(c.Policies[i])
	}
	c.NodeProfile, c.KubeletConfig, c.CertDir = rel(c.NodeProfile), rel(c.KubeletConfig), rel(c.CertDir)
	return &c, nil
}

// complete fills every flag not given on the command line from the --config
// file, then checks the result.
func (o *serveOptions) complete(fs *pflag.FlagSet) error {
	if o.config != "" {
		c, err := readConfig(o.config)
		if err != nil {
			return err
		}
		set := func(name string, values ...string) error {
			if fs.Changed(name) || len(values) == 0 {
				return nil
			}
			if f := fs.Lookup(name); f != nil {
				if sv, ok := f.Value.(pflag.SliceValue); ok {
					return sv.Replace(values)
				}
			}
			return fs.Set(name, values[0])
		}
		nonEmpty := func(s string) []string {
			if s == "" {
				return nil
			}
			return []string{s}
		}
		port := ""
		if c.Port != 0 {
			port = strconv.Itoa(c.Port)
		}
		for _, kv := range []struct {
			flag   string
			values []string
		}{
			{"policies", c.Policies},
			{"mode", nonEmpty(c.Mode)},
			{"profile", nonEmpty(c.NodeProfile)},
			{"kubelet-config", nonEmpty(c.KubeletConfig)},
			{"host", nonEmpty(c.Host)},
			{"port", nonEmpty(port)},
			{"cert-dir", nonEmpty(c.CertDir)},
			{"health-probe-bind-address", nonEmpty(c.HealthProbeAddress)},
			{"metrics-bind-address", nonEmpty(c.MetricsAddress)},
			{"excluded-namespaces", c.ExcludedNamespaces},
			{"policy-resync", nonEmpty(c.PolicyResync)},
		} {
			if err := set(kv.flag, kv.values...); err != nil {
				return fmt.Errorf("config %s: %s: %w", o.config, kv.flag, err)
			}
		}
	}
	var errs []error
	if len(o.policies) == 0 {
		errs = append(errs, errors.New("no policies: give -p PATH or policies in --config"))
	}
	if _, err := policy.ParseGlobalMode(o.mode); err != nil {
		errs = append(errs, fmt.Errorf("mode: %w", err))
	}
	if o.port <= 0 || o.port > 65535 {
		errs = append(errs, fmt.Errorf("port %d: want 1 to 65535", o.port))
	}
	if o.logLevel != "info" && o.logLevel != "debug" {
		errs = append(errs, fmt.Errorf("log-level %q: want info or debug", o.logLevel))
	}
	return errors.Join(errs...)
}

// restConfig is --kubeconfig, else controller-runtime's lookup ($KUBECONFIG,
// in-cluster, ~/.kube/config).
func (o *serveOptions) restConfig() (*rest.Config, error) {
	if o.kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	}
	return ctrl.GetConfig()
}

func (o *serveOptions) logger(s streams) logr.Logger {
	level := slog.LevelInfo
	if o.logLevel == "debug" {
		level = slog.LevelDebug
	}
	return logr.FromSlogHandler(slog.NewJSONHandler(s.err, &slog.HandlerOptions{Level: level}))
}

// run serves until ctx ends.
func (o *serveOptions) run(ctx context.Context, s streams) error {
	log := o.logger(s)
	ctrl.SetLogger(log)
	profile, warnings, err := o.node.NodeProfile()
	if err != nil {
		return err
	}
	for _, w := range warnings {
		log.Info("node profile warning", "warning", w)
	}
	cfg, err := o.restConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	return padmission.Serve(ctx, padmission.ServeOptions{
		RESTConfig: cfg, Policies: o.policies, Mode: policy.GlobalMode(o.mode), Profile: profile,
		Host: o.host, Port: o.port, CertDir: o.certDir,
		HealthProbeAddress: o.healthProbeAddress, MetricsAddress: o.metricsAddress,
		ExcludedNamespaces: o.excludedNamespaces, PolicyResync: o.policyResync, Log: log,
	})
}
