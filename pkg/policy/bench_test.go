package policy_test

import (
	"fmt"
	"strings"
	"testing"
)

// benchPolicies returns n policies of every kind, selecting namespaces by a
// team label so that a pod matches about one in ten.
func benchPolicies(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		sel := fmt.Sprintf("  priority: %d\n  match: {namespaceSelector: {matchLabels: {team: t%d}}, podSelector: {matchExpressions: [{key: app, operator: In, values: [web, api]}]}}\n", i%7, i%10)
		var actions string
		switch (i / 10) % 5 {
		case 0:
			actions = fmt.Sprintf("  actions: {ndots: %d}", i%6)
		case 1:
			actions = fmt.Sprintf("  actions: {searches: {add: [$(NAMESPACE).p%d.example]}}", i)
		case 2:
			actions = fmt.Sprintf("  actions: {options: {set: [{name: timeout, value: '%d'}, {name: single-request-reopen}]}}", i%4+1)
		case 3:
			actions = "  actions: {hostNetworkClusterDNS: true}"
		case 4:
			actions = fmt.Sprintf("  mode: audit\n  actions: {nameservers: [169.254.20.%d]}", i%250+1)
		}
		b.WriteString(doc(fmt.Sprintf("policy-%03d", i), sel+actions))
	}
	return b.String()
}

// BenchmarkEvaluate evaluates one pod against 200 policies (20 of which
// match), as the admission handler does for every pod it sees.
func BenchmarkEvaluate(b *testing.B) {
	e := newEngine(b, benchPolicies(200), "")
	if n := e.Set().Len(); n != 200 {
		b.Fatalf("%d policies, want 200", n)
	}
	p := pod(b, "metadata: {labels: {app: web}}\n"+plainPod)
	ns := map[string]string{"team": "t3"}
	d := e.Evaluate(p, ns)
	if len(d.Matched()) != 20 {
		b.Fatalf("%d matched, want 20", len(d.Matched()))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.Evaluate(p, ns)
	}
}

// BenchmarkEvaluateNoMatch is the common case of a pod that none of the 200
// policies selects: the cost of selection and of the preview alone.
func BenchmarkEvaluateNoMatch(b *testing.B) {
	e := newEngine(b, benchPolicies(200), "")
	p := pod(b, "metadata: {labels: {app: web}}\n"+plainPod)
	ns := map[string]string{"team": "none"}
	if d := e.Evaluate(p, ns); len(d.Matched()) != 0 || len(d.Results) != 200 {
		b.Fatalf("%d matched of %d, want 0 of 200", len(d.Matched()), len(d.Results))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.Evaluate(p, ns)
	}
}
