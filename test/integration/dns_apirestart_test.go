package integration

import (
	"context"
	"net/http"
	"strings"
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
	testenv.Create(t, c,
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

	addr, health := startDnsdWithHealth(t, buildDnsd(t), env.AdminKubeconfig(t, "dnsd-restart"))

	const (
		web = "web.rst.svc.cluster.local."
		db  = "db.rst.svc.cluster.local."
	)
	checks := []nameCheck{
		{dnstest.Query(web, dns.TypeA, 0), dnstest.RRs(web + " 30 IN A 10.96.20.10")},
		{dnstest.Query(db, dns.TypeA, 0), dnstest.RRs(db+" 30 IN A 10.244.5.1", db+" 30 IN A 10.244.5.2")},
		{dnstest.Query("db-1."+db, dns.TypeA, 0), dnstest.RRs("db-1." + db + " 30 IN A 10.244.5.2")},
		{dnstest.Query(rev("10.96.20.10"), dns.TypePTR, 0), dnstest.RRs(rev("10.96.20.10") + " 30 IN PTR " + web)},
	}
	for _, ch := range checks {
		pollAnswer(t, addr, ch.q, ch.answered)
	}

	// The query loop: 4 UDP clients, each query bounded by 1s, ~1000 qps
	// per client at most, for the whole fault (hard cap loopCap).
	const loopCap = 90 * time.Second
	loop := startQueryLoop(t, addr, checks, 4, time.Second, time.Millisecond, loopCap)

	time.Sleep(time.Second) // some load before the fault

	as := env.Environment.ControlPlane.GetAPIServer()
	apiURL := as.SecureServing.URL("https", "").String()
	t0 := time.Now()
	loop.phase.Store(phaseStopping)
	how := "exited after SIGTERM"
	if err := as.Stop(); err != nil {
		if !strings.Contains(err.Error(), "timeout waiting for process") {
			t.Fatalf("stopping kube-apiserver: %v", err)
		}
		how = "SIGKILLed after " + as.StopTimeout.String() + " of graceful shutdown (" + err.Error() + ")"
	}
	// SIGKILL is sent without waiting: wait until the port is free again.
	waitPortFree(t, as.SecureServing.Address+":"+as.SecureServing.Port, as.StopTimeout+10*time.Second)
	outageStart := time.Now()
	loop.phase.Store(phaseDown)
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
	loop.phase.Store(phaseAfter)
	if got := as.SecureServing.URL("https", "").String(); got != apiURL {
		t.Fatalf("kube-apiserver restarted at %s, want the same address %s", got, apiURL)
	}
	t.Logf("kube-apiserver restarted at the same address in %s; down (no process or not yet healthy) for %s; /ready during the outage: %d OK, %d not",
		restarted.Sub(t1).Round(time.Millisecond), restarted.Sub(outageStart).Round(time.Millisecond), readyOK, readyBad)

	// A Service created after the restart: answered once the informers
	// have resumed (a relist or a watch from the last resource version,
	// after the reflectors' backoff).
	const late = "late.rst.svc.cluster.local."
	testenv.Create(t, c, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "late", Namespace: "rst"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.20.50", Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})
	created := time.Now()
	// The reflectors back off up to 30s (with jitter) while the API server
	// is away; seen 5-15s here.
	lateCheck := nameCheck{dnstest.Query(late, dns.TypeA, 0), dnstest.RRs(late + " 30 IN A 10.96.20.50")}
	pollAnswerWithin(t, addr, lateCheck.q, 60*time.Second, lateCheck.answered)
	seen := time.Now()
	t.Logf("new Service answered %s after its creation, %s after the restart", seen.Sub(created).Round(time.Millisecond), seen.Sub(restarted).Round(time.Millisecond))

	time.Sleep(500 * time.Millisecond) // a little load after the resumption
	if time.Now().After(loop.end) {
		t.Errorf("the query loop hit its %s cap before the end of the run", loopCap)
	}
	loop.stop()
	if loop.counts[phaseDown].ok.Load() == 0 {
		t.Error("no query answered while the API server was down")
	}
	loop.report(t)
}

// startDnsdWithHealth is startDnsd, also returning the /health and /ready
// address.
func startDnsdWithHealth(t *testing.T, bin, kubeconfig string) (dnsAddr, health string) {
	t.Helper()
	dnsAddr, health = loopback(testenv.FreeDNSPort(t)), loopback(testenv.FreeTCPPort(t))
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
