package policy

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// AnnotationOriginal records, on a pod the webhook changed, the DNS fields
// the pod was submitted with (dnsPolicy and dnsConfig, as JSON: {"dnsPolicy":
// "...", "dnsConfig": {...}}, each omitted when unset). Decision.Mutate
// writes it with AnnotationApplied, and both must fit the API server's limit
// on annotations or the change is not made: tooling that asks what a pod
// would be created as today (`webhook report`) reverts the applied policies
// from it, which the policy names alone cannot do once a policy has changed.
const AnnotationOriginal = "poddns.io/original-dns"

// OriginalDNS are the DNS fields a pod was submitted with.
type OriginalDNS struct {
	DNSPolicy corev1.DNSPolicy     `json:"dnsPolicy,omitempty"`
	DNSConfig *corev1.PodDNSConfig `json:"dnsConfig,omitempty"`
}

// EncodeOriginal is the value of AnnotationOriginal for pod as it is now.
func EncodeOriginal(pod *corev1.Pod) string {
	b, err := json.Marshal(OriginalDNS{DNSPolicy: pod.Spec.DNSPolicy, DNSConfig: pod.Spec.DNSConfig})
	if err != nil {
		// A PodDNSConfig is strings and pointers to strings: it always
		// encodes.
		panic(fmt.Sprintf("encode %s: %v", AnnotationOriginal, err))
	}
	return string(b)
}

// Original returns the DNS fields pod was submitted with, as recorded in
// AnnotationOriginal, and whether it has a well-formed record. A pod the
// webhook never changed has no record: its fields are its own.
func Original(pod *corev1.Pod) (OriginalDNS, bool, error) {
	v, ok := pod.Annotations[AnnotationOriginal]
	if !ok {
		return OriginalDNS{}, false, nil
	}
	var o OriginalDNS
	if err := json.Unmarshal([]byte(v), &o); err != nil {
		return OriginalDNS{}, false, fmt.Errorf("annotation %s: %w", AnnotationOriginal, err)
	}
	return o, true, nil
}

// Revert sets pod's DNS fields to o (deep copies).
func (o OriginalDNS) Revert(pod *corev1.Pod) {
	pod.Spec.DNSPolicy = o.DNSPolicy
	pod.Spec.DNSConfig = o.DNSConfig.DeepCopy()
}
