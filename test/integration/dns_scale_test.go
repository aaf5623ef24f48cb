package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/serve/dnstest"
	"github.com/poddns/poddns/pkg/serve/sizing"
)

// The scale of TestDNSScaleAPIRestart: about 20k objects, most of them
// Pods as in a real cluster, filled in well under 90 s on two shared cores.
const (
	scaleNamespaces = 20
	scaleServices   = 1500 // ClusterIP
	scaleHeadless   = 1000 // headless, one EndpointSlice of 3 ready endpoints each
	scalePods       = 16500
)

// TestDNSScaleAPIRestart is issue 15's memory test: a real API server filled
// with ~20k objects (parallel creates, no client-side throttling), dnsd
// watching it with pods on (verified pod records: the pod watch, as with
// completion), then kube-apiserver stopped and started again under it.
// It asserts that
//   - the store never empties: a sample of Services, headless endpoints and
//     pod PTRs answers correctly before, during and after the restart
//     (never NXDOMAIN, SERVFAIL or a timeout), and a Service created after
//     the restart shows;
//   - dnsd's RSS once synced and its peak RSS (VmHWM) across the restart and
//     the relist that follows stay under sizing.BoundMB for this many Pods and
//     Services: the sizing formula deploy/ sizes its memory limit with;
//   - its peak RSS across the restart stays within relistPeakRatio (1.3×)
//     of its steady RSS under the same query load before the restart
//     (apisource's relist guard);
//   - after the relists its RSS comes back within 1.25× of what it was once
//     synced (the relists' garbage is returned to the OS).
//
// The dnsd process runs without GOMEMLIMIT or GOGC (Go's defaults), so the
// bound holds without the deployment's soft limit.
func TestDNSScaleAPIRestart(t *testing.T) {
	testStart := time.Now()
	certDir := t.TempDir()
	etcdDir := tmpfsDir(t, "poddns-scale-etcd-")
	env := testenv.Start(t, testenv.Bulk(t), func(e *envtest.Environment) {
		e.ControlPlane.GetAPIServer().CertDir = certDir
		e.ControlPlaneStopTimeout = 5 * time.Second // see TestDNSAPIServerRestart
		if e.ControlPlane.Etcd == nil {
			e.ControlPlane.Etcd = &envtest.Etcd{}
		}
		// The fill is bound by etcd's fsyncs on a disk; on tmpfs it is bound
		// by the API server's CPU.
		e.ControlPlane.Etcd.DataDir = etcdDir
	})
	cs := testenv.BulkClient(t, env.Config)

	fillStart := time.Now()
	scaleFill(t, cs)
	fillTime := time.Since(fillStart)
	objects := scaleNamespaces + scaleServices + 2*scaleHeadless + scalePods
	t.Logf("filled %d objects (%d Services, %d Pods) in %s (%.0f objects/s)", objects, scaleServices+scaleHeadless, scalePods,
		fillTime.Round(time.Millisecond), float64(objects)/fillTime.Seconds())
	if fillTime > 90*time.Second {
		// Not a failure: speed is for benchmarks, and the machine is shared.
		t.Logf("the fill took %s, more than its 90 s budget (a busy machine?)", fillTime.Round(time.Second))
	}

	// dnsd with pods on, its profiles on loopback for the heap figures.
	addr, health, pprofAddr := loopback(testenv.FreeDNSPort(t)), loopback(testenv.FreeTCPPort(t)), loopback(testenv.FreeTCPPort(t))
	cmd := startProcessEnv(t, "dnsd", buildDnsd(t), []string{"GOGC=", "GOMEMLIMIT="},
		"--kubeconfig", env.AdminKubeconfig(t, "dnsd-scale"), "--listen", addr, "--udp-sockets", "1",
		"--health-listen", health, "--metrics-listen", health, "--pprof-listen", pprofAddr, "--lameduck", "0s", "--pods", "verified")
	syncStart := time.Now()
	waitHTTP(t, "http://"+health+"/ready", 90*time.Second)
	t.Logf("dnsd ready %s after start", time.Since(syncStart).Round(time.Millisecond))
	pid := cmd.Process.Pid

	// A sample of the names, spread over the objects.
	var checks []nameCheck
	for i := 0; i < scaleServices; i += scaleServices / 20 {
		n := fmt.Sprintf("svc-%d.%s.svc.cluster.local.", i, scaleNS(i))
		checks = append(checks, nameCheck{dnstest.Query(n, dns.TypeA, 0), dnstest.RRs(n + " 30 IN A " + scaleServiceIP(i))})
	}
	for i := 0; i < scaleHeadless; i += scaleHeadless / 10 {
		n := fmt.Sprintf("hl-%d.%s.svc.cluster.local.", i, scaleNS(i))
		checks = append(checks, nameCheck{dnstest.Query(n, dns.TypeA, 0), dnstest.RRs(
			n+" 30 IN A "+scaleEndpointIP(i, 0), n+" 30 IN A "+scaleEndpointIP(i, 1), n+" 30 IN A "+scaleEndpointIP(i, 2))})
	}
	for i := 0; i < scalePods; i += scalePods / 20 {
		n := strings.ReplaceAll(scalePodIP(i), ".", "-") + "." + scaleNS(i) + ".pod.cluster.local."
		checks = append(checks, nameCheck{dnstest.Query(n, dns.TypeA, 0), dnstest.RRs(n + " 30 IN A " + scalePodIP(i))})
	}
	last := scalePods - 1
	lastPod := strings.ReplaceAll(scalePodIP(last), ".", "-") + "." + scaleNS(last) + ".pod.cluster.local."
	checks = append(checks, nameCheck{dnstest.Query(lastPod, dns.TypeA, 0), dnstest.RRs(lastPod + " 30 IN A " + scalePodIP(last))})
	for _, ch := range checks {
		pollAnswer(t, addr, ch.q, ch.answered)
	}

	settled := memOf(t, pid)
	heap := heapOf(t, pprofAddr)
	t.Logf("dnsd once synced: RSS %.1f MB (peak so far %.1f MB), Go heap in use %.1f MB", settled.rss, settled.hwm, heap)
	bound := sizing.BoundMB(sizing.Cluster{Pods: scalePods, Services: scaleServices + scaleHeadless})
	if settled.rss > bound {
		t.Errorf("RSS once synced %.1f MB > %.1f MB, sizing.BoundMB for %d Pods and %d Services", settled.rss, bound, scalePods, scaleServices+scaleHeadless)
	}
	resetPeak(t, pid)

	// The query loop: 2 UDP clients, each query bounded by 2 s, ~500 qps per
	// client at most, for the whole restart (hard cap 150 s).
	loop := startQueryLoop(t, addr, checks, 2, 2*time.Second, 2*time.Millisecond, 150*time.Second)

	// dnsd's steady state under that load (several collections' worth of
	// answers): what the relists' peak is measured against.
	time.Sleep(steadyLoad)
	steady := memOf(t, pid)
	t.Logf("dnsd under the query load: RSS %.1f MB (peak %.1f MB since synced)", steady.rss, steady.hwm)
	resetPeak(t, pid)
	as := env.Environment.ControlPlane.GetAPIServer()
	loop.phase.Store(phaseStopping)
	t0 := time.Now()
	if err := as.Stop(); err != nil && !strings.Contains(err.Error(), "timeout waiting for process") {
		t.Fatalf("stopping kube-apiserver: %v", err)
	}
	waitPortFree(t, as.SecureServing.Address+":"+as.SecureServing.Port, as.StopTimeout+10*time.Second)
	loop.phase.Store(phaseDown)
	down := time.Now()
	time.Sleep(2 * time.Second) // the outage
	if err := as.Start(); err != nil {
		t.Fatalf("restarting kube-apiserver: %v", err)
	}
	loop.phase.Store(phaseAfter)
	restarted := time.Now()
	t.Logf("kube-apiserver stopped in %s, down %s", down.Sub(t0).Round(time.Millisecond), restarted.Sub(down).Round(time.Millisecond))

	// A Service created after the restart shows once every watch has
	// resumed (the reflectors' backoff, then a relist: the API server's
	// watch cache starts empty).
	late := "late." + scaleNS(0) + ".svc.cluster.local."
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	_, err := cs.CoreV1().Services(scaleNS(0)).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "late"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.101.0.1", Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}, metav1.CreateOptions{})
	cancel()
	if err != nil {
		t.Fatalf("creating a Service after the restart: %v", err)
	}
	lateCheck := nameCheck{dnstest.Query(late, dns.TypeA, 0), dnstest.RRs(late + " 30 IN A 10.101.0.1")}
	pollAnswerWithin(t, addr, lateCheck.q, 90*time.Second, lateCheck.answered)
	t.Logf("new Service answered %s after the restart", time.Since(restarted).Round(time.Millisecond))
	// The pod watch relists too; wait until a pod created after the
	// restart shows, so that the peak covers every resource's relist.
	if err := scaleCreatePod(t.Context(), cs, scaleNS(0), "late-pod", "10.127.255.254"); err != nil {
		t.Fatalf("creating a Pod after the restart: %v", err)
	}
	latePod := "10-127-255-254." + scaleNS(0) + ".pod.cluster.local."
	pollAnswerWithin(t, addr, dnstest.Query(latePod, dns.TypeA, 0), 90*time.Second, func(m *dns.Msg) bool {
		return m.Rcode == dns.RcodeSuccess && dnstest.Diff(m.Answer, dnstest.RRs(latePod+" 30 IN A 10.127.255.254")) == ""
	})
	t.Logf("new Pod answered %s after the restart", time.Since(restarted).Round(time.Millisecond))
	time.Sleep(2 * time.Second) // the relists' garbage collected, as it would be under load
	loop.stop()

	// dnsd returns a relist's garbage to the OS once the relists are over:
	// RSS comes back near what it was once synced.
	after := memOf(t, pid)
	for deadline := time.Now().Add(15 * time.Second); after.rss > 1.25*settled.rss && time.Now().Before(deadline); after = memOf(t, pid) {
		time.Sleep(250 * time.Millisecond) // polling the return of memory after the relists, bounded above
	}
	if after.rss > 1.25*settled.rss {
		t.Errorf("RSS %.1f MB 15 s after the relists, more than 1.25× its %.1f MB once synced: the relists' garbage was not returned to the OS", after.rss, settled.rss)
	}
	t.Logf("dnsd across the restart: peak RSS %.1f MB (%.2f× its RSS under the query load before it), RSS after %.1f MB, Go heap in use %.1f MB; bound %.1f MB",
		after.hwm, after.hwm/steady.rss, after.rss, heapOf(t, pprofAddr), bound)
	if after.hwm > relistPeakRatio*steady.rss {
		t.Errorf("peak RSS across the API-server restart %.1f MB is %.2f× its %.1f MB under the same query load before it, more than %.1f×",
			after.hwm, after.hwm/steady.rss, steady.rss, relistPeakRatio)
	}
	if peak := max(steady.hwm, after.hwm); peak > bound {
		t.Errorf("peak RSS %.1f MB > %.1f MB, sizing.BoundMB for %d Pods and %d Services",
			peak, bound, scalePods, scaleServices+scaleHeadless)
	}
	if loop.counts[phaseDown].ok.Load() == 0 || loop.counts[phaseAfter].ok.Load() == 0 {
		t.Error("the query loop had no correct answer while the API server was down or after it came back")
	}
	loop.report(t)
	t.Logf("test took %s", time.Since(testStart).Round(time.Second))
}

// relistPeakRatio is issue 15's bound on the peak RSS across an API-server
// restart, relative to the steady RSS before it.
const relistPeakRatio = 1.3

// steadyLoad is how long the query loop runs before dnsd's steady RSS is
// read: its RSS grows for ~10 s under the loop after sync (36.7 -> 46 MB
// sampled), then holds. With the relist guard the peak across the restart
// was 53.6 MB, 1.20x the 44.6 MB read after 8 s; the guard's headroom (at
// most 15% of the runtime's memory, or 8 MiB) bounds it at about 1.27x
// even against the RSS once synced.
const steadyLoad = 15 * time.Second

func scaleNS(i int) string { return fmt.Sprintf("scale-%d", i%scaleNamespaces) }

// addrAt is base plus n.
func addrAt(base string, n int) string {
	a := netip.MustParseAddr(base).As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) + uint32(n)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
}

// ClusterIPs are set, not allocated (the API server allocates them several
// times slower under concurrent creates); pods and endpoints get addresses
// of their own ranges.
func scaleServiceIP(i int) string     { return addrAt("10.100.0.1", i) }
func scaleEndpointIP(i, k int) string { return addrAt("10.32.0.1", 3*i+k) }
func scalePodIP(i int) string         { return addrAt("10.64.0.1", i) }

// scaleFill creates the namespaces, then at once the Services, the headless
// Services with their EndpointSlices, and Running Pods with their IPs, each
// kind from a bounded pool of concurrent writers.
func scaleFill(t *testing.T, cs kubernetes.Interface) {
	t.Helper()
	// Bounded well above the 90 s budget: a machine shared with other
	// fills has been seen at 84 Pods/s.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	kinds := testenv.NewFill(t, ctx)
	defer kinds.Wait()
	kinds.Step("namespaces", scaleNamespaces, 8, func(ctx context.Context, i int) error {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: scaleNS(i)}}, metav1.CreateOptions{})
		return err
	})
	// The kinds after the namespaces are filled at once: the Pods (two
	// writes each) take longest.
	port := []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}
	kinds.Go("ClusterIP Services", scaleServices, 8, func(ctx context.Context, i int) error {
		_, err := cs.CoreV1().Services(scaleNS(i)).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("svc-%d", i)},
			Spec: corev1.ServiceSpec{ClusterIP: scaleServiceIP(i), Ports: port}}, metav1.CreateOptions{})
		return err
	})
	kinds.Go("headless Services and EndpointSlices", scaleHeadless, 8, func(ctx context.Context, i int) error {
		return testenv.CreateHeadless(ctx, cs, scaleNS(i), fmt.Sprintf("hl-%d", i), []string{scaleEndpointIP(i, 0), scaleEndpointIP(i, 1), scaleEndpointIP(i, 2)})
	})
	kinds.Go("Pods (create, then status.podIP)", scalePods, 48, func(ctx context.Context, i int) error {
		return scaleCreatePod(ctx, cs, scaleNS(i), fmt.Sprintf("pod-%d", i), scalePodIP(i))
	})
}

// scaleCreatePod creates a Running Pod with address ip on the scale
// test's node (testenv.CreateRunningPod).
func scaleCreatePod(ctx context.Context, cs kubernetes.Interface, ns, name, ip string) error {
	return testenv.CreateRunningPod(ctx, cs, ns, name, "scale-node", ip, "")
}

// tmpfsDir is a fresh directory on /dev/shm when it has 1 GiB free (etcd
// preallocates 64 MB WAL files and the fill writes ~36k revisions; a
// container's default /dev/shm is only 64 MB), else a temporary directory;
// it is removed when the test ends.
func tmpfsDir(t *testing.T, prefix string) string {
	t.Helper()
	var fs syscall.Statfs_t
	if err := syscall.Statfs("/dev/shm", &fs); err != nil || uint64(fs.Bavail)*uint64(fs.Bsize) < 1<<30 {
		t.Logf("etcd's data on disk: /dev/shm missing or under 1 GiB free")
		return t.TempDir()
	}
	d, err := os.MkdirTemp("/dev/shm", prefix)
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) }) // registered first: runs after the control plane stops
	return d
}

// startProcessEnv is startProcess with env added to the test's environment
// ("NAME=" unsets NAME).
func startProcessEnv(t *testing.T, name, path string, env []string, args ...string) *exec.Cmd {
	t.Helper()
	return startProcessWith(t, name, path, func(c *exec.Cmd) {
		c.Env = os.Environ()
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			c.Env = dropEnv(c.Env, k)
			if v != "" {
				c.Env = append(c.Env, kv)
			}
		}
	}, args...)
}

func dropEnv(env []string, key string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// procMem is a process's resident memory in MB (MiB).
type procMem struct{ rss, hwm float64 }

// memOf reads VmRSS and VmHWM (the peak since the last resetPeak) of pid.
func memOf(t *testing.T, pid int) procMem {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var m procMem
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		if err != nil {
			t.Fatalf("/proc/%d/status %s: %v", pid, k, err)
		}
		if k == "VmRSS" {
			m.rss = kb / 1024
		} else {
			m.hwm = kb / 1024
		}
	}
	if m.rss == 0 || m.hwm == 0 {
		t.Fatalf("/proc/%d/status: no VmRSS or VmHWM", pid)
	}
	return m
}

// resetPeak resets pid's VmHWM to its current RSS (clear_refs 5).
func resetPeak(t *testing.T, pid int) {
	t.Helper()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		t.Fatalf("resetting the peak RSS of dnsd: %v", err)
	}
}

// heapOf is the Go heap in use (HeapInuse) of the process serving pprof at
// addr, in MB, after a GC.
func heapOf(t *testing.T, addr string) float64 {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + "/debug/pprof/heap?debug=1&gc=1")
	if err != nil {
		t.Fatalf("heap profile: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "# HeapInuse = "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n / (1 << 20)
		}
	}
	t.Fatal("heap profile without HeapInuse")
	return 0
}

// waitPortFree waits until hostPort can be listened on again (a killed
// process is gone), at most limit.
func waitPortFree(t *testing.T, hostPort string, limit time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		l, err := net.Listen("tcp", hostPort)
		if err == nil {
			l.Close()
			return
		}
		if time.Since(start) > limit {
			t.Fatalf("%s still in use %s after the stop: %v", hostPort, limit, err)
		}
		time.Sleep(20 * time.Millisecond) // waiting for a killed process to exit, bounded above
	}
}

// pollAnswerWithin is pollAnswer with a limit of its own.
func pollAnswerWithin(t *testing.T, addr string, q *dns.Msg, limit time.Duration, ok func(*dns.Msg) bool) {
	t.Helper()
	start := time.Now()
	for {
		m, err := exchange(addr, "udp", q)
		if err == nil && ok(m) {
			return
		}
		if time.Since(start) > limit {
			t.Fatalf("%s: no expected answer after %s (err %v):\n%v", q.Question[0].Name, limit, err, m)
		}
		time.Sleep(20 * time.Millisecond) // polling a watch's resumption, bounded above
	}
}
