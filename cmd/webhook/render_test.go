package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/poddns/poddns/internal/golden"
	"github.com/poddns/poddns/internal/testenv"
)

// TestRenderGolden runs `webhook render` in-process from the repository root,
// as `make run` does, and compares its exit status, stdout and stderr with
// testdata/<name>.golden. Run with -update to rewrite the files, then read
// them: each output must be what kubelet v1.37.2 produces
// (shared/reference/resolvconf.md).
func TestRenderGolden(t *testing.T) {
	const td = "cmd/webhook/testdata/"
	tests := []struct {
		name  string
		args  []string
		stdin string
	}{
		{name: "examples_text", args: []string{"render", "-f", "testdata/pods/examples.yaml"}},
		{name: "examples_json", args: []string{"render", "-f", "testdata/pods/examples.yaml", "-o", "json"}},
		{name: "invalid", args: []string{"render", "-f", td + "invalid.yaml"}},
		{name: "malformed", args: []string{"render", "-f", td + "malformed.yaml", "-o", "json"}},
		{name: "missing_resolv_conf", args: []string{"render", "-f", "testdata/pods/examples.yaml", "--resolv-conf", td + "missing.conf"}},
		{name: "no_resolv_conf", args: []string{"render", "-f", "testdata/pods/examples.yaml", "--resolv-conf=", "--node-ip", "192.0.2.10,2001:db8::10"}},
		{name: "no_cluster_dns", args: []string{"render", "-f", "testdata/pods/examples.yaml", "--cluster-dns="}},
		{name: "kubelet_config", args: []string{"render", "-f", "testdata/pods/examples.yaml", "--kubelet-config", td + "kubelet.yaml"}},
		{name: "profile", args: []string{"render", "-f", "testdata/pods/examples.yaml", "--profile", td + "profile.yaml", "--cluster-domain", "prod.example"}},
		{
			name:  "stdin",
			args:  []string{"render", "-f", "-", "-o", "json"},
			stdin: `{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "from-stdin", "namespace": "tools"}, "spec": {"dnsPolicy": "Default", "containers": [{"name": "c", "image": "busybox"}]}}`,
		},
		{name: "usage_error", args: []string{"render", "-o", "yaml", "-f", "testdata/pods/examples.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkGolden(t, tt.name, tt.args, tt.stdin)
		})
	}
}

// exitCase is a command line and the exit status it must end with.
type exitCase struct {
	name string
	args []string
	want int
}

// checkExitStatuses runs each case's command line in-process, with an empty
// stdin, and checks its exit status (showing the output when it is wrong).
func checkExitStatuses(t *testing.T, cases []exitCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if got := run(tt.args, strings.NewReader(""), &stdout, &stderr); got != tt.want {
				t.Errorf("Exit status = %d, want %d\nstdout:\n%s\nstderr:\n%s", got, tt.want, stdout.String(), stderr.String())
			}
		})
	}
}

// checkGolden runs the webhook command line args in-process from the
// repository root and compares its exit status, stdout and stderr with
// testdata/<name>.golden, or rewrites that file with -update.
func checkGolden(t *testing.T, name string, args []string, stdin string) {
	t.Helper()
	goldenDir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(root)
	var stdout, stderr bytes.Buffer
	code := run(args, strings.NewReader(stdin), &stdout, &stderr)
	got := fmt.Sprintf("$ webhook %s\nexit status: %d\n--- stdout\n%s--- stderr\n%s",
		strings.Join(args, " "), code, stdout.String(), stderr.String())
	golden.Assert(t, filepath.Join(goldenDir, name+".golden"), got)
}

// TestRenderExitStatus checks the exit status contract independently of the
// golden files.
func TestRenderExitStatus(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string { return testenv.WriteFile(t, dir, name, content) }
	ok := write("ok.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c}]}\n")
	rejected := write("rejected.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {dnsPolicy: None, containers: [{name: c}]}\n")
	broken := write("broken.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: [\n")
	zeros := write("zeros.yaml", strings.Repeat("\x00", 4096))
	// A directory holding a pod and a symbolic link named x.yaml to a
	// directory: render and the policy loader both skip the link.
	podDir, policyDir := filepath.Join(dir, "pods"), filepath.Join(dir, "policies")
	for _, d := range []string{podDir, policyDir, filepath.Join(dir, "elsewhere")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(dir, "elsewhere"), filepath.Join(d, "x.yaml")); err != nil && d != filepath.Join(dir, "elsewhere") {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(podDir, "pod.yaml"), []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c}]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(policyDir, "ndots.yaml"), []byte("apiVersion: poddns.io/v1alpha1\nkind: DNSPolicy\nmetadata: {name: ndots}\nspec: {actions: {ndots: 2}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	checkExitStatuses(t, []exitCase{
		{"valid pods", []string{"render", "-f", ok}, exitOK},
		{"valid pods, json", []string{"render", "-f", ok, "-o", "json"}, exitOK},
		{"rejected pod", []string{"render", "-f", ok, "-f", rejected}, exitFailed},
		{"kubelet error", []string{"render", "-f", ok, "--resolv-conf", filepath.Join(dir, "missing")}, exitFailed},
		{"malformed manifest", []string{"render", "-f", ok, "-f", broken}, exitError},
		{"missing manifest", []string{"render", "-f", filepath.Join(dir, "missing.yaml")}, exitError},
		{"a file of NUL bytes", []string{"render", "-f", zeros}, exitError},
		{"a file of NUL bytes as policies", []string{"render", "-p", zeros, "-f", ok}, exitError},
		{"symlinked directory named x.yaml skipped by both", []string{"render", "-p", policyDir, "-f", podDir}, exitOK},
		{"no manifest", []string{"render"}, exitError},
		{"unknown flag", []string{"render", "-f", ok, "--no-such-flag"}, exitError},
		{"positional argument", []string{"render", ok}, exitError},
		{"bad node IP", []string{"render", "-f", ok, "--node-ip", "192.0.2.1,192.0.2.2"}, exitError},
		{"help", []string{"render", "--help"}, exitOK},
	})
}
