package admission

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/poddns/poddns/pkg/nodepool"
	"github.com/poddns/poddns/pkg/policy"
	"github.com/poddns/poddns/pkg/resolvconf"
)

// ServeOptions configure Serve: what `webhook serve` resolved from its
// configuration file and flags.
type ServeOptions struct {
	// RESTConfig reaches the API server (namespace labels).
	RESTConfig *rest.Config
	// Policies are the policy files and directories, reloaded on change.
	Policies []string
	// Mode is the global policy mode.
	Mode policy.GlobalMode
	// Profile is the node profile resolv.conf files are computed with.
	Profile *resolvconf.NodeProfile
	// Pools, when not nil, are the node pools (a NodeProfileSet), used
	// instead of Profile (policy.EngineOptions.Pools).
	Pools *nodepool.Set
	// Host and Port are the TLS listen address ("" host: all addresses).
	Host string
	Port int
	// CertDir holds tls.crt and tls.key, reloaded when they change.
	CertDir string
	// HealthProbeAddress serves /healthz and /readyz, MetricsAddress
	// /metrics ("0": off).
	HealthProbeAddress string
	MetricsAddress     string
	// MetricsSecure serves /metrics over HTTPS to clients the API server
	// authenticates (TokenReview) and authorizes (SubjectAccessReview: get
	// on the non-resource URL /metrics), with controller-runtime's filter;
	// the certificate comes from MetricsCertDir (tls.crt, tls.key), else a
	// self-signed one is made at start. Off: plain HTTP to anyone.
	MetricsSecure  bool
	MetricsCertDir string
	// ExcludedNamespaces are never mutated, besides AlwaysExcluded.
	ExcludedNamespaces []string
	// PolicyResync reloads the policies this often besides on file
	// changes (0: only on changes).
	PolicyResync time.Duration
	// GracefulShutdown bounds the stop after ctx ends (default 30s).
	GracefulShutdown time.Duration
	// HTTP2 offers HTTP/2 on the webhook port (off by default, see
	// ServerOptions.HTTP2).
	HTTP2 bool
	// ReadTimeout, WriteTimeout, MaxBodyBytes and MaxInFlightBytes tune the
	// webhook server (ServerOptions; 0: the defaults).
	ReadTimeout, WriteTimeout      time.Duration
	MaxBodyBytes, MaxInFlightBytes int64
	// Log is the logger of the server and of controller-runtime.
	Log logr.Logger
	// Runnables, when set, makes more runnables for the manager once the
	// policy engine exists (the report scanner of `webhook serve`, which
	// elects the replica that scans itself: the manager has no leader
	// election, whose loss would end the process).
	Runnables func(engine *policy.Engine) ([]manager.Runnable, error)
}

// Serve loads the policies and runs the webhook server (a controller-runtime
// manager: the TLS webhook, the namespace cache, the policy reloader, health
// probes and metrics) until ctx ends. A policy set that does not load is an
// error before anything listens.
func Serve(ctx context.Context, o ServeOptions) error {
	log := o.Log
	if o.RESTConfig == nil {
		return errors.New("serve: no API server configuration")
	}
	set, err := policy.Load(o.Policies...)
	if err != nil {
		return fmt.Errorf("load policies: %w", err)
	}
	engine, err := policy.NewEngine(set, policy.EngineOptions{Profile: o.Profile, Pools: o.Pools, Mode: o.Mode})
	if err != nil {
		return err
	}
	m, err := NewMetrics(metrics.Registry)
	if err != nil {
		return err
	}
	m.Policies.Set(float64(set.Len()))
	log.Info("policies loaded", "policies", set.Len(), "mode", string(engine.Mode()))

	shutdown := o.GracefulShutdown
	if shutdown == 0 {
		shutdown = 30 * time.Second
	}
	mgr, err := ctrl.NewManager(o.RESTConfig, manager.Options{
		Scheme:                  clientgoscheme.Scheme,
		Logger:                  log,
		Metrics:                 metricsOptions(o),
		HealthProbeBindAddress:  o.HealthProbeAddress,
		GracefulShutdownTimeout: &shutdown,
		// The webhook server stops within 90% of the grace period, so the
		// manager's wait for its runnables never runs out.
		WebhookServer: NewServer(ServerOptions{
			Host: o.Host, Port: o.Port, CertDir: o.CertDir,
			HTTP2:       o.HTTP2,
			ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
			ShutdownTimeout: shutdown * 9 / 10,
			MaxBodyBytes:    o.MaxBodyBytes, MaxInFlightBytes: o.MaxInFlightBytes,
			Metrics: m, Log: log,
		}),
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	h := NewHandler(engine, mgr.GetCache(), mgr.GetAPIReader())
	h.ExcludedNamespaces = o.ExcludedNamespaces
	h.Metrics = m
	srv := mgr.GetWebhookServer()
	srv.Register(Path, &admission.Webhook{Handler: h})
	if err := mgr.Add(&Reloader{
		Engine: engine, Paths: o.Policies, Metrics: m, Resync: o.PolicyResync,
		Log: log.WithName("reloader"),
	}); err != nil {
		return err
	}
	if o.Runnables != nil {
		rs, err := o.Runnables(engine)
		if err != nil {
			return err
		}
		for _, r := range rs {
			if err := mgr.Add(r); err != nil {
				return err
			}
		}
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	// Ready: the policies are loaded (before the manager starts; a failed
	// reload keeps them) and the TLS server answers.
	if err := mgr.AddReadyzCheck("webhook", srv.StartedChecker()); err != nil {
		return err
	}
	// Watch namespaces from the start so the first admissions hit the cache.
	if _, err := mgr.GetCache().GetInformer(ctx, &corev1.Namespace{}); err != nil {
		return fmt.Errorf("namespace informer: %w", err)
	}
	log.Info("serving", "path", Path, "port", o.Port, "certDir", o.CertDir,
		"excludedNamespaces", strings.Join(append(append([]string{}, AlwaysExcluded...), o.ExcludedNamespaces...), ","))
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}

// metricsOptions are the metrics server's: HTTPS with authentication and
// authorization when MetricsSecure, HTTP/2 offered only with HTTP2.
func metricsOptions(o ServeOptions) metricsserver.Options {
	m := metricsserver.Options{BindAddress: o.MetricsAddress}
	if !o.MetricsSecure {
		return m
	}
	m.SecureServing = true
	m.FilterProvider = filters.WithAuthenticationAndAuthorization
	m.CertDir = o.MetricsCertDir
	protos := (&ServerOptions{HTTP2: o.HTTP2}).TLSConfig().NextProtos
	m.TLSOpts = []func(*tls.Config){func(c *tls.Config) {
		c.NextProtos = protos
		c.MinVersion = tls.VersionTLS12
	}}
	return m
}
