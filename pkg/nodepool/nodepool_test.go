package nodepool

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/poddns/poddns/pkg/resolvconf"
)

func TestSatisfiable(t *testing.T) {
	in := func(k string, v ...string) requirement { return requirement{key: k, op: opIn, values: v} }
	notIn := func(k string, v ...string) requirement { return requirement{key: k, op: opNotIn, values: v} }
	exists := func(k string) requirement { return requirement{key: k, op: opExists} }
	absent := func(k string) requirement { return requirement{key: k, op: opDoesNotExist} }
	gt := func(k string, n int64) requirement { return requirement{key: k, op: opGt, n: n} }
	lt := func(k string, n int64) requirement { return requirement{key: k, op: opLt, n: n} }
	tests := []struct {
		name string
		reqs []requirement
		want bool
	}{
		{"nothing", nil, true},
		{"one value", []requirement{in("a", "x")}, true},
		{"two values of one key", []requirement{in("a", "x"), in("a", "y")}, false},
		{"In sets overlap", []requirement{in("a", "x", "y"), in("a", "y", "z")}, true},
		{"In sets overlap only in what NotIn excludes", []requirement{in("a", "x", "y"), in("a", "y", "z"), notIn("a", "y")}, false},
		{"In and NotIn of the same value", []requirement{in("a", "x"), notIn("a", "x")}, false},
		{"In and NotIn of another value", []requirement{in("a", "x"), notIn("a", "y")}, true},
		{"NotIn is satisfied by an absent label", []requirement{notIn("a", "x"), absent("a")}, true},
		{"NotIn alone: some other value", []requirement{notIn("a", "x", "y"), exists("a")}, true},
		{"Exists and DoesNotExist", []requirement{exists("a"), absent("a")}, false},
		{"In and DoesNotExist", []requirement{in("a", "x"), absent("a")}, false},
		{"Gt needs the label", []requirement{gt("a", 3), absent("a")}, false},
		{"different keys are independent", []requirement{in("a", "x"), absent("b"), in("c", "1"), notIn("c", "2")}, true},
		{"Gt and Lt leave room", []requirement{gt("cpu", 3), lt("cpu", 5)}, true},
		{"Gt and Lt leave no integer", []requirement{gt("cpu", 3), lt("cpu", 4)}, false},
		{"Gt and Lt leave one integer NotIn excludes", []requirement{gt("cpu", 3), lt("cpu", 5), notIn("cpu", "4")}, false},
		{"Gt and Lt leave two integers, NotIn excludes one", []requirement{gt("cpu", 3), lt("cpu", 6), notIn("cpu", "4")}, true},
		{"Lt 0: label values have no sign", []requirement{lt("cpu", 0)}, false},
		{"Lt 1: zero", []requirement{lt("cpu", 1)}, true},
		{"Gt the largest integer", []requirement{gt("cpu", 1<<63-1)}, false},
		{"In a value Gt excludes", []requirement{in("cpu", "2"), gt("cpu", 3)}, false},
		{"In a value within Gt", []requirement{in("cpu", "2", "8"), gt("cpu", 3)}, true},
		{"In a non-integer with Lt", []requirement{in("cpu", "large"), lt("cpu", 10)}, false},
		{"empty In", []requirement{in("a")}, false},
		{"NotIn many, Gt: some integer remains", []requirement{gt("n", 0), notIn("n", "1", "2", "3")}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := satisfiable(tt.reqs); got != tt.want {
				t.Errorf("satisfiable = %t, want %t", got, tt.want)
			}
		})
	}
}

const (
	typeKey = "node.kubernetes.io/instance-type"
	poolKey = "pool"
	osKey   = "kubernetes.io/os"
)

func sel(matchLabels map[string]string, exprs ...metav1.LabelSelectorRequirement) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: matchLabels, MatchExpressions: exprs}
}

func expr(key string, op metav1.LabelSelectorOperator, values ...string) metav1.LabelSelectorRequirement {
	return metav1.LabelSelectorRequirement{Key: key, Operator: op, Values: values}
}

func nodeExpr(key string, op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
}

// affinity is a required node affinity with one term per argument.
func affinity(terms ...corev1.NodeSelectorTerm) *corev1.Affinity {
	return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms},
	}}
}

func term(exprs ...corev1.NodeSelectorRequirement) corev1.NodeSelectorTerm {
	return corev1.NodeSelectorTerm{MatchExpressions: exprs}
}

func newSet(t *testing.T, selectors ...*metav1.LabelSelector) *Set {
	t.Helper()
	profile, err := resolvconf.NewNodeProfile(resolvconf.NodeConfig{ClusterDNS: []string{"10.96.0.10"}})
	if err != nil {
		t.Fatal(err)
	}
	pools := make([]Pool, len(selectors))
	for i, s := range selectors {
		pools[i] = Pool{Name: string(rune('a' + i)), Selector: s, Profile: profile}
	}
	s, err := NewSet(pools)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func names(pools []Pool) string {
	var out []string
	for _, p := range pools {
		out = append(out, p.Name)
	}
	return strings.Join(out, ",")
}

func TestCandidates(t *testing.T) {
	// Pools a, b, c, d, first match wins: general-purpose Linux nodes, GPU
	// instance types, Windows, then every other node.
	byPool := []*metav1.LabelSelector{
		sel(map[string]string{poolKey: "general", osKey: "linux"}),
		sel(nil, expr(typeKey, metav1.LabelSelectorOpIn, "p4d.24xlarge", "g5.xlarge")),
		sel(map[string]string{osKey: "windows"}),
		nil,
	}
	byCPU := []*metav1.LabelSelector{
		sel(nil, expr("cpu", metav1.LabelSelectorOpIn, "64", "96")),
		sel(nil, expr("cpu", metav1.LabelSelectorOpExists)),
	}
	tests := []struct {
		name       string
		selectors  []*metav1.LabelSelector
		spec       corev1.PodSpec
		nodeLabels map[string]string
		want       string
	}{
		{name: "no requirement: every pool", selectors: byPool, want: "a,b,c,d"},
		{name: "nodeSelector on the pool label alone", selectors: byPool,
			// general nodes that are not Linux belong to b, c or d.
			spec: corev1.PodSpec{NodeSelector: map[string]string{poolKey: "general"}},
			want: "a,b,c,d"},
		{name: "nodeSelector pins pool and os", selectors: byPool,
			spec: corev1.PodSpec{NodeSelector: map[string]string{poolKey: "general", osKey: "linux"}},
			want: "a"},
		{name: "nodeSelector on an instance type", selectors: byPool,
			// a g5 node labelled pool=general belongs to a.
			spec: corev1.PodSpec{NodeSelector: map[string]string{typeKey: "g5.xlarge", osKey: "linux"}},
			want: "a,b"},
		{name: "windows: a GPU type goes to b first, then c; never d", selectors: byPool,
			spec: corev1.PodSpec{NodeSelector: map[string]string{osKey: "windows"}},
			want: "b,c"},
		{name: "affinity In the type, NotIn general", selectors: byPool,
			spec: corev1.PodSpec{Affinity: affinity(term(
				nodeExpr(typeKey, corev1.NodeSelectorOpIn, "p4d.24xlarge"),
				nodeExpr(poolKey, corev1.NodeSelectorOpNotIn, "general")))},
			want: "b"},
		{name: "affinity DoesNotExist on the type, linux, another pool label", selectors: byPool,
			spec: corev1.PodSpec{Affinity: affinity(term(
				nodeExpr(typeKey, corev1.NodeSelectorOpDoesNotExist),
				nodeExpr(osKey, corev1.NodeSelectorOpIn, "linux"),
				nodeExpr(poolKey, corev1.NodeSelectorOpIn, "batch")))},
			want: "d"},
		{name: "affinity Exists on the pool label, NotIn general, linux", selectors: byPool,
			spec: corev1.PodSpec{Affinity: affinity(term(
				nodeExpr(poolKey, corev1.NodeSelectorOpExists),
				nodeExpr(poolKey, corev1.NodeSelectorOpNotIn, "general"),
				nodeExpr(osKey, corev1.NodeSelectorOpIn, "linux")))},
			want: "b,d"},
		{name: "terms are alternatives", selectors: byPool,
			spec: corev1.PodSpec{Affinity: affinity(
				term(nodeExpr(poolKey, corev1.NodeSelectorOpIn, "general"), nodeExpr(osKey, corev1.NodeSelectorOpIn, "linux")),
				term(nodeExpr(osKey, corev1.NodeSelectorOpIn, "windows"), nodeExpr(typeKey, corev1.NodeSelectorOpDoesNotExist)))},
			want: "a,c"},
		{name: "nodeSelector and affinity must both hold", selectors: byPool,
			spec: corev1.PodSpec{
				NodeSelector: map[string]string{osKey: "linux"},
				Affinity:     affinity(term(nodeExpr(osKey, corev1.NodeSelectorOpIn, "windows"))),
			},
			want: ""},
		{name: "an empty term matches no node", selectors: byPool,
			spec: corev1.PodSpec{Affinity: affinity(corev1.NodeSelectorTerm{})},
			want: ""},
		{name: "no term matches no node", selectors: byPool,
			spec: corev1.PodSpec{Affinity: affinity()},
			want: ""},
		{name: "an invalid Gt term matches no node", selectors: byPool,
			spec: corev1.PodSpec{Affinity: affinity(term(nodeExpr("cpu", corev1.NodeSelectorOpGt, "many")))},
			want: ""},
		{name: "an unknown operator matches no node", selectors: byPool,
			spec: corev1.PodSpec{Affinity: affinity(term(nodeExpr("cpu", "Like", "x")))},
			want: ""},
		{name: "matchFields are unknown: any node", selectors: byPool,
			spec: corev1.PodSpec{Affinity: affinity(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{
				nodeExpr("metadata.name", corev1.NodeSelectorOpIn, "node-1")}})},
			want: "a,b,c,d"},
		{name: "matchFields with expressions: the expressions decide", selectors: byPool,
			spec: corev1.PodSpec{Affinity: affinity(corev1.NodeSelectorTerm{
				MatchExpressions: []corev1.NodeSelectorRequirement{nodeExpr(osKey, corev1.NodeSelectorOpIn, "windows"), nodeExpr(typeKey, corev1.NodeSelectorOpDoesNotExist)},
				MatchFields:      []corev1.NodeSelectorRequirement{nodeExpr("metadata.name", corev1.NodeSelectorOpIn, "node-1")}})},
			want: "c"},
		{name: "nodeName with the node's labels: its pool only", selectors: byPool,
			spec:       corev1.PodSpec{NodeName: "node-1"},
			nodeLabels: map[string]string{poolKey: "general", osKey: "linux", typeKey: "g5.xlarge"},
			want:       "a"},
		{name: "nodeName with labels no pool matches", selectors: byPool[:3],
			spec:       corev1.PodSpec{NodeName: "node-1"},
			nodeLabels: map[string]string{osKey: "linux"},
			want:       ""},
		{name: "nodeName unknown: the other requirements decide", selectors: byPool,
			spec: corev1.PodSpec{NodeName: "node-1", NodeSelector: map[string]string{osKey: "windows"}},
			want: "b,c"},
		{name: "node labels without nodeName are not used", selectors: byPool,
			spec:       corev1.PodSpec{NodeSelector: map[string]string{osKey: "windows"}},
			nodeLabels: map[string]string{poolKey: "general", osKey: "linux"},
			want:       "b,c"},
		{name: "Gt: a value in the first pool and another in the second", selectors: byCPU,
			spec: corev1.PodSpec{Affinity: affinity(term(nodeExpr("cpu", corev1.NodeSelectorOpGt, "80")))},
			want: "a,b"},
		{name: "Gt and Lt around the first pool's values only", selectors: byCPU,
			spec: corev1.PodSpec{Affinity: affinity(term(
				nodeExpr("cpu", corev1.NodeSelectorOpGt, "95"), nodeExpr("cpu", corev1.NodeSelectorOpLt, "97")))},
			want: "a"},
		{name: "Lt below every value of the first pool", selectors: byCPU,
			spec: corev1.PodSpec{Affinity: affinity(term(nodeExpr("cpu", corev1.NodeSelectorOpLt, "64")))},
			want: "b"},
		{name: "a catch-all first shadows every later pool", selectors: []*metav1.LabelSelector{{}, sel(map[string]string{osKey: "linux"})},
			spec: corev1.PodSpec{NodeSelector: map[string]string{osKey: "linux"}},
			want: "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSet(t, tt.selectors...)
			if got := names(s.Candidates(&tt.spec, tt.nodeLabels)); got != tt.want {
				t.Errorf("Candidates = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSearchBound(t *testing.T) {
	in := requirement{key: "a", op: opIn, values: []string{"x"}}
	notX := requirement{key: "a", op: opNotIn, values: []string{"x"}}
	// Unsatisfiable whatever the bound: in and its negation.
	steps := 0
	if search([]requirement{in}, [][]requirement{{notX}}, &steps) {
		t.Fatal("search found labels for a=x and a!=x")
	}
	// Past the bound the answer is "possible", never "impossible".
	steps = maxSteps
	if !search([]requirement{in}, [][]requirement{{notX}}, &steps) {
		t.Error("search past its bound said impossible")
	}
	// Twenty pools of twenty requirements each, every negation failing only
	// at the last level: the bound keeps it short.
	var negs [][]requirement
	for i := range 20 {
		var reqs []requirement
		for j := range 20 {
			reqs = append(reqs, requirement{key: string(rune('A'+j)) + "k", op: opNotIn, values: []string{"v"}})
		}
		_ = i
		negs = append(negs, reqs)
	}
	negs = append(negs, []requirement{notX})
	steps = 0
	if !search([]requirement{in}, negs, &steps) || steps <= maxSteps {
		t.Errorf("search of 20^20 paths: steps %d, want past the bound %d and true", steps, maxSteps)
	}
}

func TestNewSetErrors(t *testing.T) {
	profile, err := resolvconf.NewNodeProfile(resolvconf.NodeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		pools []Pool
		want  string
	}{
		{"no pool", nil, "no node pool"},
		{"empty name", []Pool{{Profile: profile}}, "pool 0: name: empty"},
		{"bad name", []Pool{{Name: "a b", Profile: profile}}, `name: "a b": only letters`},
		{"duplicate name", []Pool{{Name: "a", Profile: profile}, {Name: "a", Profile: profile}}, `pool 1: name "a": duplicate`},
		{"no profile", []Pool{{Name: "a"}}, `pool "a": no node profile`},
		{"bad operator", []Pool{{Name: "a", Profile: profile, Selector: sel(nil, expr("k", "Gt", "1"))}}, `pool "a": nodeSelector: "Gt" is not a valid label selector operator`},
		{"bad key", []Pool{{Name: "a", Profile: profile, Selector: sel(map[string]string{"a b": "x"})}}, `pool "a": nodeSelector:`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewSet(tt.pools)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewSet error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestNodePool(t *testing.T) {
	s := newSet(t, sel(map[string]string{osKey: "linux", poolKey: "general"}), sel(map[string]string{osKey: "linux"}))
	for _, tt := range []struct {
		labels map[string]string
		want   string
		ok     bool
	}{
		{map[string]string{osKey: "linux", poolKey: "general"}, "a", true},
		{map[string]string{osKey: "linux", poolKey: "gpu"}, "b", true},
		{map[string]string{osKey: "windows"}, "", false},
	} {
		p, ok := s.NodePool(tt.labels)
		if p.Name != tt.want || ok != tt.ok {
			t.Errorf("NodePool(%v) = %q, %t; want %q, %t", tt.labels, p.Name, ok, tt.want, tt.ok)
		}
	}
	if !slices.Equal(strings.Split(names(s.Pools()), ","), []string{"a", "b"}) || s.Len() != 2 {
		t.Errorf("Pools = %q, Len %d", names(s.Pools()), s.Len())
	}
}
