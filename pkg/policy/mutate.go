package policy

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Annotations poddns reads and writes on pods (DESIGN.md conventions).
const (
	// AnnotationSkip set to "true" on a pod opts it out of every policy:
	// Evaluate exempts it (Decision.Exempt).
	AnnotationSkip = "poddns.io/skip"
	// AnnotationApplied lists the policies that changed the pod,
	// comma-separated, in the order applied.
	AnnotationApplied = "poddns.io/applied"
	// AnnotationResolvConf is the resolv.conf preview of the changed pod.
	AnnotationResolvConf = "poddns.io/resolv-conf"
)

// Mutate makes pod, in place, what the webhook admits (the JSON patch is
// computed from it by the admission handler): when the decision changed the DNS
// fields, they are written with the annotations AnnotationApplied,
// AnnotationOriginal (the fields as pod has them before) and
// AnnotationResolvConf (the latter only when kubelet gives a file and it fits
// in the API server's limit on annotations, see Decision.PreviewOmitted); when
// nothing changed — no policy applied, audit only, or a pod mutated before
// (reinvocation) — pod is left exactly as it is. It reports whether pod
// changed.
func (d *Decision) Mutate(pod *corev1.Pod) bool {
	if !d.Changed {
		return false
	}
	original := EncodeOriginal(pod)
	d.SetDNSFields(pod)
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[AnnotationApplied] = strings.Join(d.Applied(), ",")
	pod.Annotations[AnnotationOriginal] = original
	if d.PreviewError == "" && !d.PreviewOmitted {
		pod.Annotations[AnnotationResolvConf] = d.ResolvConf
	} else {
		delete(pod.Annotations, AnnotationResolvConf)
	}
	return true
}
