// Package golden compares test output with reviewed golden files.
//
// It owns the project's one -update flag, so that every golden test in every
// package is rewritten the same way: `make update-golden` (go test ... -args
// -update) writes the files instead of comparing with them, and the diff is
// read and reviewed before it is committed. A golden file is never rewritten
// by a normal test run.
//
// This package is test support: only _test.go files may import it.
package golden

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files instead of comparing with them (review the diff)")

// Updating reports whether this run rewrites golden files.
func Updating() bool { return *update }

// Assert compares got with the file at path; with -update it writes got to
// path instead (creating its directory).
func Assert(t testing.TB, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatalf("golden: %v", err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatalf("golden: %v", err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden: %v (run `make update-golden` to create it, then review it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (if the change is intended, run `make update-golden` and review the diff)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
