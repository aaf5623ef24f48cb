package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"reflect"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/acl"
	"github.com/poddns/poddns/pkg/serve/apisource"
	"github.com/poddns/poddns/pkg/serve/cache"
	"github.com/poddns/poddns/pkg/serve/cluster"
	"github.com/poddns/poddns/pkg/serve/completion"
	"github.com/poddns/poddns/pkg/serve/filesource"
	"github.com/poddns/poddns/pkg/serve/forward"
	"github.com/poddns/poddns/pkg/serve/loadbalance"
	"github.com/poddns/poddns/pkg/serve/loop"
	"github.com/poddns/poddns/pkg/serve/metrics"
	"github.com/poddns/poddns/pkg/serve/minimalany"
	"github.com/poddns/poddns/pkg/serve/store"
)

// Daemon is one running dnsd: its DNS and HTTP listeners, the store its
// source fills, and the handler chain a reload swaps.
type Daemon struct {
	log   *slog.Logger
	reg   *prometheus.Registry
	store *store.Store

	cfg            atomic.Pointer[Config]
	inner          *serve.Atomic // the part of the chain a reload replaces
	closeInner     func()        // stops what the current inner part runs
	handlerMetrics               // metrics of inner handlers: they outlive reloads
	metrics        *metrics.Metrics
	dns            *serve.Server
	http           []*http.Server
	httpAddr       map[string]string // "health"/"metrics" -> bound address
	stopping       atomic.Bool
	failed         chan error
	// reloadsRefused counts objects-file reloads refused, by reason.
	reloadsRefused *prometheus.CounterVec

	ctx    context.Context // ends at shutdown; stops the API watch
	cancel context.CancelFunc
	api    *apisource.Source
	nl     *nodeLocal // node-local mode only
}

// Options are what a Daemon gets besides its configuration.
type Options struct {
	// Logger receives the daemon's logs (default: discarded).
	Logger *slog.Logger
	// Registry receives the metrics and serves /metrics (default: a new
	// one).
	Registry *prometheus.Registry
}

// New builds a daemon from a configuration that Load returned; Start
// starts it.
func New(cfg Config, o Options) (*Daemon, error) {
	log, reg := o.Logger, o.Registry
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	d := &Daemon{log: log, reg: reg, store: store.New(), httpAddr: map[string]string{}, failed: make(chan error, 4)}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.cfg.Store(&cfg)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d.inner = serve.NewAtomic(serve.Refused)
	d.reloadsRefused = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "poddns", Subsystem: "source", Name: "reloads_refused_total",
		Help: "Reloads of the objects file refused (the last good objects keep being served), by reason: parse, incomplete or empty."}, []string{"reason"})
	for _, r := range []string{"parse", "incomplete", "empty"} {
		d.reloadsRefused.WithLabelValues(r)
	}
	reg.MustRegister(d.reloadsRefused)
	var err error
	if d.forwardMetrics, err = forward.NewMetrics(reg); err != nil {
		return nil, err
	}
	if d.cacheMetrics, err = cache.NewMetrics(reg); err != nil {
		return nil, err
	}
	if d.completionMetrics, err = completion.NewMetrics(reg); err != nil {
		return nil, err
	}
	inner, closeInner, err := buildInner(cfg, d.store, d.inner, d.handlerMetrics)
	if err != nil {
		return nil, err
	}
	d.inner.Store(inner)
	d.closeInner = closeInner
	zones, err := cfg.clusterZones()
	if err != nil {
		return nil, err
	}
	d.metrics, err = metrics.New(metrics.Options{Registerer: reg, Zones: append(zones, cluster.ReverseZones...), Store: d.store}, d.inner)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// handlerMetrics are the metrics of the handlers buildInner makes.
type handlerMetrics struct {
	forwardMetrics    *forward.Metrics
	cacheMetrics      *cache.Metrics
	completionMetrics *completion.Metrics
}

// buildInner builds the handlers behind metrics, in their one order
// (outermost first):
//
//  1. metrics (built once in newDaemon, not here: its counters outlive
//     reloads) sees every query and the final rcode, so it comes first.
//     loop (only with default upstreams) recognizes dnsd's own startup
//     probes before anything else can answer them; other queries pass.
//     minimalany answers every ANY query with HINFO "RFC8482" "" (RFC
//     8482), cluster and external names alike, before anything looks up.
//  2. loadbalance (on by default) shuffles the addresses of every NOERROR
//     reply written below it, CNAMEs first.
//  3. completion (on when a node profile is configured) answers the first
//     search expansion of a pod's query with where the pod's own walk
//     would stop, asking cluster (and through it 5 to 7) for each name.
//  4. cluster answers the cluster zones and the reverse zones of cluster
//     IPs from the store; it hands everything else on. Cluster answers are
//     never cached: a change in the API shows at once.
//  5. acl refuses recursion to clients outside the configured client
//     networks (dnsd is not an open resolver).
//  6. cache answers what it holds of the forwarder's replies.
//  7. forward sends the rest to the configured upstreams (per zone first);
//     a name no upstream covers goes on.
//  8. the end of the chain refuses. Without any upstream configured, 5 to
//     7 are left out and everything outside the cluster zones is refused.
//
// upstream is where cluster resolves ExternalName targets outside its zones:
// this very part of the chain, so that they get the cache and forwarder.
// The returned function stops what the handlers run (health checks,
// pooled sockets, background refreshes) once they are swapped out.
func buildInner(cfg Config, st *store.Store, upstream serve.Handler, hm handlerMetrics) (serve.Handler, func(), error) {
	var next serve.Handler = serve.Refused
	var fwd *forward.Forward // for the loop probe
	closers := []func(){}
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	if cfg.forwarding() {
		fo, err := cfg.ForwardOptions()
		if err != nil {
			return nil, nil, err
		}
		fo.Next, fo.Metrics = next, hm.forwardMetrics
		fwd, err = forward.New(fo)
		if err != nil {
			return nil, nil, err
		}
		closers = append(closers, fwd.Close)
		next = fwd
		if !cfg.Cache.Disabled {
			co, err := cfg.CacheOptions()
			if err != nil {
				closeAll()
				return nil, nil, err
			}
			co.Next, co.Metrics = next, hm.cacheMetrics
			ch, err := cache.New(co)
			if err != nil {
				closeAll()
				return nil, nil, err
			}
			closers = append([]func(){ch.Close}, closers...) // the cache's refreshes use the forwarder
			next = ch
		}
		a, err := acl.New(cfg.Forward.ClientNetworks, next)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		next = a
	}
	o := cfg.clusterOptions(st)
	o.Next = next
	o.Upstream = upstream
	c, err := cluster.New(o)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	var h serve.Handler = c
	if cfg.completion() {
		p, err := cfg.nodeProfile()
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		if h, err = completion.New(completion.Options{Profile: p, Store: st, Next: c, Metrics: hm.completionMetrics}); err != nil {
			closeAll()
			return nil, nil, err
		}
	}
	if cfg.LoadBalance == nil || *cfg.LoadBalance {
		h = loadbalance.New(h)
	}
	h = minimalany.New(h)
	if fwd != nil && len(fwd.Upstreams()) > 0 {
		h = loop.New(h, fwd)
	}
	return h, closeAll, nil
}

// loopProbeTimeout bounds the startup loop check.
const loopProbeTimeout = 3 * time.Second

// checkLoop runs the loop probe of the chain, if it has one: a forwarding
// loop is an error (dnsd does not start), an upstream that did not answer
// the probe is logged.
func (d *Daemon) checkLoop() error {
	l, ok := d.inner.Load().(*loop.Loop)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(d.ctx, loopProbeTimeout)
	defer cancel()
	unanswered, err := l.Check(ctx)
	if err != nil {
		return err
	}
	if len(unanswered) > 0 {
		d.log.Warn("loop probe unanswered, forwarding loops not checked", "upstreams", unanswered)
	}
	return nil
}

// Config is the configuration in use.
func (d *Daemon) Config() Config { return *d.cfg.Load() }

// Lameduck is how long Shutdown should keep serving after a signal.
func (d *Daemon) Lameduck() time.Duration {
	if l := d.Config().Lameduck; l != nil {
		return l.Duration
	}
	return 0
}

// loadSource fills the store from the configured source: the objects file
// at once, or the API server in the background (the store is synced, and
// /ready succeeds, once the initial lists are in).
func (d *Daemon) loadSource(cfg Config) error {
	if cfg.Source.File == "" {
		rc, err := apisource.RESTConfig(cfg.Source.Kubeconfig)
		if err != nil {
			return err
		}
		d.api, err = apisource.Start(d.ctx, apisource.Options{Config: rc, Store: d.store, Pods: cfg.watchPods(), NodeName: cfg.nodeName(), Logger: d.log, Registerer: d.reg})
		if err != nil {
			return err
		}
		d.log.Info("watching the API server", "host", rc.Host, "pods", cfg.watchPods())
		return nil
	}
	res, err := filesource.LoadFile(cfg.Source.File)
	if err != nil {
		return err
	}
	if res.NotWhole != nil {
		d.log.Warn("objects file is not one List with kind after items (kubectl get -o yaml): loaded, but reloads of it will be refused", "err", res.NotWhole)
	}
	d.keepNode(cfg, res)
	d.store.Replace(res.Objects)
	n := d.store.Snapshot().Counts()
	d.log.Info("objects loaded", "file", cfg.Source.File, "services", n.Services, "endpointslices", n.EndpointSlices,
		"pods", n.Pods, "namespaces", n.Namespaces, "skipped", res.Skipped)
	return nil
}

// Start loads the objects and starts the DNS and HTTP listeners. With a
// forwarding loop it stops again and fails.
func (d *Daemon) Start() error {
	cfg := d.Config()
	if err := d.loadSource(cfg); err != nil {
		return err
	}
	if cfg.NodeLocal != nil {
		return d.startNodeLocalDaemon(cfg)
	}
	srv, err := serve.NewServer(serve.Options{Addr: cfg.Listen, Handler: d.metrics, UDPSockets: cfg.UDPSockets, OnError: d.onError})
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	d.dns = srv
	go func() {
		if err := srv.Wait(); err != nil && !d.stopping.Load() {
			d.failed <- err
		}
	}()
	if err := d.checkLoop(); err != nil {
		d.Shutdown(0)
		return err
	}
	if err := d.startHTTP(cfg); err != nil {
		d.Shutdown(0)
		return err
	}
	d.log.Info("serving DNS", "listen", srv.Addr(), "zones", cfg.Zones, "ttl", *cfg.TTL, "pods", cfg.Pods,
		"health", d.httpAddr["health"], "metrics", d.httpAddr["metrics"],
		"upstreams", cfg.Forward.Upstreams, "upstreamResolvConf", cfg.Forward.ResolvConf, "stubs", len(cfg.Forward.Stubs))
	return nil
}

func (d *Daemon) startHTTP(cfg Config) error {
	health := http.NewServeMux()
	health.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		// OK during the lame-duck period too: the process is alive.
		io.WriteString(w, "OK")
	})
	health.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
		switch {
		case d.stopping.Load():
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
		case !d.store.Synced():
			http.Error(w, "store not synced", http.StatusServiceUnavailable)
		case d.nl != nil && d.nl.notReady() != "":
			http.Error(w, d.nl.notReady(), http.StatusServiceUnavailable)
		default:
			io.WriteString(w, "OK")
		}
	})
	metricsHandler := promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{Registry: d.reg})
	if cfg.PprofListen != "" {
		p := http.NewServeMux()
		p.HandleFunc("/debug/pprof/", pprof.Index)
		p.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		p.HandleFunc("/debug/pprof/profile", pprof.Profile)
		p.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		p.HandleFunc("/debug/pprof/trace", pprof.Trace)
		if err := d.listenHTTP(cfg.PprofListen, p, "pprof"); err != nil {
			return err
		}
	}
	if cfg.MetricsListen == cfg.HealthListen {
		health.Handle("/metrics", metricsHandler)
		return d.listenHTTP(cfg.HealthListen, health, "health", "metrics")
	}
	if err := d.listenHTTP(cfg.HealthListen, health, "health"); err != nil {
		return err
	}
	m := http.NewServeMux()
	m.Handle("/metrics", metricsHandler)
	return d.listenHTTP(cfg.MetricsListen, m, "metrics")
}

func (d *Daemon) listenHTTP(addr string, h http.Handler, names ...string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s for %v: %w", addr, names, err)
	}
	s := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	d.http = append(d.http, s)
	for _, n := range names {
		d.httpAddr[n] = l.Addr().String()
	}
	go func() {
		if err := s.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.failed <- err
		}
	}()
	return nil
}

// Reload applies a new configuration: the handlers are rebuilt and swapped
// in, and the objects file is read again. Listen addresses and the source
// kind need a restart; changing them is an error that keeps everything as
// it was.
func (d *Daemon) Reload(cfg Config) error {
	old := d.Config()
	if cfg.Listen != old.Listen || cfg.HealthListen != old.HealthListen || cfg.MetricsListen != old.MetricsListen || cfg.PprofListen != old.PprofListen || cfg.UDPSockets != old.UDPSockets {
		return errors.New("listen addresses and udpSockets change only with a restart")
	}
	if !reflect.DeepEqual(cfg.NodeLocal, old.NodeLocal) {
		return errors.New("nodeLocal changes only with a restart")
	}
	if !slices.Equal(cfg.Zones, old.Zones) {
		return errors.New("zones change only with a restart (metrics label them)")
	}
	if (cfg.Source.File == "") != (old.Source.File == "") || cfg.Source.Kubeconfig != old.Source.Kubeconfig {
		return errors.New("switching between the objects file and the API server needs a restart")
	}
	if cfg.Source.File == "" && cfg.watchPods() != old.watchPods() {
		return errors.New("turning verified pod records or search completion on or off with the API server source needs a restart (it starts or stops the pod watch)")
	}
	inner, closeInner, err := buildInner(cfg, d.store, d.inner, d.handlerMetrics)
	if err != nil {
		return err
	}
	if cfg.Source.File != "" {
		res, err := d.reloadFile(cfg.Source.File)
		if err != nil {
			closeInner()
			return err
		}
		d.keepNode(cfg, res)
		d.store.Replace(res.Objects)
	}
	d.inner.Store(inner)
	d.cfg.Store(&cfg)
	// Queries already in the old handlers finish; their sockets are closed
	// after them.
	prevClose := d.closeInner
	d.closeInner = closeInner
	prevClose()
	return nil
}

// reloadFile reads the objects file for a reload. A file that does not
// parse, that is not whole by pkg/wholefile's rule (it may have been caught
// half-written), or that holds no object while the store holds some is
// refused and counted: the store keeps the last good objects, and /ready
// keeps saying what it said (dnsd still serves a whole cluster).
func (d *Daemon) reloadFile(path string) (*filesource.Result, error) {
	res, err := filesource.LoadFile(path)
	switch {
	case err != nil:
		d.reloadsRefused.WithLabelValues("parse").Inc()
		return nil, err
	case res.NotWhole != nil:
		d.reloadsRefused.WithLabelValues("incomplete").Inc()
		return nil, fmt.Errorf("objects file refused, keeping the last good objects: %w", res.NotWhole)
	case res.Total() == 0 && storeHolds(d.store.Snapshot().Counts()):
		d.reloadsRefused.WithLabelValues("empty").Inc()
		return nil, fmt.Errorf("objects file %s: no object (of %v skipped) would empty the store; refused, keeping the last good objects", path, res.Skipped)
	}
	return res, nil
}

func storeHolds(n store.Counts) bool {
	return n.Services+n.EndpointSlices+n.Pods+n.Namespaces > 0
}

// Shutdown fails /ready, keeps serving for lameduck, then stops every
// listener (waiting at most 5s for queries in flight).
func (d *Daemon) Shutdown(lameduck time.Duration) {
	d.stopping.Store(true)
	if d.nl != nil {
		d.nl.leave(d)
	}
	if lameduck > 0 {
		time.Sleep(lameduck)
	}
	d.cancel()
	if d.api != nil {
		d.api.Shutdown()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if d.dns != nil {
		if err := d.dns.Shutdown(ctx); err != nil {
			d.log.Error("dns shutdown", "err", err)
		}
	}
	if d.nl != nil {
		if err := d.nl.shutdown(ctx); err != nil {
			d.log.Error("node-local shutdown", "err", err)
		}
	}
	if d.closeInner != nil {
		d.closeInner()
		d.closeInner = nil
	}
	for _, s := range d.http {
		if err := s.Shutdown(ctx); err != nil {
			d.log.Error("http shutdown", "err", err)
		}
	}
}

// onError logs a handler's error at debug level only (the metrics handler
// counts it): a query-driven error must not turn into a log line per query.
func (d *Daemon) onError(err error) {
	d.log.Debug("handler error", "err", err)
}

// noSource stands in for the store when a configuration is only checked.
type noSource struct{}

func (noSource) Snapshot() *store.Snapshot { return nil }
func (noSource) Synced() bool              { return false }

// Failed receives an error when a listener stops on its own: the daemon
// no longer serves and should be shut down.
func (d *Daemon) Failed() <-chan error { return d.failed }

// DNSAddr is the bound DNS address (UDP and TCP), empty before Start.
func (d *Daemon) DNSAddr() string {
	if d.dns == nil {
		return ""
	}
	return d.dns.Addr()
}

// HTTPAddr is the bound address of the "health" or "metrics" endpoint.
func (d *Daemon) HTTPAddr(name string) string { return d.httpAddr[name] }
