package impact

import (
	"strings"

	"github.com/poddns/poddns/pkg/manifest"
	"github.com/poddns/poddns/pkg/policy"
	"github.com/poddns/poddns/pkg/render"
	"github.com/poddns/poddns/pkg/report"
	"github.com/poddns/poddns/pkg/resolvconf"
)

// Policies are the two policy sets compared. Proposed is required; Current
// may be nil (no policies now). The resolv.conf is computed on Proposed's
// node profile.
type Policies struct {
	Current, Proposed *policy.Engine
}

// ManifestPods places the log's pods among pods read from manifests (or
// listed from a cluster): a Pod of the same namespace and name, or else the
// workload in the namespace whose pods are named after it (the longest NAME
// with the pod named NAME-...). namespaces are the namespaces' labels by
// name.
//
// A Pod's current resolv.conf is the one it has: its own fields when the
// webhook changed it (poddns.io/applied), else the pod through the current
// policies, as the webhook would admit it. The proposed one is the pod as it
// would be created now — as `webhook report` finds it: its owner's
// template, or the pod with the webhook's changes reverted, or the pod's own
// fields — through the proposed policies. A workload stands for its pods:
// its template through each set of policies.
func ManifestPods(items []manifest.Item, namespaces map[string]map[string]string, p Policies) Pods {
	pods := map[string]manifest.Item{}
	workloads := map[string][]manifest.Item{}
	owners := report.NewOwners()
	for _, it := range items {
		if it.Kind == "Pod" {
			pods[it.Namespace+"/"+it.Name] = it
			continue
		}
		workloads[it.Namespace] = append(workloads[it.Namespace], it)
		owners.Add(report.Owner{
			Ref:      report.Ref{APIVersion: it.APIVersion, Kind: it.Kind, Namespace: it.Namespace, Name: it.Name, UID: it.Pod.UID},
			Owners:   it.Owners,
			Template: report.SlimPod(it.Pod),
		})
	}
	profile := p.Proposed.Profile()
	checker := &report.Checker{Engine: p.Proposed, Owners: owners}
	return func(namespace, name string) (Pod, bool) {
		nsLabels := namespaces[namespace]
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
			w := workloads[namespace][best]
			cur, why := through(w, p.Current, profile, nsLabels)
			if why != "" {
				return Pod{}, false
			}
			out := Pod{Workload: Workload{Namespace: w.Namespace, Kind: w.Kind, Name: w.Name}, Current: cur}
			out.Proposed, out.ProposedError = through(w, p.Proposed, profile, nsLabels)
			return out, true
		}

		res := checker.Check(it.Pod, nsLabels)
		out := Pod{Workload: workloadOf(res.Workload, it.Pod.Labels)}
		var why string
		if it.Pod.Annotations[policy.AnnotationApplied] != "" {
			out.Current, why = through(it, nil, profile, nil)
		} else {
			out.Current, why = through(it, p.Current, profile, nsLabels)
		}
		if why != "" {
			return Pod{}, false
		}
		if res.Expected == nil {
			out.ProposedError = "cannot tell how it would be created: " + res.ComparedWith
			return out, true
		}
		created := it
		created.Pod = it.Pod.DeepCopy()
		created.Pod.Spec.DNSPolicy, created.Pod.Spec.DNSConfig = res.Expected.DNSPolicy, res.Expected.DNSConfig
		out.Proposed, out.ProposedError = through(created, nil, profile, nil)
		return out, true
	}
}

// through is the resolv.conf of item admitted through e (nil: as it is), or
// why the pod would not run.
func through(it manifest.Item, e *policy.Engine, profile *resolvconf.NodeProfile, nsLabels map[string]string) (resolvconf.Config, string) {
	var r render.Report
	var pod = it.Pod
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

// workloadOf is the workload report resolved, except that a ReplicaSet
// named after the pod's pod-template-hash is its Deployment's even when
// the ReplicaSet object is not known.
func workloadOf(w report.Ref, podLabels map[string]string) Workload {
	out := Workload{Namespace: w.Namespace, Kind: w.Kind, Name: w.Name}
	if h := podLabels["pod-template-hash"]; w.Kind == "ReplicaSet" && h != "" {
		if d, ok := strings.CutSuffix(w.Name, "-"+h); ok && d != "" {
			out.Kind, out.Name = "Deployment", d
		}
	}
	return out
}
