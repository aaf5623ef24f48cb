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

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

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

// deployed is how deploy/overlays/node-local runs the node-local dnsd, so
// that the benchmark runs it the same way: the environment of its
// container (GOGC, and CONTAINER_MEMORY_LIMIT from its memory limit in
// bytes, as the downward API gives it: dnsd's soft memory limit, see
// pkg/memlimit) and its configuration file (cache, sockets, forwarding
// limits, static records...), over which nodeLocalConfig puts only the
// benchmark's addresses, API source and upstream.
type deployed struct {
	env    []string
	config map[string]any
}

// deployedNodeLocal reads the DaemonSet and configuration of
// deploy/overlays/node-local. An environment variable it does not know how
// to give (other than the node name, which the configuration sets) fails
// the benchmark rather than being left out.
func deployedNodeLocal(t *testing.T) deployed {
	t.Helper()
	root := testenv.Root(t)
	dir := filepath.Join(root, "deploy", "overlays", "node-local")
	var ds appsv1.DaemonSet
	readYAML(t, filepath.Join(dir, "daemonset.yaml"), &ds)
	var d deployed
	readYAML(t, filepath.Join(dir, "config.yaml"), &d.config)
	if len(ds.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("node-local DaemonSet: %d containers, want 1", len(ds.Spec.Template.Spec.Containers))
	}
	d.env = containerEnv(t, "node-local DaemonSet", ds.Spec.Template.Spec.Containers[0])
	// The static records the DaemonSet mounts, from the overlay itself.
	if st, ok := d.config["static"].([]any); ok {
		for _, b := range st {
			if m, ok := b.(map[string]any); ok && m["hostsFile"] != nil {
				m["hostsFile"] = filepath.Join(dir, "hosts")
			}
		}
	}
	return d
}

// deployedCentralEnv is the environment deploy/base/dnsd's Deployment
// gives the central dnsd (GOGC, CONTAINER_MEMORY_LIMIT), so that the
// benchmark measures the memory and CPU of dnsd as shipped.
func deployedCentralEnv(t *testing.T) []string {
	t.Helper()
	root := testenv.Root(t)
	var dep appsv1.Deployment
	readYAML(t, filepath.Join(root, "deploy", "base", "dnsd", "deployment.yaml"), &dep)
	if len(dep.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("dnsd Deployment: %d containers, want 1", len(dep.Spec.Template.Spec.Containers))
	}
	return containerEnv(t, "dnsd Deployment", dep.Spec.Template.Spec.Containers[0])
}

// containerEnv is c's environment as the kubelet would give it: values,
// a memory limit from the downward API in bytes. The node name is left out
// (the node-local configuration sets it); any other variable it does not
// know how to give fails the benchmark rather than being left out.
func containerEnv(t *testing.T, what string, c corev1.Container) []string {
	t.Helper()
	var env []string
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		case e.ValueFrom.ResourceFieldRef != nil && e.ValueFrom.ResourceFieldRef.Resource == "limits.memory":
			env = append(env, fmt.Sprintf("%s=%d", e.Name, c.Resources.Limits.Memory().Value()))
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName":
		default:
			t.Fatalf("%s: env %s: the benchmark cannot give it", what, e.Name)
		}
	}
	return env
}

// clone is a shallow copy of m (an empty map for nil).
func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err == nil {
		err = yaml.Unmarshal(b, into)
	}
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// nodeLocalConfig writes a node-local dnsd's configuration: the deployed
// one (dep) for node node, listening on ips (setup: whether it makes its
// interface and rules), with the kubelet configuration of the node
// (cluster DNS ipNodeLocal, the node's resolv.conf naming the test
// upstream: completion on), forwarding to the test upstream as the central
// dnsd does, pprof on pprof when not "". It returns the config file and its
// health/metrics address.
func nodeLocalConfig(t *testing.T, dep deployed, dir, name, kc, node, ips, pprof string, setup bool) (cfg, health string) {
	t.Helper()
	resolv := testenv.WriteFile(t, dir, "node-resolv.conf", "nameserver "+ipUpstream+"\n")
	kubelet := testenv.WriteFile(t, dir, "kubelet.yaml", "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"+
		"clusterDomain: cluster.local\nclusterDNS: ["+ipNodeLocal+"]\nresolvConf: "+resolv+"\n")
	health = freeLoopback(t)
	c := clone(dep.config)
	c["healthListen"], c["metricsListen"], c["lameduck"] = health, health, "0s"
	if pprof != "" {
		c["pprofListen"] = pprof
	}
	c["source"] = map[string]any{"kubeconfig": kc}
	sub := func(key string) map[string]any {
		m, _ := c[key].(map[string]any)
		m = clone(m)
		c[key] = m
		return m
	}
	fw := sub("forward")
	delete(fw, "resolvConf")
	fw["upstreams"] = []string{ipUpstream}
	fw["clientNetworks"] = []string{"127.0.0.0/8", "192.0.2.0/24", "10.0.0.0/8", "169.254.0.0/16"}
	nl := sub("nodeLocal")
	nl["ips"], nl["nodeName"], nl["kubeletConfig"], nl["resolvConf"] = strings.Split(ips, ","), node, kubelet, resolv
	nl["setupInterface"], nl["setupRules"], nl["interface"], nl["lockFile"] = setup, setup, "poddns0", filepath.Join(dir, name+".lock")
	b, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return testenv.WriteFile(t, dir, name+".yaml", string(b)), health
}

// startNodeLocal runs the node-local dnsd of nodeLocalNode on ipNodeLocal,
// pinned to CPU 0 as the other servers, with its interface and NOTRACK
// rules, and adds kube-proxy's DNAT of ipClusterDNS to the central dnsd
// (prerouting: the pod's view through the central server).
func startNodeLocal(t *testing.T, tl *tools, dep deployed, dir, kc, pprof string) *server {
	t.Helper()
	cfg, health := nodeLocalConfig(t, dep, dir, "dnsd-nodelocal", kc, nodeLocalNode, ipNodeLocal, pprof, true)
	s := &server{name: "dnsd-nodelocal", ip: ipNodeLocal}
	s.p = startProcess(t, "dnsd-nodelocal", dep.env, tl.taskset, "-c", "0", tl.dnsd, "--config", cfg)
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

// watcherCost is the API server's cost per node-local watcher.
type watcherCost struct {
	// Slope is the CPU per instance (ms of CPU per second): the median of
	// SlopeRounds, each round's least-squares slope over its levels.
	Slope       *float64  `json:"apiserver_cpu_ms_per_s_per_watcher,omitempty"`
	SlopeRounds []float64 `json:"apiserver_cpu_ms_per_s_per_watcher_rounds,omitempty"`
	// MicrosPerEvent is the CPU per watch event sent (µs): per round, the
	// CPU added from the lowest level to the highest over the watch events
	// added; the median of the rounds.
	MicrosPerEvent *float64 `json:"apiserver_cpu_us_per_watch_event,omitempty"`
	// LevelCPURounds are, per level (in the order of the levels), the API
	// server's CPU in each round's window (ms per wall second).
	LevelCPURounds [][]float64 `json:"apiserver_cpu_ms_per_s_rounds,omitempty"`
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

// apiWatchers measures the API server with levels node-local instances,
// rounds times, the levels ascending in odd rounds and descending in even
// ones (0 10 20, 20 10 0, 0 10 20: what drifts during the step weighs on
// both ends alike): at each level a churn window of seconds (Service and
// EndpointSlice annotation updates at churnRate writes/s) with the API
// server's CPU (its process's, from /proc) and watch metrics. Instance k
// serves node-(k+1) on 192.0.2.(100+k) without touching the network
// (setupInterface and setupRules false), configured and run as the
// deployed DaemonSet (dep; it watches Services, EndpointSlices and
// Namespaces cluster-wide, its node's Pods); instances are started to go
// up a level and stopped to go down.
func apiWatchers(t *testing.T, tl *tools, dep deployed, dir, kc, certDir string, cs kubernetes.Interface, sc scale, levels []int, rounds, seconds int) ([]benchresults.WatcherLevel, watcherCost) {
	t.Helper()
	if len(levels) == 0 {
		return nil, watcherCost{}
	}
	const churnRate = 40
	var running []*proc
	setLevel := func(n int) {
		for k := len(running); k < n; k++ {
			ip := fmt.Sprintf("192.0.2.%d", 100+k)
			must(t, tl.ip, "addr", "replace", ip+"/32", "dev", "lo") // replace: an earlier scale or round added it
			name := fmt.Sprintf("watcher-%d", k)
			sub := filepath.Join(dir, name)
			if err := os.MkdirAll(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			cfg, health := nodeLocalConfig(t, dep, sub, name, kc, fmt.Sprintf("node-%d", (k+1)%max(1, sc.Pods/podsPerNode)), ip, "", false)
			p := startProcess(t, name, dep.env, tl.taskset, "-c", "0", tl.dnsd, "--config", cfg)
			waitHTTP(t, p, "http://"+health+"/ready", 5*time.Minute)
			running = append(running, p)
		}
		for len(running) > n {
			running[len(running)-1].stop()
			running = running[:len(running)-1]
		}
	}
	out := make([]benchresults.WatcherLevel, len(levels))
	cpuRounds := make([][]float64, len(levels)) // per level, per round
	events := make([][]float64, len(levels))    // per level, per round
	churned := make([][]float64, len(levels))
	var cost watcherCost
	var perEvent []float64
	for r := range rounds {
		order := make([]int, len(levels))
		for i := range order {
			order[i] = i
			if r%2 == 1 {
				order[i] = len(levels) - 1 - i
			}
		}
		for _, i := range order {
			n := levels[i]
			lv := &out[i]
			lv.Instances = f(float64(n))
			pid := apiServerPID(t, certDir)
			c0, up := cpuSeconds(pid), n > len(running)
			setLevel(n)
			if up && lv.StartCPUSeconds == nil {
				lv.StartCPUSeconds = f(round(cpuSeconds(pid)-c0, 2))
			}
			time.Sleep(5 * time.Second) // the last lists (or the stopped watches) settle
			before := apiMetrics(t, cs, "apiserver_watch_events_total")
			c1, t1 := cpuSeconds(pid), time.Now()
			writes := churn(t, cs, sc, churnRate, time.Duration(seconds)*time.Second)
			el := time.Since(t1).Seconds()
			cpu := cpuSeconds(pid) - c1
			after := apiMetrics(t, cs, "apiserver_watch_events_total", `apiserver_longrunning_requests{verb="WATCH"}`, "apiserver_registered_watchers")
			cpuRounds[i] = append(cpuRounds[i], round(cpu*1000/el, 1))
			churned[i] = append(churned[i], round(float64(writes)/el, 1))
			ev := 0.0
			if a, b := after["apiserver_watch_events_total"], before["apiserver_watch_events_total"]; a != nil && b != nil {
				ev = round((*a-*b)/el, 1)
			}
			events[i] = append(events[i], ev)
			lv.WatchRequests = after[`apiserver_longrunning_requests{verb="WATCH"}`]
			lv.RegisteredWatchers = after["apiserver_registered_watchers"]
			rss, _ := procMemKB(pid)
			lv.RSSMB = mb(rss)
			t.Logf("round %d: API server with %d node-local watchers: %v ms CPU/s at %v writes/s, %v watch events/s, %v watch requests, %v registered watchers, RSS %v MB (load %s)",
				r+1, n, cpuRounds[i][r], churned[i][r], ev, deref(lv.WatchRequests), deref(lv.RegisteredWatchers), deref(lv.RSSMB), loadAverage())
		}
		// This round's slope (least squares) and CPU per watch event.
		var sx, sy, sxx, sxy, k float64
		for i := range out {
			x, y := float64(levels[i]), cpuRounds[i][r]
			sx, sy, sxx, sxy, k = sx+x, sy+y, sxx+x*x, sxy+x*y, k+1
		}
		if d := k*sxx - sx*sx; d != 0 {
			cost.SlopeRounds = append(cost.SlopeRounds, round((k*sxy-sx*sy)/d, 3))
		}
		lo, hi := 0, len(levels)-1
		if de := events[hi][r] - events[lo][r]; de > 0 {
			perEvent = append(perEvent, round((cpuRounds[hi][r]-cpuRounds[lo][r])*1000/de, 2))
		}
	}
	setLevel(0)
	for i := range out {
		out[i].CPUMillisPerSecond = f(median(cpuRounds[i]))
		out[i].WatchEventsPerSecond = f(median(events[i]))
		out[i].ChurnPerSecond = f(median(churned[i]))
	}
	cost.LevelCPURounds = cpuRounds
	if len(cost.SlopeRounds) > 0 {
		cost.Slope = f(median(cost.SlopeRounds))
	}
	if len(perEvent) > 0 {
		cost.MicrosPerEvent = f(median(perEvent))
	}
	t.Logf("API server per node-local watcher: %v ms CPU/s (rounds %v), %v µs per watch event (rounds %v)", deref(cost.Slope), cost.SlopeRounds, deref(cost.MicrosPerEvent), perEvent)
	return out, cost
}

// loadAverage is the machine's 1-, 5- and 15-minute load averages.
func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	fs := strings.Fields(string(b))
	if len(fs) < 3 {
		return "?"
	}
	return strings.Join(fs[:3], " ")
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
	writes, k, stamp := 0, 0, time.Now().UnixNano()
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
			// Unique over every call: a patch that changes nothing is not
			// written, and no watcher hears of it.
			patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{"bench/churn":"%d-%d"}}}`, stamp, i))
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

// TestDeployedEnv: the benchmark runs the central and the node-local dnsd
// with the GOGC deploy/ ships and the soft memory limit's source in bytes
// (the downward API's form), not with Go's defaults.
func TestDeployedEnv(t *testing.T) {
	for name, env := range map[string][]string{"central": deployedCentralEnv(t), "node-local": deployedNodeLocal(t).env} {
		vars := map[string]string{}
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			vars[k] = v
		}
		if vars["GOGC"] == "" {
			t.Errorf("%s: no GOGC in %q", name, env)
		}
		if n, err := strconv.ParseInt(vars["CONTAINER_MEMORY_LIMIT"], 10, 64); err != nil || n < 16<<20 {
			t.Errorf("%s: CONTAINER_MEMORY_LIMIT %q is not a memory limit in bytes", name, vars["CONTAINER_MEMORY_LIMIT"])
		}
	}
}
