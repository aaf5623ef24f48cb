package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/serve/dnstest"
)

// Phases of the API-restart run, for the per-phase counts.
const (
	phaseBefore   = iota // API server up, before the stop
	phaseStopping        // SIGTERM sent, until the process is gone
	phaseDown            // no API server process, until the restart is healthy
	phaseAfter           // API server restarted
	numPhases
)

var phaseNames = [numPhases]string{"before stop", "graceful stop", "API down", "after restart"}

// loopCounts are the answers of the query loop in one phase.
type loopCounts struct {
	ok, nxdomain, servfail, otherRcode, wrong, errors atomic.Int64
}

// TestDNSAPIServerRestart is issue 5's fault test "the API server stopped
// and restarted under load": dnsd keeps answering cluster names from its
// last-known store while kube-apiserver is down (never a false NXDOMAIN or
// SERVFAIL, never a timeout), /ready stays ready (the store stays synced:
// dnsd only reports not ready before the initial lists and when shutting
// down), and once the API server is back on the same address, with the same
// certificates and the same etcd, the informers resume and a Service
// created after the restart is answered.
//
// Restarting in place relies on envtest's APIServer keeping its state
// across Stop/Start: the secure port stays the one chosen at the first
// start, and with CertDir set by the test (not a random directory, which
// Stop deletes) the serving certificate is reused and the client CA is
// rewritten from memory, so the kubeconfig written for dnsd stays valid.
func TestDNSAPIServerRestart(t *testing.T) {
	certDir := t.TempDir()
	env := testenv.Start(t, func(e *envtest.Environment) {
		e.ControlPlane.GetAPIServer().CertDir = certDir
		// Here (dnsd watching) kube-apiserver was seen not to exit within
		// envtest's 20s default after SIGTERM; envtest SIGKILLs it after
		// the stop timeout, which makes the fault a crash after 5s of
		// graceful shutdown. (At cleanup dnsd is killed first, and the
		// control plane stops within the timeout.)
		e.ControlPlaneStopTimeout = 5 * time.Second
	})
	c := env.Client
	ready := true
	str := func(s string) *string { return &s }
	mustCreate(t, c,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "rst"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "rst"},
			Spec: corev1.ServiceSpec{ClusterIP: "10.96.20.10", Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "rst"},
			Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "pg", Port: 5432}}}},
		&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "db-1", Namespace: "rst", Labels: map[string]string{discoveryv1.LabelServiceName: "db"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints: []discoveryv1.Endpoint{
				{Addresses: []string{"10.244.5.1"}, Hostname: str("db-0"), Conditions: discoveryv1.EndpointConditions{Ready: &ready}},
				{Addresses: []string{"10.244.5.2"}, Hostname: str("db-1"), Conditions: discoveryv1.EndpointConditions{Ready: &ready}},
			}},
	)

	addr, health := startDnsdWithHealth(t, buildDnsd(t), writeKubeconfig(t, env, "dnsd-restart"))

	const (
		web = "web.rst.svc.cluster.local."
		db  = "db.rst.svc.cluster.local."
	)
	type check struct {
		q    *dns.Msg
		want []dns.RR
	}
	checks := []check{
		{dnstest.Query(web, dns.TypeA, 0), dnstest.RRs(web + " 30 IN A 10.96.20.10")},
		{dnstest.Query(db, dns.TypeA, 0), dnstest.RRs(db+" 30 IN A 10.244.5.1", db+" 30 IN A 10.244.5.2")},
		{dnstest.Query("db-1."+db, dns.TypeA, 0), dnstest.RRs("db-1." + db + " 30 IN A 10.244.5.2")},
		{dnstest.Query(rev("10.96.20.10"), dns.TypePTR, 0), dnstest.RRs(rev("10.96.20.10") + " 30 IN PTR " + web)},
	}
	good := func(ch check) func(*dns.Msg) bool {
		return func(m *dns.Msg) bool { return m.Rcode == dns.RcodeSuccess && dnstest.Diff(m.Answer, ch.want) == "" }
	}
	for _, ch := range checks {
		pollAnswer(t, addr, ch.q, good(ch))
	}

	// The query loop: 4 UDP clients, each query bounded by 1s, for the
	// whole fault (hard cap loopCap), counting per phase.
	const loopCap = 90 * time.Second
	var (
		phase    atomic.Int32
		counts   [numPhases]loopCounts
		failMu   sync.Mutex
		failures []string
		wg       sync.WaitGroup
	)
	stop := make(chan struct{})
	loopEnd := time.Now().Add(loopCap)
	fail := func(p int32, format string, args ...any) {
		failMu.Lock()
		defer failMu.Unlock()
		if len(failures) < 20 {
			failures = append(failures, fmt.Sprintf("[%s] ", phaseNames[p])+fmt.Sprintf(format, args...))
		}
	}
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &dns.Client{Net: "udp", Timeout: time.Second}
			for i := g; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if time.Now().After(loopEnd) {
					return
				}
				ch := checks[i%len(checks)]
				p := phase.Load()
				n := &counts[p]
				m, _, err := cl.Exchange(ch.q.Copy(), addr)
				switch {
				case err != nil:
					n.errors.Add(1)
					fail(p, "%s: %v", ch.q.Question[0].Name, err)
				case m.Rcode == dns.RcodeNameError:
					n.nxdomain.Add(1)
					fail(p, "%s: NXDOMAIN", ch.q.Question[0].Name)
				case m.Rcode == dns.RcodeServerFailure:
					n.servfail.Add(1)
					fail(p, "%s: SERVFAIL", ch.q.Question[0].Name)
				case m.Rcode != dns.RcodeSuccess:
					n.otherRcode.Add(1)
					fail(p, "%s: rcode %s", ch.q.Question[0].Name, dns.RcodeToString[m.Rcode])
				case dnstest.Diff(m.Answer, ch.want) != "":
					n.wrong.Add(1)
					fail(p, "%s: wrong answer:\n%s", ch.q.Question[0].Name, dnstest.Diff(m.Answer, ch.want))
				default:
					n.ok.Add(1)
				}
				time.Sleep(time.Millisecond) // pace the load, ~1000 qps per client at most
			}
		}()
	}
	loopStopped := false
	stopLoop := func() {
		if !loopStopped {
			loopStopped = true
			close(stop)
			wg.Wait()
		}
	}
	t.Cleanup(stopLoop) // on an early Fatal too

	time.Sleep(time.Second) // some load before the fault

	as := env.Environment.ControlPlane.GetAPIServer()
	apiURL := as.SecureServing.URL("https", "").String()
	t0 := time.Now()
	phase.Store(phaseStopping)
	how := "exited after SIGTERM"
	if err := as.Stop(); err != nil {
		if !strings.Contains(err.Error(), "timeout waiting for process") {
			t.Fatalf("stopping kube-apiserver: %v", err)
		}
		how = "SIGKILLed after " + as.StopTimeout.String() + " of graceful shutdown (" + err.Error() + ")"
	}
	// SIGKILL is sent without waiting: wait until the port is free again.
	hostPort := as.SecureServing.Address + ":" + as.SecureServing.Port
	for {
		l, err := net.Listen("tcp", hostPort)
		if err == nil {
			l.Close()
			break
		}
		if time.Since(t0) > as.StopTimeout+10*time.Second {
			t.Fatalf("%s still in use %s after the stop: %v", hostPort, time.Since(t0), err)
		}
		time.Sleep(20 * time.Millisecond) // waiting for a killed process to exit, bounded above
	}
	outageStart := time.Now()
	phase.Store(phaseDown)
	t.Logf("kube-apiserver at %s stopped in %s: %s (etcd keeps running)", apiURL, outageStart.Sub(t0).Round(time.Millisecond), how)

	// The API server is really gone.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	err := c.Get(ctx, client.ObjectKey{Name: "rst"}, &corev1.Namespace{})
	cancel()
	if err == nil {
		t.Fatal("the API server still answers after Stop")
	}

	// Keep querying through the outage; /ready is checked all along.
	hc := &http.Client{Timeout: time.Second}
	readyOK, readyBad := 0, 0
	for time.Since(outageStart) < 4*time.Second {
		resp, err := hc.Get("http://" + health + "/ready")
		if err == nil && resp.StatusCode == http.StatusOK {
			readyOK++
		} else {
			readyBad++
			t.Errorf("/ready during the outage: %v (status %v)", err, statusOf(resp))
		}
		if err == nil {
			resp.Body.Close()
		}
		time.Sleep(250 * time.Millisecond) // sampling /ready through a fixed outage window
	}

	t1 := time.Now()
	if err := as.Start(); err != nil {
		t.Fatalf("restarting kube-apiserver: %v", err)
	}
	restarted := time.Now()
	phase.Store(phaseAfter)
	if got := as.SecureServing.URL("https", "").String(); got != apiURL {
		t.Fatalf("kube-apiserver restarted at %s, want the same address %s", got, apiURL)
	}
	t.Logf("kube-apiserver restarted at the same address in %s; down (no process or not yet healthy) for %s; /ready during the outage: %d OK, %d not",
		restarted.Sub(t1).Round(time.Millisecond), restarted.Sub(outageStart).Round(time.Millisecond), readyOK, readyBad)

	// A Service created after the restart: answered once the informers
	// have resumed (a relist or a watch from the last resource version,
	// after the reflectors' backoff).
	const late = "late.rst.svc.cluster.local."
	mustCreate(t, c, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "late", Namespace: "rst"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.20.50", Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})
	created := time.Now()
	lateQ, lateWant := dnstest.Query(late, dns.TypeA, 0), dnstest.RRs(late+" 30 IN A 10.96.20.50")
	var last *dns.Msg
	var lastErr error
	for {
		last, lastErr = exchange(addr, "udp", lateQ)
		if lastErr == nil && last.Rcode == dns.RcodeSuccess && dnstest.Diff(last.Answer, lateWant) == "" {
			break
		}
		// The reflectors back off up to 30s (with jitter) while the API
		// server is away; seen 5-15s here.
		if time.Since(created) > 60*time.Second {
			t.Fatalf("%s not answered 60s after its creation after the restart; last reply (err %v):\n%v", late, lastErr, last)
		}
		time.Sleep(20 * time.Millisecond) // polling the informers' resumption, bounded above
	}
	seen := time.Now()
	t.Logf("new Service answered %s after its creation, %s after the restart", seen.Sub(created).Round(time.Millisecond), seen.Sub(restarted).Round(time.Millisecond))

	time.Sleep(500 * time.Millisecond) // a little load after the resumption
	if time.Now().After(loopEnd) {
		t.Errorf("the query loop hit its %s cap before the end of the run", loopCap)
	}
	stopLoop()

	for p := range numPhases {
		n := &counts[p]
		t.Logf("%-13s answered correctly %6d, NXDOMAIN %d, SERVFAIL %d, other rcode %d, wrong %d, errors/timeouts %d",
			phaseNames[p], n.ok.Load(), n.nxdomain.Load(), n.servfail.Load(), n.otherRcode.Load(), n.wrong.Load(), n.errors.Load())
	}
	if counts[phaseDown].ok.Load() == 0 {
		t.Error("no query answered while the API server was down")
	}
	failMu.Lock()
	defer failMu.Unlock()
	for _, f := range failures {
		t.Error(f)
	}
}

// startDnsdWithHealth is startDnsd, also returning the /health and /ready
// address.
func startDnsdWithHealth(t *testing.T, bin, kubeconfig string) (dnsAddr, health string) {
	t.Helper()
	dnsAddr, health = loopback(freePort(t)), loopback(freePort(t))
	startProcess(t, "dnsd", bin, "--kubeconfig", kubeconfig, "--listen", dnsAddr, "--udp-sockets", "1",
		"--health-listen", health, "--metrics-listen", health, "--lameduck", "0s")
	waitHTTP(t, "http://"+health+"/ready", 60*time.Second)
	return dnsAddr, health
}

func statusOf(r *http.Response) any {
	if r == nil {
		return "none"
	}
	return r.StatusCode
}
