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

	"github.com/poddns/poddns/pkg/promopts"
	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/aaaa"
	"github.com/poddns/poddns/pkg/serve/acl"
	"github.com/poddns/poddns/pkg/serve/apisource"
	"github.com/poddns/poddns/pkg/serve/cache"
	"github.com/poddns/poddns/pkg/serve/cluster"
	"github.com/poddns/poddns/pkg/serve/completion"
	"github.com/poddns/poddns/pkg/serve/errorlog"
	"github.com/poddns/poddns/pkg/serve/filesource"
	"github.com/poddns/poddns/pkg/serve/forward"
	"github.com/poddns/poddns/pkg/serve/loadbalance"
	"github.com/poddns/poddns/pkg/serve/loop"
	"github.com/poddns/poddns/pkg/serve/metrics"
	"github.com/poddns/poddns/pkg/serve/minimalany"
	"github.com/poddns/poddns/pkg/serve/querylog"
	"github.com/poddns/poddns/pkg/serve/rewrite"
	"github.com/poddns/poddns/pkg/serve/static"
	"github.com/poddns/poddns/pkg/serve/store"
)

// Daemon is one running dnsd: its DNS and HTTP listeners, the store its
// source fills, and the handler chain a reload swaps.
type Daemon struct {
	log   *slog.Logger
	reg   *prometheus.Registry
	store *store.Store

	cfg            atomic.Pointer[Config]
	errorLog       atomic.Pointer[errorlog.Log] // replaced by a reload
	inner          *serve.Atomic                // the chain, which a reload replaces
	built          built                        // what the chain in inner runs
	handlerMetrics                              // metrics of the chain's handlers: they outlive reloads
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

// New builds a daemon from a configuration (Load's, or any valid one);
// Start starts it.
func New(cfg Config, o Options) (*Daemon, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
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
	d.reloadsRefused = prometheus.NewCounterVec(promopts.Counter("source", "reloads_refused_total", "Reloads of the objects file refused (the last good objects keep being served), by reason: parse, incomplete or empty."), []string{"reason"})
	for _, r := range []string{"parse", "incomplete", "empty"} {
		d.reloadsRefused.WithLabelValues(r)
	}
	reg.MustRegister(d.reloadsRefused)
	var err error
	if d.dnsMetrics, err = metrics.NewMetrics(reg, d.store); err != nil {
		return nil, err
	}
	if d.forwardMetrics, err = forward.NewMetrics(reg); err != nil {
		return nil, err
	}
	if d.cacheMetrics, err = cache.NewMetrics(reg); err != nil {
		return nil, err
	}
	if d.completionMetrics, err = completion.NewMetrics(reg); err != nil {
		return nil, err
	}
	if d.queryLogMetrics, err = querylog.NewMetrics(reg); err != nil {
		return nil, err
	}
	if d.staticMetrics, err = static.NewMetrics(reg); err != nil {
		return nil, err
	}
	if d.aaaaMetrics, err = aaaa.NewMetrics(reg); err != nil {
		return nil, err
	}
	el, err := errorlog.New(cfg.Errors, log)
	if err != nil {
		return nil, err
	}
	d.errorLog.Store(el)
	b, err := d.build(cfg)
	if err != nil {
		el.Close()
		return nil, err
	}
	d.inner.Store(b.handler)
	d.built = b
	return d, nil
}

// handlerMetrics are the metrics of the handlers of the chain: made once,
// they outlive the handlers a reload replaces.
type handlerMetrics struct {
	dnsMetrics        *metrics.Metrics
	forwardMetrics    *forward.Metrics
	cacheMetrics      *cache.Metrics
	completionMetrics *completion.Metrics
	queryLogMetrics   *querylog.Metrics
	staticMetrics     *static.Metrics
	aaaaMetrics       *aaaa.Metrics
}

// link is one handler of the chain: build returns it in front of next, or
// nil when cfg leaves it out.
type link struct {
	name  string
	build func(cfg *Config, b *building, next serve.Handler) (serve.Handler, error)
}

// building is what the links of one build share.
type building struct {
	store    *store.Store
	upstream *serve.Atomic // the chain behind metrics (for ExternalName targets): set by the metrics link
	metrics  handlerMetrics
	forward  *forward.Forward // built by the forward link, probed by the loop link
	loop     *loop.Loop       // built by the loop link, run by Start (checkLoop)
	log      *slog.Logger
	closers  []func() // what a link runs besides its handler (stopped with it)
}

// chain is dnsd's handler chain, outermost first. The order is this list's
// and it matters, as CoreDNS's plugin.cfg's does:
//
//   - metrics counts and times every query with its final rcode. What the
//     handlers below ask of the chain themselves (ExternalName and static
//     CNAME targets) goes to the chain behind it: not a query received.
//   - loop (with default upstreams) recognizes dnsd's own startup probes
//     before anything else can answer them; other queries pass.
//   - querylog (queryLog.enabled) logs every other query with its final
//     reply, the client's pod and the source the handlers below record.
//   - minimalany answers every ANY query with HINFO "RFC8482" "" (RFC
//     8482), cluster and external names alike, before anything looks up.
//   - loadbalance (on by default) shuffles the addresses of every NOERROR
//     reply written below it, CNAMEs first.
//   - completion (on when a node profile is configured) answers the first
//     search expansion of a pod's query with where the pod's own walk
//     would stop, asking the handlers below it for each name.
//   - rewrite (rewrite rules) looks up a rewritten name in place of the
//     asked one in everything below it and gives the reply the asked name
//     back; below completion, so a pod's walk is completed on the names
//     the pod asks.
//   - cluster answers the cluster zones and the reverse zones of cluster
//     IPs from the store; it hands everything else on. Cluster answers are
//     never cached: a change in the API shows at once (the handler keeps
//     the replies of the store's current snapshot packed, and only those).
//     In node-local mode with verified pods, the pod names of other nodes'
//     pods are asked of the central server (a forwarder of their own,
//     remotePods).
//   - static (static blocks) answers inline and hosts-file records, CNAME
//     targets it lacks through the chain; local data, answered to every
//     client and never cached, so a hosts file's reload (its own, without
//     rebuilding the chain) leaves the cache alone.
//   - acl refuses recursion to clients outside the configured client
//     networks (dnsd is not an open resolver).
//   - aaaa (aaaa.filter) answers AAAA queries of the chosen clients
//     NODATA: only names that reach it, so never a cluster or static name.
//   - cache answers what it holds of the forwarder's replies.
//   - forward sends the rest to the configured upstreams (per zone first);
//     a name no upstream covers goes on.
//
// The end of the chain refuses. Without any upstream configured, acl,
// cache and forward are left out and everything outside the cluster zones
// is refused. Adding a handler is one entry here (and its package).
var chain = []link{
	{"metrics", func(cfg *Config, b *building, next serve.Handler) (serve.Handler, error) {
		b.upstream.Store(next)
		zones, err := cfg.FQDNs()
		if err != nil {
			return nil, err
		}
		return metrics.New(metrics.Config{}, metrics.Deps{Next: next, Metrics: b.metrics.dnsMetrics, Zones: append(zones, cluster.ReverseZones...)})
	}},
	{"loop", func(_ *Config, b *building, next serve.Handler) (serve.Handler, error) {
		if b.forward == nil || len(b.forward.Upstreams()) == 0 {
			return nil, nil
		}
		l, err := loop.New(loop.Config{}, loop.Deps{Next: next, Forwarder: b.forward})
		b.loop = l
		return l, err
	}},
	{"querylog", func(cfg *Config, b *building, next serve.Handler) (serve.Handler, error) {
		if !cfg.QueryLog.Enabled {
			return nil, nil
		}
		return querylog.New(cfg.QueryLog, querylog.Deps{Next: next, Store: b.store, Metrics: b.metrics.queryLogMetrics})
	}},
	{"minimalany", func(_ *Config, _ *building, next serve.Handler) (serve.Handler, error) {
		return minimalany.New(minimalany.Config{}, minimalany.Deps{Next: next})
	}},
	{"loadbalance", func(cfg *Config, _ *building, next serve.Handler) (serve.Handler, error) {
		if !cfg.LoadBalance {
			return nil, nil
		}
		return loadbalance.New(loadbalance.Config{}, loadbalance.Deps{Next: next})
	}},
	{"completion", func(cfg *Config, b *building, next serve.Handler) (serve.Handler, error) {
		if !cfg.completion() {
			return nil, nil
		}
		d := completion.Deps{Store: b.store, Next: next, Metrics: b.metrics.completionMetrics}
		if cfg.Completion.NodeProfile == "" { // node-local: the node's own kubelet
			p, err := cfg.NodeLocal.NodeProfile()
			if err != nil {
				return nil, err
			}
			d.Profile = p
		}
		return completion.New(cfg.Completion, d)
	}},
	{"rewrite", func(cfg *Config, _ *building, next serve.Handler) (serve.Handler, error) {
		if len(cfg.Rewrite) == 0 {
			return nil, nil
		}
		zones, err := cfg.FQDNs()
		if err != nil {
			return nil, err
		}
		return rewrite.New(cfg.Rewrite, rewrite.Deps{Next: next, Zones: zones})
	}},
	{"cluster", func(cfg *Config, b *building, next serve.Handler) (serve.Handler, error) {
		d := cluster.Deps{Store: b.store, Next: next, Upstream: b.upstream}
		if cfg.NodeLocal != nil {
			d.MemoSize = nodeLocalMemoSize
			if cfg.Pods == cluster.PodsVerified {
				f, err := remotePods(cfg, b)
				if err != nil {
					return nil, err
				}
				b.closers = append(b.closers, f.Close)
				d.RemotePods = f
			}
		}
		return cluster.New(cfg.ClusterConfig, d)
	}},
	{"static", func(cfg *Config, b *building, next serve.Handler) (serve.Handler, error) {
		if len(cfg.Static) == 0 {
			return nil, nil
		}
		return static.New(cfg.Static, static.Deps{Next: next, Upstream: b.upstream, Metrics: b.metrics.staticMetrics, Logger: b.log})
	}},
	{"acl", func(cfg *Config, _ *building, next serve.Handler) (serve.Handler, error) {
		if !cfg.Forward.Enabled() {
			return nil, nil
		}
		return acl.New(cfg.Forward.ACLConfig, acl.Deps{Next: next})
	}},
	{"aaaa", func(cfg *Config, b *building, next serve.Handler) (serve.Handler, error) {
		if !cfg.Forward.Enabled() || !cfg.AAAA.Enabled() {
			return nil, nil
		}
		return aaaa.New(cfg.AAAA, aaaa.Deps{Next: next, Store: b.store, Metrics: b.metrics.aaaaMetrics})
	}},
	{"cache", func(cfg *Config, b *building, next serve.Handler) (serve.Handler, error) {
		if !cfg.Forward.Enabled() || cfg.Cache.Disabled {
			return nil, nil
		}
		return cache.New(cfg.Cache, cache.Deps{Next: next, Metrics: b.metrics.cacheMetrics})
	}},
	{"forward", func(cfg *Config, b *building, next serve.Handler) (serve.Handler, error) {
		if !cfg.Forward.Enabled() {
			return nil, nil
		}
		f, err := forward.New(cfg.Forward.Config, forward.Deps{Next: next, Metrics: b.metrics.forwardMetrics, Logger: b.log})
		b.forward = f
		return f, err
	}},
}

// built is one build of the chain.
type built struct {
	handler serve.Handler // the chain
	loop    *loop.Loop    // its loop probe, nil without one
	close   func()        // stops what its handlers run
}

// build builds the chain for cfg, innermost first. Its close stops what the
// handlers run (health checks, pooled sockets, background refreshes) once
// they are swapped out: outermost first (the cache's refreshes use the
// forwarder).
func (d *Daemon) build(cfg Config) (built, error) {
	b := &building{store: d.store, upstream: serve.NewAtomic(serve.Refused), metrics: d.handlerMetrics, log: d.log}
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	var h serve.Handler = serve.Refused
	for i := len(chain) - 1; i >= 0; i-- {
		next, err := chain[i].build(&cfg, b, h)
		closers = append(closers, b.closers...)
		b.closers = nil
		if err != nil {
			closeAll()
			return built{}, fmt.Errorf("%s: %w", chain[i].name, err)
		}
		if next == nil {
			continue
		}
		if c, ok := next.(interface{ Close() }); ok {
			closers = append(closers, c.Close)
		}
		h = next
	}
	return built{handler: h, loop: b.loop, close: closeAll}, nil
}

// loopProbeTimeout bounds the startup loop check.
const loopProbeTimeout = 3 * time.Second

// checkLoop runs the loop probe of the chain, if it has one: a forwarding
// loop is an error (dnsd does not start), an upstream that did not answer
// the probe is logged.
func (d *Daemon) checkLoop() error {
	l := d.built.loop
	if l == nil {
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
	return d.Config().Lameduck.D()
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
		d.log.Warn("objects file is not one List with kind after items (kubectl get -o yaml): loaded, but reloads of it will be refused", "error", res.NotWhole)
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
	srv, err := serve.NewServer(serve.Options{Addr: cfg.Listen, Handler: d.inner, UDPSockets: cfg.UDPSockets, OnError: d.onError})
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
	if err := d.checkLoopAndStartHTTP(cfg); err != nil {
		return err
	}
	d.log.Info("serving DNS", "listen", srv.Addr(), "zones", cfg.Zones, "ttl", cfg.TTL, "pods", cfg.Pods,
		"health", d.httpAddr["health"], "metrics", d.httpAddr["metrics"],
		"upstreams", cfg.Forward.Upstreams, "upstreamResolvConf", cfg.Forward.ResolvConf, "stubs", len(cfg.Forward.Stubs))
	return nil
}

// checkLoopAndStartHTTP is the end of Start in both modes: the forwarding
// loop check, then the health, metrics and pprof endpoints. When either
// fails, what has started is shut down.
func (d *Daemon) checkLoopAndStartHTTP(cfg Config) error {
	err := d.checkLoop()
	if err == nil {
		err = d.startHTTP(cfg)
	}
	if err != nil {
		d.Shutdown(0)
	}
	return err
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
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
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
		return errors.New("turning verified pod records, search completion, the query log or the AAAA filter of IPv4-only pods on or off with the API server source needs a restart (it starts or stops the pod watch)")
	}
	el, err := errorlog.New(cfg.Errors, d.log)
	if err != nil {
		return err
	}
	b, err := d.build(cfg)
	if err != nil {
		el.Close()
		return err
	}
	if cfg.Source.File != "" {
		res, err := d.reloadFile(cfg.Source.File)
		if err != nil {
			b.close()
			el.Close()
			return err
		}
		d.keepNode(cfg, res)
		d.store.Replace(res.Objects)
	}
	d.inner.Store(b.handler)
	d.cfg.Store(&cfg)
	d.errorLog.Swap(el).Close() // reports the old one's repeats
	// Queries already in the old handlers finish; their sockets are closed
	// after them.
	prev := d.built
	d.built = b
	prev.close()
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

// ShutdownWait is how long Shutdown waits, after the lameduck, for the
// queries and requests in flight: a pod's termination grace period must
// cover the lameduck plus this (test/deploy checks deploy/'s).
const ShutdownWait = 5 * time.Second

// Shutdown fails /ready, keeps serving for lameduck, then stops every
// listener (waiting at most ShutdownWait for queries in flight).
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
	ctx, cancel := context.WithTimeout(context.Background(), ShutdownWait)
	defer cancel()
	if d.dns != nil {
		if err := d.dns.Shutdown(ctx); err != nil {
			d.log.Error("dns shutdown", "error", err)
		}
	}
	if d.nl != nil {
		if err := d.nl.shutdown(ctx); err != nil {
			d.log.Error("node-local shutdown", "error", err)
		}
	}
	if d.built.close != nil {
		d.built.close()
		d.built.close = nil
	}
	d.errorLog.Load().Close()
	for _, s := range d.http {
		if err := s.Shutdown(ctx); err != nil {
			d.log.Error("http shutdown", "error", err)
		}
	}
}

// onError logs a handler's error through the errors log: at debug level
// unless errors.enabled, and then with repeats consolidated (the metrics
// handler counts every one): a query-driven error must not turn into a log
// line per query.
func (d *Daemon) onError(err error) {
	d.errorLog.Load().Error(err)
}

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
