package integration

// The webhook's memory under a flood of the largest AdmissionReviews it
// accepts (issue 12, item 11): `webhook serve` runs as its own process with
// the Deployment's memory limit, and its peak RSS is read from /proc.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/poddns/poddns/internal/testenv"
	padmission "github.com/poddns/poddns/pkg/policy/admission"
)

// Acceptance figures of issue 12.
const (
	memClients   = 20
	memLoad      = 30 * time.Second
	memReviewLen = 7<<20 - 4<<10 // 7 MiB, just under controller-runtime's limit: every one is read
	memPeakMiB   = 230
)

// webhookMemoryLimit is the memory limit of the webhook container in
// deploy/base/webhook/deployment.yaml, in bytes.
func webhookMemoryLimit(t *testing.T) int64 {
	t.Helper()
	var d appsv1.Deployment
	readWebhookManifest(t, "deployment.yaml", &d)
	for _, c := range d.Spec.Template.Spec.Containers {
		if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok && c.Name == "webhook" {
			return q.Value()
		}
	}
	t.Fatal("deployment.yaml: no memory limit on the webhook container")
	return 0
}

// memReview is an AdmissionReview of memReviewLen bytes for a pod in
// namespace "tuned"; bulk goes into its containers' environment (what the
// API server can send) or its annotations (more than it would: they are
// decoded).
func memReview(t *testing.T, i int, inAnnotations bool) []byte {
	t.Helper()
	pod := map[string]any{
		"metadata": map[string]any{"name": fmt.Sprintf("big-%d", i), "annotations": map[string]string{}},
		"spec":     map[string]any{"containers": []any{map[string]any{"name": "c", "image": "x", "env": []any{}}}},
	}
	build := func(pad int) []byte {
		if inAnnotations {
			pod["metadata"].(map[string]any)["annotations"] = map[string]string{"example.com/pad": strings.Repeat("a", pad)}
		} else {
			c := pod["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
			c["env"] = []any{map[string]string{"name": "PAD", "value": strings.Repeat("a", pad)}}
		}
		obj, err := json.Marshal(pod)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Appendf(nil, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u%d",`+
			`"kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},`+
			`"namespace":"tuned","operation":"CREATE","userInfo":{"username":"admin"},"object":%s}}`, i, obj)
	}
	b := build(0)
	b = build(memReviewLen - len(b))
	if len(b) != memReviewLen {
		t.Fatalf("review of %d bytes, want %d", len(b), memReviewLen)
	}
	return b
}

// TestWebhookMemory: 20 clients post 7 MiB AdmissionReviews to `webhook
// serve` over loopback for 30 s. Every request is answered — an
// AdmissionReview, or 429 at once when the server's budget of bodies in
// flight is used up — and the server's peak RSS (VmHWM) stays under
// 230 MiB, below the Deployment's 256Mi limit.
func TestWebhookMemory(t *testing.T) {
	env := testenv.Start(t)
	bin := rbacBuild(t, "webhook")
	root := testenv.Root(t)
	kcPath := env.AdminKubeconfig(t, "poddns-webhook")
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tuned", Labels: enabled("poddns.io/ndots", "2")}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}

	limit := webhookMemoryLimit(t)
	port, health := testenv.FreeTCPPort(t), testenv.FreeTCPPort(t)
	cmd := startProcessEnv(t, "webhook", bin, []string{"CONTAINER_MEMORY_LIMIT=" + strconv.FormatInt(limit, 10), "GOMEMLIMIT=", "GOGC="},
		"serve", "-p", filepath.Join(root, "testdata", "policies"), "--kubeconfig", kcPath,
		"--host", "127.0.0.1", "--port", strconv.Itoa(port), "--cert-dir", testenv.ServingCertDir(t),
		"--health-probe-bind-address", loopback(health), "--metrics-bind-address", "0", "--policy-resync", "0s")
	waitHTTP(t, fmt.Sprintf("http://%s/readyz", loopback(health)), 60*time.Second)
	idle := memOf(t, cmd.Process.Pid)

	reviews := [][]byte{memReview(t, 0, false), memReview(t, 1, true)}
	url := "https://" + loopback(port) + padmission.Path
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // test server with a self-signed certificate
		MaxIdleConnsPerHost: memClients,
	}}
	var sent, patched, busy atomic.Int64
	var mu sync.Mutex
	var failures []string
	fail := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 10 {
			failures = append(failures, s)
		}
	}
	post := func(body []byte) {
		sent.Add(1)
		resp, err := client.Post(url, "application/json", bytes.NewReader(body)) //nolint:noctx // test
		if err != nil {
			fail("no answer: " + err.Error())
			return
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		switch {
		case err != nil:
			fail("answer cut: " + err.Error())
		case resp.StatusCode == http.StatusTooManyRequests:
			busy.Add(1)
		case resp.StatusCode != http.StatusOK:
			fail(fmt.Sprintf("status %d: %.200s", resp.StatusCode, data))
		default:
			var out admissionv1.AdmissionReview
			if err := json.Unmarshal(data, &out); err != nil || out.Response == nil || !out.Response.Allowed {
				fail(fmt.Sprintf("not an allowing AdmissionReview (%v): %.200s", err, data))
			} else if len(out.Response.Patch) > 0 {
				patched.Add(1)
			}
		}
	}

	stop := time.Now().Add(memLoad)
	var wg sync.WaitGroup
	for i := range memClients {
		wg.Go(func() {
			for n := 0; time.Now().Before(stop); n++ {
				post(reviews[(i+n)%len(reviews)])
			}
		})
	}
	peak := idle
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for time.Now().Before(stop.Add(2 * time.Second)) {
			if m := memOf(t, cmd.Process.Pid); m.hwm > peak.hwm {
				peak = m
			}
			time.Sleep(250 * time.Millisecond)
		}
	}()
	wg.Wait()
	<-sampled
	final := memOf(t, cmd.Process.Pid)
	t.Logf("%d requests in %s from %d clients: %d patched, %d answered 429; RSS idle %.1f MiB, VmHWM %.1f MiB (limit %d MiB, soft limit 0.8 of it)",
		sent.Load(), memLoad, memClients, patched.Load(), busy.Load(), idle.rss, final.hwm, limit>>20)
	if len(failures) > 0 {
		t.Errorf("requests without a proper answer:\n%s", strings.Join(failures, "\n"))
	}
	if patched.Load() == 0 {
		t.Error("no request was patched: the load never reached the handler")
	}
	if final.hwm >= memPeakMiB {
		t.Errorf("VmHWM %.1f MiB, want under %d MiB", final.hwm, memPeakMiB)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Error(err)
	}
}
