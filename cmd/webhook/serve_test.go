package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/poddns/poddns/internal/syncbuf"
	"github.com/poddns/poddns/internal/testenv"
	padmission "github.com/poddns/poddns/pkg/policy/admission"
)

// kubeletVolume writes files into dir the way kubelet updates a Secret or
// ConfigMap volume (its AtomicWriter): a new timestamped directory, a
// ..data_tmp symlink to it renamed atomically over ..data, the user-visible
// names as links into ..data, and the old directory removed.
func kubeletVolume(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	ts := filepath.Join(dir, fmt.Sprintf("..%s.%d", time.Now().UTC().Format("2006_01_02_15_04_05"), time.Now().UnixNano()))
	if err := os.MkdirAll(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(ts, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); err != nil {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			t.Fatal(err)
		}
	}
}

// eventually polls cond every 100ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last: %s", what, timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

const ndotsPolicy = `apiVersion: poddns.io/v1alpha1
kind: DNSPolicy
metadata: {name: ndots}
spec:
  match: {namespaceSelector: {matchLabels: {poddns.io/ndots: "on"}}}
  actions: {ndots: %d}
`

// TestServe runs `webhook serve` against a real API server: TLS from a
// kubelet-style Secret volume, rotated without a restart; policies from a
// kubelet-style ConfigMap volume, reloaded on the ..data swap, a bad reload
// keeping the last good set; probes, metrics and graceful shutdown.
func TestServe(t *testing.T) {
	env := testenv.Start(t)
	kcPath := env.AdminKubeconfig(t, "poddns-webhook")
	dir := t.TempDir()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tuned", Labels: map[string]string{"poddns.io/ndots": "on"}}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}

	certDir, policyDir := filepath.Join(dir, "tls"), filepath.Join(dir, "policies")
	for _, d := range []string{certDir, policyDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	crt, key := testenv.ServingCert(t, 1)
	kubeletVolume(t, certDir, map[string][]byte{"tls.crt": crt, "tls.key": key})
	kubeletVolume(t, policyDir, map[string][]byte{"ndots.yaml": fmt.Appendf(nil, ndotsPolicy, 2)})

	port, health, metricsPort := testenv.FreeTCPPort(t), testenv.FreeTCPPort(t), testenv.FreeTCPPort(t)
	cfg := filepath.Join(dir, "webhook.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, `apiVersion: poddns.io/v1alpha1
kind: WebhookConfig
policies: [policies]
host: 127.0.0.1
port: %d
certDir: tls
healthProbeAddress: 127.0.0.1:%d
metricsAddress: 127.0.0.1:%d
metricsSecure: false
excludedNamespaces: [poddns-system]
policyResync: 0s
`, port, health, metricsPort), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := parseServe(t, "--config", cfg, "--kubeconfig", kcPath)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- o.run(runCtx, streams{in: strings.NewReader(""), out: io.Discard, err: logs}) }()
	stopped := false
	defer func() {
		if !stopped {
			cancel()
			<-done
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	}()

	httpc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // test server with a self-signed certificate
	get := func(url string) (int, string) {
		resp, err := httpc.Get(url)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	readyz := fmt.Sprintf("http://127.0.0.1:%d/readyz", health)
	eventually(t, 60*time.Second, "readyz", func() (bool, string) {
		code, body := get(readyz)
		return code == http.StatusOK, fmt.Sprintf("%d %s", code, body)
	})
	if code, body := get(fmt.Sprintf("http://127.0.0.1:%d/healthz", health)); code != http.StatusOK {
		t.Errorf("healthz: %d %s", code, body)
	}

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	serial := func() (int64, error) {
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the test reads the presented certificate
		if err != nil {
			return 0, err
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64(), nil
	}
	// ndots returns the ndots the webhook sets on a plain pod in "tuned".
	ndots := func() (string, error) {
		review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1",` +
			`"kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},` +
			`"namespace":"tuned","operation":"CREATE","userInfo":{"username":"admin"},` +
			`"object":{"metadata":{"generateName":"web-"},"spec":{"containers":[{"name":"c","image":"x"}]}}}}`
		// A new connection per request, so every request makes a handshake.
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // test
		resp, err := c.Post("https://"+addr+padmission.Path, "application/json", strings.NewReader(review))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		var out admissionv1.AdmissionReview
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return "", err
		}
		if out.Response == nil || !out.Response.Allowed {
			return "", fmt.Errorf("response %+v", out.Response)
		}
		var ops []struct {
			Path  string
			Value json.RawMessage
		}
		_ = json.Unmarshal(out.Response.Patch, &ops)
		for _, op := range ops {
			if op.Path == "/spec/dnsConfig" {
				var dc corev1.PodDNSConfig
				if err := json.Unmarshal(op.Value, &dc); err != nil {
					return "", err
				}
				for _, opt := range dc.Options {
					if opt.Name == "ndots" && opt.Value != nil {
						return *opt.Value, nil
					}
				}
			}
		}
		return "", fmt.Errorf("no ndots in patch %s", out.Response.Patch)
	}
	metric := func(name string) (string, error) {
		code, body := get(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
		if code != http.StatusOK {
			return "", fmt.Errorf("metrics: %d", code)
		}
		for line := range strings.SplitSeq(body, "\n") {
			if strings.HasPrefix(line, name+" ") {
				return strings.TrimPrefix(line, name+" "), nil
			}
		}
		return "", fmt.Errorf("no %s in /metrics", name)
	}

	if s, err := serial(); err != nil || s != 1 {
		t.Fatalf("serving certificate serial %d (%v), want 1", s, err)
	}
	if n, err := ndots(); err != nil || n != "2" {
		t.Fatalf("ndots %q (%v), want 2", n, err)
	}

	t.Run("certificate rotation through the ..data swap", func(t *testing.T) {
		crt, key := testenv.ServingCert(t, 2)
		kubeletVolume(t, certDir, map[string][]byte{"tls.crt": crt, "tls.key": key})
		eventually(t, 30*time.Second, "new certificate presented", func() (bool, string) {
			s, err := serial()
			return err == nil && s == 2, fmt.Sprintf("serial %d, %v", s, err)
		})
	})

	t.Run("policy reload through the ..data swap", func(t *testing.T) {
		// From this log line on, only the watch can see a change.
		eventually(t, 30*time.Second, "policy watch started", func() (bool, string) {
			return strings.Contains(logs.String(), `"msg":"watching policies"`), "no log line"
		})
		kubeletVolume(t, policyDir, map[string][]byte{"ndots.yaml": fmt.Appendf(nil, ndotsPolicy, 3)})
		eventually(t, 20*time.Second, "reloaded policy applied", func() (bool, string) {
			n, err := ndots()
			return n == "3", fmt.Sprintf("ndots %q, %v", n, err)
		})
	})

	t.Run("bad reload keeps the last good policies and readiness", func(t *testing.T) {
		kubeletVolume(t, policyDir, map[string][]byte{"ndots.yaml": fmt.Appendf(nil, ndotsPolicy, 20)})
		eventually(t, 20*time.Second, "reload failure counted", func() (bool, string) {
			v, err := metric("poddns_webhook_policy_reload_failures_total")
			return v == "1", fmt.Sprintf("%q %v", v, err)
		})
		if n, err := ndots(); err != nil || n != "3" {
			t.Errorf("after a bad reload: ndots %q (%v), want 3 (the last good set)", n, err)
		}
		if code, body := get(readyz); code != http.StatusOK {
			t.Errorf("readyz after a bad reload: %d %s", code, body)
		}
		if !strings.Contains(logs.String(), "policy reload failed; keeping the policies in use") {
			t.Error("the failed reload was not logged")
		}
		if !strings.Contains(logs.String(), "spec.actions.ndots: Invalid value: 20") {
			t.Error("the log does not say what is wrong with the policy")
		}
	})

	t.Run("metrics", func(t *testing.T) {
		for _, name := range []string{
			`poddns_webhook_admissions_total{result="patched"}`,
			`poddns_webhook_policy_matches_total{outcome="applied",policy="ndots"}`,
			`poddns_webhook_policies`,
			`poddns_webhook_admission_duration_seconds_count`,
			`controller_runtime_webhook_requests_total{code="200",webhook="/mutate-v1-pod"}`,
		} {
			if v, err := metric(name); err != nil || v == "0" {
				t.Errorf("%s = %q (%v), want > 0", name, v, err)
			}
		}
	})

	t.Run("graceful shutdown", func(t *testing.T) {
		cancel()
		stopped = true
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve returned %v", err)
			}
		case <-time.After(40 * time.Second):
			t.Fatal("serve did not stop")
		}
		if _, err := serial(); err == nil {
			t.Error("the webhook port still answers after shutdown")
		}
	})
}
