package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/poddns/poddns/internal/testenv"
)

// FillEnv names a scale to fill and nothing else (TestBenchFill, `make
// bench-fill`): the fill's time and where it goes, without the servers.
const FillEnv = "PODDNS_BENCH_FILL"

// TestBenchFill is `make bench-fill`: the control plane of `make bench-dns`
// filled to the scale FillEnv names, then the fill's rate, the CPU time of
// the API server, etcd and the writers, and the API server's mean request
// latency per verb and resource logged. Nothing is written to
// bench/results: a fill is not a benchmark of dnsd.
func TestBenchFill(t *testing.T) {
	name := os.Getenv(FillEnv)
	if name == "" {
		t.Skipf("a benchmark, not a test: run `make bench-fill` (sets %s)", FillEnv)
	}
	sc, ok := scales[name]
	if !ok {
		t.Fatalf("%s=%q: not a scale", FillEnv, name)
	}
	env, cs, certDir, etcdDir := startControlPlane(t)
	fillCPU := fillCPUStart(t, certDir, etcdDir)
	_, st := fill(t, cs, sc)
	st.CPUSeconds = fillCPU()
	logFillCPU(t, st)
	logFillMetrics(t, env, cs)
}

// startControlPlane starts the benchmark's kube-apiserver and etcd with
// testenv.Bulk, etcd's data on tmpfs when there is one (the data is thrown
// away at the end), and returns the environment, a BulkClient, and the
// API server's certificate and etcd's data directories (which find their
// processes, and restart the API server in place).
func startControlPlane(t *testing.T) (*testenv.Env, kubernetes.Interface, string, string) {
	t.Helper()
	certDir := t.TempDir()
	etcdDir, err := os.MkdirTemp("/dev/shm", "poddns-bench-etcd-")
	if err != nil {
		etcdDir = t.TempDir()
	} else {
		t.Cleanup(func() { _ = os.RemoveAll(etcdDir) }) // runs after the control plane stops
	}
	env := testenv.Start(t, testenv.Bulk(t), func(e *envtest.Environment) {
		// Restartable in place (see test/integration/dns_apirestart_test.go).
		e.ControlPlane.GetAPIServer().CertDir = certDir
		// Long enough for a loaded machine to stop it with every watcher
		// of the node-local step connected.
		e.ControlPlaneStopTimeout = 20 * time.Second
		if e.ControlPlane.Etcd == nil {
			e.ControlPlane.Etcd = &envtest.Etcd{}
		}
		e.ControlPlane.Etcd.DataDir = etcdDir
	})
	return env, testenv.BulkClient(t, env.Config), certDir, etcdDir
}

// logFillCPU logs the fill's CPU time per process and their sum over two
// cores (the fill's time on an idle machine).
func logFillCPU(t *testing.T, st fillStats) {
	t.Helper()
	c := st.CPUSeconds
	t.Logf("fill CPU: %v s (%.0f s on two idle cores)", c, (c["kube-apiserver"]+c["etcd"]+c["writers"])/2)
}

// logFillMetrics logs, from the API server's /metrics, its mean request
// latency and count per verb and resource (apiserver_request_duration_seconds)
// and its etcd client's per operation and type (etcd_request_duration_seconds),
// and from etcd's, its WAL fsync and backend commit latency: where a write
// of the fill waits.
func logFillMetrics(t *testing.T, env *testenv.Env, cs kubernetes.Interface) {
	t.Helper()
	b, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(t.Context())
	if err != nil {
		t.Logf("API server metrics: %v", err)
	}
	logMeans(t, b, 100, "apiserver_request_duration_seconds", "etcd_request_duration_seconds")
	u := *env.Environment.ControlPlane.Etcd.URL
	u.Path = "/metrics"
	resp, err := http.Get(u.String())
	if err != nil {
		t.Logf("etcd metrics: %v", err)
		return
	}
	defer resp.Body.Close()
	b, _ = io.ReadAll(resp.Body)
	logMeans(t, b, 1, "etcd_disk_wal_fsync_duration_seconds", "etcd_disk_backend_commit_duration_seconds")
}

// logMeans logs the mean of each Prometheus summary or histogram of names
// in the text exposition b, per verb, resource, subresource, operation and
// type label (the others summed over), where it counted at least min
// observations.
func logMeans(t *testing.T, b []byte, min float64, names ...string) {
	t.Helper()
	type agg struct{ sum, count float64 }
	m := map[string]*agg{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, rest, ok := "", "", false
		for _, n := range names {
			if rest, ok = strings.CutPrefix(line, n); ok {
				name = n
				break
			}
		}
		if !ok {
			continue
		}
		isSum := strings.HasPrefix(rest, "_sum")
		if !isSum && !strings.HasPrefix(rest, "_count") {
			continue
		}
		key := []string{strings.TrimSuffix(name, "_duration_seconds")}
		labels, value := "", rest
		if i, j := strings.IndexByte(rest, '{'), strings.LastIndexByte(rest, '}'); i >= 0 && j > i {
			labels, value = rest[i+1:j], rest[j+1:]
		} else {
			value = strings.TrimLeft(rest, "_sumcount")
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(labels, ",") {
			k, val, _ := strings.Cut(l, "=")
			if val = strings.Trim(val, `"`); val != "" && (k == "verb" || k == "resource" || k == "subresource" || k == "operation" || k == "type") {
				key = append(key, val)
			}
		}
		k := strings.Join(key, " ")
		if m[k] == nil {
			m[k] = &agg{}
		}
		if isSum {
			m[k].sum += v
		} else {
			m[k].count += v
		}
	}
	keys := make([]string, 0, len(m))
	for k, a := range m {
		if a.count >= min {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("latency %s: %.0f, mean %.3f ms", k, m[k].count, 1000*m[k].sum/m[k].count)
	}
}

// scale is one cluster size of the benchmark.
type scale struct {
	Name       string
	Services   int // ClusterIP Services
	Headless   int // headless Services, 3 ready endpoints each (one EndpointSlice)
	Pods       int // Pods with status.podIP set
	Namespaces int
}

// scales are the sizes PODDNS_BENCH_SCALE selects. default is issue 7's;
// large is Kubernetes' published limits (issue 15: 10k Services, 1k of
// them headless, so 9k ClusterIP Services, and 150k Pods); small has 1k
// ClusterIP Services; tiny is for trying the harness out.
var scales = map[string]scale{
	"tiny":    {"tiny", 100, 10, 300, 4},
	"small":   {"small", 1000, 100, 5000, 20},
	"default": {"default", 10000, 1000, 50000, 100},
	"large":   {"large", 9000, 1000, 150000, 100},
}

// Bench namespaces, Services and Pods are named so that the query files
// can be written from the indexes alone.
func nsName(i int) string { return fmt.Sprintf("ns-%d", i) }

// podIP is the address of Pod i: 10.64.0.0/10 counted up from 10.64.0.1.
func podIP(i int) string {
	a := netip.MustParseAddr("10.64.0.1").As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += uint32(i)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
}

// serviceIP is the ClusterIP of svc-i, set in the Service rather than
// allocated: the API server allocates ClusterIPs several times slower under
// concurrent creates (10.100.0.0/16 and up, inside the test API server's
// 10.96.0.0/12 and off the addresses it allocates first).
func serviceIP(i int) string {
	v := uint32(10)<<24 | uint32(100)<<16 + uint32(i+1)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
}

// endpointIP is the address of endpoint k of headless Service i (10.32.0.0/11).
func endpointIP(i, k int) string {
	v := uint32(10)<<24 | uint32(32)<<16 + uint32(i*3+k+1)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
}

// filled is what the fill created that the queries need.
type filled struct {
	clusterIPs []string // of svc-i
}

// fill creates the namespaces, then at once the ClusterIP Services, the
// headless Services with their EndpointSlices, and the Pods (status.podIP
// set through the status subresource), each kind from a bounded pool of
// concurrent writers; the control plane runs with testenv.Bulk and cs is
// its testenv.BulkClient. The Pods (two writes each) take longest; the
// ClusterIP Services cost the API server more each than the last (its
// ClusterIP allocator counts every allocated address on every allocation),
// so they start with the Pods rather than before them.
func fill(t *testing.T, cs kubernetes.Interface, sc scale) (filled, fillStats) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), fillLimit)
	defer cancel()
	start := time.Now()
	kinds := testenv.NewFill(t, ctx)
	kinds.Note = func() string { return "load " + loadAvg() }
	kinds.Failed = cancel // the fill failed: stop the other kinds too
	// async creates a kind alongside the others, logging its progress.
	async := func(what string, n, workers int, fn func(ctx context.Context, i int) error) {
		var done atomic.Int64
		kinds.Go(what, n, workers, func(ctx context.Context, i int) error {
			err := fn(ctx, i)
			if err == nil {
				if d := done.Add(1); d%max(1000, int64(n)/fillProgressSteps) == 0 && d < int64(n) {
					t.Logf("fill: %d/%d %s after %s; load %s", d, n, what, time.Since(start).Round(time.Second), loadAvg())
				}
			}
			return err
		})
	}
	kinds.Step("namespaces", sc.Namespaces, 8, func(ctx context.Context, i int) error {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nsName(i)}}, metav1.CreateOptions{})
		return err
	})
	var fl filled
	fl.clusterIPs = make([]string, sc.Services)
	port := []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}
	async("ClusterIP Services", sc.Services, 16, func(ctx context.Context, i int) error {
		err := createService(ctx, cs, nsName(i%sc.Namespaces), fmt.Sprintf("svc-%d", i), serviceIP(i), port)
		if err == nil {
			fl.clusterIPs[i] = serviceIP(i)
		}
		return err
	})
	async("headless Services and EndpointSlices", sc.Headless, 8, func(ctx context.Context, i int) error {
		return testenv.CreateHeadless(ctx, cs, nsName(i%sc.Namespaces), fmt.Sprintf("hl-%d", i), []string{endpointIP(i, 0), endpointIP(i, 1), endpointIP(i, 2)})
	})
	async("Pods (create, then status.podIP)", sc.Pods, 48, func(ctx context.Context, i int) error {
		return createPod(ctx, cs, nsName(i%sc.Namespaces), fmt.Sprintf("pod-%d", i), podIP(i), podNode(sc, i))
	})
	kinds.Wait()
	took := time.Since(start)
	objects := sc.Namespaces + sc.Services + 2*sc.Headless + sc.Pods
	writes := objects + sc.Pods // every Pod is written twice
	st := fillStats{Seconds: round(took.Seconds(), 1), ObjectsPerSecond: round(float64(objects)/took.Seconds(), 1),
		WritesPerSecond: round(float64(writes)/took.Seconds(), 1), LoadAvg: loadAvg()}
	t.Logf("fill: %s scale (%d Services, %d headless, %d Pods in %d namespaces: %d objects, %d writes) in %s: %.0f objects/s, %.0f writes/s; load %s",
		sc.Name, sc.Services, sc.Headless, sc.Pods, sc.Namespaces, objects, writes, took.Round(time.Millisecond), st.ObjectsPerSecond, st.WritesPerSecond, st.LoadAvg)
	return fl, st
}

// createService creates the Service ns/name with ip as its ClusterIP. A
// retried create whose first attempt did land (the client gave up waiting
// for an answer the API server then wrote) is refused: AlreadyExists, or
// Invalid "provided IP is already allocated", since the API server
// allocates the ClusterIP before it looks at the name. Either way the
// Service is read back and counts as created if it has our ClusterIP; if
// not, the error says what holds the name or the IP (and is no
// AlreadyExists, which testenv.ParallelCreate would take as done).
func createService(ctx context.Context, cs kubernetes.Interface, ns, name, ip string, ports []corev1.ServicePort) error {
	_, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.ServiceSpec{ClusterIP: ip, Ports: ports},
	}, metav1.CreateOptions{})
	if err == nil || !apierrors.IsAlreadyExists(err) && !(apierrors.IsInvalid(err) && strings.Contains(err.Error(), "provided IP is already allocated")) {
		return err
	}
	s, gerr := cs.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case gerr != nil:
		return fmt.Errorf("create Service %s/%s: %v; reading it back: %v", ns, name, err, gerr)
	case s.Spec.ClusterIP != ip:
		return fmt.Errorf("create Service %s/%s: %v; it exists with ClusterIP %q, not %s", ns, name, err, s.Spec.ClusterIP, ip)
	}
	return nil
}

// fillLimit bounds the fill. The large scale's 311k writes took 12 to 23
// minutes under nice on this machine shared with other fills and
// benchmarks (load 12-25 on 2 cores), though only 678-816 s of CPU (339-408
// s on two idle cores); at load 25-37 they had not finished in 40 minutes.
const fillLimit = 100 * time.Minute

// fillProgressSteps is how many times in its course the fill logs how far
// each kind got (at most: once per 1000 objects).
const fillProgressSteps = 10

// fillStats is how the fill went: its time, its rate (API objects, with
// namespaces and EndpointSlices; writes, with each Pod's status update),
// and the machine's load average at its end (/proc/loadavg: 1, 5 and
// 15 minutes), since the rate depends on what else runs.
type fillStats struct {
	Seconds          float64 `json:"fill_seconds"`
	ObjectsPerSecond float64 `json:"fill_objects_per_second"`
	WritesPerSecond  float64 `json:"fill_writes_per_second"`
	LoadAvg          string  `json:"fill_loadavg"`
	// CPUSeconds is the CPU time the fill took of kube-apiserver, etcd
	// and the writers (this process): unlike the rate, it does not depend
	// on what else runs; their sum over the machine's 2 cores is the
	// fill's time on an idle machine.
	CPUSeconds map[string]float64 `json:"fill_cpu_seconds,omitempty"`
}

// fillCPUStart reads the CPU time of kube-apiserver (found by certDir),
// etcd (by etcdDir) and this process; the function it returns gives what
// each has used since.
func fillCPUStart(t *testing.T, certDir, etcdDir string) func() map[string]float64 {
	t.Helper()
	pids := map[string]int{"kube-apiserver": apiServerPID(t, certDir), "etcd": controlPlanePID(t, "etcd", etcdDir), "writers": os.Getpid()}
	start := map[string]float64{}
	for k, pid := range pids {
		start[k] = procCPUSeconds(pid)
	}
	return func() map[string]float64 {
		out := map[string]float64{}
		for k, pid := range pids {
			out[k] = round(procCPUSeconds(pid)-start[k], 1)
		}
		return out
	}
}

// loadAvg is the first three fields of /proc/loadavg ("" if unreadable).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// podsPerNode is how many of the fill's Pods share a node: kubelet's
// default maxPods, as the "~110 on the node".
const podsPerNode = 110

// nodeLocalNode is the node the node-local dnsd serves (and the
// bench-walker Pod's).
const nodeLocalNode = "node-0"

// podNode is the node of Pod i: the Pods spread round-robin over
// Pods/podsPerNode nodes, node-0 to node-<n-1>.
func podNode(sc scale, i int) string {
	return fmt.Sprintf("node-%d", i%max(1, sc.Pods/podsPerNode))
}

// createPod creates a Running Pod on node with ip as its address
// (testenv.CreateRunningPod).
func createPod(ctx context.Context, cs kubernetes.Interface, ns, name, ip, node string) error {
	return testenv.CreateRunningPod(ctx, cs, ns, name, node, ip, "192.0.2.200")
}
