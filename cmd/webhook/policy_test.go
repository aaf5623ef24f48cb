package main

import (
	"testing"
)

// TestPolicyGolden runs render -p, explain and test in-process and compares
// their output with testdata/<name>.golden (go test -update rewrites them;
// review the diff: each must follow the merge rules of pkg/policy's doc).
func TestPolicyGolden(t *testing.T) {
	const td = "cmd/webhook/testdata/"
	examples := []string{"-f", "testdata/pods/examples.yaml", "-f", "testdata/pods/namespaces.yaml"}
	tests := []struct {
		name  string
		args  []string
		stdin string
	}{
		{name: "policies_text", args: append([]string{"render", "-p", "testdata/policies"}, examples...)},
		{name: "policies_json", args: append([]string{"render", "-p", "testdata/policies", "-o", "json"}, examples...)},
		{name: "policies_global_audit", args: append([]string{"render", "-p", "testdata/policies", "--mode", "audit", "-o", "json"}, examples...)},
		{name: "policies_suite_pods", args: []string{"render", "-p", "testdata/policies", "-f", "testdata/pods/namespaces.yaml", "-f", "testdata/policies/suite/pods.yaml"}},
		{name: "explain_exempt", args: []string{"explain", "-p", "testdata/policies", "-f", "testdata/policies/suite/pods.yaml", "--pod", "default/opted-out"}},
		{name: "policies_invalid", args: []string{"render", "-p", "testdata/policies/invalid/ndots-range.yaml", "-p", "testdata/policies/invalid/unknown-field.yaml", "-f", "testdata/pods/examples.yaml"}},
		{name: "policies_bad_mode", args: []string{"render", "-p", "testdata/policies", "--mode", "dry-run", "-f", "testdata/pods/examples.yaml"}},
		{name: "explain_node_local", args: []string{"explain", "-p", "testdata/policies", "-f", "testdata/pods/", "--pod", "default/web"}},
		{name: "explain_kept", args: []string{"explain", "-p", "testdata/policies", "-f", "testdata/pods/namespaces.yaml", "-f", "testdata/policies/suite/pods.yaml", "--pod", "explicit-ndots"}},
		{name: "explain_skipped", args: []string{"explain", "-p", "testdata/policies", "-f", "testdata/pods/namespaces.yaml", "-f", "testdata/policies/suite/pods.yaml", "--pod", "batch/many-searches"}},
		{
			name:  "explain_stdin",
			args:  []string{"explain", "-p", "testdata/policies", "-f", "-"},
			stdin: "apiVersion: v1\nkind: Pod\nmetadata: {name: tool, namespace: default}\nspec: {dnsPolicy: Default, containers: [{name: c}]}\n",
		},
		{name: "explain_no_such_pod", args: []string{"explain", "-p", "testdata/policies", "-f", "testdata/pods/", "--pod", "default/nope"}},
		{name: "explain_no_policies", args: []string{"explain", "-f", "testdata/pods/"}},
		{name: "test_examples", args: []string{"test", "testdata/policies/suite"}},
		{name: "test_failing", args: []string{"test", td + "failing_suite"}},
		{name: "test_missing", args: []string{"test", td + "no_such_suite"}},
		// Node pools (a NodeProfileSet as --profile): per pool, and a policy
		// truncated on one pool skipped with a warning naming it.
		{name: "test_pools", args: []string{"test", "testdata/pools"}},
		{name: "explain_pools", args: []string{"explain", "-p", "testdata/pools/policies.yaml", "-f", "testdata/pools/pods.yaml", "--profile", "testdata/pools/profiles.yaml", "--pod", "shop/anywhere"}},
		{name: "render_pools", args: []string{"render", "-f", "testdata/pools/pods.yaml", "--profile", "testdata/pools/profiles.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkGolden(t, tt.name, tt.args, tt.stdin)
		})
	}
}

// TestPolicyExitStatus checks the exit statuses of the policy commands
// independently of the golden files.
func TestPolicyExitStatus(t *testing.T) {
	t.Chdir("../..")
	checkExitStatuses(t, []exitCase{
		{"render with policies", []string{"render", "-p", "testdata/policies", "-f", "testdata/pods/"}, exitOK},
		{"render with a bad policy", []string{"render", "-p", "testdata/policies/invalid", "-f", "testdata/pods/"}, exitError},
		{"render with a missing policy path", []string{"render", "-p", "testdata/nope", "-f", "testdata/pods/"}, exitError},
		{"explain", []string{"explain", "-p", "testdata/policies", "-f", "testdata/pods/"}, exitOK},
		{"explain a pod the API server rejects", []string{"explain", "-p", "testdata/policies", "-f", "cmd/webhook/testdata/invalid.yaml"}, exitFailed},
		{"test passes", []string{"test", "testdata/policies/suite"}, exitOK},
		{"test fails", []string{"test", "cmd/webhook/testdata/failing_suite"}, exitFailed},
		{"test without a suite", []string{"test"}, exitError},
		{"test with a bad suite path", []string{"test", "testdata/policies"}, exitError},
	})
}
