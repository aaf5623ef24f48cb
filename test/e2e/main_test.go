package e2e

import (
	"os"
	"testing"
)

// TestMain runs the namespace side of the stub-resolver tests when the test
// binary was re-executed for it (see runInNamespace), and the tests otherwise.
func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(runChild(spec))
	}
	os.Exit(m.Run())
}
