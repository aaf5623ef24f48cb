package e2e

// Server-side search completion proven with real clients (issue 5): dnsd
// runs in a private network namespace and each test pod (its own network
// namespace, joined to dnsd's by a veth pair, so that dnsd sees the pod's IP
// as the source address) looks names up with glibc and musl, with completion
// on and off. The test counts the queries dnsd receives per lookup
// (poddns_dns_requests_total, scraped before and after each lookup) and
// compares what getaddrinfo returns in both modes.
//
// The test re-executes its own binary inside `unshare --net --mount` with
// -test.run selecting TestCompletionNamespaceHelper, which does the work in
// there; that helper does nothing when run any other way.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/resolvconf"
)

// completionEnv carries the helper's parameters, as "KEY=VALUE;..." pairs;
// only TestE2ECompletionRealClients sets it.
const completionEnv = "PODDNS_E2E_COMPLETION_CHILD"

// The namespaces' addresses: RFC 5737 TEST-NET-1 on the veth pair, and a
// loopback address for the upstream. None of them exists outside the
// namespaces the test creates.
const (
	complDNSIP      = "192.0.2.1"  // dnsd, a /32 on lo of dnsd's namespace
	complPodIP      = "192.0.2.20" // the default pod, the other side
	complPod2IP     = "192.0.2.21" // the custom-search pod, on a second veth pair
	complUpstreamIP = "127.0.0.54" // the authoritative upstream, in dnsd's namespace
	complMetrics    = "127.0.0.1:9153"
	complHealth     = "127.0.0.1:8080"
	complExtV4      = "192.0.2.10"
	complExtV6      = "2001:db8::10"
	complHostIP     = "192.0.2.30" // host.corp.example
)

const complObjects = `apiVersion: v1
kind: Namespace
metadata: {name: default}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {type: ClusterIP, clusterIP: 10.96.0.20, clusterIPs: [10.96.0.20]}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: default, uid: e2e-client}
spec: {dnsPolicy: ClusterFirst, containers: [{name: app, image: app}]}
status: {phase: Running, podIP: ` + complPodIP + `, podIPs: [{ip: ` + complPodIP + `}]}
---
apiVersion: v1
kind: Pod
metadata: {name: custom, namespace: default, uid: e2e-custom}
spec:
  dnsPolicy: None
  dnsConfig:
    nameservers: [` + complDNSIP + `]
    searches: [team.example, default.svc.cluster.local, corp.example]
    options: [{name: ndots, value: "5"}]
  containers: [{name: app, image: app}]
status: {phase: Running, podIP: ` + complPod2IP + `, podIPs: [{ip: ` + complPod2IP + `}]}
`

// complNodeResolvConf is the node's resolv.conf: one search domain.
const complNodeResolvConf = "nameserver " + complUpstreamIP + "\nsearch corp.example\n"

const complProfile = `apiVersion: poddns.io/v1alpha1
kind: NodeProfile
clusterDomain: cluster.local
clusterDNS: [` + complDNSIP + `]
resolvConfContent: |
  nameserver ` + complUpstreamIP + `
  search corp.example
`

// TestE2ECompletionRealClients: from a default ClusterFirst pod and from a
// None pod with its own search list, an external name costs glibc and musl
// exactly one dnsd query per address type with completion on (2), and the
// whole walk without it (5 names × 2 = 10 for the default pod, whose node has
// one search domain; 4 × 2 = 8 for the custom pod); hits in later search
// domains and AAAA-only names cost 2 as well; what getaddrinfo returns is the
// same either way, for those names, NODATA and names that exist nowhere.
func TestE2ECompletionRealClients(t *testing.T) {
	tools := requireNamespaceTools(t)
	p := testenv.RequireCommand(t, "nsenter", "sleep", "go")
	nsenter, sleep, goCmd := p[0], p[1], p[2]
	gai := buildMuslClient(t, tools.muslGCC)
	dir := t.TempDir()

	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dnsd := filepath.Join(dir, "dnsd")
	bctx, bcancel := context.WithTimeout(context.Background(), 3*time.Minute)
	out, err := exec.CommandContext(bctx, goCmd, "build", "-o", dnsd, filepath.Join(root, "cmd", "dnsd")).CombinedOutput()
	bcancel()
	if err != nil {
		t.Fatalf("go build cmd/dnsd: %v\n%s", err, out)
	}

	// The pod's resolv.conf, as kubelet would write it.
	profile, err := resolvconf.NewNodeProfile(resolvconf.NodeConfig{
		ClusterDomain:  clusterDomain,
		ClusterDNS:     []string{complDNSIP},
		ResolvConf:     resolvconf.DefaultResolvConf,
		ResolvConfData: []byte(complNodeResolvConf),
	})
	if err != nil {
		t.Fatal(err)
	}
	custom := pod(corev1.DNSNone, &corev1.PodDNSConfig{
		Nameservers: []string{complDNSIP},
		Searches:    []string{"team.example", nsSvc, "corp.example"},
		Options:     []corev1.PodDNSConfigOption{{Name: "ndots", Value: strp("5")}},
	})
	custom.Name, custom.UID = "custom", "e2e-custom"
	var confs []string
	for i, tc := range []struct {
		pod  *corev1.Pod
		want string
	}{
		{pod(corev1.DNSClusterFirst, nil), "search default.svc.cluster.local svc.cluster.local cluster.local corp.example\nnameserver " + complDNSIP + "\noptions ndots:5\n"},
		{custom, "search team.example default.svc.cluster.local corp.example\nnameserver " + complDNSIP + "\noptions ndots:5\n"},
	} {
		res, err := resolvconf.Compute(tc.pod, profile)
		if err != nil {
			t.Fatal(err)
		}
		conf := res.Config.Render()
		if conf != tc.want {
			t.Fatalf("pod %d: rendered resolv.conf:\n%s\nwant:\n%s", i, conf, tc.want)
		}
		confs = append(confs, conf)
	}

	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	objects := write("objects.yaml", complObjects)
	prof := write("profile.yaml", complProfile)
	cfg := func(extra string) string {
		return "apiVersion: poddns.io/v1alpha1\nkind: DNSDConfig\n" +
			"listen: \"" + complDNSIP + ":53\"\nudpSockets: 1\n" +
			"healthListen: \"" + complHealth + "\"\nmetricsListen: \"" + complMetrics + "\"\nlameduck: 0s\n" +
			"source: {file: " + objects + "}\n" +
			"forward: {upstreams: [\"" + complUpstreamIP + "\"], clientNetworks: [\"192.0.2.0/24\", \"127.0.0.0/8\"]}\n" +
			"completion:\n  nodeProfile: " + prof + "\n" + extra
	}
	hostNet, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	hostMnt, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	params := map[string]string{
		"hostnet": hostNet, "hostmnt": hostMnt,
		"dnsd": dnsd, "cfgon": write("on.yaml", cfg("")), "cfgoff": write("off.yaml", cfg("  enabled: false\n")),
		"resolvconf0": write("resolv0.conf", confs[0]), "resolvconf1": write("resolv1.conf", confs[1]),
		"hosts":    write("hosts", "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"),
		"nsswitch": write("nsswitch.conf", "hosts: files dns\n"),
		"ip":       tools.ip, "mount": tools.mount, "nsenter": nsenter, "unshare": tools.unshare, "sleep": sleep,
		"getent": tools.getent, "gai": gai,
	}
	var kv []string
	for k, v := range params {
		kv = append(kv, k+"="+v)
	}
	hostBefore := readEtc(t)

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, tools.unshare, "--net", "--mount", "--propagation", "private", "--",
		exe, "-test.run=^TestCompletionNamespaceHelper$", "-test.v", "-test.count=1", "-test.timeout="+(childTimeout-10*time.Second).String())
	cmd.Env = append(os.Environ(), completionEnv+"="+strings.Join(kv, ";"))
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	t.Logf("namespace helper:\n%s", buf.String())
	if ctx.Err() != nil {
		t.Fatalf("namespace helper killed after %s", childTimeout)
	}
	if err != nil {
		t.Fatalf("namespace helper: %v", err)
	}
	if !strings.Contains(buf.String(), "--- PASS: TestCompletionNamespaceHelper") || !strings.Contains(buf.String(), "completion helper ran") {
		t.Fatalf("namespace helper did not run and pass")
	}
	if after := readEtc(t); after != hostBefore {
		t.Fatalf("the host's /etc files changed while the helper ran:\nbefore %q\nafter  %q", hostBefore, after)
	}
}

// complRun is one lookup by one client in one mode.
type complRun struct {
	run      clientRun
	requests int // queries dnsd received during the lookup
	upstream []string
}

// TestCompletionNamespaceHelper is the namespace side of
// TestE2ECompletionRealClients; run any other way, it does nothing.
func TestCompletionNamespaceHelper(t *testing.T) {
	env := os.Getenv(completionEnv)
	if env == "" {
		return
	}
	p := map[string]string{}
	for kv := range strings.SplitSeq(env, ";") {
		k, v, _ := strings.Cut(kv, "=")
		p[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout-20*time.Second)
	defer cancel()

	netNS, _ := os.Readlink("/proc/self/ns/net")
	mntNS, _ := os.Readlink("/proc/self/ns/mnt")
	if netNS == "" || mntNS == "" || netNS == p["hostnet"] || mntNS == p["hostmnt"] {
		t.Fatalf("not in private namespaces (net %s, mnt %s): refusing to mount or listen", netNS, mntNS)
	}
	must := func(name string, args ...string) {
		t.Helper()
		if err := run(ctx, name, args...); err != nil {
			t.Fatal(err)
		}
	}
	must(p["ip"], "link", "set", "dev", "lo", "up")
	for src, dst := range map[string]string{p["hosts"]: "/etc/hosts", p["nsswitch"]: "/etc/nsswitch.conf"} {
		if _, err := os.Stat(dst); err == nil {
			must(p["mount"], "--bind", src, dst)
		}
	}
	must(p["ip"], "addr", "add", complDNSIP+"/32", "dev", "lo")

	// Each pod's network namespace, held by a sleep that dies with us, and
	// joined to ours by a veth pair: dnsd's address is on lo here, each pod
	// has a /32 route to it.
	podNet := func(i int, ip string) (inPod func(args ...string) []string) {
		holder := exec.Command(p["unshare"], "--net", "--", p["sleep"], "600")
		holder.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := holder.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = holder.Process.Kill(); _ = holder.Wait() })
		podNS := fmt.Sprintf("/proc/%d/ns/net", holder.Process.Pid)
		for deadline := time.Now().Add(10 * time.Second); ; {
			if ns, err := os.Readlink(podNS); err == nil && ns != netNS {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the pod's network namespace did not appear")
			}
			time.Sleep(20 * time.Millisecond)
		}
		inPod = func(args ...string) []string { return append([]string{p["nsenter"], "--net=" + podNS, "--"}, args...) }
		here, there := fmt.Sprintf("e2edns%d", i), fmt.Sprintf("e2epod%d", i)
		must(p["ip"], "link", "add", here, "type", "veth", "peer", "name", there)
		must(p["ip"], "link", "set", there, "netns", strconv.Itoa(holder.Process.Pid))
		must(p["ip"], "link", "set", here, "up")
		must(p["ip"], "route", "add", ip+"/32", "dev", here, "src", complDNSIP)
		for _, args := range [][]string{
			{p["ip"], "link", "set", "lo", "up"},
			{p["ip"], "addr", "add", ip + "/32", "dev", there},
			{p["ip"], "link", "set", there, "up"},
			{p["ip"], "route", "add", complDNSIP + "/32", "dev", there, "src", ip},
		} {
			a := inPod(args...)
			must(a[0], a[1:]...)
		}
		return inPod
	}

	up, err := startUpstream(ctx, net.JoinHostPort(complUpstreamIP, "53"))
	if err != nil {
		t.Fatal(err)
	}
	defer up.shutdown()

	// The lookups per pod, and the dnsd queries each must cost with
	// completion on and off (-1: not asserted, only compared).
	type lookup struct {
		name    string
		on, off int
	}
	pods := []struct {
		name, ip, conf string
		lookups        []lookup
	}{
		{"client", complPodIP, p["resolvconf0"], []lookup{
			{"api.example.com", 2, 10}, // 5 names × A/AAAA without completion
			{"web", 2, 2},              // first search domain
			{"web.default", 2, 4},      // second search domain
			{"host", 2, 8},             // fourth search domain (corp.example)
			{"v6only.example.com", 2, 10},
			{"nodata.example.com", -1, -1},
			{"web.default.svc.cluster.local", 2, 10},
			{"nothing.example.org", 10, 10},
		}},
		{"custom", complPod2IP, p["resolvconf1"], []lookup{
			{"api.example.com", 2, 8}, // 4 names × A/AAAA without completion
			{"web", 2, 4},             // second search domain
			{"host", 2, 6},            // third search domain
			{"v6only.example.com", 2, 8},
			{"nothing.example.org", 8, 8},
		}},
	}
	type key struct{ pod, name, client, mode string }
	results := map[key]complRun{}
	for i, pd := range pods {
		inPod := podNet(i, pd.ip)
		// Stacked over the previous pod's: the newest bind mount is seen.
		must(p["mount"], "--bind", pd.conf, "/etc/resolv.conf")
		want, _ := os.ReadFile(pd.conf)
		if got, err := os.ReadFile("/etc/resolv.conf"); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("/etc/resolv.conf reads %q (%v), want %q", got, err, want)
		}
		for _, mode := range []string{"on", "off"} {
			stop := startDNSD(t, ctx, p["dnsd"], p["cfg"+mode])
			for _, l := range pd.lookups {
				for _, client := range []string{"glibc", "musl"} {
					argv := []string{p["getent"], "ahosts", l.name}
					if client == "musl" {
						argv = []string{p["gai"], l.name}
					}
					argv = inPod(argv...)
					before := dnsRequests(t, ctx)
					up.log.reset()
					var r complRun
					r.run = clientRun{Client: client, Argv: argv}
					r.run.Stdout, r.run.Stderr, r.run.ExitCode, err = runClient(ctx, argv)
					if err != nil {
						t.Fatalf("%s %q: %v", client, argv, err)
					}
					r.requests = dnsRequests(t, ctx) - before
					r.upstream = queryStrings(up.log.snapshot())
					t.Logf("pod %s, completion %s, %s %s: %d dnsd queries, exit %d\n  output: %s\n  upstream saw: %q",
						pd.name, mode, client, l.name, r.requests, r.run.ExitCode, strings.ReplaceAll(strings.TrimSpace(r.run.Stdout), "\n", " | "), r.upstream)
					results[key{pd.name, l.name, client, mode}] = r
				}
			}
			stop()
		}
	}

	for _, pd := range pods {
		for _, l := range pd.lookups {
			for _, client := range []string{"glibc", "musl"} {
				on, off := results[key{pd.name, l.name, client, "on"}], results[key{pd.name, l.name, client, "off"}]
				label := fmt.Sprintf("pod %s: %s lookup of %q", pd.name, client, l.name)
				cOn, aOn, errOn := parseOutput(on.run)
				cOff, aOff, errOff := parseOutput(off.run)
				if errOn != nil || errOff != nil {
					t.Errorf("%s: unreadable output: %v / %v", label, errOn, errOff)
				}
				if on.run.ExitCode != off.run.ExitCode || cOn != cOff || !slices.Equal(aOn, aOff) {
					t.Errorf("%s differs with completion on (exit %d, %q, %q) and off (exit %d, %q, %q)",
						label, on.run.ExitCode, cOn, aOn, off.run.ExitCode, cOff, aOff)
				}
				if l.on >= 0 && on.requests != l.on {
					t.Errorf("%s with completion cost %d dnsd queries, want %d", label, on.requests, l.on)
				}
				if l.off >= 0 && off.requests != l.off {
					t.Errorf("%s without completion cost %d dnsd queries, want %d", label, off.requests, l.off)
				}
				var wantCanon string
				var wantAddrs []string
				switch l.name {
				case "api.example.com":
					wantCanon, wantAddrs = "api.example.com", []string{complExtV4, complExtV6}
				case "web", "web.default", "web.default.svc.cluster.local":
					wantCanon, wantAddrs = "web.default.svc.cluster.local", []string{"10.96.0.20"}
				case "host":
					wantCanon, wantAddrs = "host.corp.example", []string{complHostIP}
				case "v6only.example.com":
					wantCanon, wantAddrs = "v6only.example.com", []string{complExtV6}
				}
				if wantAddrs == nil {
					if on.run.ExitCode != 2 {
						t.Errorf("%s: exit %d, want 2 (not found)", label, on.run.ExitCode)
					}
					continue
				}
				slices.Sort(aOn)
				slices.Sort(wantAddrs)
				if on.run.ExitCode != 0 || cOn != wantCanon || !slices.Equal(aOn, wantAddrs) {
					t.Errorf("%s with completion: exit %d, %q, %q; want %q, %q", label, on.run.ExitCode, cOn, aOn, wantCanon, wantAddrs)
				}
			}
		}
	}
	t.Log("completion helper ran")
}

// startDNSD runs dnsd with a config and waits for /ready; stop ends it.
func startDNSD(t *testing.T, ctx context.Context, bin, cfg string) (stop func()) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(bin, "--config", cfg)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		})
	}
	t.Cleanup(stop)
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("dnsd exited: %v\n%s", err, out.String())
		default:
		}
		resp, err := c.Get("http://" + complHealth + "/ready")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return stop
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("dnsd not ready after 20s (last: %v)\n%s", err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dnsRequests is the sum of poddns_dns_requests_total over all its series.
func dnsRequests(t *testing.T, ctx context.Context) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+complMetrics+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: 3 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "poddns_dns_requests_total{") && !strings.HasPrefix(line, "poddns_dns_requests_total ") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		sum += v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return int(sum)
}

// The upstream's zone: api.example.com with an A and an AAAA record; every
// other name is NXDOMAIN, and dnsd's loop probes get an empty NOERROR.
type upstream struct {
	log     *queryLog
	servers listeners
}

func (u *upstream) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	if len(r.Question) != 1 {
		m.SetRcode(r, dns.RcodeFormatError)
		_ = w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	if dns.IsSubDomain("poddns-loop.", name) {
		_ = w.WriteMsg(m)
		return
	}
	u.log.add(query{Name: name, Type: dns.TypeToString[q.Qtype], Proto: w.LocalAddr().Network()})
	m.Authoritative = true
	soa := mustRR(". 30 IN SOA ns.e2e.test. hostmaster.e2e.test. 1 7200 1800 86400 30")
	switch {
	case name == externalAPI && q.Qtype == dns.TypeA:
		m.Answer = []dns.RR{mustRR(q.Name + " 300 IN A " + complExtV4)}
	case name == externalAPI && q.Qtype == dns.TypeAAAA:
		m.Answer = []dns.RR{mustRR(q.Name + " 300 IN AAAA " + complExtV6)}
	case name == externalAPI:
		m.Ns = []dns.RR{soa}
	case name == "host.corp.example." && q.Qtype == dns.TypeA:
		m.Answer = []dns.RR{mustRR(q.Name + " 300 IN A " + complHostIP)}
	case name == "v6only.example.com." && q.Qtype == dns.TypeAAAA:
		m.Answer = []dns.RR{mustRR(q.Name + " 300 IN AAAA " + complExtV6)}
	case name == "host.corp.example.", name == "v6only.example.com.", name == "nodata.example.com.":
		m.Ns = []dns.RR{soa}
	default:
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{soa}
	}
	_ = w.WriteMsg(m)
}

func startUpstream(ctx context.Context, addr string) (*upstream, error) {
	u := &upstream{log: &queryLog{}}
	servers, err := serveDNS(ctx, addr, u)
	if err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	u.servers = servers
	return u, nil
}

func (u *upstream) shutdown() { u.servers.shutdown() }
