package policy_test

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/poddns/poddns/pkg/policy"
)

// TestOriginalRoundTrip: the webhook records the fields a pod was submitted
// with, and reverting the mutated pod from the record gives them back
// exactly, whatever the policies did (a switch to None included).
func TestOriginalRoundTrip(t *testing.T) {
	e := newEngine(t, doc("local", "  override: true\n  actions: {dnsPolicy: None, nameservers: [169.254.20.10], searches: {replace: [svc.cluster.local]}}"), "")
	for _, tt := range []struct{ name, pod string }{
		{"no DNS fields", plainPod},
		{"own dnsConfig", "spec: {dnsPolicy: ClusterFirst, dnsConfig: {options: [{name: ndots, value: '3'}], searches: [a.example]}, containers: [{name: c}]}"},
		{"hostNetwork Default", "spec: {hostNetwork: true, dnsPolicy: Default, containers: [{name: c}]}"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := pod(t, tt.pod)
			submitted := p.DeepCopy()
			d := e.Evaluate(p, nil)
			if !d.Mutate(p) {
				t.Fatalf("the policy does not change the pod: %+v", d.Results)
			}
			if p.Spec.DNSPolicy != corev1.DNSNone {
				t.Fatalf("dnsPolicy = %s, want None", p.Spec.DNSPolicy)
			}
			o, ok, err := policy.Original(p)
			if err != nil || !ok {
				t.Fatalf("Original = %+v, %t, %v", o, ok, err)
			}
			o.Revert(p)
			if p.Spec.DNSPolicy != submitted.Spec.DNSPolicy || !reflect.DeepEqual(p.Spec.DNSConfig, submitted.Spec.DNSConfig) {
				t.Errorf("reverted to %s %+v, want %s %+v", p.Spec.DNSPolicy, p.Spec.DNSConfig, submitted.Spec.DNSPolicy, submitted.Spec.DNSConfig)
			}
		})
	}
	// No record: the pod's fields are its own; a bad record is an error.
	p := pod(t, plainPod)
	if _, ok, err := policy.Original(p); ok || err != nil {
		t.Errorf("Original of an unmutated pod = %t, %v", ok, err)
	}
	p.Annotations = map[string]string{policy.AnnotationOriginal: "{bad"}
	if _, ok, err := policy.Original(p); ok || err == nil {
		t.Errorf("Original of a bad record = %t, %v, want an error", ok, err)
	}
}
