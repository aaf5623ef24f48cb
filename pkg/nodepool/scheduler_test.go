package nodepool

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	"github.com/poddns/poddns/pkg/resolvconf"
)

// TestCandidatesAgainstScheduler compares Candidates with brute force over
// every node of a label universe that holds a witness for whatever the
// generated requirements can ask (their values, a value none names, the
// integers around every Gt and Lt bound, and absence): pool p is a
// candidate exactly when some node the scheduler's own matching
// (component-helpers' nodeaffinity, as kube-scheduler and kubelet use it)
// admits the pod to belongs to p, the first pool whose selector matches.
func TestCandidatesAgainstScheduler(t *testing.T) {
	keys := []string{"a", "b"}
	values := []string{"x", "y", "1", "5"}
	universe := []string{"", "x", "y", "fresh"} // "" is absent
	for n := range 9 {
		universe = append(universe, strconv.Itoa(n))
	}
	var nodes []map[string]string
	var build func(i int, l map[string]string)
	build = func(i int, l map[string]string) {
		if i == len(keys) {
			nodes = append(nodes, maps.Clone(l))
			return
		}
		for _, v := range universe {
			if v == "" {
				delete(l, keys[i])
			} else {
				l[keys[i]] = v
			}
			build(i+1, l)
		}
		delete(l, keys[i])
	}
	build(0, map[string]string{})

	profile, err := resolvconf.NewNodeProfile(resolvconf.NodeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(16, 2))
	pick := func(s []string) string { return s[r.IntN(len(s))] }
	some := func() []string {
		out := []string{pick(values)}
		if r.IntN(2) == 0 {
			out = append(out, pick(values))
		}
		return out
	}
	selector := func() *metav1.LabelSelector {
		s := &metav1.LabelSelector{}
		for range r.IntN(3) {
			k := pick(keys)
			switch r.IntN(5) {
			case 0:
				if s.MatchLabels == nil {
					s.MatchLabels = map[string]string{}
				}
				s.MatchLabels[k] = pick(values)
			case 1:
				s.MatchExpressions = append(s.MatchExpressions, metav1.LabelSelectorRequirement{Key: k, Operator: metav1.LabelSelectorOpIn, Values: some()})
			case 2:
				s.MatchExpressions = append(s.MatchExpressions, metav1.LabelSelectorRequirement{Key: k, Operator: metav1.LabelSelectorOpNotIn, Values: some()})
			case 3:
				s.MatchExpressions = append(s.MatchExpressions, metav1.LabelSelectorRequirement{Key: k, Operator: metav1.LabelSelectorOpExists})
			case 4:
				s.MatchExpressions = append(s.MatchExpressions, metav1.LabelSelectorRequirement{Key: k, Operator: metav1.LabelSelectorOpDoesNotExist})
			}
		}
		return s
	}
	term := func() corev1.NodeSelectorTerm {
		var t corev1.NodeSelectorTerm
		for range r.IntN(4) {
			k := pick(keys)
			ops := []corev1.NodeSelectorOperator{corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn, corev1.NodeSelectorOpExists,
				corev1.NodeSelectorOpDoesNotExist, corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt}
			req := corev1.NodeSelectorRequirement{Key: k, Operator: ops[r.IntN(len(ops))]}
			switch req.Operator {
			case corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn:
				req.Values = some()
			case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
				req.Values = []string{strconv.Itoa(r.IntN(8))}
			}
			t.MatchExpressions = append(t.MatchExpressions, req)
		}
		return t
	}

	for iter := range 4000 {
		var pools []Pool
		for i := range 1 + r.IntN(4) {
			pools = append(pools, Pool{Name: fmt.Sprintf("p%d", i), Selector: selector(), Profile: profile})
		}
		set, err := NewSet(pools)
		if err != nil {
			t.Fatal(err)
		}
		pod := &corev1.Pod{}
		if r.IntN(2) == 0 {
			pod.Spec.NodeSelector = map[string]string{pick(keys): pick(values)}
		}
		if r.IntN(3) > 0 {
			ns := &corev1.NodeSelector{}
			for range 1 + r.IntN(2) {
				ns.NodeSelectorTerms = append(ns.NodeSelectorTerms, term())
			}
			pod.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: ns}}
		}

		required := nodeaffinity.GetRequiredNodeAffinity(pod)
		want := map[string]bool{}
		for _, l := range nodes {
			ok, err := required.Match(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Labels: l}})
			if err != nil || !ok {
				continue
			}
			for _, p := range pools {
				sel, _ := metav1.LabelSelectorAsSelector(p.Selector)
				if sel.Matches(labels.Set(l)) {
					want[p.Name] = true
					break
				}
			}
		}
		var wantNames []string
		for _, p := range pools {
			if want[p.Name] {
				wantNames = append(wantNames, p.Name)
			}
		}
		var got []string
		for _, p := range set.Candidates(&pod.Spec, nil) {
			got = append(got, p.Name)
		}
		if !slices.Equal(got, wantNames) {
			t.Fatalf("case %d: Candidates = %v, the scheduler's matching over every node gives %v\npools:\n%s\npod: nodeSelector %v, affinity %+v",
				iter, got, wantNames, describePools(pools), pod.Spec.NodeSelector, pod.Spec.Affinity)
		}
	}
}

func describePools(pools []Pool) string {
	s := ""
	for _, p := range pools {
		sel, _ := metav1.LabelSelectorAsSelector(p.Selector)
		s += fmt.Sprintf("  %s: %s\n", p.Name, sel)
	}
	return s
}
