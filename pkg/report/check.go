package report

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/poddns/poddns/pkg/policy"
	"github.com/poddns/poddns/pkg/render"
	"github.com/poddns/poddns/pkg/resolvconf"
)

// Results of a policy for a pod, as policy reports write them.
const (
	ResultPass = "pass"
	ResultFail = "fail"
	ResultSkip = "skip"
)

// Basis says what a pod was compared with.
type Basis string

const (
	// BasisTemplate: the pod template of the owning workload.
	BasisTemplate Basis = "template"
	// BasisReverted: the pod with its applied policies reverted from
	// poddns.io/original-dns.
	BasisReverted Basis = "reverted"
	// BasisOwn: the pod's own fields; the webhook never changed it.
	BasisOwn Basis = "own"
	// BasisUnknown: the webhook changed the pod without recording its
	// original fields and no owner template is known: it cannot be judged.
	BasisUnknown Basis = "unknown"
)

// DNS are a pod's DNS fields.
type DNS struct {
	DNSPolicy corev1.DNSPolicy     `json:"dnsPolicy"`
	DNSConfig *corev1.PodDNSConfig `json:"dnsConfig,omitempty"`
}

// PolicyResult is what one policy says of one pod.
type PolicyResult struct {
	Policy  string `json:"policy"`
	Result  string `json:"result"`
	Message string `json:"message"`
}

// PodResult is the outcome for one pod.
type PodResult struct {
	Pod      Ref `json:"pod"`
	Workload Ref `json:"workload"`
	// Action fixes the workload (see Action).
	Action string `json:"action"`
	// Basis and ComparedWith say what the pod was compared with.
	Basis        Basis  `json:"basis"`
	ComparedWith string `json:"comparedWith"`
	// Exempt says why no policy applies to the pod ("" when they do).
	Exempt string `json:"exempt,omitempty"`
	// Differs reports that the pod's DNS differs from what it would be
	// created with now; Changes are the differences, from the pod's
	// current fields to those.
	Differs  bool            `json:"differs"`
	Changes  []policy.Change `json:"changes,omitempty"`
	Current  DNS             `json:"current"`
	Expected *DNS            `json:"expected,omitempty"`
	// Policies are the results of the policies that select the pod (and
	// of policies that changed it before but no longer apply).
	Policies []PolicyResult `json:"policies"`
}

// Checker compares running pods with what the policies give them at
// creation. Engine is required.
type Checker struct {
	Engine *policy.Engine
	// Owners are the workloads known (nil: none; every pod is compared
	// with itself, reverted).
	Owners *Owners
	// NamespaceSelector selects the namespaces whose pods the webhook is
	// called for (the MutatingWebhookConfiguration's; nil: every
	// namespace). In another namespace a pod is created unchanged.
	NamespaceSelector labels.Selector
	// ExcludedNamespaces are never mutated by the webhook.
	ExcludedNamespaces []string

	// names are the names of the policies of set, computed once per Set.
	set   *policy.Set
	names map[string]bool
}

// policyNames are the names of the policies in use. A Checker is not safe
// for concurrent use.
func (c *Checker) policyNames() map[string]bool {
	if set := c.Engine.Set(); set != c.set || c.names == nil {
		c.set, c.names = set, map[string]bool{}
		for _, info := range set.Policies() {
			c.names[info.Name] = true
		}
	}
	return c.names
}

// Check compares pod, running in a namespace with nsLabels, with what it
// would be created as now. pod is not modified.
func (c *Checker) Check(pod *corev1.Pod, nsLabels map[string]string) PodResult {
	self := Ref{APIVersion: "v1", Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID}
	owners := c.Owners
	if owners == nil {
		owners = NewOwners()
	}
	workload, tmpl := owners.Resolve(self, pod.OwnerReferences)
	r := PodResult{
		Pod: self, Workload: workload, Action: Action(workload, self),
		Current:  currentDNS(pod),
		Policies: []PolicyResult{},
	}

	// The pod as it would be created now.
	var created *corev1.Pod
	switch orig, ok, err := policy.Original(pod); {
	case tmpl != nil:
		created = tmpl.Template.DeepCopy()
		created.Name, created.Namespace, created.UID = pod.Name, pod.Namespace, pod.UID
		// The controller adds labels of its own (pod-template-hash, ...).
		created.Labels = labels.Merge(labels.Set(pod.Labels), labels.Set(created.Labels))
		r.Basis, r.ComparedWith = BasisTemplate, "the pod template of "+tmpl.Ref.String()
	case ok:
		created = SlimPod(pod).DeepCopy()
		orig.Revert(created)
		r.Basis, r.ComparedWith = BasisReverted, "the pod with the changes of "+pod.Annotations[policy.AnnotationApplied]+" reverted ("+policy.AnnotationOriginal+")"
	case err != nil || pod.Annotations[policy.AnnotationApplied] != "":
		why := "the webhook changed the pod (" + policy.AnnotationApplied + ": " + pod.Annotations[policy.AnnotationApplied] + ") without recording its original fields"
		if err != nil {
			why = err.Error()
		}
		r.Basis, r.ComparedWith = BasisUnknown, why+", and no owner template is known: recreate the pod to be sure"
		for _, name := range appliedNames(pod) {
			r.Policies = append(r.Policies, PolicyResult{Policy: name, Result: ResultSkip, Message: "cannot tell: " + why})
		}
		return r
	default:
		created = SlimPod(pod).DeepCopy()
		r.Basis, r.ComparedWith = BasisOwn, "the pod's own fields (the webhook did not change it)"
	}
	// Annotations the webhook wrote were not there at creation.
	if created.Annotations != nil {
		created.Annotations = clean(created.Annotations)
	}
	resolvconf.DefaultPodSpec(&created.Spec)

	var d policy.Decision
	called := c.webhookCalled(pod.Namespace, nsLabels)
	if called {
		d = c.Engine.Evaluate(created, nsLabels)
		d.Mutate(created)
		r.Exempt = d.Exempt
	} else {
		r.Exempt = "the webhook is not called for the namespace (its namespaceSelector or excluded namespaces)"
	}
	r.Expected = &DNS{DNSPolicy: created.Spec.DNSPolicy, DNSConfig: created.Spec.DNSConfig}
	r.Changes = policy.DiffDNS(r.Current.DNSPolicy, r.Current.DNSConfig, r.Expected.DNSPolicy, r.Expected.DNSConfig)
	r.Differs = len(r.Changes) > 0
	r.Policies = c.policyResults(pod, &d, r.Changes)
	return r
}

func (c *Checker) webhookCalled(namespace string, nsLabels map[string]string) bool {
	if slices.Contains(c.ExcludedNamespaces, namespace) {
		return false
	}
	if c.NamespaceSelector == nil {
		return true
	}
	l := labels.Set(nsLabels)
	if _, ok := l[policy.LabelMetadataName]; !ok {
		l = labels.Merge(l, labels.Set{policy.LabelMetadataName: namespace})
	}
	return c.NamespaceSelector.Matches(l)
}

// policyResults says pass, fail or skip for every policy that selects the
// pod, blaming a difference on the policies that set the fields that
// differ, else on the policies that changed the pod before and no longer
// do.
func (c *Checker) policyResults(pod *corev1.Pod, d *policy.Decision, diffs []policy.Change) []PolicyResult {
	out := []PolicyResult{}
	blamed := false
	inSet := c.policyNames()
	for _, res := range d.Results {
		switch res.Outcome {
		case policy.OutcomeNotMatched:
			continue
		case policy.OutcomeSkipped:
			out = append(out, PolicyResult{Policy: res.Policy, Result: ResultSkip, Message: "not applied to this pod: " + res.Reason})
		case policy.OutcomeAudit:
			if len(res.Changes) > 0 {
				out = append(out, PolicyResult{Policy: res.Policy, Result: ResultFail, Message: "audit: the policy would change " + describe(res.Changes)})
			} else {
				out = append(out, PolicyResult{Policy: res.Policy, Result: ResultPass, Message: "audit: the pod is as the policy wants"})
			}
		case policy.OutcomeApplied, policy.OutcomeUnchanged:
			if touched := touches(res.Changes, diffs); len(touched) > 0 {
				blamed = true
				out = append(out, PolicyResult{Policy: res.Policy, Result: ResultFail, Message: "the pod differs from what the policy gives it at creation: " + describe(touched)})
			} else {
				out = append(out, PolicyResult{Policy: res.Policy, Result: ResultPass, Message: "the pod's DNS is as the policy makes it"})
			}
		}
	}
	if len(diffs) == 0 || blamed {
		return out
	}
	// The difference comes from policies that changed the pod and no
	// longer do (removed, or no longer selecting it), or from the absence
	// of one that applies now.
	for _, name := range appliedNames(pod) {
		if slices.ContainsFunc(d.Applied(), func(n string) bool { return n == name }) {
			continue
		}
		msg := "the policy changed the pod and no longer applies to it at creation: " + describe(diffs)
		if !inSet[name] {
			msg = "the policy is no longer in the policy set; the pod still has its changes: " + describe(diffs)
		}
		out = append(out, PolicyResult{Policy: name, Result: ResultFail, Message: msg})
		blamed = true
	}
	if !blamed {
		for i := range out {
			if out[i].Result == ResultPass {
				out[i] = PolicyResult{Policy: out[i].Policy, Result: ResultFail, Message: "the pod differs from what the policies give it at creation: " + describe(diffs)}
			}
		}
	}
	return out
}

// touches returns the differences in fields the changes set (a switch to
// None sets every field).
func touches(changes, diffs []policy.Change) []policy.Change {
	var out []policy.Change
	for _, df := range diffs {
		for _, ch := range changes {
			if ch.Field == df.Field || ch.Field == "spec.dnsConfig" || ch.Field == "spec.dnsPolicy" {
				out = append(out, df)
				break
			}
		}
	}
	return out
}

func describe(cs []policy.Change) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = render.DescribeChange(c)
	}
	return strings.Join(parts, "; ")
}

func appliedNames(pod *corev1.Pod) []string {
	v := pod.Annotations[policy.AnnotationApplied]
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// clean drops the annotations the webhook writes.
func clean(ann map[string]string) map[string]string {
	out := make(map[string]string, len(ann))
	for k, v := range ann {
		switch k {
		case policy.AnnotationApplied, policy.AnnotationOriginal, policy.AnnotationResolvConf:
			continue
		}
		out[k] = v
	}
	return out
}

func currentDNS(pod *corev1.Pod) DNS {
	d := DNS{DNSPolicy: pod.Spec.DNSPolicy, DNSConfig: pod.Spec.DNSConfig.DeepCopy()}
	if d.DNSPolicy == "" {
		d.DNSPolicy = corev1.DNSClusterFirst
	}
	return d
}
