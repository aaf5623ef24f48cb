package nodesetup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Options are what a Setup is made from.
type Options struct {
	// Config is the setup's configuration; unset fields take their
	// defaults.
	Config Config
	// Logger receives the setup's logs (default: discarded).
	Logger *slog.Logger
	// Registerer receives the metrics (default: none).
	Registerer prometheus.Registerer
	// NetNS is an open file descriptor of the network namespace to set up;
	// 0 (default) is the process's own. Tests set up namespaces they made.
	NetNS int
}

// Setup is one instance's share of the node setup. Its life, in the order
// a node-local server needs it:
//
//  1. Start takes the shared lock and puts the addresses on the interface:
//     the server can bind them. Traffic to them is not captured yet — in
//     transparent mode kube-proxy still sends the cluster DNS IP to the
//     central server, because its DNAT happens before routing.
//  2. Capture installs the rules once the server listens: from then on
//     DNS to the addresses stays on the node, untracked. A periodic check
//     repairs the interface and the rules until Leave.
//  3. Leave stops the checks and finds out whether this is the last
//     instance on the node; if so (and teardown is not skipped) it removes
//     the rules at once, so that transparent-mode traffic falls back to
//     kube-proxy and the central server while the server drains.
//  4. Close removes the interface (last instance only) and the lock.
type Setup struct {
	cfg     Config
	addrs   []netip.Addr
	rules   ruleset
	log     *slog.Logger
	metrics *metrics
	nsFD    int

	mu       sync.Mutex // serializes the steps below and the checks
	nl       *netlink.Handle
	lock     *nodeLock
	kind     string // the interface's link kind, once known
	inPlace  bool   // the last check found (or made) everything in place
	captured bool   // Capture ran: the check covers the rules too
	last     bool   // Leave found this the last instance
	stop     context.CancelFunc
	done     chan struct{}
}

// New validates o and prepares a Setup; it touches nothing on the node.
func New(o Options) (*Setup, error) {
	cfg := o.Config.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	addrs, err := cfg.Addrs()
	if err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	return &Setup{cfg: cfg, addrs: addrs, rules: buildRuleset(cfg.Table, addrs), log: log, metrics: m, nsFD: o.NetNS}, nil
}

// Config is the configuration in use, defaults applied.
func (s *Setup) Config() Config { return s.cfg }

// Addrs are the listen addresses.
func (s *Setup) Addrs() []netip.Addr { return append([]netip.Addr(nil), s.addrs...) }

// LinkKind is the kind of the interface (dummy or bridge), empty before
// Start or when the interface is not set up by this package.
func (s *Setup) LinkKind() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kind
}

// Start takes this instance's shared lock (waiting, until ctx ends, while a
// last instance tears down) and makes the interface and its addresses.
func (s *Setup) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lock != nil {
		return errors.New("nodesetup: started twice")
	}
	l, err := acquireShared(ctx, s.cfg.LockFile)
	if err != nil {
		s.metrics.errors.WithLabelValues(StepLock).Inc()
		return err
	}
	s.lock = l
	if *s.cfg.SetupInterface {
		if s.nsFD != 0 {
			s.nl, err = netlink.NewHandleAt(netns.NsHandle(s.nsFD))
		} else {
			s.nl, err = netlink.NewHandle()
		}
		if err != nil {
			s.lock.release()
			s.lock = nil
			return fmt.Errorf("netlink: %w", err)
		}
		if err := s.ensureInterface(false); err != nil {
			s.nl.Close()
			s.lock.release()
			s.lock = nil
			return err
		}
	}
	s.inPlace = true
	return nil
}

// Capture installs the rules and starts the periodic check.
func (s *Setup) Capture() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lock == nil {
		return errors.New("nodesetup: Capture before Start")
	}
	if s.stop != nil {
		return errors.New("nodesetup: captured twice")
	}
	if *s.cfg.SetupRules {
		if err := s.ensureRules(false); err != nil {
			return err
		}
	}
	s.captured, s.inPlace = true, true
	ctx, cancel := context.WithCancel(context.Background())
	s.stop, s.done = cancel, make(chan struct{})
	go s.loop(ctx, s.done)
	return nil
}

// Ready reports whether the setup was in place at the last check.
func (s *Setup) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lock != nil && s.inPlace
}

func (s *Setup) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(s.cfg.SyncInterval.Duration)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Check()
		}
	}
}

// Check verifies the interface and (after Capture) the rules and repairs
// what is missing or changed; errors are logged and counted.
func (s *Setup) Check() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lock == nil || s.last {
		return
	}
	ok := true
	if *s.cfg.SetupInterface {
		ok = s.ensureInterface(true) == nil && ok
	}
	if s.captured && *s.cfg.SetupRules {
		ok = s.ensureRules(true) == nil && ok
	}
	s.inPlace = ok
}

// ensureInterface makes the interface hold exactly the addresses. repair
// says a check runs it: a change is then a repair.
func (s *Setup) ensureInterface(repair bool) error {
	res, err := ensureInterface(s.nl, s.cfg.Interface, s.addrs)
	if res.kind != "" {
		s.kind = res.kind
	}
	if err != nil {
		s.metrics.errors.WithLabelValues(StepInterface).Inc()
		s.log.Error("node-local interface setup failed", "interface", s.cfg.Interface, "error", err)
		return err
	}
	switch {
	case res.created && res.kind == KindBridge:
		s.log.Info("node-local interface made", "interface", s.cfg.Interface, "kind", res.kind,
			"why", "the kernel has no dummy link type (CONFIG_DUMMY off); a bridge with no ports holds the addresses", "ips", s.addrs)
	case res.created:
		s.log.Info("node-local interface made", "interface", s.cfg.Interface, "kind", res.kind, "ips", s.addrs)
	case !repair && (res.added > 0 || res.removed > 0 || res.quieted):
		s.log.Info("node-local interface adopted", "interface", s.cfg.Interface, "kind", res.kind, "added", res.added, "removed", res.removed)
	case !repair:
		s.log.Info("node-local interface adopted as it was", "interface", s.cfg.Interface, "kind", res.kind)
	}
	if repair && (res.created || res.added > 0 || res.removed > 0 || res.quieted) {
		s.metrics.repairs.WithLabelValues(StepInterface).Inc()
		s.log.Warn("node-local interface repaired", "interface", s.cfg.Interface, "created", res.created, "added", res.added, "removed", res.removed)
	}
	return nil
}

// nft is a connection to nftables in the setup's namespace.
func (s *Setup) nft() (*nftables.Conn, error) {
	if s.nsFD != 0 {
		return nftables.New(nftables.WithNetNSFd(s.nsFD))
	}
	return nftables.New()
}

// ensureRules makes the table hold exactly the rules, replacing its
// contents when they differ in any way (never adding beside them).
func (s *Setup) ensureRules(repair bool) error {
	fail := func(err error) error {
		s.metrics.errors.WithLabelValues(StepRules).Inc()
		s.log.Error("node-local rules setup failed", "table", s.cfg.Table, "error", err)
		return err
	}
	cc, err := s.nft()
	if err != nil {
		return fail(err)
	}
	ok, why, err := rulesInPlace(cc, s.rules)
	if err != nil {
		return fail(err)
	}
	if ok {
		if !repair {
			s.log.Info("node-local rules adopted as they were", "table", "inet "+s.cfg.Table)
		}
		return nil
	}
	if err := replaceRules(cc, s.rules); err != nil {
		return fail(err)
	}
	if repair {
		s.metrics.repairs.WithLabelValues(StepRules).Inc()
		s.log.Warn("node-local rules repaired", "table", "inet "+s.cfg.Table, "found", why)
	} else {
		s.log.Info("node-local rules installed", "table", "inet "+s.cfg.Table, "found", why, "ips", s.addrs)
	}
	return nil
}

// Leave stops the periodic check and reports whether this instance is the
// last on the node. The last one (unless teardown is skipped) removes the
// rules at once, before its lame-duck period: from then on pods' queries
// to the cluster DNS IP go through kube-proxy to the central server.
// Other instances leave everything to those that remain.
func (s *Setup) Leave() (last bool, err error) {
	s.mu.Lock()
	stop, done := s.stop, s.done
	s.stop = nil
	s.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lock == nil || s.last {
		return s.last, nil
	}
	last, err = s.lock.tryLast()
	if err != nil {
		s.metrics.errors.WithLabelValues(StepLock).Inc()
		return false, err
	}
	s.last = last
	if !last {
		s.log.Info("node-local setup left to the other instances on the node")
		return false, nil
	}
	if s.cfg.SkipTeardown {
		s.log.Info("last node-local instance; teardown skipped", "interface", s.cfg.Interface, "table", "inet "+s.cfg.Table)
		return true, nil
	}
	if *s.cfg.SetupRules {
		cc, err := s.nft()
		if err == nil {
			err = deleteRules(cc, s.cfg.Table)
		}
		if err != nil {
			s.metrics.errors.WithLabelValues(StepTeardown).Inc()
			return true, err
		}
		s.log.Info("last node-local instance: rules removed", "table", "inet "+s.cfg.Table)
	}
	return true, nil
}

// Close ends this instance's share: the last instance (see Leave; Close
// calls it if it was not) removes the interface unless teardown is
// skipped; every instance releases its lock.
func (s *Setup) Close() error {
	last, err := s.Leave()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lock == nil {
		return err
	}
	if last && !s.cfg.SkipTeardown && *s.cfg.SetupInterface && s.nl != nil {
		if derr := deleteInterface(s.nl, s.cfg.Interface); derr != nil {
			s.metrics.errors.WithLabelValues(StepTeardown).Inc()
			err = errors.Join(err, derr)
		} else {
			s.log.Info("last node-local instance: interface removed", "interface", s.cfg.Interface)
		}
	}
	if s.nl != nil {
		s.nl.Close()
		s.nl = nil
	}
	s.lock.release()
	s.lock = nil
	s.inPlace = false
	return err
}
