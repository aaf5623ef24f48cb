package render

import (
	"fmt"

	"github.com/poddns/poddns/pkg/manifest"
	"github.com/poddns/poddns/pkg/resolvconf"
)

// Report is the outcome for one pod. Its JSON form is the contract of
// `webhook render -o json`: all seven keys always present, lists never null.
// With policies (`webhook render -p`), the keys of PolicyReport follow them.
type Report struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// ResolvConf is the file containerd writes; "" when the API server rejects
	// the pod or kubelet fails to make its sandbox (and when the file is
	// empty, which Error and ValidationErrors tell apart).
	ResolvConf string `json:"resolvConf"`
	// Events are kubelet's events for the pod (on the Pod or the Node).
	Events []resolvconf.Event `json:"events"`
	// ValidationErrors are the API server's errors, "<field path>: <message>".
	ValidationErrors []string `json:"validationErrors"`
	// Warnings are the API server's warnings for an accepted pod.
	Warnings []string `json:"warnings"`
	// Error is kubelet's GetPodDNS error, which fails sandbox creation.
	Error string `json:"error"`
	// ClientNotes say where the stub resolvers in containers (glibc, musl)
	// read the file differently from what it says (resolvconf.ClientNotes).
	ClientNotes []string `json:"clientNotes"`

	// Kind and Location say where the pod came from; they are for the text
	// form and not part of the JSON contract.
	Kind     string            `json:"-"`
	Location manifest.Location `json:"-"`
	// NodePools name the node pools the pod was rendered on (a node profile
	// set, PodOnPools), in order; absent with one node profile.
	NodePools []string `json:"nodePools,omitempty"`
	// PolicyReport is set when the pod went through policies
	// (PodWithPolicies); its keys then follow the seven above.
	*PolicyReport
}

// Failed reports whether the pod would not run with a resolv.conf: the API
// server rejects it or kubelet cannot make its sandbox.
func (r *Report) Failed() bool { return len(r.ValidationErrors) > 0 || r.Error != "" }

// AnyFailed reports whether any report Failed.
func AnyFailed(reports []Report) bool {
	for i := range reports {
		if reports[i].Failed() {
			return true
		}
	}
	return false
}

// Pods reports on every item against the node profile p.
func Pods(items []manifest.Item, p *resolvconf.NodeProfile) []Report {
	reports := make([]Report, len(items))
	for i := range items {
		reports[i] = Pod(items[i], p)
	}
	return reports
}

// Pod reports on one item as a cluster would treat a create request for it:
// the API server defaults the spec (resolvconf.DefaultPodSpec) and validates
// its DNS fields under the item's spec path; only a pod it accepts reaches
// kubelet, whose resolvconf.Compute result is rendered. The item is not
// modified.
func Pod(item manifest.Item, p *resolvconf.NodeProfile) Report {
	r := Report{
		Name:             item.Name,
		Namespace:        item.Namespace,
		Events:           []resolvconf.Event{},
		ValidationErrors: []string{},
		Warnings:         []string{},
		ClientNotes:      []string{},
		Kind:             item.Kind,
		Location:         item.Location,
	}
	pod := item.Pod.DeepCopy()
	resolvconf.DefaultPodSpec(&pod.Spec)
	errs, warnings := resolvconf.ValidatePodSpec(&pod.Spec, item.SpecPath)
	for _, err := range errs {
		r.ValidationErrors = append(r.ValidationErrors, err.Error())
	}
	r.Warnings = append(r.Warnings, warnings...)
	if len(errs) > 0 {
		return r
	}
	res, err := resolvconf.Compute(pod, p)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Events = append(r.Events, res.Events...)
	r.ResolvConf = res.Config.Render()
	r.ClientNotes = append(r.ClientNotes, resolvconf.ClientNotes(res.Config)...)
	return r
}

// NodeNotes are what kubelet says about the node profile itself, once, when it
// starts: its resolv.conf check (a Node event) and its log lines.
func NodeNotes(p *resolvconf.NodeProfile) []string {
	var notes []string
	if ev := p.CheckLimits(); ev != nil {
		notes = append(notes, fmt.Sprintf("node event: %s %s: %s", ev.Type, ev.Reason, ev.Message))
	}
	for _, l := range p.Logs() {
		notes = append(notes, "kubelet log: "+l)
	}
	return notes
}
