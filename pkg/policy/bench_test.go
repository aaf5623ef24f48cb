package policy_test

import (
	"fmt"
	"testing"

	"github.com/poddns/poddns/pkg/policy"
	"github.com/poddns/poddns/pkg/policy/policytest"
)

// benchmarkEvaluate measures e.Evaluate of a pod labelled app=web in a
// namespace labelled team=TEAM, once check has found its decision right
// (check returns what is wrong, "" for nothing).
func benchmarkEvaluate(b *testing.B, e *policy.Engine, team string, check func(policy.Decision) string) {
	b.Helper()
	p := pod(b, "metadata: {labels: {app: web}}\n"+plainPod)
	ns := map[string]string{"team": team}
	if wrong := check(e.Evaluate(p, ns)); wrong != "" {
		b.Fatal(wrong)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.Evaluate(p, ns)
	}
}

// BenchmarkEvaluate evaluates one pod against 200 policies (20 of which
// match), as the admission handler does for every pod it sees.
func BenchmarkEvaluate(b *testing.B) {
	e := newEngine(b, policytest.Generated(200), "")
	if n := e.Set().Len(); n != 200 {
		b.Fatalf("%d policies, want 200", n)
	}
	benchmarkEvaluate(b, e, "t3", func(d policy.Decision) string {
		if len(d.Matched()) != 20 {
			return fmt.Sprintf("%d matched, want 20", len(d.Matched()))
		}
		return ""
	})
}

// BenchmarkEvaluateNoMatch is the common case of a pod that none of the 200
// policies selects: the cost of selection and of the preview alone.
func BenchmarkEvaluateNoMatch(b *testing.B) {
	e := newEngine(b, policytest.Generated(200), "")
	benchmarkEvaluate(b, e, "none", func(d policy.Decision) string {
		if len(d.Matched()) != 0 || len(d.Results) != 200 {
			return fmt.Sprintf("%d matched of %d, want 0 of 200", len(d.Matched()), len(d.Results))
		}
		return ""
	})
}
