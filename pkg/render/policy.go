package render

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/poddns/poddns/pkg/manifest"
	"github.com/poddns/poddns/pkg/nodepool"
	"github.com/poddns/poddns/pkg/policy"
	"github.com/poddns/poddns/pkg/resolvconf"
)

// PolicyReport is what the policies did to a pod. Embedded in a Report, its
// keys are what `webhook render -p` adds to each JSON object, after the seven
// keys of the contract, which then describe the patched pod.
type PolicyReport struct {
	// Applied are the policies that changed the pod, in order.
	Applied []string `json:"applied"`
	// Audit are the matched audit-mode policies and what each would change.
	Audit []policy.Result `json:"audit"`
	// Skipped are the policies not applied to this pod, with the reason.
	Skipped []policy.Result `json:"skipped"`
	// Changed reports whether the policies changed the pod's DNS fields.
	Changed bool `json:"changed"`
	// Exempt says why no policy was evaluated ("" when they were).
	Exempt string `json:"exempt"`
	// PolicyWarnings are the admission warnings the webhook would return.
	PolicyWarnings []string `json:"policyWarnings"`
	// PatchedPod is the pod as the webhook would admit it.
	PatchedPod *corev1.Pod `json:"patchedPod"`
	// Decision is the engine's whole decision and NamespaceLabels the labels
	// it saw, for explain; not in JSON.
	Decision        policy.Decision   `json:"-"`
	NamespaceLabels map[string]string `json:"-"`
}

// PodWithPolicies is Pod for the pod as the webhook would admit it: the pod
// is defaulted as the API server does before admission, evaluated by e in a
// namespace with nsLabels, patched (policy.Decision.Mutate), then reported on
// as Pod does, with the PolicyReport filled in. The item is not modified.
func PodWithPolicies(item manifest.Item, e *policy.Engine, nsLabels map[string]string) Report {
	pod := item.Pod.DeepCopy()
	resolvconf.DefaultPodSpec(&pod.Spec)
	d := e.Evaluate(pod, nsLabels)
	d.Mutate(pod)
	patched := item
	patched.Pod = pod
	var r Report
	if set := e.Pools(); set != nil {
		r = podOn(patched, decisionPools(set, d.Pools))
	} else {
		r = Pod(patched, e.Profile())
	}
	r.PolicyReport = &PolicyReport{
		Applied:        nonNil(d.Applied()),
		Audit:          nonNilResults(d.Audited()),
		Skipped:        nonNilResults(d.Skipped()),
		Changed:        d.Changed,
		Exempt:         d.Exempt,
		PolicyWarnings: nonNil(d.Warnings),
		PatchedPod:     pod,
		Decision:       d,
		NamespaceLabels: policy.NamespaceLabels(&corev1.Namespace{
			ObjectMeta: metav1.ObjectMeta{Name: item.Namespace, Labels: nsLabels},
		}),
	}
	return r
}

// PodsWithPolicies reports on every item; namespaces maps namespace names to
// their labels (see NamespaceLabels).
func PodsWithPolicies(items []manifest.Item, e *policy.Engine, namespaces map[string]map[string]string) []Report {
	reports := make([]Report, len(items))
	for i := range items {
		reports[i] = PodWithPolicies(items[i], e, namespaces[items[i].Namespace])
	}
	return reports
}

// NamespaceLabels returns the labels of the Namespace documents read, by
// name, as the API server has them (policy.NamespaceLabels). A later document
// for the same namespace wins.
func NamespaceLabels(nss []manifest.Namespace) map[string]map[string]string {
	out := make(map[string]map[string]string, len(nss))
	for _, ns := range nss {
		out[ns.Namespace.Name] = policy.NamespaceLabels(ns.Namespace)
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilResults(s []policy.Result) []policy.Result {
	if s == nil {
		return []policy.Result{}
	}
	return s
}

// decisionPools are the pools of set that a decision was made on, in its
// order.
func decisionPools(set *nodepool.Set, previews []policy.PoolPreview) []nodepool.Pool {
	all := set.Pools()
	if len(previews) == 0 {
		return all
	}
	out := make([]nodepool.Pool, 0, len(previews))
	for _, pp := range previews {
		for _, p := range all {
			if p.Name == pp.Pool {
				out = append(out, p)
			}
		}
	}
	return out
}
