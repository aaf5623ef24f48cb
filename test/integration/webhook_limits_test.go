package integration

// The webhook never "repairs" a pod the API server would reject (issue 12,
// item 8), checked against the real API server with the production webhook
// configuration in the path: every pod is created with server-side dry run,
// once where the webhook is called and once where it is not.

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/poddns/poddns/internal/testenv"
	padmission "github.com/poddns/poddns/pkg/policy/admission"
)

// dryRun creates pod with server-side dry run and returns the object the API
// server would store, its error and the warnings the client saw.
func (w *webhookEnv) dryRun(t *testing.T, pod *corev1.Pod) (*corev1.Pod, error, []string) {
	t.Helper()
	w.warnings.Take()
	got, err := w.pods.CoreV1().Pods(pod.Namespace).Create(context.Background(), pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	return got, err, w.warnings.Take()
}

func hasWarning(warns []string, prefix string) bool {
	return slices.ContainsFunc(warns, func(s string) bool { return strings.HasPrefix(s, prefix) })
}

func TestWebhookLimits(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	policies := filepath.Join(root, "testdata", "policies")
	w := startWebhook(t, policies)
	w.namespace(t, "local", enabled("poddns.io/node-local-dns", "true"))
	w.namespace(t, "plain", nil) // the webhook is not called here

	t.Run("a pod the API server rejects is left for it to reject", func(t *testing.T) {
		searches := make([]string, 1000)
		for i := range searches {
			searches[i] = "s" + strings.Repeat("x", i%7) + ".example"
		}
		for _, tc := range []struct {
			name string
			dns  corev1.PodDNSConfig
		}{
			{"four-nameservers", corev1.PodDNSConfig{Nameservers: []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"}}},
			{"thousand-searches", corev1.PodDNSConfig{Searches: searches}},
			{"long-search-domain", corev1.PodDNSConfig{Searches: []string{strings.Repeat("a", 10000) + ".example"}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				withDNS := func(p *corev1.Pod) { p.Spec.DNSConfig = tc.dns.DeepCopy() }
				var ctlErr error
				w.notCalled(t, func() { _, ctlErr, _ = w.dryRun(t, newPod("plain", tc.name, withDNS)) })
				if !apierrors.IsInvalid(ctlErr) {
					t.Fatalf("without the webhook: %v, want Invalid", ctlErr)
				}
				unchanged := w.metrics.Admissions.WithLabelValues(padmission.ResultUnchanged)
				before := testutil.ToFloat64(unchanged)
				_, err, warns := w.dryRun(t, newPod("local", tc.name, withDNS))
				if after := testutil.ToFloat64(unchanged); after != before+1 {
					t.Errorf("the webhook answered %v requests without a patch, want 1", after-before)
				}
				if err == nil {
					t.Fatalf("with the webhook the pod is accepted: the webhook changed a pod the API server rejects")
				}
				if err.Error() != ctlErr.Error() {
					t.Errorf("with the webhook the API server says\n %s\nwithout it\n %s", err, ctlErr)
				}
				if !hasWarning(warns, "poddns: the pod is left unchanged: the API server rejects its DNS settings: spec.dnsConfig.") {
					t.Errorf("warnings = %q, want poddns's", warns)
				}
			})
		}
	})
}
