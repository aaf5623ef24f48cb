package policy_test

import (
	"testing"

	"github.com/poddns/poddns/pkg/policy/policytest"
)

// BenchmarkEvaluate evaluates one pod against 200 policies (20 of which
// match), as the admission handler does for every pod it sees.
func BenchmarkEvaluate(b *testing.B) {
	e := newEngine(b, policytest.Generated(200), "")
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
	e := newEngine(b, policytest.Generated(200), "")
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
