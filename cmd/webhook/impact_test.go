package main

import "testing"

// TestImpactGolden runs `webhook impact` on the query log the e2e test
// TestE2EImpactNdots2 captured from real glibc and musl clients
// (testdata/impact/queries.log) and compares exit status and outputs with
// testdata/impact_*.golden (-update rewrites them).
func TestImpactGolden(t *testing.T) {
	const td = "cmd/webhook/testdata/impact/"
	base := []string{"impact", "--log", td + "queries.log", "--profile", td + "profile.yaml"}
	with := func(args ...string) []string { return append(append([]string{}, base...), args...) }
	tests := []struct {
		name string
		args []string
	}{
		{"impact_text", with("-f", td+"manifests.yaml", "--proposed", "testdata/policies/ndots.yaml")},
		{"impact_json", with("-f", td+"manifests.yaml", "--proposed", "testdata/policies/ndots.yaml", "-o", "json")},
		{"impact_fail_on_breakage", with("-f", td+"manifests.yaml", "--proposed", "testdata/policies/ndots.yaml", "--fail-on", "breakage")},
		// -p twice; the pods as their Deployment's template.
		{"impact_deployment", with("-f", td+"deployment.yaml", "-p", "testdata/policies/hostnetwork.yaml", "-p", "testdata/policies/ndots.yaml", "--fail-on", "breakage")},
		// No change proposed: nothing breaks, nothing saved.
		{"impact_no_change", with("-f", td+"manifests.yaml", "--proposed", "testdata/policies/hostnetwork.yaml", "--fail-on", "breakage")},
		// The log's pods are not in the manifests.
		{"impact_no_pods", with("-f", "testdata/pods/examples.yaml", "--proposed", "testdata/policies/ndots.yaml")},
		{"impact_bad_log", []string{"impact", "--log", td + "bad.log", "-f", td + "manifests.yaml", "--proposed", "testdata/policies/ndots.yaml"}},
		{"impact_one_p", with("-f", td+"manifests.yaml", "-p", "testdata/policies/ndots.yaml")},
		{"impact_bad_fail_on", with("-f", td+"manifests.yaml", "--proposed", "testdata/policies/ndots.yaml", "--fail-on", "anything")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkGolden(t, tt.name, tt.args, "")
		})
	}
}
