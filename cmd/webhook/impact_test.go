package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/manifest"
)

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

// TestImpactLive runs `webhook impact --kubeconfig` against a real API
// server holding the namespace and pods of testdata/impact/manifests.yaml:
// the report is the one -f gives (impact_text.golden's output).
func TestImpactLive(t *testing.T) {
	env := testenv.Start(t)
	kcPath := env.AdminKubeconfig(t, "poddns-impact")
	set, err := manifest.Read([]string{filepath.Join("testdata", "impact", "manifests.yaml")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, ns := range set.Namespaces {
		if err := env.Client.Create(ctx, ns.Namespace.DeepCopy()); err != nil {
			t.Fatal(err)
		}
	}
	for _, it := range set.Pods {
		if err := env.Client.Create(ctx, it.Pod.DeepCopy()); err != nil {
			t.Fatal(err)
		}
	}
	goldenText, err := os.ReadFile(filepath.Join("testdata", "impact_text.golden"))
	if err != nil {
		t.Fatal(err)
	}
	_, want, _ := strings.Cut(string(goldenText), "--- stdout\n")
	want, _, _ = strings.Cut(want, "--- stderr\n")

	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(root)
	const td = "cmd/webhook/testdata/impact/"
	var stdout, stderr bytes.Buffer
	code := run([]string{"impact", "--kubeconfig", kcPath, "--log", td + "queries.log", "--profile", td + "profile.yaml",
		"--proposed", "testdata/policies/ndots.yaml", "--fail-on", "breakage"}, nil, &stdout, &stderr)
	if code != exitFailed || stdout.String() != want || stderr.Len() != 0 {
		t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s\nwant exit %d, stdout:\n%s", code, stdout.String(), stderr.String(), exitFailed, want)
	}
	code = run([]string{"impact", "--kubeconfig", kcPath, "-f", td + "manifests.yaml", "--log", td + "queries.log", "--proposed", "testdata/policies/ndots.yaml"}, nil, &stdout, &stderr)
	if code != exitError || !strings.Contains(stderr.String(), "-f and --kubeconfig/--live are mutually exclusive") {
		t.Errorf("-f with --kubeconfig: exit %d, stderr %q", code, stderr.String())
	}
}
