package bench

// The node-local scenarios of issue 11: dnsd as one node's server (its
// node's Pods only, completion from the node's kubelet configuration, its
// own interface and NOTRACK rules), measured beside the central servers in
// the same run; a pod's view through it and through kube-proxy's DNAT to
// the central dnsd; the API server's cost of 0, 10 and 20 node-local
// watchers.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/poddns/poddns/internal/benchresults"
	"github.com/poddns/poddns/internal/testenv"
)

// Addresses of the node-local scenarios, inside the benchmark's namespace.
const (
	ipNodeLocal  = "169.254.20.10" // the node-local dnsd, on its own poddns0
	ipClusterDNS = "10.96.0.10"    // kube-proxy's DNAT to the central dnsd (ipDnsd)
)

// WatchersEnv lists the numbers of node-local instances of the API-server
// cost scenario (default "0,10,20"; "" or "none" skips it).
const WatchersEnv = "PODDNS_BENCH_WATCHERS"

// nodeLocalConfig writes a node-local dnsd's configuration: node node,
// listening on ips (setup: whether it makes its interface and rules), the
// kubelet configuration of the node (cluster DNS ipNodeLocal, the node's
// resolv.conf naming the test upstream: completion on), forwarding to the
// test upstream as the central dnsd does. It returns the config file and
// its health/metrics address.
func nodeLocalConfig(t *testing.T, dir, name, kc, node, ips string, setup bool) (cfg, health string) {
	t.Helper()
	resolv := testenv.WriteFile(t, dir, "node-resolv.conf", "nameserver "+ipUpstream+"\n")
	kubelet := testenv.WriteFile(t, dir, "kubelet.yaml", "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"+
		"clusterDomain: cluster.local\nclusterDNS: ["+ipNodeLocal+"]\nresolvConf: "+resolv+"\n")
	health = freeLoopback(t)
	s := strconv.FormatBool(setup)
	cfg = testenv.WriteFile(t, dir, name+".yaml", "apiVersion: poddns.io/v1alpha1\nkind: DNSDConfig\n"+
		"udpSockets: 1\nhealthListen: \""+health+"\"\nmetricsListen: \""+health+"\"\nlameduck: 0s\n"+
		"source: {kubeconfig: "+kc+"}\n"+
		"forward: {upstreams: [\""+ipUpstream+"\"], clientNetworks: [\"127.0.0.0/8\", \"192.0.2.0/24\", \"10.0.0.0/8\", \"169.254.0.0/16\"]}\n"+
		"nodeLocal:\n  ips: ["+ips+"]\n  nodeName: "+node+"\n  kubeletConfig: "+kubelet+"\n"+
		"  setupInterface: "+s+"\n  setupRules: "+s+"\n  interface: poddns0\n  lockFile: "+filepath.Join(dir, name+".lock")+"\n")
	return cfg, health
}

// startNodeLocal runs the node-local dnsd of nodeLocalNode on ipNodeLocal,
// pinned to CPU 0 as the other servers, with its interface and NOTRACK
// rules, and adds kube-proxy's DNAT of ipClusterDNS to the central dnsd
// (prerouting: the pod's view through the central server).
func startNodeLocal(t *testing.T, tl *tools, dir, kc string) *server {
	t.Helper()
	cfg, health := nodeLocalConfig(t, dir, "dnsd-nodelocal", kc, nodeLocalNode, ipNodeLocal, true)
	s := &server{name: "dnsd-nodelocal", ip: ipNodeLocal}
	s.p = startProcess(t, "dnsd-nodelocal", nil, tl.taskset, "-c", "0", tl.dnsd, "--config", cfg)
	waitHTTP(t, s.p, "http://"+health+"/ready", 5*time.Minute)
	rules := testenv.WriteFile(t, dir, "kube-proxy.nft", `table ip kube-proxy {
	chain prerouting { type nat hook prerouting priority -100; ip daddr `+ipClusterDNS+` meta l4proto { tcp, udp } th dport 53 dnat to `+ipDnsd+`; }
}
`)
	must(t, tl.nft, "-f", rules)
	return s
}

// podView runs dnsperf from the pod namespace podNS against the node-local
// dnsd and against the cluster DNS IP (kube-proxy's DNAT to the central
// dnsd): saturation A B A B for rounds, then latency at a fixed rate (half
// the slower one's median, the same for both) for per seconds, for the
// cluster and the cached external query files. Rows: scenario
// "pod-<scenario>", server dnsd-nodelocal and "dnsd-dnat".
func podView(t *testing.T, tl *tools, podNS string, qf map[string]string, rounds, seconds, per int, row func(server, scenario string) *benchresults.DNSResult) map[string][]float64 {
	t.Helper()
	paths := []struct{ name, ip string }{{"dnsd-nodelocal", ipNodeLocal}, {"dnsd-dnat", ipClusterDNS}}
	perRound := map[string][]float64{}
	for _, sn := range []string{"cluster", "external-cached"} {
		warm := func(ip string) {
			if sn == "external-cached" {
				runDnsperfIn(t, tl, podNS, ip, qf[sn], 30, 0, false, 1)
			}
		}
		for r := range rounds {
			for _, p := range paths {
				warm(p.ip)
				pr := runDnsperfIn(t, tl, podNS, p.ip, qf[sn], seconds, 0, false, 0)
				if pr.completed == 0 {
					t.Fatalf("pod view of %s through %s (%s): no query answered (sent %d)", sn, p.name, p.ip, pr.sent)
				}
				k := p.name + "/pod-" + sn
				perRound[k] = append(perRound[k], round(pr.qps, 0))
				t.Logf("round %d pod-%-16s %-16s %8.0f QPS (sent %d, lost %d)", r+1, sn, p.name, pr.qps, pr.sent, pr.lost)
			}
		}
		low := 0.0
		for _, p := range paths {
			rw := row(p.name, "pod-"+sn)
			rw.QPSRounds = perRound[p.name+"/pod-"+sn]
			rw.QPS = f(median(rw.QPSRounds))
			if low == 0 || *rw.QPS < low {
				low = *rw.QPS
			}
		}
		rate := max(int(low/2/1000)*1000, 1000)
		if low < 2000 {
			rate = max(int(low/2), 100)
		}
		for _, p := range paths {
			warm(p.ip)
			pr := runDnsperfIn(t, tl, podNS, p.ip, qf[sn], per, rate, true, 0)
			rw := row(p.name, "pod-"+sn)
			rw.FixedRateQPS = f(float64(rate))
			rw.P50, rw.P99, rw.P999 = pct(pr.lat, 0.5), pct(pr.lat, 0.99), pct(pr.lat, 0.999)
			t.Logf("latency pod-%-16s %-16s at %d QPS for %ds: %d answers, lost %d, p50 %v p99 %v p99.9 %v ms",
				sn, p.name, rate, per, len(pr.lat), pr.lost, deref(rw.P50), deref(rw.P99), deref(rw.P999))
		}
	}
	return perRound
}

// apiServerPID finds the benchmark's kube-apiserver by its certificate
// directory (other API servers may run on the machine).
func apiServerPID(t *testing.T, certDir string) int {
	t.Helper()
	return controlPlanePID(t, "kube-apiserver", certDir)
}

// controlPlanePID finds the process of the binary name whose command line
// holds marker (a directory of the benchmark's own).
func controlPlanePID(t *testing.T, name, marker string) int {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmd), "\x00")
		if filepath.Base(args[0]) == name && bytes.Contains(cmd, []byte(marker)) {
			return pid
		}
	}
	t.Fatalf("no %s with %s in its command line", name, marker)
	return 0
}

// cpuSeconds is pid's user + system CPU time.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command (which may hold spaces): utime is the 14th
	// field of the line, the 12th after ") ".
	s := string(b)
	fs := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fs) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(fs[11], 64)
	st, _ := strconv.ParseFloat(fs[12], 64)
	return (u + st) / 100 // USER_HZ
}

// apiMetrics sums the samples of each named metric (with a label filter
// when the name has one, e.g. apiserver_longrunning_requests{verb="WATCH").
func apiMetrics(t *testing.T, cs kubernetes.Interface, names ...string) map[string]*float64 {
	t.Helper()
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(t.Context())
	if err != nil {
		t.Fatalf("API server /metrics: %v", err)
	}
	out := map[string]*float64{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		for _, n := range names {
			metric, filter, _ := strings.Cut(n, "{")
			if !strings.HasPrefix(line, metric+"{") && !strings.HasPrefix(line, metric+" ") {
				continue
			}
			if filter != "" && !strings.Contains(line, strings.TrimSuffix(filter, "}")) {
				continue
			}
			fs := strings.Fields(line)
			v, err := strconv.ParseFloat(fs[len(fs)-1], 64)
			if err != nil {
				continue
			}
			if out[n] == nil {
				out[n] = f(0)
			}
			*out[n] += v
		}
	}
	return out
}

// apiWatchers measures the API server with levels node-local instances
// (ascending; each level adds instances to the last): for each, the CPU of
// starting the new ones, then a churn window of seconds (Service and
// EndpointSlice annotation updates at 20 writes/s) with the API server's
// CPU and watch metrics. Instance k serves node-(k+1) on 192.0.2.(100+k)
// without touching the network (setupInterface and setupRules false), as
// the deployed DaemonSet watches (Services, EndpointSlices, Namespaces, its
// node's Pods). It returns the levels and the CPU slope per instance (ms
// per second, least squares over the levels).
func apiWatchers(t *testing.T, tl *tools, dir, kc, certDir string, cs kubernetes.Interface, sc scale, levels []int, seconds int) ([]benchresults.WatcherLevel, *float64) {
	t.Helper()
	var out []benchresults.WatcherLevel
	started := 0
	const writesPerSecond = 20
	for _, n := range levels {
		pid := apiServerPID(t, certDir)
		c0 := cpuSeconds(pid)
		for ; started < n; started++ {
			ip := fmt.Sprintf("192.0.2.%d", 100+started)
			must(t, tl.ip, "addr", "replace", ip+"/32", "dev", "lo") // replace: an earlier scale of the run added it
			name := fmt.Sprintf("watcher-%d", started)
			sub := filepath.Join(dir, name)
			if err := os.MkdirAll(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			cfg, health := nodeLocalConfig(t, sub, name, kc, fmt.Sprintf("node-%d", (started+1)%max(1, sc.Pods/podsPerNode)), ip, false)
			p := startProcess(t, name, nil, tl.taskset, "-c", "0", tl.dnsd, "--config", cfg)
			waitHTTP(t, p, "http://"+health+"/ready", 5*time.Minute)
		}
		lv := benchresults.WatcherLevel{Instances: f(float64(n))}
		if n > 0 {
			lv.StartCPUSeconds = f(round(cpuSeconds(pid)-c0, 2))
		}
		time.Sleep(2 * time.Second) // the last lists settle
		before := apiMetrics(t, cs, "apiserver_watch_events_total")
		c1, t1 := cpuSeconds(pid), time.Now()
		writes := churn(t, cs, sc, writesPerSecond, time.Duration(seconds)*time.Second)
		el := time.Since(t1).Seconds()
		cpu := cpuSeconds(pid) - c1
		after := apiMetrics(t, cs, "apiserver_watch_events_total", `apiserver_longrunning_requests{verb="WATCH"}`, "apiserver_registered_watchers")
		lv.CPUMillisPerSecond = f(round(cpu*1000/el, 1))
		lv.ChurnPerSecond = f(round(float64(writes)/el, 1))
		if a, b := after["apiserver_watch_events_total"], before["apiserver_watch_events_total"]; a != nil && b != nil {
			lv.WatchEventsPerSecond = f(round((*a-*b)/el, 1))
		}
		lv.WatchRequests = after[`apiserver_longrunning_requests{verb="WATCH"}`]
		lv.RegisteredWatchers = after["apiserver_registered_watchers"]
		rss, _ := procMemKB(pid)
		lv.RSSMB = mb(rss)
		t.Logf("API server with %d node-local watchers: start %v CPU-s, %v ms CPU/s at %v writes/s, %v watch events/s, %v watch requests, %v registered watchers, RSS %v MB",
			n, deref(lv.StartCPUSeconds), deref(lv.CPUMillisPerSecond), deref(lv.ChurnPerSecond), deref(lv.WatchEventsPerSecond), deref(lv.WatchRequests), deref(lv.RegisteredWatchers), deref(lv.RSSMB))
		out = append(out, lv)
	}
	// Least-squares slope of CPU over instances.
	var sx, sy, sxx, sxy, k float64
	for _, lv := range out {
		x, y := *lv.Instances, *lv.CPUMillisPerSecond
		sx, sy, sxx, sxy, k = sx+x, sy+y, sxx+x*x, sxy+x*y, k+1
	}
	if k < 2 || k*sxx-sx*sx == 0 {
		return out, nil
	}
	return out, f(round((k*sxy-sx*sy)/(k*sxx-sx*sx), 3))
}

// churn updates an annotation of ClusterIP Services and of headless
// Services' EndpointSlices in turn, at rate writes per second for d, and
// returns the writes made.
func churn(t *testing.T, cs kubernetes.Interface, sc scale, rate int, d time.Duration) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	var wg sync.WaitGroup
	var mu sync.Mutex
	writes, k := 0, 0
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return writes
		case <-tick.C:
		}
		i := k
		k++
		wg.Add(1)
		go func() {
			defer wg.Done()
			patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{"bench/churn":"%d"}}}`, i))
			var err error
			if i%2 == 0 {
				n := (i / 2) % sc.Services
				_, err = cs.CoreV1().Services(nsName(n%sc.Namespaces)).Patch(ctx, fmt.Sprintf("svc-%d", n), "application/merge-patch+json", patch, metav1.PatchOptions{})
			} else {
				n := (i / 2) % sc.Headless
				_, err = cs.DiscoveryV1().EndpointSlices(nsName(n%sc.Namespaces)).Patch(ctx, fmt.Sprintf("hl-%d-1", n), "application/merge-patch+json", patch, metav1.PatchOptions{})
			}
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				writes++
			} else if ctx.Err() == nil && !strings.Contains(err.Error(), "would exceed context deadline") {
				t.Logf("churn write: %v", err)
			}
		}()
	}
}

// watcherLevels reads WatchersEnv.
func watcherLevels(t *testing.T) []int {
	v, ok := os.LookupEnv(WatchersEnv)
	if !ok {
		v = "0,10,20"
	}
	if v == "" || v == "none" {
		return nil
	}
	var out []int
	for _, s := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 0 || n > 50 || (len(out) > 0 && n <= out[len(out)-1]) {
			t.Fatalf("%s=%q: want ascending numbers of instances in [0, 50]", WatchersEnv, v)
		}
		out = append(out, n)
	}
	return out
}

// nodeLocalPods is the number of Pods on nodeLocalNode (the fill's share
// plus the bench-walker).
func nodeLocalPods(sc scale) int {
	n := 0
	for i := range sc.Pods {
		if podNode(sc, i) == nodeLocalNode {
			n++
		}
	}
	return n + 1
}
