package report_test

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/poddns/poddns/pkg/policy"
	"github.com/poddns/poddns/pkg/policy/policytest"
	"github.com/poddns/poddns/pkg/report"
	"github.com/poddns/poddns/pkg/resolvconf"
)

func engine(t *testing.T, docs string) *policy.Engine {
	t.Helper()
	p := policytest.Profile(t, resolvconf.NodeConfig{
		ClusterDomain: "cluster.local", ClusterDNS: []string{"10.96.0.10"},
		ResolvConf: "/etc/resolv.conf", ResolvConfData: []byte("nameserver 10.0.0.2\nsearch ec2.internal\n"),
	})
	return policytest.Engine(t, policytest.Parse(t, docs), policy.EngineOptions{Profile: p})
}

func doc(name, spec string) string {
	return "---\napiVersion: poddns.io/v1alpha1\nkind: DNSPolicy\nmetadata: {name: " + name + "}\nspec:\n" + spec + "\n"
}

var optIn = map[string]string{"poddns.io/enabled": "true"}

// admit is what the webhook makes of pod at CREATE with e: defaulted by the
// API server, then mutated.
func admit(e *policy.Engine, pod *corev1.Pod, nsLabels map[string]string) *corev1.Pod {
	p := pod.DeepCopy()
	resolvconf.DefaultPodSpec(&p.Spec)
	d := e.Evaluate(p, nsLabels)
	d.Mutate(p)
	return p
}

func newPod(name string, owners ...metav1.OwnerReference) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", UID: types.UID("uid-" + name), Labels: map[string]string{"app": "web"}, OwnerReferences: owners},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
	}
}

func TestCheck(t *testing.T) {
	v1 := engine(t, doc("ndots", "  actions: {ndots: 2}"))
	v2 := engine(t, doc("ndots", "  actions: {ndots: 3}"))
	audit := engine(t, doc("ndots", "  actions: {ndots: 3}")+doc("trial", "  mode: audit\n  actions: {options: {set: [{name: rotate}]}}"))
	removed := engine(t, doc("other", "  match: {podSelector: {matchLabels: {app: none}}}\n  actions: {ndots: 1}"))
	isController := true
	rsRef := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-1", UID: "rs-uid", Controller: &isController}
	owners := report.NewOwners()
	owners.Add(report.Owner{
		Ref:      report.Ref{APIVersion: "apps/v1", Kind: "ReplicaSet", Namespace: "shop", Name: "web-1", UID: "rs-uid"},
		Owners:   []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "dep-uid", Controller: &isController}},
		Template: report.SlimPod(newPod("")),
	})
	owners.Add(report.Owner{
		Ref:      report.Ref{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "web", UID: "dep-uid"},
		Template: report.SlimPod(newPod("")),
	})
	ndots := func(from, to string) []policy.Change {
		return []policy.Change{{Field: "spec.dnsConfig.options[ndots]", From: from, To: to}}
	}
	tests := []struct {
		name        string
		live        *corev1.Pod
		now         *policy.Engine
		owners      *report.Owners
		nsLabels    map[string]string
		wantBasis   report.Basis
		wantChanges []policy.Change
		wantResults []report.PolicyResult
		wantAction  string
	}{
		{name: "bare pod mutated by the old version of the policy", live: admit(v1, newPod("a"), optIn), now: v2,
			wantBasis: report.BasisReverted, wantChanges: ndots("ndots:2", "ndots:3"),
			wantResults: []report.PolicyResult{{Policy: "ndots", Result: "fail", Message: "the pod differs from what the policy gives it at creation: spec.dnsConfig.options[ndots]: ndots:2 -> ndots:3"}},
			wantAction:  "recreate the pod from its manifest"},
		{name: "bare pod mutated by the current version", live: admit(v2, newPod("a"), optIn), now: v2,
			wantBasis:   report.BasisReverted,
			wantResults: []report.PolicyResult{{Policy: "ndots", Result: "pass", Message: "the pod's DNS is as the policy makes it"}}},
		{name: "pod created before the namespace opted in", live: admit(engine(t, ""), newPod("a"), optIn), now: v2,
			wantBasis: report.BasisOwn, wantChanges: ndots("", "ndots:3"),
			wantResults: []report.PolicyResult{{Policy: "ndots", Result: "fail", Message: "the pod differs from what the policy gives it at creation: spec.dnsConfig.options[ndots]: (unset) -> ndots:3"}}},
		{name: "Deployment pod mutated by the old version", live: admit(v1, newPod("web-1-x", rsRef), optIn), now: v2, owners: owners,
			wantBasis: report.BasisTemplate, wantChanges: ndots("ndots:2", "ndots:3"),
			wantResults: []report.PolicyResult{{Policy: "ndots", Result: "fail", Message: "the pod differs from what the policy gives it at creation: spec.dnsConfig.options[ndots]: ndots:2 -> ndots:3"}},
			wantAction:  "kubectl rollout restart deployment/web -n shop"},
		{name: "owner not in the manifests: reverted, the owner named", live: admit(v1, newPod("web-1-x", rsRef), optIn), now: v2,
			wantBasis: report.BasisReverted, wantChanges: ndots("ndots:2", "ndots:3"),
			wantResults: []report.PolicyResult{{Policy: "ndots", Result: "fail", Message: "the pod differs from what the policy gives it at creation: spec.dnsConfig.options[ndots]: ndots:2 -> ndots:3"}},
			wantAction:  "delete the pods (kubectl delete pod POD -n shop): the replicaset recreates them"},
		{name: "audit policy", live: admit(v2, newPod("a"), optIn), now: audit,
			wantBasis: report.BasisReverted,
			wantResults: []report.PolicyResult{
				{Policy: "ndots", Result: "pass", Message: "the pod's DNS is as the policy makes it"},
				{Policy: "trial", Result: "fail", Message: "audit: the policy would change spec.dnsConfig.options[rotate]: (unset) -> rotate"},
			}},
		{name: "the policy that changed the pod is gone", live: admit(v1, newPod("a"), optIn), now: removed,
			wantBasis: report.BasisReverted, wantChanges: ndots("ndots:2", ""),
			wantResults: []report.PolicyResult{{Policy: "ndots", Result: "fail", Message: "the policy is no longer in the policy set; the pod still has its changes: spec.dnsConfig.options[ndots]: ndots:2 -> (unset)"}}},
		{name: "namespace opted out since: created unchanged", live: admit(v1, newPod("a"), optIn), now: v1, nsLabels: map[string]string{},
			wantBasis: report.BasisReverted, wantChanges: ndots("ndots:2", ""),
			wantResults: []report.PolicyResult{{Policy: "ndots", Result: "fail", Message: "the policy changed the pod and no longer applies to it at creation: spec.dnsConfig.options[ndots]: ndots:2 -> (unset)"}}},
		{name: "changed without a record: cannot tell", live: func() *corev1.Pod {
			p := admit(v1, newPod("a"), optIn)
			delete(p.Annotations, policy.AnnotationOriginal)
			return p
		}(), now: v2, wantBasis: report.BasisUnknown,
			wantResults: []report.PolicyResult{{Policy: "ndots", Result: "skip", Message: "cannot tell: the webhook changed the pod (poddns.io/applied: ndots) without recording its original fields"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := tt.nsLabels
			if ns == nil {
				ns = optIn
			}
			c := report.Checker{Engine: tt.now, Owners: tt.owners, NamespaceSelector: labels.SelectorFromSet(optIn)}
			before := tt.live.DeepCopy()
			r := c.Check(tt.live, ns)
			if !reflect.DeepEqual(tt.live, before) {
				t.Errorf("Check modified the pod")
			}
			if r.Basis != tt.wantBasis {
				t.Errorf("Basis = %s (%s), want %s", r.Basis, r.ComparedWith, tt.wantBasis)
			}
			if !reflect.DeepEqual(r.Changes, tt.wantChanges) || r.Differs != (len(tt.wantChanges) > 0) {
				t.Errorf("Changes = %+v (differs %t), want %+v", r.Changes, r.Differs, tt.wantChanges)
			}
			if !reflect.DeepEqual(r.Policies, tt.wantResults) {
				t.Errorf("Policies = %+v\nwant %+v", r.Policies, tt.wantResults)
			}
			if !strings.HasPrefix(r.Action, tt.wantAction) {
				t.Errorf("Action = %q, want %q...", r.Action, tt.wantAction)
			}
		})
	}
}

func TestWriteText(t *testing.T) {
	v1 := engine(t, doc("ndots", "  actions: {ndots: 2}"))
	v2 := engine(t, doc("ndots", "  actions: {ndots: 3}"))
	c := report.Checker{Engine: v2}
	var b report.Builder
	b.Add(c.Check(admit(v1, newPod("a"), optIn), optIn))
	b.Add(c.Check(admit(v2, newPod("b"), optIn), optIn))
	rep := b.Report()
	var buf bytes.Buffer
	if err := report.Write(&buf, &rep, report.FormatText); err != nil {
		t.Fatal(err)
	}
	want := `Pod shop/a: 1 pod differs
  fix: recreate the pod from its manifest (kubectl replace --force with the live object would keep the DNS fields the webhook gave it)
  pod a (compared with the pod with the changes of ndots reverted (poddns.io/original-dns))
    spec.dnsConfig.options[ndots]: ndots:2 -> ndots:3
    fail ndots: the pod differs from what the policy gives it at creation: spec.dnsConfig.options[ndots]: ndots:2 -> ndots:3
1 of 2 pods differ from what the policies give them at creation
`
	if buf.String() != want {
		t.Errorf("text:\n%s\nwant:\n%s", buf.String(), want)
	}
	for _, f := range []string{report.FormatJSON, report.FormatYAML} {
		buf.Reset()
		if err := report.Write(&buf, &rep, f); err != nil || !strings.Contains(buf.String(), "ndots:3") {
			t.Errorf("%s: %v\n%s", f, err, buf.String())
		}
	}
}

// TestSlimPod: what decides a pod's node pools is kept, the rest of the
// spec is not, nor the node the scheduler picked.
func TestSlimPod(t *testing.T) {
	p := newPod("a")
	p.Spec.NodeName = "node-1"
	p.Spec.NodeSelector = map[string]string{"pool": "gpu"}
	p.Spec.Affinity = &corev1.Affinity{
		NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{}},
		PodAffinity:  &corev1.PodAffinity{},
	}
	s := report.SlimPod(p)
	if s.Spec.NodeName != "" || s.Spec.NodeSelector["pool"] != "gpu" || s.Spec.Affinity == nil || s.Spec.Affinity.NodeAffinity == nil ||
		s.Spec.Affinity.PodAffinity != nil || len(s.Spec.Containers) != 0 {
		t.Errorf("SlimPod = %+v", s.Spec)
	}
}
