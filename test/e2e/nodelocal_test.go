package e2e

// The simulated node of issue 11: dnsd's node-local mode proven with real
// clients on a node built from network namespaces.
//
// The test re-executes its own binary inside `unshare --net --mount` (the
// "node" namespace) with -test.run selecting TestNodeLocalNamespaceHelper.
// In there it starts kube-apiserver and etcd (on the node's loopback: the API
// server is reachable from the node without leaving the test's namespaces)
// and creates real Pods, Services and EndpointSlices in it; it adds a
// kube-proxy-style DNAT of the cluster DNS IP to a central dnsd in a
// namespace of its own (joined by a veth pair), a CNI-style bridge with three
// pod namespaces on veth pairs, and an authoritative upstream for external
// names. No namespace has a route out of these. The node-local dnsd runs in
// the node namespace, as a hostNetwork DaemonSet pod does.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/poddns/poddns/internal/syncbuf"
	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/nodeprofile"
	"github.com/poddns/poddns/pkg/resolvconf"
)

// nodeLocalEnv carries the helper's parameters (JSON); only
// TestE2ENodeLocal sets it.
const nodeLocalEnv = "PODDNS_E2E_NODELOCAL_CHILD"

// The simulated node's addresses. None exists outside the test's
// namespaces.
const (
	nlLinkLocal  = "169.254.20.10"
	nlClusterDNS = "10.96.0.10"
	nlNodeSide   = "10.0.1.1" // the node's end of the central link; the upstream listens here
	nlCentral    = "10.0.1.2" // the central dnsd
	nlBridgeIP   = "10.244.1.1"
	nlNodeName   = "node-1"
	nlWebIP      = "10.96.0.20"
	nlFarIP      = "10.244.2.2" // the pod of node-2
)

// nlPod is a pod of the simulated node.
type nlPod struct {
	name, ns, ip string
	dnsConfig    *corev1.PodDNSConfig
}

var nlPods = []nlPod{
	{"p0", "default", "10.244.1.2", nil},
	{"p1", "team", "10.244.1.3", &corev1.PodDNSConfig{Searches: []string{"team.example"}}},
	{"p2", "default", "10.244.1.4", nil},
}

// nlParams are what the outer test hands the helper.
type nlParams struct {
	HostNet, HostMnt string
	Mode             string // kube-proxy's DNAT: nftables, iptables-nft or iptables-legacy
	Full             bool   // every phase, not only transparent lookups and conntrack
	Dir              string
	Bin              map[string]string // dnsd, gai, gailoop-glibc, gailoop-musl, ip, mount, nsenter, unshare, sleep, getent, nft, conntrack, iptables, iptables-nft, coredns
}

// nlTimeout bounds one helper run.
const nlTimeout = 4 * time.Minute

// TestE2ENodeLocal runs the simulated node once per kube-proxy mode: in
// full (every phase of the acceptance list) with nftables DNAT, and the
// transparent-mode lookups and the conntrack check with iptables (Debian's
// iptables-nft) and iptables-legacy (where the kernel has ip_tables).
func TestE2ENodeLocal(t *testing.T) {
	tools := requireNamespaceTools(t)
	p := testenv.RequireCommand(t, "nsenter", "sleep", "go", "gcc", "nft", "conntrack", "iptables-nft", "iptables-legacy", "dig")
	_, err := testenv.AssetsDir()
	testenv.RequireOrSkip(t, fmt.Sprintf("the envtest binaries (%v); %s", err, testenv.FixHint), err == nil)
	dir := t.TempDir()
	root := testenv.Root(t)
	bin := map[string]string{
		"ip": tools.ip, "mount": tools.mount, "unshare": tools.unshare, "getent": tools.getent,
		"nsenter": p[0], "sleep": p[1], "nft": p[4], "conntrack": p[5], "dig": p[8],
		"gai": buildMuslClient(t, tools.muslGCC), "iptables-nft": p[6],
	}
	// NodeLocal DNSCache's server is CoreDNS: the takeover phase runs it.
	core := filepath.Join(root, "bin", "coredns")
	fi, err := os.Stat(core)
	testenv.RequireOrSkip(t, fmt.Sprintf("the CoreDNS binary %s (%v): run hack/coredns.sh (make test does)", core, err), err == nil && fi.Mode().Perm()&0o111 != 0)
	bin["coredns"] = core
	build := func(name string, argv ...string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("build %s: %v\n%s", name, err, out)
		}
	}
	bin["dnsd"] = filepath.Join(dir, "dnsd")
	build("dnsd", p[2], "build", "-o", bin["dnsd"], filepath.Join(root, "cmd", "dnsd"))
	loop, err := filepath.Abs(filepath.Join("testdata", "gailoop.c"))
	if err != nil {
		t.Fatal(err)
	}
	bin["gailoop-glibc"] = filepath.Join(dir, "gailoop-glibc")
	build("gailoop (glibc)", p[3], "-O2", "-Wall", "-Werror", "-o", bin["gailoop-glibc"], loop)
	bin["gailoop-musl"] = filepath.Join(dir, "gailoop-musl")
	build("gailoop (musl)", tools.muslGCC, "-static", "-O2", "-Wall", "-Werror", "-o", bin["gailoop-musl"], loop)

	// The upgrade phase counts retries and judges latencies.
	testenv.HoldTimingLock(t)
	hostNet, hostMnt := hostNamespaces(t)
	for _, mode := range []struct {
		name, iptables string
		full           bool
	}{{"nftables", "", true}, {"iptables-nft", p[6], false}, {"iptables-legacy", p[7], false}} {
		t.Run(mode.name, func(t *testing.T) {
			if mode.name == "iptables-legacy" {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				out, err := exec.CommandContext(ctx, tools.unshare, "--net", "--", mode.iptables, "-t", "nat", "-L").CombinedOutput()
				cancel()
				if err != nil {
					// The kernel is the machine's, not a missing package.
					t.Skipf("the kernel has no ip_tables (iptables-legacy -t nat -L: %v %s): kube-proxy's legacy mode not covered", err, out)
				}
			}
			b := maps(bin)
			b["iptables"] = mode.iptables
			sub := filepath.Join(dir, mode.name)
			if err := os.MkdirAll(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			params, err := json.Marshal(nlParams{HostNet: hostNet, HostMnt: hostMnt, Mode: mode.name, Full: mode.full, Dir: sub, Bin: b})
			if err != nil {
				t.Fatal(err)
			}
			out := runInNamespaces(t, tools.unshare, "TestNodeLocalNamespaceHelper", nodeLocalEnv, string(params), nlTimeout)
			if !strings.Contains(out, "node-local helper ran") {
				t.Fatalf("the helper did not run and pass")
			}
		})
	}
}

func maps(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// simNode is the helper's view of the simulated node.
type simNode struct {
	t       *testing.T
	ctx     context.Context
	p       nlParams
	env     *testenv.Env
	podNS   []string // /proc/<holder>/ns/net of each pod
	confs   map[string]string
	profile *resolvconf.NodeProfile
}

// TestNodeLocalNamespaceHelper is the node side of TestE2ENodeLocal; run
// any other way, it does nothing.
func TestNodeLocalNamespaceHelper(t *testing.T) {
	raw := os.Getenv(nodeLocalEnv)
	if raw == "" {
		return
	}
	var p nlParams
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		t.Fatal(err)
	}
	requirePrivateNamespaces(t, p.HostNet, p.HostMnt)
	ctx, cancel := context.WithTimeout(context.Background(), nlTimeout-20*time.Second)
	defer cancel()
	n := &simNode{t: t, ctx: ctx, p: p, confs: map[string]string{}}
	n.build()
	n.run()
	t.Log("node-local helper ran")
}

func (n *simNode) must(name string, args ...string) string {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(n.ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		n.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (n *simNode) write(name, content string) string {
	n.t.Helper()
	return testenv.WriteFile(n.t, n.p.Dir, name, content)
}

// holder starts a process in a new network namespace that lives until the
// helper ends, and returns the namespace's path.
func (n *simNode) holder() string {
	n.t.Helper()
	h := exec.Command(n.p.Bin["unshare"], "--net", "--", n.p.Bin["sleep"], "600")
	h.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := h.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { _ = h.Process.Kill(); _ = h.Wait() })
	self, _ := os.Readlink("/proc/self/ns/net")
	path := fmt.Sprintf("/proc/%d/ns/net", h.Process.Pid)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if ns, err := os.Readlink(path); err == nil && ns != self {
			return path
		}
		if time.Now().After(deadline) {
			n.t.Fatal("a holder's network namespace did not appear")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pidOf is the holder's PID in a /proc/<pid>/ns/net path.
func pidOf(nsPath string) string { return strings.Split(nsPath, "/")[2] }

// in is argv run in the network namespace ns.
func (n *simNode) in(ns string, argv ...string) []string {
	return append([]string{n.p.Bin["nsenter"], "--net=" + ns, "--"}, argv...)
}

// inPod is argv run in pod i's network namespace with conf as its
// /etc/resolv.conf (a mount namespace of its own per run).
func (n *simNode) inPod(i int, conf string, argv ...string) []string {
	return n.in(n.podNS[i], append([]string{n.p.Bin["unshare"], "--mount", "--propagation", "private", "--",
		"sh", "-c", `mount --bind "$1" /etc/resolv.conf && shift && exec "$@"`, "sh", conf}, argv...)...)
}

// build makes the node: the control plane with its objects, the upstream,
// the central namespace and dnsd, kube-proxy's DNAT, the bridge and pods.
func (n *simNode) build() {
	t, b := n.t, n.p.Bin
	n.must(b["ip"], "link", "set", "lo", "up")
	for src, dst := range map[string]string{
		n.write("hosts", "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"): "/etc/hosts",
		n.write("nsswitch.conf", "hosts: files dns\n"):                                      "/etc/nsswitch.conf",
		// The node's resolver file, as kubelet names it: the node's own
		// processes never reach outside either.
		n.write("node-resolv.conf", "nameserver "+nlNodeSide+"\nsearch corp.example\n"): "/etc/resolv.conf",
	} {
		if _, err := os.Stat(dst); err == nil {
			n.must(b["mount"], "--bind", src, dst)
		}
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		t.Fatalf("ip_forward in the node namespace: %v", err)
	}

	// The central namespace: its dnsd on nlCentral, routes back to the pods.
	central := n.holder()
	n.must(b["ip"], "link", "add", "nl-central", "type", "veth", "peer", "name", "eth0", "netns", pidOf(central))
	n.must(b["ip"], "addr", "add", nlNodeSide+"/24", "dev", "nl-central")
	n.must(b["ip"], "link", "set", "nl-central", "up")
	// The Service range through the central link, as a node's default
	// route takes it: the node's own packets to the cluster DNS IP need a
	// route before kube-proxy's output DNAT rewrites them.
	n.must(b["ip"], "route", "add", "10.96.0.0/12", "via", nlCentral)
	for _, args := range [][]string{
		{"link", "set", "lo", "up"}, {"addr", "add", nlCentral + "/24", "dev", "eth0"}, {"link", "set", "eth0", "up"},
		{"route", "add", "10.244.1.0/24", "via", nlNodeSide},
	} {
		a := n.in(central, append([]string{b["ip"]}, args...)...)
		n.must(a[0], a[1:]...)
	}

	// The CNI bridge and the pods: each a namespace on a veth pair whose
	// node end is a port of the bridge; routes to the cluster DNS IP, the
	// Service range and the link-local IP through the bridge's address.
	n.must(b["ip"], "link", "add", "cni0", "type", "bridge")
	n.must(b["ip"], "addr", "add", nlBridgeIP+"/24", "dev", "cni0")
	n.must(b["ip"], "link", "set", "cni0", "up")
	for i, pod := range nlPods {
		ns := n.holder()
		n.podNS = append(n.podNS, ns)
		veth := fmt.Sprintf("veth%d", i)
		n.must(b["ip"], "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", pidOf(ns))
		n.must(b["ip"], "link", "set", veth, "master", "cni0")
		n.must(b["ip"], "link", "set", veth, "up")
		for _, args := range [][]string{
			{"link", "set", "lo", "up"}, {"addr", "add", pod.ip + "/24", "dev", "eth0"}, {"link", "set", "eth0", "up"},
			{"route", "add", "10.96.0.0/12", "via", nlBridgeIP}, {"route", "add", nlLinkLocal + "/32", "via", nlBridgeIP},
		} {
			a := n.in(ns, append([]string{b["ip"]}, args...)...)
			n.must(a[0], a[1:]...)
		}
	}

	// kube-proxy: DNAT of the cluster DNS IP (UDP and TCP) to the central
	// server, for pods (prerouting) and the node (output).
	switch n.p.Mode {
	case "nftables":
		n.must(b["nft"], "-f", n.write("kube-proxy.nft", `table ip kube-proxy {
	chain prerouting { type nat hook prerouting priority -100; ip daddr `+nlClusterDNS+` meta l4proto { tcp, udp } th dport 53 dnat to `+nlCentral+`; }
	chain output { type nat hook output priority -100; ip daddr `+nlClusterDNS+` meta l4proto { tcp, udp } th dport 53 dnat to `+nlCentral+`; }
}
`))
	default:
		for _, chain := range []string{"PREROUTING", "OUTPUT"} {
			for _, proto := range []string{"udp", "tcp"} {
				n.must(b["iptables"], "-t", "nat", "-A", chain, "-d", nlClusterDNS, "-p", proto, "--dport", "53", "-j", "DNAT", "--to-destination", nlCentral)
			}
		}
	}

	// The control plane, in the node namespace, and its objects.
	// kube-apiserver looks for a default route to pick the address it
	// advertises; the node has none: name one of its own.
	n.env = testenv.Start(t, func(e *envtest.Environment) {
		e.ControlPlane.GetAPIServer().Configure().Set("advertise-address", nlNodeSide)
	})
	n.objects()

	// The upstream of external names, for both servers.
	up, err := startUpstream(n.ctx, net.JoinHostPort(nlNodeSide, "53"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.shutdown)

	// The central dnsd: the same Services from a file, forwarding to the
	// upstream.
	objs := n.write("central.yaml", nlCentralObjects)
	a := n.in(central, b["dnsd"], "--source", objs, "--listen", nlCentral+":53", "--udp-sockets", "1",
		"--health-listen", nlCentral+":8080", "--metrics-listen", nlCentral+":9153", "--upstream", nlNodeSide, "--lameduck", "0s",
		"--pods", "verified")
	n.startProc("central", nlCentral+":8080", a...)

	// The kubelet of the node: its config file and resolver file.
	kc := n.write("kubelet.yaml", "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"+
		"clusterDomain: cluster.local\nclusterDNS: ["+nlClusterDNS+"]\nresolvConf: "+filepath.Join(n.p.Dir, "node-resolv.conf")+"\n")
	kcfg, _, err := nodeprofile.ReadKubeletConfig(kc)
	if err != nil {
		t.Fatal(err)
	}
	nc := nodeprofile.KubeletNodeConfig(kcfg)
	n.profile, err = resolvconf.NewNodeProfile(nc)
	if err != nil {
		t.Fatal(err)
	}
	// Each pod's resolv.conf in transparent mode (kubelet's --cluster-dns
	// is the cluster DNS IP) and link-local mode (the link-local IP), with
	// timeout:1 as the upgrade test asks.
	for mode, dnsIP := range map[string]string{"transparent": nlClusterDNS, "linklocal": nlLinkLocal} {
		c := nc
		c.ClusterDNS = []string{dnsIP}
		prof, err := resolvconf.NewNodeProfile(c)
		if err != nil {
			t.Fatal(err)
		}
		for i := range nlPods {
			res, err := resolvconf.Compute(n.pod(i), prof)
			if err != nil {
				t.Fatal(err)
			}
			conf := res.Config.Render() + "options timeout:1\n"
			n.confs[fmt.Sprint(mode, i)] = n.write(fmt.Sprintf("resolv-%s-%d.conf", mode, i), conf)
		}
	}
	n.write("kubeconfig", string(n.env.Environment.KubeConfig))
}

// nlCentralObjects are the Services of the cluster and the pod of another
// node, for the central dnsd (verified pod records: it answers only the
// pods it holds, so a local pod's name asked of it would be NXDOMAIN).
const nlCentralObjects = `apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: default}}
- {apiVersion: v1, kind: Namespace, metadata: {name: team}}
- {apiVersion: v1, kind: Service, metadata: {name: web, namespace: default}, spec: {type: ClusterIP, clusterIP: ` + nlWebIP + `, clusterIPs: [` + nlWebIP + `]}}
- {apiVersion: v1, kind: Service, metadata: {name: db, namespace: default}, spec: {clusterIP: None, clusterIPs: [None]}}
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata: {name: db-1, namespace: default, labels: {kubernetes.io/service-name: db}}
  addressType: IPv4
  endpoints: [{addresses: [10.244.1.2], conditions: {ready: true}}]
- {apiVersion: v1, kind: Service, metadata: {name: ext, namespace: default}, spec: {type: ExternalName, externalName: api.example.com}}
- apiVersion: v1
  kind: Pod
  metadata: {name: far, namespace: default}
  spec: {nodeName: node-2, containers: [{name: app, image: app}]}
  status: {phase: Running, podIP: ` + nlFarIP + `, podIPs: [{ip: ` + nlFarIP + `}]}
`

// pod is pod i as the API holds it.
func (n *simNode) pod(i int) *corev1.Pod {
	p := nlPods[i]
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: p.name, Namespace: p.ns},
		Spec: corev1.PodSpec{NodeName: nlNodeName, DNSPolicy: corev1.DNSClusterFirst, DNSConfig: p.dnsConfig,
			Containers: []corev1.Container{{Name: "app", Image: "app"}}},
	}
}

// objects creates the cluster's objects in the API server: the Services
// of nlCentralObjects, the pods of the node (IPs set through the status
// subresource) and a pod on another node.
func (n *simNode) objects() {
	ready := true
	testenv.Create(n.t, n.env.Client,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
			Spec: corev1.ServiceSpec{ClusterIP: nlWebIP, Ports: []corev1.ServicePort{{Port: 80}}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default"},
			Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Port: 5432}}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "ext", Namespace: "default"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "api.example.com"}},
		&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "db-1", Namespace: "default",
			Labels: map[string]string{discoveryv1.LabelServiceName: "db"}}, AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.244.1.2"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}}})
	for i := range nlPods {
		n.createPod(n.pod(i), nlPods[i].ip)
	}
	far := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "far", Namespace: "default"},
		Spec: corev1.PodSpec{NodeName: "node-2", Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
	n.createPod(far, nlFarIP)
}

func (n *simNode) createPod(p *corev1.Pod, ip string) {
	n.t.Helper()
	if err := n.env.Client.Create(n.ctx, p); err != nil {
		n.t.Fatalf("create pod %s: %v", p.Name, err)
	}
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}
	if err := n.env.Client.Status().Update(n.ctx, p); err != nil {
		n.t.Fatalf("pod %s status: %v", p.Name, err)
	}
}

// proc is a dnsd the helper runs.
type proc struct {
	name   string
	cmd    *exec.Cmd
	out    *syncbuf.Buffer
	done   chan struct{}
	err    error
	health string
}

// startProc starts argv and, when health is set, waits for its /ready.
func (n *simNode) startProc(name, health string, argv ...string) *proc {
	n.t.Helper()
	p := &proc{name: name, out: &syncbuf.Buffer{}, done: make(chan struct{}), health: health}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	n.t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		n.t.Logf("%s output:\n%s", p.name, p.out)
	})
	if health != "" {
		n.waitReady(p, 30*time.Second)
	}
	return p
}

// ready reports whether p's /ready answers 200, and the body.
func ready(health string) (bool, string) {
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + health + "/ready")
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == http.StatusOK, strings.TrimSpace(string(body))
}

func (n *simNode) waitReady(p *proc, within time.Duration) time.Duration {
	n.t.Helper()
	start := time.Now()
	for {
		select {
		case <-p.done:
			n.t.Fatalf("%s exited: %v\n%s", p.name, p.err, p.out)
		default:
		}
		if ok, _ := ready(p.health); ok {
			return time.Since(start)
		}
		if time.Since(start) > within {
			_, why := ready(p.health)
			n.t.Fatalf("%s not ready after %s (%s)\n%s", p.name, within, why, p.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop signals p and waits (at most 20s) for it to exit.
func (n *simNode) stop(p *proc, sig syscall.Signal) {
	n.t.Helper()
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		n.t.Fatalf("%s did not exit after %s\n%s", p.name, sig, p.out)
	}
}

// nodeLocalInstance is one node-local dnsd: its number picks its HTTP
// ports; extra is appended to its config file.
func (n *simNode) nodeLocalInstance(k int, kubeconfig, extra string) (*proc, string) {
	return n.nodeLocalOn(k, kubeconfig, nlLinkLocal+", "+nlClusterDNS, extra)
}

// nodeLocalOn is nodeLocalInstance listening on ips (a YAML flow list's
// items).
func (n *simNode) nodeLocalOn(k int, kubeconfig, ips, extra string) (*proc, string) {
	health, metrics := fmt.Sprintf("127.0.0.1:%d", 8180+k), fmt.Sprintf("127.0.0.1:%d", 9180+k)
	cfg := n.write(fmt.Sprintf("nodelocal-%d.yaml", k), "apiVersion: poddns.io/v1alpha1\nkind: DNSDConfig\n"+
		"source: {kubeconfig: "+kubeconfig+"}\nudpSockets: 1\nlameduck: 2s\n"+
		"healthListen: \""+health+"\"\nmetricsListen: \""+metrics+"\"\n"+
		"nodeLocal:\n  ips: ["+ips+"]\n  nodeName: "+nlNodeName+"\n"+
		"  kubeletConfig: "+filepath.Join(n.p.Dir, "kubelet.yaml")+"\n  lockFile: "+filepath.Join(n.p.Dir, "poddns0.lock")+"\n"+extra)
	p := n.startProc(fmt.Sprintf("node-local dnsd %d", k), "", n.p.Bin["dnsd"], "--config", cfg)
	p.health = health
	// Its HTTP endpoints come up at once (DNS only once the store synced).
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if _, why := ready(health); !strings.Contains(why, "connection refused") {
			break
		}
		if time.Since(start) > 15*time.Second {
			n.t.Fatalf("%s: no /ready after 15s\n%s", p.name, p.out)
		}
	}
	return p, metrics
}

// lookup is one client run from a pod and what it cost each server.
type lookup struct {
	run              clientRun
	local, central   int
	canon            string
	addrs            []string
	localM, centralM string
}

// lookupFrom runs client ("glibc" or "musl") for name in pod i with the
// resolv.conf of mode, counting the queries of the node-local dnsd (its
// metrics at localM, "" for none) and the central one.
func (n *simNode) lookupFrom(i int, mode, client, name, localM string) lookup {
	n.t.Helper()
	argv := []string{n.p.Bin["getent"], "ahosts", name}
	if client == "musl" {
		argv = []string{n.p.Bin["gai"], name}
	}
	var l lookup
	bl, bc := 0, dnsRequestsAt(n.t, n.ctx, nlCentral+":9153")
	if localM != "" {
		bl = dnsRequestsAt(n.t, n.ctx, localM)
	}
	l.run = clientRun{Client: client, Argv: argv}
	var err error
	l.run.Stdout, l.run.Stderr, l.run.ExitCode, err = runClient(n.ctx, n.inPod(i, n.confs[fmt.Sprint(mode, i)], argv...))
	if err != nil {
		n.t.Fatalf("%s %s: %v", client, name, err)
	}
	if localM != "" {
		l.local = dnsRequestsAt(n.t, n.ctx, localM) - bl
	}
	l.central = dnsRequestsAt(n.t, n.ctx, nlCentral+":9153") - bc
	l.canon, l.addrs, err = parseOutput(l.run)
	if err != nil {
		n.t.Errorf("%s %s: %v", client, name, err)
	}
	slices.Sort(l.addrs)
	return l
}

// The names looked up and what they resolve to.
var nlNames = []struct {
	name, canon string
	addrs       []string
}{
	{"web.default.svc.cluster.local", "web.default.svc.cluster.local", []string{nlWebIP}},
	{"db.default.svc.cluster.local", "db.default.svc.cluster.local", []string{"10.244.1.2"}},
	{"ext.default.svc.cluster.local", "api.example.com", []string{complExtV4, complExtV6}},
	{"api.example.com", "api.example.com", []string{complExtV4, complExtV6}},
}

// conntrackOf returns the conntrack entries of the node that mention the
// listen IPs (as source or destination, original or reply).
func (n *simNode) conntrackOf() []string {
	out := n.must(n.p.Bin["conntrack"], "-L")
	var hits []string
	for line := range strings.SplitSeq(out, "\n") {
		if strings.Contains(line, "="+nlLinkLocal+" ") || strings.Contains(line, "="+nlClusterDNS+" ") {
			hits = append(hits, strings.TrimSpace(line))
		}
	}
	return hits
}

func (n *simNode) run() {
	t := n.t
	kubeconfig := filepath.Join(n.p.Dir, "kubeconfig")

	// 1. Without node-local: the cluster DNS IP reaches the central server
	// through kube-proxy's DNAT, and conntrack tracks it (so the check
	// below can fail).
	n.must(n.p.Bin["conntrack"], "-F")
	for _, client := range []string{"glibc", "musl"} {
		l := n.lookupFrom(0, "transparent", client, "web.default.svc.cluster.local.", "")
		if l.run.ExitCode != 0 || l.central == 0 {
			t.Fatalf("without node-local, %s: exit %d, %d central queries\n%s", client, l.run.ExitCode, l.central, l.run.Stdout+l.run.Stderr)
		}
	}
	if hits := n.conntrackOf(); len(hits) == 0 {
		t.Fatalf("without node-local, conntrack holds no flow of the cluster DNS IP: the check cannot fail")
	} else {
		t.Logf("without node-local, conntrack holds %d flows of the listen IPs, e.g. %s", len(hits), hits[0])
	}

	// 2. Node-local: every pod, both clients, Services, headless and
	// external names, in transparent and link-local mode, answered by the
	// node-local dnsd only, and nothing of it tracked.
	a, aM := n.nodeLocalInstance(1, kubeconfig, "")
	took := n.waitReady(a, 30*time.Second)
	t.Logf("node-local dnsd ready in %s", took.Round(time.Millisecond))
	n.must(n.p.Bin["conntrack"], "-F")
	modes := []string{"transparent", "linklocal"}
	if !n.p.Full {
		modes = modes[:1]
	}
	for _, mode := range modes {
		for i := range nlPods {
			for _, client := range []string{"glibc", "musl"} {
				for _, nm := range nlNames {
					l := n.lookupFrom(i, mode, client, nm.name, aM)
					want := slices.Clone(nm.addrs)
					slices.Sort(want)
					if l.run.ExitCode != 0 || l.canon != nm.canon || !slices.Equal(l.addrs, want) {
						t.Errorf("%s, pod %s, %s %s: exit %d, %q %q; want %q %q (%s)", mode, nlPods[i].name, client, nm.name,
							l.run.ExitCode, l.canon, l.addrs, nm.canon, want, l.run.Stderr)
					}
					if l.local == 0 || l.central != 0 {
						t.Errorf("%s, pod %s, %s %s: %d node-local queries, %d central; want > 0 and 0", mode, nlPods[i].name, client, nm.name, l.local, l.central)
					}
				}
			}
		}
	}
	if hits := n.conntrackOf(); len(hits) > 0 {
		t.Errorf("with node-local, conntrack holds flows of the listen IPs:\n%s", strings.Join(hits, "\n"))
	} else {
		t.Logf("with node-local, conntrack holds no flow of %s or %s after %d lookups", nlLinkLocal, nlClusterDNS, len(modes)*len(nlPods)*2*len(nlNames))
	}
	if !n.p.Full {
		n.stop(a, syscall.SIGTERM)
		return
	}

	// 3. Completion from the node's kubelet config: an external name costs
	// 2 queries from a default pod and from one with its own search list,
	// with the same result as without completion.
	on := map[string]lookup{}
	for _, i := range []int{0, 1} {
		for _, client := range []string{"glibc", "musl"} {
			l := n.lookupFrom(i, "transparent", client, "api.example.com", aM)
			on[fmt.Sprint(i, client)] = l
			if l.local != 2 {
				t.Errorf("completion on: pod %s, %s api.example.com cost %d node-local queries, want 2", nlPods[i].name, client, l.local)
			}
		}
	}
	n.stop(a, syscall.SIGTERM)
	off, offM := n.nodeLocalInstance(2, kubeconfig, "completion: {enabled: false}\n")
	n.waitReady(off, 30*time.Second)
	for _, i := range []int{0, 1} {
		for _, client := range []string{"glibc", "musl"} {
			l := n.lookupFrom(i, "transparent", client, "api.example.com", offM)
			o := on[fmt.Sprint(i, client)]
			if l.run.ExitCode != o.run.ExitCode || l.canon != o.canon || !slices.Equal(l.addrs, o.addrs) {
				t.Errorf("pod %s, %s api.example.com: completion off gives exit %d %q %q, on gave exit %d %q %q",
					nlPods[i].name, client, l.run.ExitCode, l.canon, l.addrs, o.run.ExitCode, o.canon, o.addrs)
			}
			t.Logf("pod %s, %s api.example.com: %d node-local queries with completion, %d without", nlPods[i].name, client, o.local, l.local)
			if l.local <= 2 {
				t.Errorf("completion off cost %d queries: the comparison proves nothing", l.local)
			}
		}
	}
	n.stop(off, syscall.SIGTERM)
	n.checkTornDown("after the last instance stopped")

	// 4. Upgrade under load, 5. the last instance stops, 6. kill -9,
	// 7. pod IPs reused, hostNetwork pods, pods of other nodes.
	n.upgradeUnderLoad(kubeconfig)
	n.killAndRestart(kubeconfig)
	n.wrongNamespace(kubeconfig)
	// 8. Verified pod records: another node's pods asked of the central
	// server.
	n.remotePods(kubeconfig)
	// 9. Taking over from NodeLocal DNSCache on the same IPs.
	n.takeOverNodeCache(kubeconfig)
}

// digFrom asks server, from pod i's namespace, for name's A record and
// returns the rcode and the addresses answered.
func (n *simNode) digFrom(i int, server, name string) (string, []string) {
	n.t.Helper()
	argv := n.in(n.podNS[i], n.p.Bin["dig"], "@"+server, "+tries=1", "+time=2", "+noall", "+comments", "+answer", name, "A")
	out := n.must(argv[0], argv[1:]...)
	m := regexp.MustCompile(`status: ([A-Z]+)`).FindStringSubmatch(out)
	if m == nil {
		n.t.Fatalf("dig %s: no status in\n%s", name, out)
	}
	var addrs []string
	for _, a := range regexp.MustCompile(`\sIN\s+A\s+(\S+)`).FindAllStringSubmatch(out, -1) {
		addrs = append(addrs, a[1])
	}
	return m[1], addrs
}

// remotePods: with verified pod records the node-local dnsd holds only its
// node's pods; a pod name of another node's pod is answered through the
// central server (its query count rises), never NXDOMAIN, while a local
// pod's name is answered locally (the central server, which has no local
// pod in its objects, would say NXDOMAIN). In transparent mode the central
// server is nodeLocal.central; in link-local mode, by default, the cluster
// DNS IP through kube-proxy's DNAT.
func (n *simNode) remotePods(kubeconfig string) {
	t := n.t
	farName := strings.ReplaceAll(nlFarIP, ".", "-") + ".default.pod.cluster.local."
	localName := strings.ReplaceAll(nlPods[1].ip, ".", "-") + ".team.pod.cluster.local."
	goneName := "10-244-2-99.default.pod.cluster.local."
	for _, v := range []struct {
		mode, ips, extra string
		k                int
	}{
		{"transparent", nlLinkLocal + ", " + nlClusterDNS, "  central: " + nlCentral + "\npods: verified\n", 8},
		{"linklocal", nlLinkLocal, "pods: verified\n", 9},
	} {
		d, dM := n.nodeLocalOn(v.k, kubeconfig, v.ips, v.extra)
		n.waitReady(d, 30*time.Second)
		for _, client := range []string{"glibc", "musl"} {
			for _, name := range []string{farName, strings.TrimSuffix(farName, ".cluster.local.")} {
				l := n.lookupFrom(0, v.mode, client, name, dM)
				if l.run.ExitCode != 0 || !slices.Equal(l.addrs, []string{nlFarIP}) {
					t.Errorf("%s, %s %s (a pod of node-2): exit %d, %q; want %s (%s)", v.mode, client, name, l.run.ExitCode, l.addrs, nlFarIP, l.run.Stderr)
				}
				if l.local == 0 || l.central == 0 {
					t.Errorf("%s, %s %s: %d node-local queries, %d central; want both > 0", v.mode, client, name, l.local, l.central)
				}
				t.Logf("%s, %s %s (node-2's pod): %d node-local queries, %d central", v.mode, client, name, l.local, l.central)
			}
			l := n.lookupFrom(0, v.mode, client, localName, dM)
			if l.run.ExitCode != 0 || !slices.Equal(l.addrs, []string{nlPods[1].ip}) || l.central != 0 {
				t.Errorf("%s, %s %s (a local pod): exit %d, %q, %d central queries; want %s and 0", v.mode, client, localName, l.run.ExitCode, l.addrs, l.central, nlPods[1].ip)
			}
		}
		bc := dnsRequestsAt(t, n.ctx, nlCentral+":9153")
		server := nlLinkLocal
		if rcode, addrs := n.digFrom(2, server, farName); rcode != "NOERROR" || !slices.Equal(addrs, []string{nlFarIP}) {
			t.Errorf("%s: dig %s: %s %q, want NOERROR %s", v.mode, farName, rcode, addrs, nlFarIP)
		}
		if rcode, _ := n.digFrom(2, server, goneName); rcode != "NXDOMAIN" {
			t.Errorf("%s: dig %s (no such pod anywhere): %s, want NXDOMAIN (the central server's answer)", v.mode, goneName, rcode)
		}
		if k := dnsRequestsAt(t, n.ctx, nlCentral+":9153") - bc; k != 2 {
			t.Errorf("%s: the central server got %d queries for 2 remote pod names, want 2", v.mode, k)
		}
		n.stop(d, syscall.SIGTERM)
	}
}

// completed asks the node-local dnsd, from pod i's namespace (or, with i
// < 0, from the node with source address src), for name's A record and
// reports whether the answer was completed (a CNAME to another name) and
// the rcode.
func (n *simNode) completed(i int, src, name string) (bool, string) {
	n.t.Helper()
	argv := []string{n.p.Bin["dig"], "@" + nlLinkLocal, "+tries=1", "+time=2", "+noall", "+comments", "+answer", name, "A"}
	if i >= 0 {
		argv = n.in(n.podNS[i], argv...)
	} else {
		argv = append(argv, "-b", src)
	}
	out := n.must(argv[0], argv[1:]...)
	m := regexp.MustCompile(`status: ([A-Z]+)`).FindStringSubmatch(out)
	if m == nil {
		n.t.Fatalf("dig %s: no status in\n%s", name, out)
	}
	return regexp.MustCompile(`\sIN\s+CNAME\s`).MatchString(out), m[1]
}

// wrongNamespace: completion answers only for the pod that really sends
// the query — never for a finished pod whose IP a pod of another
// namespace now has, never for a hostNetwork pod (its address is the
// node's), never for a pod of another node that has a local pod's IP.
func (n *simNode) wrongNamespace(kubeconfig string) {
	t, c, ctx := n.t, n.env.Client, n.ctx
	d, _ := n.nodeLocalInstance(7, kubeconfig, "")
	n.waitReady(d, 30*time.Second)
	expect := func(what string, i int, src, ns string, want bool) {
		t.Helper()
		got, rcode := n.completed(i, src, "api.example.com."+ns+".svc.cluster.local.")
		if got != want {
			t.Errorf("%s: the %s expansion completed %v (%s), want %v", what, ns, got, rcode, want)
		}
	}
	// Before: p2 (default) completes for default, not for team.
	expect("p2 in default", 2, "", "default", true)
	expect("p2 in default", 2, "", "team", false)

	// A pod of another node (team) with p0's IP: p0 still completes for
	// default only.
	far := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "far-same-ip", Namespace: "team"},
		Spec: corev1.PodSpec{NodeName: "node-2", Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
	n.createPod(far, nlPods[0].ip)
	time.Sleep(time.Second) // the watch would deliver it (it does not: other node)
	expect("p0 beside a pod of node-2 with its IP", 0, "", "default", true)
	expect("p0 beside a pod of node-2 with its IP", 0, "", "team", false)

	// p2 finishes (Succeeded, IP kept) and a pod of team gets its IP on
	// this node: team completes once the watch has it, default never.
	p2 := &corev1.Pod{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "p2"}, p2); err != nil {
		t.Fatal(err)
	}
	p2.Status.Phase = corev1.PodSucceeded
	if err := c.Status().Update(ctx, p2); err != nil {
		t.Fatal(err)
	}
	reuse := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "reuse", Namespace: "team"},
		Spec: corev1.PodSpec{NodeName: nlNodeName, Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
	n.createPod(reuse, nlPods[2].ip)
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		expect("IP reused by a team pod (the default pod finished)", 2, "", "default", false)
		if got, _ := n.completed(2, "", "api.example.com.team.svc.cluster.local."); got {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Errorf("the team pod that reused the IP never got completion")
			break
		}
	}
	// The finished pod deleted: still team only.
	if err := c.Delete(ctx, p2); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	expect("IP reused, the old pod deleted", 2, "", "default", false)
	expect("IP reused, the old pod deleted", 2, "", "team", true)

	// A hostNetwork pod has the node's address: never completed, whatever
	// namespace it is in.
	hn := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "hostnet", Namespace: "default"},
		Spec: corev1.PodSpec{NodeName: nlNodeName, HostNetwork: true, DNSPolicy: corev1.DNSClusterFirstWithHostNet,
			Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
	n.createPod(hn, nlBridgeIP)
	time.Sleep(time.Second)
	expect("a hostNetwork pod (the node's address)", -1, nlBridgeIP, "default", false)
	n.stop(d, syscall.SIGTERM)
}

// checkTornDown: no interface, no table.
func (n *simNode) checkTornDown(when string) {
	n.t.Helper()
	if out, err := exec.Command(n.p.Bin["ip"], "link", "show", "poddns0").CombinedOutput(); err == nil {
		n.t.Errorf("%s: the interface is still there:\n%s", when, out)
	}
	if out, err := exec.Command(n.p.Bin["nft"], "list", "table", "inet", "poddns-nodelocal").CombinedOutput(); err == nil {
		n.t.Errorf("%s: the rules are still there:\n%s", when, out)
	}
}

// delayedProxy forwards TCP connections to target, but only after delay
// from its start: a node-local instance behind it syncs its store late.
func (n *simNode) delayedProxy(target string, delay time.Duration) string {
	n.t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { l.Close() })
	open := time.Now().Add(delay)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				time.Sleep(time.Until(open))
				u, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer u.Close()
				go func() { _, _ = io.Copy(u, c); u.Close() }()
				_, _ = io.Copy(c, u)
			}()
		}
	}()
	return l.Addr().String()
}

// loadResult is one gailoop's summary.
type loadResult struct {
	pod, client                  string
	lookups, failed, slow, maxMS int
	at                           string // when lookups were slow or failed
}

var loadLine = regexp.MustCompile(`lookups (\d+) failed (\d+) slow (\d+) max_ms (\d+)`)

// startLoad runs a glibc and a musl gailoop in each pod for secs seconds
// (each every interval ms) with the resolv.conf of mode; wait returns the
// summaries.
func (n *simNode) startLoad(mode string, secs, interval int, names map[string]string) (wait func() []loadResult) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var out []loadResult
	for i := range nlPods {
		for _, client := range []string{"glibc", "musl"} {
			argv := n.inPod(i, n.confs[fmt.Sprint(mode, i)], n.p.Bin["gailoop-"+client], names[client], strconv.Itoa(secs), strconv.Itoa(interval))
			wg.Add(1)
			go func() {
				defer wg.Done()
				stdout, stderr, code, err := runClient(n.ctx, argv)
				r := loadResult{pod: nlPods[i].name, client: client, failed: -1}
				if m := loadLine.FindStringSubmatch(stdout); err == nil && code == 0 && m != nil {
					r.lookups, _ = strconv.Atoi(m[1])
					r.failed, _ = strconv.Atoi(m[2])
					r.slow, _ = strconv.Atoi(m[3])
					r.maxMS, _ = strconv.Atoi(m[4])
					if _, after, ok := strings.Cut(stdout, "\nat"); ok {
						r.at = strings.TrimSpace(after)
					}
				} else {
					n.t.Errorf("gailoop %s in %s: %v exit %d: %s %s", client, nlPods[i].name, err, code, stdout, stderr)
				}
				mu.Lock()
				out = append(out, r)
				mu.Unlock()
			}()
		}
	}
	return func() []loadResult { wg.Wait(); return out }
}

// upgradeUnderLoad: a second instance, whose store syncs late, takes over
// from the first under load without one failed lookup; then the last
// instance stops and transparent-mode lookups fall back to the central
// server.
func (n *simNode) upgradeUnderLoad(kubeconfig string) {
	t := n.t
	const secs, interval = 25, 25 // 40 lookups/s per program, 80 per pod
	a, _ := n.nodeLocalInstance(3, kubeconfig, "")
	n.waitReady(a, 30*time.Second)
	start := time.Now()
	wait := n.startLoad("transparent", secs, interval, map[string]string{"glibc": "web.default", "musl": "api.example.com"})

	time.Sleep(2 * time.Second)
	// B's API server connections open 4 s after it starts.
	host := strings.TrimPrefix(strings.TrimSuffix(n.env.Config.Host, "/"), "https://")
	slow := n.write("kubeconfig-slow", strings.ReplaceAll(string(n.env.Environment.KubeConfig), host, n.delayedProxy(host, 4*time.Second)))
	bStart := time.Now()
	b, bM := n.nodeLocalInstance(4, slow, "")
	time.Sleep(time.Second)
	if ok, why := ready(b.health); ok || !strings.Contains(why, "not synced") {
		t.Errorf("the second instance 1s after its start: ready %v (%s), want not ready: store not synced", ok, why)
	}
	if dnsRequestsAt(t, n.ctx, bM) != 0 {
		t.Errorf("the second instance got queries before its store synced")
	}
	n.waitReady(b, 30*time.Second)
	t.Logf("second instance (API 4s late) started %s into the load, ready %s after its start", bStart.Sub(start).Round(time.Millisecond), time.Since(bStart).Round(time.Millisecond))
	if since := time.Since(start); since < 5*time.Second {
		time.Sleep(5*time.Second - since)
	}
	termAt := time.Since(start)
	n.stop(a, syscall.SIGTERM)
	exitedAt := time.Since(start)
	t.Logf("first instance SIGTERMed %s into the load, exited at %s", termAt.Round(time.Millisecond), exitedAt.Round(time.Millisecond))
	if exitedAt > secs*time.Second-5*time.Second {
		t.Errorf("the first instance exited %s into a %ds load: less than 5s before its end", exitedAt, secs)
	}
	if !strings.Contains(a.out.String(), `"last":false`) {
		t.Errorf("the first instance thought it was the last:\n%s", a.out)
	}
	if out, err := exec.Command(n.p.Bin["nft"], "list", "table", "inet", "poddns-nodelocal").CombinedOutput(); err != nil {
		t.Errorf("the rules went with the first instance: %v %s", err, out)
	}
	results := wait()
	total, retried := 0, 0
	perPod := map[string]int{}
	for _, r := range results {
		t.Logf("upgrade load: pod %s %s: %d lookups, %d failed, %d slow (retried), max %d ms; %s", r.pod, r.client, r.lookups, r.failed, r.slow, r.maxMS, r.at)
		if r.failed != 0 {
			t.Errorf("upgrade load: pod %s %s: %d failed lookups, want 0", r.pod, r.client, r.failed)
		}
		total += r.lookups
		retried += r.slow
		perPod[r.pod] += r.lookups
	}
	for pod, k := range perPod {
		if rate := float64(k) / secs; rate < 50 {
			t.Errorf("upgrade load: pod %s made %.1f lookups/s, want >= 50", pod, rate)
		}
	}
	t.Logf("upgrade under load: %d lookups, 0 failed, %d needed a retry; second instance answered %d queries", total, retried, dnsRequestsAt(t, n.ctx, bM))

	// The last instance stops under transparent-mode load: lookups fall
	// back to kube-proxy and the central server.
	before := dnsRequestsAt(t, n.ctx, nlCentral+":9153")
	wait = n.startLoad("transparent", 8, interval, map[string]string{"glibc": "web.default.svc.cluster.local.", "musl": "web.default.svc.cluster.local."})
	time.Sleep(2 * time.Second)
	n.stop(b, syscall.SIGTERM)
	gap := 0
	for _, r := range wait() {
		t.Logf("fallback load: pod %s %s: %d lookups, %d failed, %d slow, max %d ms; %s", r.pod, r.client, r.lookups, r.failed, r.slow, r.maxMS, r.at)
		if r.failed != 0 {
			t.Errorf("fallback: pod %s %s: %d failed lookups, want 0", r.pod, r.client, r.failed)
		}
		gap = max(gap, r.maxMS)
	}
	central := dnsRequestsAt(t, n.ctx, nlCentral+":9153") - before
	if central == 0 {
		t.Errorf("after the last instance stopped, the central server got no query")
	}
	t.Logf("fallback to the central server: %d central queries, longest lookup (the gap) %d ms", central, gap)
	n.checkTornDown("after the last instance stopped")
}

// killAndRestart: an instance killed with SIGKILL leaves the setup; its
// successor adopts it and answers within 5 s, nothing duplicated.
func (n *simNode) killAndRestart(kubeconfig string) {
	t := n.t
	c, _ := n.nodeLocalInstance(5, kubeconfig, "")
	n.waitReady(c, 30*time.Second)
	rules := n.must(n.p.Bin["nft"], "list", "table", "inet", "poddns-nodelocal")
	n.stop(c, syscall.SIGKILL)
	if out, err := exec.Command(n.p.Bin["nft"], "list", "table", "inet", "poddns-nodelocal").CombinedOutput(); err != nil {
		t.Fatalf("the rules went with the killed instance: %v %s", err, out)
	}
	start := time.Now()
	d, _ := n.nodeLocalInstance(6, kubeconfig, "")
	q := new(dns.Msg)
	q.SetQuestion("web.default.svc.cluster.local.", dns.TypeA)
	cl := &dns.Client{Timeout: 200 * time.Millisecond}
	for {
		r, _, err := cl.Exchange(q, net.JoinHostPort(nlLinkLocal, "53"))
		if err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1 {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("the restarted instance does not answer after %s (%v %v)\n%s", time.Since(start), r, err, d.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	t.Logf("after kill -9, the restarted instance answered %s after its start", took.Round(time.Millisecond))
	if took > 5*time.Second {
		t.Errorf("the restarted instance answered after %s, want within 5s", took)
	}
	n.waitReady(d, 30*time.Second)
	strip := regexp.MustCompile(`counter packets \d+ bytes \d+`)
	after := n.must(n.p.Bin["nft"], "list", "table", "inet", "poddns-nodelocal")
	if strip.ReplaceAllString(after, "") != strip.ReplaceAllString(rules, "") {
		t.Errorf("the rules after the restart differ:\n%s\nbefore:\n%s", after, rules)
	}
	if k := strings.Count(after, "notrack"); k != 16 {
		t.Errorf("%d notrack rules after the restart, want 16 (2 IPs x 2 protocols x 2 directions x 2 chains)", k)
	}
	links := n.must(n.p.Bin["ip"], "-o", "addr", "show", "dev", "poddns0")
	if k := strings.Count(links, " inet "); k != 2 {
		t.Errorf("poddns0 has %d IPv4 addresses after the restart, want 2:\n%s", k, links)
	}
	if !strings.Contains(d.out.String(), "adopted") {
		t.Errorf("the restarted instance did not say it adopted the setup:\n%s", d.out)
	}
	n.stop(d, syscall.SIGTERM)
	n.checkTornDown("after the restarted instance stopped")
}

// nodeCache is a stand-in for NodeLocal DNSCache (kubernetes/dns
// cmd/node-cache): its server is the real CoreDNS with the addon's Corefile
// (cluster.local and the reverse zones forwarded over TCP to the central
// server — kube-dns-upstream — and the rest to the node's resolv.conf,
// bound to the link-local and the cluster DNS IP); its node setup is what
// cache_app.go does, done by the test with the same commands: an interface
// "nodelocaldns" holding the IPs (a dummy link there, a bridge here, left
// down as node-cache leaves it) and, for each IP, its twelve iptables
// rules prepended (raw NOTRACK to and from port 53 in PREROUTING and
// OUTPUT, locally generated traffic and the health port included; filter
// ACCEPT in INPUT and OUTPUT). teardown is its TeardownNetworking, run when
// its CoreDNS exits on SIGTERM: every copy of every rule deleted, then the
// interface.
type nodeCache struct {
	n     *simNode
	proc  *proc
	rules [][]string // table, chain, then the rule's arguments
}

// nodeCacheMetrics is where the stand-in's CoreDNS serves /metrics.
const nodeCacheMetrics = "127.0.0.1:9253"

func (n *simNode) startNodeCache() *nodeCache {
	b := n.p.Bin
	nc := &nodeCache{n: n}
	for _, ip := range []string{nlLinkLocal, nlClusterDNS} {
		const skip, allow = "NodeLocal DNS Cache: skip conntrack", "NodeLocal DNS Cache: allow DNS traffic"
		for _, r := range [][]string{
			{"raw", "PREROUTING", "-p", "tcp", "-d", ip, "--dport", "53", "-j", "NOTRACK", "-m", "comment", "--comment", skip},
			{"raw", "PREROUTING", "-p", "udp", "-d", ip, "--dport", "53", "-j", "NOTRACK", "-m", "comment", "--comment", skip},
			{"filter", "INPUT", "-p", "tcp", "-d", ip, "--dport", "53", "-j", "ACCEPT", "-m", "comment", "--comment", allow},
			{"filter", "INPUT", "-p", "udp", "-d", ip, "--dport", "53", "-j", "ACCEPT", "-m", "comment", "--comment", allow},
			{"raw", "OUTPUT", "-p", "tcp", "-s", ip, "--sport", "53", "-j", "NOTRACK", "-m", "comment", "--comment", skip},
			{"raw", "OUTPUT", "-p", "udp", "-s", ip, "--sport", "53", "-j", "NOTRACK", "-m", "comment", "--comment", skip},
			{"filter", "OUTPUT", "-p", "tcp", "-s", ip, "--sport", "53", "-j", "ACCEPT", "-m", "comment", "--comment", allow},
			{"filter", "OUTPUT", "-p", "udp", "-s", ip, "--sport", "53", "-j", "ACCEPT", "-m", "comment", "--comment", allow},
			{"raw", "OUTPUT", "-p", "tcp", "-d", ip, "--dport", "53", "-j", "NOTRACK", "-m", "comment", "--comment", skip},
			{"raw", "OUTPUT", "-p", "udp", "-d", ip, "--dport", "53", "-j", "NOTRACK", "-m", "comment", "--comment", skip},
			{"raw", "OUTPUT", "-p", "tcp", "-d", ip, "--dport", "8080", "-j", "NOTRACK", "-m", "comment", "--comment", skip},
			{"raw", "OUTPUT", "-p", "tcp", "-s", ip, "--sport", "8080", "-j", "NOTRACK", "-m", "comment", "--comment", skip},
		} {
			nc.rules = append(nc.rules, r)
		}
	}
	// Init: the interface first (setupNetworking with the rules held back).
	n.must(b["ip"], "link", "add", "nodelocaldns", "type", "bridge")
	for _, ip := range []string{nlLinkLocal, nlClusterDNS} {
		n.must(b["ip"], "addr", "add", ip+"/32", "dev", "nodelocaldns")
	}
	const binds = nlLinkLocal + " " + nlClusterDNS
	corefile := n.write("nodelocaldns.Corefile", `cluster.local:53 {
    errors
    cache {
        success 9984 30
        denial 9984 5
    }
    reload
    loop
    bind `+binds+`
    forward . `+nlCentral+` {
        force_tcp
    }
    prometheus `+nodeCacheMetrics+`
    health `+nlLinkLocal+`:8080
}
in-addr.arpa:53 {
    errors
    cache 30
    reload
    loop
    bind `+binds+`
    forward . `+nlCentral+` {
        force_tcp
    }
    prometheus `+nodeCacheMetrics+`
}
ip6.arpa:53 {
    errors
    cache 30
    reload
    loop
    bind `+binds+`
    forward . `+nlCentral+` {
        force_tcp
    }
    prometheus `+nodeCacheMetrics+`
}
.:53 {
    errors
    cache 30
    reload
    loop
    bind `+binds+`
    forward . /etc/resolv.conf
    prometheus `+nodeCacheMetrics+`
}
`)
	nc.proc = n.startProc("node-cache (CoreDNS)", "", b["coredns"], "-conf", corefile)
	if err := testenv.WaitHTTP("http://"+nlLinkLocal+":8080/health", 20*time.Second, nc.proc.done); err != nil {
		n.t.Fatalf("node-cache's CoreDNS: %v\n%s", err, nc.proc.out)
	}
	// runPeriodic: the rules once the server runs (EnsureRule, Prepend).
	for _, r := range nc.rules {
		if _, err := exec.Command(b["iptables-nft"], append([]string{"-t", r[0], "-C", r[1]}, r[2:]...)...).CombinedOutput(); err != nil {
			n.must(b["iptables-nft"], append([]string{"-t", r[0], "-I", r[1]}, r[2:]...)...)
		}
	}
	return nc
}

// stop is node-cache's exit on SIGTERM: CoreDNS stops serving, then
// TeardownNetworking removes every copy of its rules and its interface.
func (nc *nodeCache) stop() {
	n, b := nc.n, nc.n.p.Bin
	n.stop(nc.proc, syscall.SIGTERM)
	for _, r := range nc.rules {
		for k := 0; ; k++ {
			if _, err := exec.Command(b["iptables-nft"], append([]string{"-t", r[0], "-C", r[1]}, r[2:]...)...).CombinedOutput(); err != nil {
				break
			}
			if k == 10 {
				n.t.Fatalf("node-cache teardown: rule %v still there after 10 deletions", r)
			}
			n.must(b["iptables-nft"], append([]string{"-t", r[0], "-D", r[1]}, r[2:]...)...)
		}
	}
	n.must(b["ip"], "link", "del", "nodelocaldns")
}

// takeOverNodeCache: NodeLocal DNSCache serves the node on the link-local
// and the cluster DNS IP; under load, dnsd starts on the same IPs (both
// bind with SO_REUSEPORT as root, so they share the queries), then
// node-cache stops and tears down its rules and interface: 0 failed
// lookups, the IPs stay on poddns0 and dnsd answers every query, nothing
// of node-cache is left and nothing is tracked.
func (n *simNode) takeOverNodeCache(kubeconfig string) {
	t := n.t
	nc := n.startNodeCache()
	n.must(n.p.Bin["conntrack"], "-F")
	l := n.lookupFrom(0, "transparent", "glibc", "web.default.svc.cluster.local.", "")
	if l.run.ExitCode != 0 || !slices.Equal(l.addrs, []string{nlWebIP}) {
		t.Fatalf("node-cache: glibc web: exit %d %q (%s)\n%s", l.run.ExitCode, l.addrs, l.run.Stderr, nc.proc.out)
	}
	if k := metricSum(t, n.ctx, nodeCacheMetrics, "coredns_dns_requests_total"); k == 0 {
		t.Fatalf("node-cache answered no query: the stand-in does not serve the node")
	}
	if hits := n.conntrackOf(); len(hits) > 0 {
		t.Errorf("node-cache's rules leave flows of the listen IPs tracked:\n%s", strings.Join(hits, "\n"))
	}

	const secs, interval = 22, 25
	start := time.Now()
	wait := n.startLoad("transparent", secs, interval, map[string]string{"glibc": "web.default", "musl": "api.example.com"})
	time.Sleep(2 * time.Second)
	d, dM := n.nodeLocalInstance(10, kubeconfig, "")
	took := n.waitReady(d, 30*time.Second)
	t.Logf("dnsd ready beside node-cache %s after its start (%s into the load)", took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	cBefore, dBefore := metricSum(t, n.ctx, nodeCacheMetrics, "coredns_dns_requests_total"), dnsRequestsAt(t, n.ctx, dM)
	time.Sleep(2 * time.Second)
	cShared, dShared := metricSum(t, n.ctx, nodeCacheMetrics, "coredns_dns_requests_total")-cBefore, dnsRequestsAt(t, n.ctx, dM)-dBefore
	t.Logf("side by side for 2s: node-cache answered %d queries, dnsd %d", cShared, dShared)
	if dShared == 0 {
		t.Errorf("dnsd got no query beside node-cache")
	}
	if since := time.Since(start); since < 8*time.Second {
		time.Sleep(8*time.Second - since)
	}
	stopAt := time.Since(start)
	cLast := metricSum(t, n.ctx, nodeCacheMetrics, "coredns_dns_requests_total")
	nc.stop()
	t.Logf("node-cache stopped and torn down %s into the load (%s)", stopAt.Round(time.Millisecond), (time.Since(start) - stopAt).Round(time.Millisecond))
	dAfter := dnsRequestsAt(t, n.ctx, dM)
	total, retried := 0, 0
	for _, r := range wait() {
		t.Logf("takeover load: pod %s %s: %d lookups, %d failed, %d slow (retried), max %d ms; %s", r.pod, r.client, r.lookups, r.failed, r.slow, r.maxMS, r.at)
		if r.failed != 0 {
			t.Errorf("takeover load: pod %s %s: %d failed lookups, want 0", r.pod, r.client, r.failed)
		}
		total += r.lookups
		retried += r.slow
	}
	t.Logf("takeover from node-cache under load: %d lookups, 0 failed, %d needed a retry; node-cache answered %d queries in all, dnsd %d after node-cache left",
		total, retried, cLast, dnsRequestsAt(t, n.ctx, dM)-dAfter)
	if dnsRequestsAt(t, n.ctx, dM) == dAfter {
		t.Errorf("dnsd answered nothing after node-cache left")
	}

	// Nothing of node-cache is left; dnsd's IPs, rules and answers are.
	if out, err := exec.Command(n.p.Bin["ip"], "link", "show", "nodelocaldns").CombinedOutput(); err == nil {
		t.Errorf("node-cache's interface is still there:\n%s", out)
	}
	for _, table := range []string{"raw", "filter"} {
		if out := n.must(n.p.Bin["iptables-nft"]+"-save", "-t", table); strings.Contains(out, "NodeLocal DNS Cache") {
			t.Errorf("node-cache's rules are still in %s:\n%s", table, out)
		}
	}
	if links := n.must(n.p.Bin["ip"], "-o", "addr", "show", "dev", "poddns0"); strings.Count(links, " inet ") != 2 {
		t.Errorf("poddns0 after node-cache left:\n%s", links)
	}
	n.must(n.p.Bin["conntrack"], "-F")
	for _, client := range []string{"glibc", "musl"} {
		before := dnsRequestsAt(t, n.ctx, dM)
		l := n.lookupFrom(1, "transparent", client, "web.default.svc.cluster.local.", dM)
		if l.run.ExitCode != 0 || !slices.Equal(l.addrs, []string{nlWebIP}) || l.local == 0 || l.central != 0 {
			t.Errorf("after the takeover, %s web: exit %d %q, %d dnsd queries (%d before), %d central", client, l.run.ExitCode, l.addrs, l.local, before, l.central)
		}
	}
	if hits := n.conntrackOf(); len(hits) > 0 {
		t.Errorf("after the takeover, conntrack holds flows of the listen IPs:\n%s", strings.Join(hits, "\n"))
	}
	n.stop(d, syscall.SIGTERM)
	n.checkTornDown("after dnsd, which took over from node-cache, stopped")
}
