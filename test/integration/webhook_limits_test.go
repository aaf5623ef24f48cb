package integration

// The webhook never breaks a pod the API server would accept and never
// "repairs" one it would reject (issue 12, items 7 and 8), checked against the
// real API server with the production webhook configuration in the path:
// every pod is created with server-side dry run, once where the webhook is
// called and once where it is not.

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/policy"
	padmission "github.com/poddns/poddns/pkg/policy/admission"
	"github.com/poddns/poddns/pkg/resolvconf"
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
	root := testenv.Root(t)
	policies := filepath.Join(root, "testdata", "policies")
	w := startWebhook(t, policies)
	w.namespace(t, "local", enabled("poddns.io/node-local-dns", "true"))
	w.namespace(t, "tuned", enabled("poddns.io/ndots", "2"))
	w.namespace(t, "plain", nil) // the webhook is not called here

	// The webhook's own decision for a pod, offline: the handler's engine.
	engine := w.engine

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

	t.Run("annotations only when they fit", func(t *testing.T) {
		const limit = apivalidation.TotalAnnotationSizeLimitB
		nsLabels := enabled("poddns.io/ndots", "2")
		// What the webhook writes for this pod when there is room.
		// The API server defaults the pod before the webhook sees it; so
		// does the offline patch below (poddns.io/original-dns records the
		// defaulted dnsPolicy).
		roomy := newPod("tuned", "big")
		resolvconf.DefaultPodSpec(&roomy.Spec)
		d := engine.Evaluate(roomy, nsLabels)
		if !d.Mutate(roomy) {
			t.Fatalf("the policies do not change the pod: %+v", d)
		}
		// poddns.io/applied and poddns.io/original-dns go together.
		applied := len(policy.AnnotationApplied) + len(roomy.Annotations[policy.AnnotationApplied]) +
			len(policy.AnnotationOriginal) + len(roomy.Annotations[policy.AnnotationOriginal])
		preview := len(policy.AnnotationResolvConf) + len(roomy.Annotations[policy.AnnotationResolvConf])
		filled := func(ns string, own int) *corev1.Pod {
			return newPod(ns, "big", func(p *corev1.Pod) {
				p.Annotations = map[string]string{"example.com/filler": strings.Repeat("x", own-len("example.com/filler"))}
			})
		}

		for _, tc := range []struct {
			name                     string
			own                      int
			wantApplied, wantPreview bool
			wantWarning              string
		}{
			{"both fit exactly", limit - applied - preview, true, true, ""},
			{"the preview is one byte over", limit - applied - preview + 1, true, false, "poddns: the annotation poddns.io/resolv-conf is left out"},
			{"poddns.io/applied and poddns.io/original-dns are one byte over", limit - applied + 1, false, false, "poddns: the pod is left unchanged: the pod's annotations leave no room for poddns.io/applied and poddns.io/original-dns"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				// The original, through the webhook: accepted.
				got, err, warns := w.dryRun(t, filled("tuned", tc.own))
				if err != nil {
					t.Fatalf("the webhook made an acceptable pod unacceptable: %v", err)
				}
				for _, k := range []string{policy.AnnotationApplied, policy.AnnotationOriginal} {
					if _, ok := got.Annotations[k]; ok != tc.wantApplied {
						t.Errorf("%s present = %t, want %t", k, ok, tc.wantApplied)
					}
				}
				if _, ok := got.Annotations[policy.AnnotationResolvConf]; ok != tc.wantPreview {
					t.Errorf("%s present = %t, want %t", policy.AnnotationResolvConf, ok, tc.wantPreview)
				}
				if v, _ := podOption(got, "ndots"); (v == "2") != tc.wantApplied {
					t.Errorf("ndots = %q; the pod was changed = %t, want %t", v, v == "2", tc.wantApplied)
				}
				if tc.wantWarning == "" && len(warns) > 0 || tc.wantWarning != "" && !hasWarning(warns, tc.wantWarning) {
					t.Errorf("warnings = %q, want %q", warns, tc.wantWarning)
				}

				// The patched pod, offline, where no webhook is called:
				// accepted too, and equal to what the webhook made.
				p := filled("tuned", tc.own)
				resolvconf.DefaultPodSpec(&p.Spec)
				d := engine.Evaluate(p, nsLabels)
				d.Mutate(p)
				p.Namespace = "plain"
				var ctl *corev1.Pod
				w.notCalled(t, func() { ctl, err, _ = w.dryRun(t, p) })
				if err != nil {
					t.Fatalf("the patched pod is rejected: %v", err)
				}
				if !equality.Semantic.DeepEqual(got.Spec, ctl.Spec) || !mapsEqual(got.Annotations, ctl.Annotations) {
					t.Errorf("the webhook's pod differs from the offline patch: dnsConfig %+v / %+v, %d / %d annotations",
						got.Spec.DNSConfig, ctl.Spec.DNSConfig, len(got.Annotations), len(ctl.Annotations))
				}

				// What the webhook wrote before, every annotation whatever
				// their size, is what the API server refuses.
				if !tc.wantPreview {
					old := filled("plain", tc.own)
					old.Annotations[policy.AnnotationApplied] = roomy.Annotations[policy.AnnotationApplied]
					old.Annotations[policy.AnnotationOriginal] = roomy.Annotations[policy.AnnotationOriginal]
					old.Annotations[policy.AnnotationResolvConf] = roomy.Annotations[policy.AnnotationResolvConf]
					if _, err, _ := w.dryRun(t, old); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "metadata.annotations: Too long") {
						t.Errorf("the pod with every annotation: %v, want metadata.annotations: Too long", err)
					}
				}
			})
		}
	})
}
