package manifest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/poddns/poddns/pkg/inputdir"
)

// Stdin is the file name that Read gives standard input ("-") in locations.
const Stdin = "<stdin>"

// manifestExtensions are the file names Read takes from a directory.
var manifestExtensions = []string{".yaml", ".yml", ".json"}

// Read decodes the manifests at paths, in order: "-" is stdin, a directory
// contributes its .yaml, .yml and .json files (not its subdirectories) in
// name order (following links, skipping directories and ".." entries:
// package inputdir), anything else is read as a file. As with Decode, the returned
// Set holds everything that could be read, and the error joins every file and
// document that could not. A nil stdin reads as empty.
func Read(paths []string, stdin io.Reader) (*Set, error) {
	set := &Set{}
	err := walk(paths, stdin, func(r io.Reader, file string) error {
		s, err := Decode(r, file)
		set.append(s)
		return err
	})
	return set, err
}

// ReadEach reads the manifests at paths as Read does, but one document at a
// time (Stream): each is given what a document holds before the next one is
// read, so memory is bounded by a document, not by the inputs. Stdin is read
// once, as it comes: a caller that needs two passes spools it first.
func ReadEach(paths []string, stdin io.Reader, each func(*Set)) error {
	return walk(paths, stdin, func(r io.Reader, file string) error {
		return Stream(r, file, each)
	})
}

// walk calls decode for each input of paths, in order, by the rule of Read,
// and joins the errors.
func walk(paths []string, stdin io.Reader, decode func(r io.Reader, file string) error) error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, path := range paths {
		if path == "-" {
			if stdin == nil {
				stdin = strings.NewReader("")
			}
			add(decode(stdin, Stdin))
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
			add(decode(f, file))
			f.Close()
		}
	}
	return errors.Join(errs...)
}

// expand returns path itself, or the manifest files of a directory by the
// rule of package inputdir (shared with the policy loader).
func expand(path string) ([]string, error) {
	files, err := inputdir.Expand(path, manifestExtensions)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	return files, nil
}
