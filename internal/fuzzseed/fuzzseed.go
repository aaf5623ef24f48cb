// Package fuzzseed adds the repository's example files to a fuzz test's
// seed corpus, so that the fuzzers of the parsers start from real inputs
// (Corefiles, policies, query logs) as well as from the few each test
// writes.
//
// This package is test support: only _test.go files may import it.
package fuzzseed

import (
	"os"
	"path/filepath"
	"testing"
)

// AddFiles adds every file matching pattern (as filepath.Glob matches it)
// to f's seed corpus. An unreadable file fails the test, and so does a
// pattern that matches nothing: the examples moved, and the fuzzer would
// start from nothing without saying so.
func AddFiles(f *testing.F, pattern string) {
	f.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		f.Fatalf("seed files %s: none (%v)", pattern, err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}
