package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/poddns/poddns/pkg/nodesetup"
	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/filesource"
	"github.com/poddns/poddns/pkg/serve/forward"
)

// nodeLocal is the node-local part of a running daemon: the node setup and
// one DNS server per listen IP. Its order of events is what lets two
// instances share a node without a gap (issue 11):
//
//  1. wait until the store has synced: an instance that binds earlier gets
//     its share of the queries (SO_REUSEPORT) and can only SERVFAIL them;
//  2. take the node lock and put the IPs on the interface (nodesetup
//     Start), then bind port 53 on each;
//  3. only then install the NOTRACK rules (Capture): in transparent mode
//     the cluster DNS IP keeps reaching the central server until this
//     instance answers;
//  4. ready. On shutdown, Leave (the last instance removes the rules at
//     once, so transparent-mode pods fall back to the central server),
//     the lame-duck period, the servers stop, Close (the last instance
//     removes the interface).
type nodeLocal struct {
	setup   *nodesetup.Setup
	listens []string
	servers []*serve.Server
	serving atomic.Bool
}

// syncPoll is how often the node-local start checks the store.
const syncPoll = 50 * time.Millisecond

// nodeLocalMemoSize is the cluster handler's memo (packed replies of the
// current snapshot, about 800 bytes each) in node-local mode: a quarter of
// the central server's. A node's pods ask a few hundred names, and the
// DaemonSet's memory goal (issue 11: 48 MiB after load, 64Mi limit) has
// no room for the 3.2 MB of live heap, 4.8 MB with GOGC 50's headroom,
// that the default's 4096 take once full.
const nodeLocalMemoSize = 1024

// startNodeLocal runs steps 1 to 3 in the background; a failure is sent to
// d.failed (the daemon stops).
func (d *Daemon) startNodeLocal(cfg Config) error {
	nl := cfg.NodeLocal
	listens, err := nl.Listens()
	if err != nil {
		return err
	}
	setup, err := nodesetup.New(nodesetup.Options{Config: nl.Config, Logger: d.log, Registerer: d.reg})
	if err != nil {
		return err
	}
	d.nl = &nodeLocal{setup: setup, listens: listens}
	go func() {
		if err := d.nl.start(d, cfg); err != nil && !d.stopping.Load() {
			d.failed <- err
		}
	}()
	return nil
}

func (n *nodeLocal) start(d *Daemon, cfg Config) error {
	t := time.NewTicker(syncPoll)
	defer t.Stop()
	waited := time.Now()
	for !d.store.Synced() {
		select {
		case <-d.ctx.Done():
			return nil
		case <-t.C:
		}
	}
	d.log.Info("store synced, setting up the node", "waited", time.Since(waited).Round(time.Millisecond).String(),
		"node", cfg.NodeLocal.NodeName, "interface", cfg.NodeLocal.Interface, "ips", cfg.NodeLocal.IPs)
	ctx, cancel := context.WithTimeout(d.ctx, time.Minute)
	defer cancel()
	if err := n.setup.Start(ctx); err != nil {
		return fmt.Errorf("node-local setup: %w", err)
	}
	for _, addr := range n.listens {
		srv, err := serve.NewServer(serve.Options{Addr: addr, Handler: d.inner, UDPSockets: cfg.UDPSockets, OnError: d.onError})
		if err == nil {
			err = srv.Start()
		}
		if err != nil {
			return fmt.Errorf("node-local listen %s: %w", addr, err)
		}
		n.servers = append(n.servers, srv)
		go func() {
			if err := srv.Wait(); err != nil && !d.stopping.Load() {
				d.failed <- err
			}
		}()
	}
	if err := n.setup.Capture(); err != nil {
		return fmt.Errorf("node-local rules: %w", err)
	}
	n.serving.Store(true)
	d.log.Info("serving DNS on the node", "listen", n.listens, "linkKind", n.setup.LinkKind())
	return nil
}

// notReady says why the node-local part is not ready, "" when it is.
func (n *nodeLocal) notReady() string {
	switch {
	case !n.serving.Load():
		return "node-local listeners not bound yet"
	case !n.setup.Ready():
		return "node-local setup not in place"
	}
	return ""
}

// leave is the start of a shutdown: the last instance on the node removes
// the rules (nodesetup Leave).
func (n *nodeLocal) leave(d *Daemon) {
	last, err := n.setup.Leave()
	if err != nil {
		d.log.Error("node-local teardown", "error", err)
	}
	d.log.Info("leaving the node", "last", last)
}

// shutdown stops the servers and ends the setup (the last instance removes
// the interface).
func (n *nodeLocal) shutdown(ctx context.Context) error {
	var errs []error
	for _, s := range n.servers {
		errs = append(errs, s.Shutdown(ctx))
	}
	errs = append(errs, n.setup.Close())
	return errors.Join(errs...)
}

// startNodeLocalDaemon is Start in node-local mode: the HTTP endpoints and
// the loop check now, the DNS listeners once the store has synced.
func (d *Daemon) startNodeLocalDaemon(cfg Config) error {
	if err := d.startNodeLocal(cfg); err != nil {
		return err
	}
	if err := d.checkLoopAndStartHTTP(cfg); err != nil {
		return err
	}
	d.log.Info("node-local mode: DNS is served once the store has synced", "node", cfg.NodeLocal.NodeName,
		"listen", d.nl.listens, "zones", cfg.Zones, "pods", cfg.Pods, "completion", cfg.completion(),
		"health", d.httpAddr["health"], "metrics", d.httpAddr["metrics"],
		"upstreams", cfg.Forward.Upstreams, "upstreamResolvConf", cfg.Forward.ResolvConf)
	return nil
}

// remotePods is the forwarder that asks the central server (nodeLocal
// PodsServer) for the pod names of other nodes' pods, in verified mode:
// that one upstream, over TCP as NodeLocal DNSCache asks for cluster.local
// (no conntrack entry lingers per query), with the forward block's limits
// and timeouts (and nothing of its upstreams: stubs, TLS, resolv.conf).
func remotePods(cfg *Config, b *building) (*forward.Forward, error) {
	addr, err := cfg.NodeLocal.PodsServer()
	if err != nil {
		return nil, err
	}
	fc, f := forward.Defaults(), cfg.Forward.Config
	fc.Upstreams, fc.ForceTCP = []string{addr}, true
	fc.MaxConcurrent, fc.TryTimeout, fc.Deadline, fc.MaxFails, fc.HealthCheck, fc.Expire, fc.PoolSize =
		f.MaxConcurrent, f.TryTimeout, f.Deadline, f.MaxFails, f.HealthCheck, f.Expire, f.PoolSize
	return forward.New(fc, forward.Deps{Next: serve.Refused, Metrics: b.metrics.forwardMetrics})
}

// keepNode drops, in node-local mode, the pods of other nodes that an
// objects file holds, as the API source's field selector does.
func (d *Daemon) keepNode(cfg Config, res *filesource.Result) {
	if cfg.NodeLocal == nil {
		return
	}
	if n := res.KeepNode(cfg.NodeLocal.NodeName); n > 0 {
		d.log.Info("pods of other nodes left out", "node", cfg.NodeLocal.NodeName, "pods", n)
	}
}

// nodeName is the node whose pods are watched, "" (all) outside node-local
// mode.
func (c Config) nodeName() string {
	if c.NodeLocal == nil {
		return ""
	}
	return c.NodeLocal.NodeName
}
