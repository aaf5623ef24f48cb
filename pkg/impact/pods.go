package impact

import (
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/poddns/poddns/pkg/manifest"
	"github.com/poddns/poddns/pkg/policy"
	"github.com/poddns/poddns/pkg/render"
	"github.com/poddns/poddns/pkg/resolvconf"
)

// Policies are the two policy sets compared; an engine may be nil (no
// policies: the pod as it is). Both engines share the node profile of
// Current (or Profile when both are nil).
type Policies struct {
	Current, Proposed *policy.Engine
	Profile           *resolvconf.NodeProfile
}

// ManifestPods places the log's pods among pods read from manifests, as
// created (before the webhook): a Pod of the same namespace and name, or
// else the workload in the namespace whose pods are named after it (the
// longest NAME with the pod named NAME-...). The current resolv.conf is the
// pod through the current policies, the proposed one through the proposed
// policies, on the profile; namespaces are the namespaces' labels by name.
func ManifestPods(items []manifest.Item, namespaces map[string]map[string]string, p Policies) Pods {
	pods := map[string]manifest.Item{}
	workloads := map[string][]manifest.Item{}
	for _, it := range items {
		if it.Kind == "Pod" {
			pods[it.Namespace+"/"+it.Name] = it
		} else {
			workloads[it.Namespace] = append(workloads[it.Namespace], it)
		}
	}
	profile := p.Profile
	if p.Current != nil {
		profile = p.Current.Profile()
	} else if p.Proposed != nil {
		profile = p.Proposed.Profile()
	}
	return func(namespace, name string) (Pod, bool) {
		it, ok := pods[namespace+"/"+name]
		if !ok {
			best := -1
			for i, w := range workloads[namespace] {
				if strings.HasPrefix(name, w.Name+"-") && (best < 0 || len(w.Name) > len(workloads[namespace][best].Name)) {
					best = i
				}
			}
			if best < 0 {
				return Pod{}, false
			}
			it, ok = workloads[namespace][best], true
		}
		cur, err := through(it, p.Current, profile, namespaces[namespace])
		if err != "" {
			return Pod{}, false
		}
		out := Pod{Workload: Owner(it), Current: cur}
		out.Proposed, out.ProposedError = through(it, p.Proposed, profile, namespaces[namespace])
		return out, true
	}
}

// through is the resolv.conf of item admitted through e (nil: no
// policies), or why the pod would not run.
func through(it manifest.Item, e *policy.Engine, profile *resolvconf.NodeProfile, nsLabels map[string]string) (resolvconf.Config, string) {
	var r render.Report
	pod := it.Pod
	if e == nil {
		r = render.Pod(it, profile)
		pod = it.Pod.DeepCopy()
		resolvconf.DefaultPodSpec(&pod.Spec)
	} else {
		r = render.PodWithPolicies(it, e, nsLabels)
		pod = r.PatchedPod
	}
	if r.Failed() {
		why := r.ValidationErrors
		if r.Error != "" {
			why = append(why, r.Error)
		}
		return resolvconf.Config{}, strings.Join(why, "; ")
	}
	res, err := resolvconf.Compute(pod, profile)
	if err != nil {
		return resolvconf.Config{}, err.Error()
	}
	return res.Config, ""
}

// Owner is the workload of an item: the workload of a template, or the
// controller of a Pod (a ReplicaSet named after its pod-template-hash is
// its Deployment's), or the Pod itself.
func Owner(it manifest.Item) Workload {
	w := Workload{Namespace: it.Namespace, Kind: it.Kind, Name: it.Name}
	if it.Kind != "Pod" || it.Pod == nil {
		return w
	}
	ref := metav1.GetControllerOfNoCopy(it.Pod)
	if ref == nil {
		return w
	}
	w.Kind, w.Name = ref.Kind, ref.Name
	if h := it.Pod.Labels["pod-template-hash"]; ref.Kind == "ReplicaSet" && h != "" {
		if d, ok := strings.CutSuffix(ref.Name, "-"+h); ok && d != "" {
			w.Kind, w.Name = "Deployment", d
		}
	}
	return w
}
