package daemon_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/serve/daemon"
	"github.com/poddns/poddns/pkg/serve/dnstest"
)

// TestKubeconfigSource runs dnsd with source.kubeconfig against a real API
// server: /ready fails until the watch has synced, then a Service created
// through the API is answered.
func TestKubeconfigSource(t *testing.T) {
	env := testenv.Start(t)
	if err := env.Client.Create(t.Context(), &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "default"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.7.7", Ports: []corev1.ServicePort{{Name: "https", Port: 443}}}}); err != nil {
		t.Fatal(err)
	}
	kubeconfig := env.AdminKubeconfig(t, "dnsd")
	d := start(t, "", func(c *daemon.Config) { c.Source.Kubeconfig = kubeconfig })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, _ := dnstest.HTTPGet(t, "http://"+d.HTTPAddr("health")+"/ready"); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/ready not OK after 30s")
		}
		time.Sleep(20 * time.Millisecond) // polling the initial sync, bounded above
	}
	c := dnstest.Case{Qname: "api.default.svc.cluster.local.", Qtype: dns.TypeA,
		Answer: dnstest.RRs("api.default.svc.cluster.local. 30 IN A 10.96.7.7")}
	dnstest.Check(t, c, dnstest.Exchange(t, d.DNSAddr(), "udp", c.Msg()))
	// The kubernetes Service the API server makes itself is there too. Its
	// bootstrap controller creates it shortly after the API server is up,
	// possibly after dnsd's initial list: it arrives through the watch.
	deadline = time.Now().Add(30 * time.Second)
	for {
		k := dnstest.Exchange(t, d.DNSAddr(), "tcp", dnstest.Query("kubernetes.default.svc.cluster.local.", dns.TypeA, 0))
		if k.Rcode == dns.RcodeSuccess && len(k.Answer) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kubernetes.default not answered within 30s: %v", k)
		}
		time.Sleep(50 * time.Millisecond) // waiting for the watch, bounded above
	}
}
