package admission_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/poddns/poddns/pkg/policy"
	padmission "github.com/poddns/poddns/pkg/policy/admission"
	"github.com/poddns/poddns/pkg/policy/policytest"
	"github.com/poddns/poddns/pkg/resolvconf"
)

// loadServer serves the handler over 200 policies with controller-runtime's
// webhook server (TLS, HTTP/2 as in production) on a loopback port, and
// returns its URL and a client that trusts it.
func loadServer(tb testing.TB) (string, *http.Client) {
	tb.Helper()
	set, err := policy.Parse(strings.NewReader(policytest.Generated(200)), "bench.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	p, err := resolvconf.NewNodeProfile(standardNode)
	if err != nil {
		tb.Fatal(err)
	}
	e, err := policy.NewEngine(set, policy.EngineOptions{Profile: p})
	if err != nil {
		tb.Fatal(err)
	}
	// The namespace reader stands in for the manager's informer cache,
	// which is an in-memory lookup too.
	ns := &nsReader{ns: map[string]map[string]string{"shop": {"team": "t3"}}}
	h := padmission.NewHandler(e, clientgoscheme.Scheme, ns, nil)

	dir := tb.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	_ = os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	srv := webhook.NewServer(webhook.Options{Host: "127.0.0.1", Port: port, CertDir: dir})
	srv.Register(padmission.Path, &admission.Webhook{Handler: h})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })

	pool := x509.NewCertPool()
	cert, _ := x509.ParseCertificate(der)
	pool.AddCert(cert)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 64,
	}}
	url := fmt.Sprintf("https://127.0.0.1:%d%s", port, padmission.Path)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := post(c, url); err == nil {
			break
		} else if time.Now().After(deadline) {
			tb.Fatalf("webhook server not up: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return url, c
}

var loadReview = []byte(review("CREATE", "shop", "", `{"metadata":{"generateName":"web-","labels":{"app":"web"}},"spec":{"containers":[{"name":"c","image":"nginx"}]}}`))

// post sends one review and checks that it was patched.
func post(c *http.Client, url string) (time.Duration, error) {
	start := time.Now()
	resp, err := c.Post(url, "application/json", bytes.NewReader(loadReview))
	if err != nil {
		return 0, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if err != nil {
		return 0, err
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &out); err != nil || out.Response == nil || !out.Response.Allowed || len(out.Response.Patch) == 0 {
		return 0, fmt.Errorf("bad response %s (%v)", body, err)
	}
	return d, nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

// BenchmarkAdmissionHTTPS posts AdmissionReviews over loopback HTTPS to the
// webhook server as fast as the parallel clients go: one pod matched by 20
// of 200 policies, patched. It reports latency percentiles too.
func BenchmarkAdmissionHTTPS(b *testing.B) {
	url, c := loadServer(b)
	var mu sync.Mutex
	var lat []time.Duration
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			d, err := post(c, url)
			if err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, d)
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(percentile(lat, 0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// LoadEnv, set to a duration (e.g. 10s), runs TestAdmissionLoad: a load
// run, not a test, so `go test ./...` skips it (`make bench-webhook`).
const LoadEnv = "PODDNS_BENCH_WEBHOOK"

// TestAdmissionLoad sends AdmissionReviews at a fixed 500 requests/s (open
// loop: a request leaves every 2 ms whether the previous ones returned or
// not) over loopback HTTPS for the duration in $PODDNS_BENCH_WEBHOOK and
// reports p50/p99 latency and the rate reached. Goal (issue 3): p99 ≤ 5 ms.
func TestAdmissionLoad(t *testing.T) {
	dur, err := time.ParseDuration(os.Getenv(LoadEnv))
	if err != nil || dur <= 0 {
		t.Skipf("a load run, not a test: set %s to a duration, e.g. %s=10s (make bench-webhook)", LoadEnv, LoadEnv)
	}
	url, c := loadServer(t)
	const rate = 500
	interval := time.Second / rate
	n := int(dur / interval)
	lat := make([]time.Duration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		// Request i leaves at start + i*interval: a late start does not
		// skip requests (a Ticker drops ticks), so the rate holds.
		time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		wg.Go(func() { lat[i], errs[i] = post(c, url) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
		}
	}
	slices.Sort(lat)
	p50, p99 := percentile(lat, 0.50), percentile(lat, 0.99)
	t.Logf("HTTPS AdmissionReview load, 200 policies (20 matching, pod patched): %d requests in %s = %.0f req/s (target %d); p50 %s, p99 %s, max %s; %d failed",
		n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), rate, p50, p99, lat[len(lat)-1], failed)
	if failed > 0 {
		t.Errorf("%d of %d requests failed, e.g. %v", failed, n, errs[slices.IndexFunc(errs, func(e error) bool { return e != nil })])
	}
	if p99 > 5*time.Millisecond {
		t.Logf("p99 %s is above the 5 ms goal", p99)
	}
}
