// Package inputdir lists the files a command takes from a directory
// argument, with one rule for every reader of poddns's inputs: the policy
// loader (pkg/policy) and the manifest reader of the offline CLI
// (pkg/manifest), so that `webhook render -f DIR` and `-p DIR` see the same
// files.
//
// The rule, which is what a ConfigMap volume needs: a directory contributes
// its entries whose name ends with one of the extensions (case-insensitive),
// in name order; entries whose name starts with ".." are skipped (kubelet's
// ..data and timestamped directories); symbolic links are followed (a
// ConfigMap's keys are links into ..data); an entry that is a directory,
// even through a link and whatever its name (x.yaml), is skipped, not
// descended into; an entry that cannot be followed (a dangling link) is an
// error.
package inputdir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Expand returns path itself when it is not a directory (following links),
// else Files(path, exts).
func Expand(path string, exts []string) ([]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return []string{path}, nil
	}
	return Files(path, exts)
}

// Files returns the files of dir by the package's rule.
func Files(dir string, exts []string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []string
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "..") || !hasExtension(name, exts) {
			continue
		}
		full := filepath.Join(dir, name)
		info, err := os.Stat(full)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if info.IsDir() {
			continue
		}
		if !info.Mode().IsRegular() {
			errs = append(errs, fmt.Errorf("%s: not a regular file (%s)", full, info.Mode().Type()))
			continue
		}
		files = append(files, full)
	}
	sort.Strings(files)
	return files, errors.Join(errs...)
}

func hasExtension(name string, exts []string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	for _, want := range exts {
		if ext == want {
			return true
		}
	}
	return false
}
