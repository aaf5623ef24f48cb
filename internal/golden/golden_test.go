package golden

import (
	"os"
	"path/filepath"
	"testing"
)

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Errorf(string, ...any) { r.failed = true }
func (r *recorder) Fatalf(string, ...any) { r.failed = true }
func (r *recorder) Helper()               {}

func TestAssert(t *testing.T) {
	if Updating() {
		t.Skip("comparison test; meaningless with -update")
	}
	path := filepath.Join(t.TempDir(), "out.golden")
	if err := os.WriteFile(path, []byte("same\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		got      string
		path     string
		wantFail bool
	}{
		{"same\n", path, false},
		{"different\n", path, true},
		{"same", path, true},
		{"same\n", path + ".missing", true},
	} {
		r := &recorder{TB: t}
		Assert(r, tt.path, tt.got)
		if r.failed != tt.wantFail {
			t.Errorf("Assert(%q, %q) failed = %v, want %v", tt.path, tt.got, r.failed, tt.wantFail)
		}
	}
}
