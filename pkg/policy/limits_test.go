package policy_test

import (
	"strings"
	"testing"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"

	"github.com/poddns/poddns/pkg/policy"
)

// fillerKey is the annotation that brings a pod's annotations to a size.
const fillerKey = "example.com/filler"

// TestEvaluateAnnotationLimit: the annotations the webhook adds must fit in
// the API server's limit on a pod's annotations (issue 12, item 7). The
// preview goes first; when not even poddns.io/applied fits, the pod is left
// unchanged. test/integration's TestWebhookLimits checks the same boundaries
// against the real API server.
func TestEvaluateAnnotationLimit(t *testing.T) {
	e := newEngine(t, doc("ndots", "  actions: {ndots: 2}"), policy.GlobalPerPolicy)
	roomy := e.Evaluate(pod(t, plainPod), nil)
	if !roomy.Changed || roomy.ResolvConf == "" {
		t.Fatalf("the policy does not change the plain pod: %+v", roomy)
	}
	const limit = apivalidation.TotalAnnotationSizeLimitB
	// poddns.io/applied and poddns.io/original-dns are written together.
	applied := len(policy.AnnotationApplied) + len("ndots") + len(policy.AnnotationOriginal) + len(policy.EncodeOriginal(pod(t, plainPod)))
	preview := len(policy.AnnotationResolvConf) + len(roomy.ResolvConf)

	tests := []struct {
		name string
		// own is the size of the pod's annotations (keys and values).
		own int
		// stale is a poddns.io/resolv-conf of the pod's own, counted in own.
		stale       bool
		wantChanged bool
		wantPreview bool
		wantWarning string
	}{
		{name: "both fit exactly", own: limit - applied - preview, wantChanged: true, wantPreview: true},
		{name: "the preview is one byte over", own: limit - applied - preview + 1, wantChanged: true,
			wantWarning: "poddns: the annotation poddns.io/resolv-conf is left out: with it the pod's annotations would exceed the API server's limit of 262144 bytes"},
		{name: "poddns.io/applied and poddns.io/original-dns fit exactly", own: limit - applied, wantChanged: true,
			wantWarning: "poddns.io/resolv-conf is left out"},
		{name: "a stale preview of the pod's own is removed, not counted", own: limit - applied, stale: true, wantChanged: true,
			wantWarning: "poddns.io/resolv-conf is left out"},
		{name: "poddns.io/applied and poddns.io/original-dns are one byte over", own: limit - applied + 1,
			wantWarning: "poddns: the pod is left unchanged: the pod's annotations leave no room for poddns.io/applied and poddns.io/original-dns: with them they would total 262145 bytes, the API server allows 262144"},
		{name: "the pod's own annotations are over the limit", own: limit + 1,
			wantWarning: "leave no room for poddns.io/applied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pod(t, plainPod)
			p.Annotations = map[string]string{}
			own := tt.own
			if tt.stale {
				p.Annotations[policy.AnnotationResolvConf] = "nameserver 192.0.2.1\n"
				own -= len(policy.AnnotationResolvConf) + len(p.Annotations[policy.AnnotationResolvConf])
			}
			p.Annotations[fillerKey] = strings.Repeat("x", own-len(fillerKey))
			before := p.DeepCopy()

			d := e.Evaluate(p, nil)
			changed := d.Mutate(p)
			if changed != tt.wantChanged || d.Changed != tt.wantChanged {
				t.Fatalf("Patch = %t, Changed = %t, want %t (warnings %q)", changed, d.Changed, tt.wantChanged, d.Warnings)
			}
			if len(d.Warnings) > 1 || tt.wantWarning == "" && len(d.Warnings) > 0 || tt.wantWarning != "" && (len(d.Warnings) == 0 || !strings.Contains(d.Warnings[0], tt.wantWarning)) {
				t.Errorf("Warnings = %q, want one containing %q", d.Warnings, tt.wantWarning)
			}
			if d.PreviewOmitted == tt.wantPreview && tt.wantChanged {
				t.Errorf("PreviewOmitted = %t, want %t", d.PreviewOmitted, !tt.wantPreview)
			}
			if !tt.wantChanged {
				if p.Spec.DNSConfig != nil || len(p.Annotations) != len(before.Annotations) {
					t.Errorf("the pod changed: dnsConfig %+v, %d annotations", p.Spec.DNSConfig, len(p.Annotations))
				}
				if r := d.Results[0]; r.Outcome != policy.OutcomeSkipped || !strings.Contains(r.Reason, "no room for poddns.io/applied") {
					t.Errorf("result = %s (%s), want skipped for want of room", r.Outcome, r.Reason)
				}
				if d.ResolvConf == roomy.ResolvConf {
					t.Errorf("the preview is the changed pod's: %q", d.ResolvConf)
				}
				return
			}
			if err := apivalidation.ValidateAnnotationsSize(p.Annotations); err != nil {
				t.Errorf("the patched pod's annotations: %v", err)
			}
			if p.Annotations[policy.AnnotationApplied] != "ndots" {
				t.Errorf("%s = %q, want ndots", policy.AnnotationApplied, p.Annotations[policy.AnnotationApplied])
			}
			if o := p.Annotations[policy.AnnotationOriginal]; o != "{}" {
				t.Errorf("%s = %q, want {} (no dnsPolicy, no dnsConfig)", policy.AnnotationOriginal, o)
			}
			rc, ok := p.Annotations[policy.AnnotationResolvConf]
			if ok != tt.wantPreview || ok && rc != roomy.ResolvConf {
				t.Errorf("%s = %q (present %t), want present %t", policy.AnnotationResolvConf, rc, ok, tt.wantPreview)
			}
		})
	}
}
