package policy

import (
	"strings"
	"testing"
)

// TestInternSelectors: policies with equal selectors share a number, a
// namespace selector never shares one with an equal pod selector, and a nil
// selector has none; Evaluate then matches each distinct selector once.
func TestInternSelectors(t *testing.T) {
	doc := func(name, match string) string {
		return "---\napiVersion: poddns.io/v1alpha1\nkind: DNSPolicy\nmetadata: {name: " + name + "}\nspec:\n  match: " + match + "\n  actions: {ndots: 2}\n"
	}
	set, err := Parse(strings.NewReader(
		doc("a", "{namespaceSelector: {matchLabels: {team: x}}, podSelector: {matchLabels: {team: x}}}")+
			doc("b", "{namespaceSelector: {matchLabels: {team: x}}}")+
			doc("e", "{namespaceSelector: {matchExpressions: [{key: team, operator: In, values: [x]}]}}")+
			doc("c", "{namespaceSelector: {matchLabels: {team: z}}, podSelector: {matchLabels: {team: x}}}")+
			doc("d", "{}")), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string][2]int{}
	for _, c := range set.policies {
		ids[c.name] = [2]int{c.nsSel, c.podSel}
	}
	if ids["a"][0] != ids["b"][0] {
		t.Errorf("equal namespace selectors numbered %d and %d", ids["a"][0], ids["b"][0])
	}
	// team=x and team in (x) select alike but are different requirements:
	// numbered apart, which costs one more match and is never wrong.
	if ids["a"][0] == ids["e"][0] {
		t.Errorf("team=x and team in (x) share number %d", ids["a"][0])
	}
	if ids["a"][0] == ids["a"][1] {
		t.Errorf("a namespace and a pod selector share number %d", ids["a"][0])
	}
	if ids["a"][1] != ids["c"][1] || ids["a"][0] == ids["c"][0] {
		t.Errorf("numbers %v and %v", ids["a"], ids["c"])
	}
	if ids["b"][1] != -1 || ids["d"] != [2]int{-1, -1} {
		t.Errorf("nil selectors numbered: %v %v", ids["b"], ids["d"])
	}
	if set.selectors != 4 {
		t.Errorf("%d distinct selectors, want 4", set.selectors)
	}
}
