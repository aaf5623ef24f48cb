package manifest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Stdin is the file name that Read gives standard input ("-") in locations.
const Stdin = "<stdin>"

// manifestExtensions are the file names Read takes from a directory.
var manifestExtensions = []string{".yaml", ".yml", ".json"}

// Read decodes the manifests at paths, in order: "-" is stdin, a directory
// contributes its .yaml, .yml and .json files (not its subdirectories) in
// name order, anything else is read as a file. As with Decode, the returned
// Set holds everything that could be read, and the error joins every file and
// document that could not. A nil stdin reads as empty.
func Read(paths []string, stdin io.Reader) (*Set, error) {
	set := &Set{}
	var errs []error
	decode := func(r io.Reader, file string) {
		s, err := Decode(r, file)
		set.append(s)
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, path := range paths {
		if path == "-" {
			if stdin == nil {
				stdin = strings.NewReader("")
			}
			decode(stdin, Stdin)
			continue
		}
		files, err := expand(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, file := range files {
			f, err := os.Open(file)
			if err != nil {
				errs = append(errs, fmt.Errorf("read manifest: %w", err))
				continue
			}
			decode(f, file)
			f.Close()
		}
	}
	return set, errors.Join(errs...)
}

// expand returns path itself, or the manifest files of a directory.
func expand(path string) ([]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	if !info.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("read manifest directory: %w", err)
	}
	var files []string
	for _, e := range entries {
		if e.IsDir() || !hasManifestExtension(e.Name()) {
			continue
		}
		files = append(files, filepath.Join(path, e.Name()))
	}
	return files, nil
}

func hasManifestExtension(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	for _, want := range manifestExtensions {
		if ext == want {
			return true
		}
	}
	return false
}
