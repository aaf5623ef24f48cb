package nodesetup

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vishvananda/netlink"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/poddns/poddns/internal/syncbuf"
	"github.com/poddns/poddns/internal/testenv"
)

// The listen IPs of the tests: the link-local IP, a cluster DNS IP
// (transparent mode) and an IPv6 one. Data inside the test's namespaces.
const (
	linkLocal = "169.254.20.10"
	clusterIP = "10.96.0.10"
	ipv6      = "fd00:10:96::a"
)

// instance is one Setup in ns with its own log and metrics, sharing lock
// (the node's lock file) with the other instances of a test.
type instance struct {
	*Setup
	log *syncbuf.Buffer
	reg *prometheus.Registry
}

func newInstance(t *testing.T, ns testNS, lock string, mod func(*Config)) *instance {
	t.Helper()
	cfg := Config{IPs: []string{linkLocal, clusterIP, ipv6}, LockFile: lock, SyncInterval: &metav1.Duration{Duration: time.Hour}}
	if mod != nil {
		mod(&cfg)
	}
	in := &instance{log: &syncbuf.Buffer{}, reg: prometheus.NewRegistry()}
	s, err := New(Options{Config: cfg, NetNS: ns.fd, Registerer: in.reg,
		Logger: slog.New(slog.NewTextHandler(in.log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	in.Setup = s
	t.Cleanup(func() { _ = s.Close() })
	return in
}

func (in *instance) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := in.Start(ctx); err != nil {
		t.Fatalf("Start: %v\n%s", err, in.log)
	}
	if err := in.Capture(); err != nil {
		t.Fatalf("Capture: %v\n%s", err, in.log)
	}
	if !in.Ready() {
		t.Fatalf("not ready after Start and Capture\n%s", in.log)
	}
}

func (in *instance) count(vec, step string) float64 {
	m := in.metrics.errors
	if vec == "repairs" {
		m = in.metrics.repairs
	}
	return testutil.ToFloat64(m.WithLabelValues(step))
}

// kernelHasDummy reports whether the kernel can make a dummy link (in a
// scratch namespace).
func kernelHasDummy(t *testing.T) bool {
	t.Helper()
	h := newTestNS(t).handle(t)
	attrs := netlink.NewLinkAttrs()
	attrs.Name = "probe0"
	return h.LinkAdd(&netlink.Dummy{LinkAttrs: attrs}) == nil
}

// state is what the namespace holds of the setup: the interface (kind,
// addresses) and the rules (nft's listing, counters zeroed).
func state(t *testing.T, ns testNS) (kind string, addrs []string, rules string) {
	t.Helper()
	h := ns.handle(t)
	if link, err := h.LinkByName(DefaultInterface); err == nil {
		kind = link.Type()
		list, err := h.AddrList(link, netlink.FAMILY_ALL)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range list {
			if !a.IP.IsLinkLocalUnicast() || a.IP.To4() != nil {
				addrs = append(addrs, a.IPNet.String())
			}
		}
	}
	out, err := ns.try("nft", "list", "table", "inet", DefaultTable)
	if err == nil {
		rules = regexp.MustCompile(`counter packets \d+ bytes \d+`).ReplaceAllString(out, "counter")
	}
	return kind, addrs, rules
}

// conntrackHas reports whether conntrack in ns holds a flow of addr.
func conntrackHas(t *testing.T, ns testNS, addr string) bool {
	t.Helper()
	out := ns.run(t, "conntrack", "-L")
	return strings.Contains(out, "="+addr+" ")
}

// kubeProxyModes install a kube-proxy-style DNAT of clusterIP:53 to the
// "central" server on 127.0.0.53:53, as kube-proxy's nftables and iptables
// modes would (nat output and prerouting).
var kubeProxyModes = []struct {
	name string
	cmds [][]string // program and arguments
}{
	{"nftables", [][]string{
		{"nft", "add", "table", "ip", "kube-proxy"},
		{"nft", "add", "chain", "ip", "kube-proxy", "output", "{ type nat hook output priority -100; }"},
		{"nft", "add", "chain", "ip", "kube-proxy", "prerouting", "{ type nat hook prerouting priority -100; }"},
		{"nft", "add", "rule", "ip", "kube-proxy", "output", "ip", "daddr", clusterIP, "udp", "dport", "53", "dnat", "to", "127.0.0.53"},
		{"nft", "add", "rule", "ip", "kube-proxy", "prerouting", "ip", "daddr", clusterIP, "udp", "dport", "53", "dnat", "to", "127.0.0.53"},
		// IPv6 is tracked once something needs it, e.g. a dual-stack
		// Service's DNAT.
		{"nft", "add", "table", "ip6", "kube-proxy"},
		{"nft", "add", "chain", "ip6", "kube-proxy", "output", "{ type nat hook output priority -100; }"},
		{"nft", "add", "rule", "ip6", "kube-proxy", "output", "ip6", "daddr", "fd00:10:96::99", "udp", "dport", "53", "dnat", "to", "::1"},
	}},
	{"iptables-nft", iptablesDNAT("iptables-nft", "ip6tables-nft")},
	{"iptables-legacy", iptablesDNAT("iptables-legacy", "ip6tables-legacy")},
}

func iptablesDNAT(v4, v6 string) [][]string {
	return [][]string{
		{v4, "-t", "nat", "-A", "OUTPUT", "-d", clusterIP, "-p", "udp", "--dport", "53", "-j", "DNAT", "--to-destination", "127.0.0.53"},
		{v4, "-t", "nat", "-A", "PREROUTING", "-d", clusterIP, "-p", "udp", "--dport", "53", "-j", "DNAT", "--to-destination", "127.0.0.53"},
		{v6, "-t", "nat", "-A", "OUTPUT", "-d", "fd00:10:96::99", "-p", "udp", "--dport", "53", "-j", "DNAT", "--to-destination", "::1"},
	}
}

// TestSetupBesideKubeProxy, for each of kube-proxy's modes (nftables,
// iptables through nft, iptables-legacy): Start makes the interface (a
// dummy where the kernel has one, else a bridge, and says so) with exactly
// the listen IPs, which a server can bind, but captures nothing yet: the
// cluster DNS IP still reaches the central server through the DNAT, tracked.
// After Capture the node-local server answers on every IP and conntrack
// holds no flow of them, while other ports stay tracked (the check can
// fail). After the last Leave the cluster DNS IP falls back to the central
// server at once; the last Close removes the interface.
func TestSetupBesideKubeProxy(t *testing.T) {
	testenv.RequireCommand(t, "nsenter", "nft", "conntrack", "ip")
	dummy := kernelHasDummy(t)
	for _, mode := range kubeProxyModes {
		t.Run(mode.name, func(t *testing.T) {
			if mode.name == "iptables-legacy" {
				testenv.RequireCommand(t, "iptables-legacy")
				// A kernel without ip_tables is a property of the machine,
				// not a missing package: said and skipped, even in CI.
				if out, err := newTestNS(t).try("iptables-legacy", "-t", "nat", "-L"); err != nil {
					t.Skipf("the kernel has no ip_tables (iptables-legacy -t nat -L: %v %s); kube-proxy's legacy iptables mode not covered", err, out)
				}
			}
			ns := newTestNS(t)
			for _, c := range mode.cmds {
				testenv.RequireCommand(t, c[0])
				ns.run(t, c[0], c[1:]...)
			}
			ns.echoServer(t, "127.0.0.53:53", "central")
			testBesideKubeProxy(t, ns, dummy)
		})
	}
}

func testBesideKubeProxy(t *testing.T, ns testNS, dummy bool) {
	in := newInstance(t, ns, filepath.Join(t.TempDir(), "poddns0.lock"), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := in.Start(ctx); err != nil {
		t.Fatalf("Start: %v\n%s", err, in.log)
	}
	kind, addrs, rules := state(t, ns)
	wantKind := KindBridge
	if dummy {
		wantKind = KindDummy
	}
	t.Logf("kernel has dummy links: %v; interface kind %s; log:\n%s", dummy, kind, in.log)
	if kind != wantKind || in.LinkKind() != wantKind {
		t.Fatalf("interface kind %q (LinkKind %q), want %q", kind, in.LinkKind(), wantKind)
	}
	// A bridge is as quiet as a dummy: no ARP, no multicast (IGMP or MLD
	// reports from the listen IPs would be tracked flows).
	if show := ns.run(t, "ip", "link", "show", DefaultInterface); !strings.Contains(show, "NOARP") || strings.Contains(show, "MULTICAST") {
		t.Errorf("interface flags: %s", show)
	}
	if !strings.Contains(in.log.String(), "kind="+wantKind) || (!dummy && !strings.Contains(in.log.String(), "no dummy link type")) {
		t.Errorf("the log does not state the choice of %s:\n%s", wantKind, in.log)
	}
	if want := []string{linkLocal + "/32", clusterIP + "/32", ipv6 + "/128"}; strings.Join(sorted(addrs), ",") != strings.Join(sorted(want), ",") {
		t.Errorf("addresses %v, want %v", addrs, want)
	}
	if rules != "" {
		t.Errorf("rules before Capture:\n%s", rules)
	}

	// Every address is bindable (IPv6 without DAD); before Capture the
	// cluster DNS IP still goes to the central server, tracked.
	for _, ip := range []string{linkLocal, clusterIP, ipv6} {
		ns.echoServer(t, net.JoinHostPort(ip, "53"), "local "+ip)
		ns.echoServer(t, net.JoinHostPort(ip, "54"), "other "+ip)
	}
	ns.run(t, "conntrack", "-F")
	if got := ns.ask(t, net.JoinHostPort(clusterIP, "53")); got != "central" {
		t.Errorf("before Capture, %s:53 answered %q, want the central server through the DNAT", clusterIP, got)
	}
	if !conntrackHas(t, ns, clusterIP) {
		t.Errorf("before Capture, no conntrack entry for %s:53: the check below could not fail", clusterIP)
	}
	for _, ip := range []string{linkLocal, ipv6} {
		if got := ns.ask(t, net.JoinHostPort(ip, "53")); got != "local "+ip {
			t.Errorf("before Capture, %s:53 answered %q", ip, got)
		}
	}

	if err := in.Capture(); err != nil {
		t.Fatalf("Capture: %v\n%s", err, in.log)
	}
	_, _, rules = state(t, ns)
	t.Logf("rules:\n%s", rules)
	for _, want := range []string{"hook prerouting priority raw", "hook output priority raw", "notrack",
		"ip daddr 169.254.20.10 udp dport 53", "ip saddr 10.96.0.10 tcp sport 53", "ip6 daddr fd00:10:96::a udp dport 53", "accept"} {
		if !strings.Contains(rules, want) {
			t.Errorf("the rules lack %q", want)
		}
	}
	ns.run(t, "conntrack", "-F")
	for _, ip := range []string{linkLocal, clusterIP, ipv6} {
		if got := ns.ask(t, net.JoinHostPort(ip, "53")); got != "local "+ip {
			t.Errorf("after Capture, %s:53 answered %q, want the node-local server", ip, got)
		}
	}
	for _, ip := range []string{linkLocal, clusterIP, ipv6} {
		if conntrackHas(t, ns, ip) {
			t.Errorf("after Capture, conntrack holds a flow of %s:\n%s", ip, ns.run(t, "conntrack", "-L"))
		}
	}
	for _, ip := range []string{linkLocal, clusterIP, ipv6} {
		if got := ns.ask(t, net.JoinHostPort(ip, "54")); got != "other "+ip {
			t.Errorf("%s:54 answered %q", ip, got)
		}
		if !conntrackHas(t, ns, ip) {
			t.Errorf("port 54 of %s not tracked: the rules cover more than DNS:\n%s", ip, ns.run(t, "conntrack", "-L"))
		}
	}

	last, err := in.Leave()
	if err != nil || !last {
		t.Fatalf("Leave of the only instance: last %v, %v", last, err)
	}
	if _, _, rules := state(t, ns); rules != "" {
		t.Errorf("rules after the last Leave:\n%s", rules)
	}
	if got := ns.ask(t, net.JoinHostPort(clusterIP, "53")); got != "central" {
		t.Errorf("after the last Leave, %s:53 answered %q, want the central server", clusterIP, got)
	}
	if err := in.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if kind, _, _ := state(t, ns); kind != "" {
		t.Errorf("interface (%s) left after the last Close", kind)
	}
	if n := in.count("errors", StepTeardown) + in.count("errors", StepRules) + in.count("errors", StepInterface); n != 0 {
		t.Errorf("%v setup errors counted", n)
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestSetupAdoptsAfterKill: an instance killed without teardown (its lock
// dropped by the kernel, nothing removed) leaves interface and rules; the
// next instance adopts them as they are, nothing duplicated.
func TestSetupAdoptsAfterKill(t *testing.T) {
	testenv.RequireCommand(t, "nsenter", "nft")
	ns := newTestNS(t)
	lock := filepath.Join(t.TempDir(), "poddns0.lock")
	a := newInstance(t, ns, lock, nil)
	a.start(t)
	kind, addrs, rules := state(t, ns)
	a.lock.f.Close() // what the kernel does for a killed process
	a.lock = nil

	b := newInstance(t, ns, lock, nil)
	b.start(t)
	kind2, addrs2, rules2 := state(t, ns)
	if kind2 != kind || strings.Join(sorted(addrs2), ",") != strings.Join(sorted(addrs), ",") || rules2 != rules {
		t.Fatalf("after adoption: %s %v\n%s\nwant %s %v\n%s", kind2, addrs2, rules2, kind, addrs, rules)
	}
	for _, want := range []string{"interface adopted as it was", "rules adopted as they were"} {
		if !strings.Contains(b.log.String(), want) {
			t.Errorf("the second instance's log lacks %q:\n%s", want, b.log)
		}
	}
	if n := strings.Count(rules2, "notrack"); n != 2*4*3 {
		t.Errorf("%d notrack rules, want %d", n, 2*4*3)
	}

	// A restart with other IPs (config change) replaces, never adds.
	b.lock.f.Close()
	b.lock = nil
	c := newInstance(t, ns, lock, func(c *Config) { c.IPs = []string{linkLocal} })
	c.start(t)
	_, addrs3, rules3 := state(t, ns)
	if strings.Join(addrs3, ",") != linkLocal+"/32" || strings.Count(rules3, "notrack") != 2*4 || strings.Contains(rules3, clusterIP) {
		t.Fatalf("after a restart with one IP: %v\n%s", addrs3, rules3)
	}
}

// TestSetupRepairs: the periodic check puts back a removed address, a
// removed interface, a deleted rule, a rule added beside ours and a
// deleted table, counting each repair, and never duplicates anything.
func TestSetupRepairs(t *testing.T) {
	testenv.RequireCommand(t, "nsenter", "nft")
	ns := newTestNS(t)
	in := newInstance(t, ns, filepath.Join(t.TempDir(), "poddns0.lock"), func(c *Config) {
		c.SyncInterval = &metav1.Duration{Duration: time.Second}
	})
	in.start(t)
	kind, addrs, rules := state(t, ns)
	h := ns.handle(t)

	for _, tc := range []struct {
		name   string
		breakf func()
		step   string
	}{
		{"address removed", func() { ns.run(t, "ip", "addr", "del", clusterIP+"/32", "dev", DefaultInterface) }, StepInterface},
		{"interface removed", func() {
			link, err := h.LinkByName(DefaultInterface)
			if err == nil {
				err = h.LinkDel(link)
			}
			if err != nil {
				t.Fatal(err)
			}
		}, StepInterface},
		{"foreign address added", func() { ns.run(t, "ip", "addr", "add", "192.0.2.99/32", "dev", DefaultInterface) }, StepInterface},
		{"multicast turned on", func() {
			if kind == KindBridge {
				ns.run(t, "ip", "link", "set", DefaultInterface, "multicast", "on", "type", "bridge", "mcast_snooping", "1")
			} else {
				ns.run(t, "ip", "addr", "del", linkLocal+"/32", "dev", DefaultInterface)
			}
		}, StepInterface},
		{"rule deleted", func() { ns.run(t, "nft", "flush", "chain", "inet", DefaultTable, chainPrerouting) }, StepRules},
		{"rule added", func() {
			ns.run(t, "nft", "add", "rule", "inet", DefaultTable, chainOutput, "udp", "dport", "5353", "notrack")
		}, StepRules},
		{"table deleted", func() { ns.run(t, "nft", "delete", "table", "inet", DefaultTable) }, StepRules},
	} {
		before := in.count("repairs", tc.step)
		tc.breakf()
		// The periodic check (every second) repairs it.
		deadline := time.Now().Add(10 * time.Second)
		for in.count("repairs", tc.step) == before && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if got := in.count("repairs", tc.step); got != before+1 {
			t.Errorf("%s: %s repairs %v, want %v\n%s", tc.name, tc.step, got, before+1, in.log)
		}
		kind2, addrs2, rules2 := state(t, ns)
		if kind2 != kind || strings.Join(sorted(addrs2), ",") != strings.Join(sorted(addrs), ",") || rules2 != rules {
			t.Errorf("%s: after repair %s %v\n%s\nwant %s %v\n%s", tc.name, kind2, addrs2, rules2, kind, addrs, rules)
		}
		if !in.Ready() {
			t.Errorf("%s: not ready after the repair", tc.name)
		}
	}
	// The repairs show on /metrics as this name.
	n, err := testutil.GatherAndCount(in.reg, "poddns_nodelocal_setup_repairs_total", "poddns_nodelocal_setup_errors_total")
	if err != nil || n != 6 {
		t.Errorf("metric series: %d, %v; want 6 (4 error steps, 2 repair steps)", n, err)
	}
}

// TestSetupLastInstanceTearsDown: of two instances sharing the node, the
// first to stop leaves everything to the other; the last removes it. An
// instance starting while the last one tears down waits for it, then sets
// up again.
func TestSetupLastInstanceTearsDown(t *testing.T) {
	testenv.RequireCommand(t, "nsenter", "nft")
	ns := newTestNS(t)
	lock := filepath.Join(t.TempDir(), "poddns0.lock")
	a, b := newInstance(t, ns, lock, nil), newInstance(t, ns, lock, nil)
	a.start(t)
	b.start(t)
	kind, addrs, rules := state(t, ns)
	if last, err := a.Leave(); err != nil || last {
		t.Fatalf("first Leave: last %v, %v", last, err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if kind2, addrs2, rules2 := state(t, ns); kind2 != kind || len(addrs2) != len(addrs) || rules2 != rules {
		t.Fatalf("the first instance to stop removed something: %s %v\n%s", kind2, addrs2, rules2)
	}

	if last, err := b.Leave(); err != nil || !last {
		t.Fatalf("second Leave: last %v, %v", last, err)
	}
	// b is tearing down (it holds the lock exclusively): c waits.
	c := newInstance(t, ns, lock, nil)
	started := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		started <- c.Start(ctx)
	}()
	select {
	case err := <-started:
		t.Fatalf("a new instance started while the last one tore down: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if _, _, rules := state(t, ns); rules != "" {
		t.Errorf("rules after the last Leave:\n%s", rules)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-started; err != nil {
		t.Fatalf("the waiting instance: %v", err)
	}
	if err := c.Capture(); err != nil {
		t.Fatal(err)
	}
	if kind2, addrs2, rules2 := state(t, ns); kind2 != kind || len(addrs2) != len(addrs) || rules2 != rules {
		t.Fatalf("the instance after the teardown: %s %v\n%s", kind2, addrs2, rules2)
	}
}

// TestSetupSwitches: skipTeardown leaves everything after the last
// instance; setupInterface and setupRules off touch neither.
func TestSetupSwitches(t *testing.T) {
	testenv.RequireCommand(t, "nsenter", "nft")
	ns := newTestNS(t)
	lock := filepath.Join(t.TempDir(), "poddns0.lock")
	a := newInstance(t, ns, lock, func(c *Config) { c.SkipTeardown = true })
	a.start(t)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if kind, _, rules := state(t, ns); kind == "" || rules == "" {
		t.Fatalf("skipTeardown: interface %q, rules %q left", kind, rules)
	}
	ns.run(t, "nft", "delete", "table", "inet", DefaultTable)
	if err := ns.handle(t).LinkDel(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: DefaultInterface}}); err != nil {
		t.Fatal(err)
	}
	off := false
	b := newInstance(t, ns, lock, func(c *Config) { c.SetupInterface, c.SetupRules = &off, &off })
	b.start(t)
	if kind, _, rules := state(t, ns); kind != "" || rules != "" {
		t.Fatalf("setupInterface and setupRules off: interface %q, rules %q", kind, rules)
	}
}

// TestSetupRefusesForeignInterface: a link of the name that is not a dummy
// or bridge (here a veth) is left alone, and Start fails saying why.
func TestSetupRefusesForeignInterface(t *testing.T) {
	ns := newTestNS(t)
	h := ns.handle(t)
	attrs := netlink.NewLinkAttrs()
	attrs.Name = DefaultInterface
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "peer0"}); err != nil {
		t.Fatal(err)
	}
	in := newInstance(t, ns, filepath.Join(t.TempDir(), "poddns0.lock"), nil)
	err := in.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "veth") {
		t.Fatalf("Start: %v, want a refusal naming the veth", err)
	}
	if in.count("errors", StepInterface) != 1 {
		t.Errorf("interface errors: %v", in.count("errors", StepInterface))
	}
	link, err := h.LinkByName(DefaultInterface)
	if err != nil || link.Type() != "veth" {
		t.Fatalf("the veth: %v %v", link, err)
	}
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.LinkByName(DefaultInterface); err != nil {
		t.Fatalf("the veth was removed: %v", err)
	}
}
