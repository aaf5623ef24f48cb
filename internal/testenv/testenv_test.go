package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder records how RequireOrSkip ends a test instead of ending it.
type recorder struct {
	testing.TB
	failed, skipped string
}

func (r *recorder) Helper()                           {}
func (r *recorder) Fatalf(format string, args ...any) { r.failed = format }
func (r *recorder) Skipf(format string, args ...any)  { r.skipped = format }

func TestRequireOrSkip(t *testing.T) {
	for _, tc := range []struct {
		ci       string
		ok       bool
		wantFail bool
		wantSkip bool
	}{
		{ci: "true", ok: true},
		{ci: "", ok: true},
		{ci: "true", ok: false, wantFail: true},
		{ci: "1", ok: false, wantFail: true},
		{ci: "", ok: false, wantSkip: true},
		{ci: "false", ok: false, wantSkip: true},
	} {
		t.Setenv("CI", tc.ci)
		r := &recorder{TB: t}
		RequireOrSkip(r, "a thing", tc.ok)
		if (r.failed != "") != tc.wantFail || (r.skipped != "") != tc.wantSkip {
			t.Errorf("CI=%q ok=%v: failed=%q skipped=%q, want fail=%v skip=%v", tc.ci, tc.ok, r.failed, r.skipped, tc.wantFail, tc.wantSkip)
		}
	}
}

func TestAssetsDir(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("KUBEBUILDER_ASSETS", dir)
	if _, err := AssetsDir(); err == nil || !strings.Contains(err.Error(), "kube-apiserver") {
		t.Errorf("empty dir: err = %v, want kube-apiserver missing", err)
	}
	for _, name := range []string{"kube-apiserver", "etcd"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := AssetsDir(); err == nil || !strings.Contains(err.Error(), "not an executable") {
		t.Errorf("non-executable files: err = %v, want not executable", err)
	}
	for _, name := range []string{"kube-apiserver", "etcd"} {
		if err := os.Chmod(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := AssetsDir(); err != nil || got != dir {
		t.Errorf("AssetsDir() = %q, %v; want %q, nil", got, err, dir)
	}

	// Without KUBEBUILDER_ASSETS: <repo root>/bin/envtest.
	t.Setenv("KUBEBUILDER_ASSETS", "")
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("RepoRoot() = %s without go.mod", root)
	}
	got, _ := AssetsDir()
	if want := filepath.Join(root, "bin", "envtest"); got != want {
		t.Errorf("AssetsDir() = %q, want %q", got, want)
	}
}
