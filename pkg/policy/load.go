package policy

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/poddns/poddns/pkg/configfile"
	"github.com/poddns/poddns/pkg/inputdir"
)

// MaxFileSize is the most Parse reads of one policy file.
const MaxFileSize = configfile.MaxFileSize

// policyExtensions are the file names Load takes from a directory.
var policyExtensions = []string{".yaml", ".yml", ".json"}

// LoadError is a policy document that could not be loaded: where, which
// field, and why (package configfile's error, as for every poddns file).
type LoadError = configfile.Error

// Source is where a policy was read.
type Source struct {
	File     string `json:"file"`
	Document int    `json:"document"`
	Line     int    `json:"line"`
}

// String returns "file: document N, line L".
func (s Source) String() string {
	return fmt.Sprintf("%s: document %d, line %d", s.File, s.Document, s.Line)
}

// Load reads, validates and compiles the policies at paths into a Set. A path
// is a file or a directory; a directory contributes its .yaml, .yml and .json
// files in name order, not its subdirectories, and ignores entries whose name
// starts with ".." — so a ConfigMap volume (files that are symbolic links into
// ..data, itself a link to a timestamped directory swapped atomically on
// update) loads exactly its keys. Symbolic links are followed.
//
// Loading is all or nothing: on any error Load returns a nil Set and an error
// joining a *LoadError for every problem found in every file.
func Load(paths ...string) (*Set, error) {
	var (
		policies []loaded
		errs     []error
	)
	for _, path := range paths {
		files, err := policyFiles(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, file := range files {
			ps, err := readFile(file)
			policies = append(policies, ps...)
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	return compileAll(policies, errs)
}

// compileAll compiles what decoded; any error, of decoding or validation,
// makes the whole load fail. The errors are sorted by file (in the order
// read), document and line.
func compileAll(policies []loaded, errs []error) (*Set, error) {
	set, err := compile(policies)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return set, nil
	}
	var flat []error
	for _, e := range errs {
		flat = append(flat, configfile.Leaves(e)...)
	}
	fileOrder := map[string]int{}
	order := func(file string) int {
		if _, ok := fileOrder[file]; !ok {
			fileOrder[file] = len(fileOrder)
		}
		return fileOrder[file]
	}
	for _, l := range policies {
		order(l.source.File)
	}
	for _, e := range flat {
		var le *LoadError
		if errors.As(e, &le) {
			order(le.File)
		}
	}
	key := func(e error) (int, int, int) {
		var le *LoadError
		if !errors.As(e, &le) {
			return len(fileOrder), 0, 0
		}
		return fileOrder[le.File], le.Document, le.Line
	}
	sort.SliceStable(flat, func(i, j int) bool {
		fi, di, li := key(flat[i])
		fj, dj, lj := key(flat[j])
		if fi != fj {
			return fi < fj
		}
		if di != dj {
			return di < dj
		}
		return li < lj
	})
	return nil, errors.Join(flat...)
}

// Parse reads, validates and compiles the policies of one file's content,
// naming it file in errors. It is Load for a reader.
func Parse(r io.Reader, file string) (*Set, error) {
	ps, err := parse(r, file)
	if err != nil {
		return compileAll(ps, []error{err})
	}
	return compileAll(ps, nil)
}

func readFile(file string) ([]loaded, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, &LoadError{File: file, Message: fmt.Sprintf("read policy file: %v", unwrapPathError(err))}
	}
	defer f.Close()
	return parse(f, file)
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// policyFiles returns path itself, or the policy files of a directory by
// the rule of package inputdir (shared with the manifest reader).
func policyFiles(path string) ([]string, error) {
	files, err := inputdir.Expand(path, policyExtensions)
	if err != nil {
		return nil, &LoadError{File: path, Message: fmt.Sprintf("read policies: %v", unwrapPathError(err))}
	}
	return files, nil
}

// loaded is a decoded, not yet validated policy with what validation needs to
// name lines.
type loaded struct {
	policy Policy
	source Source
	doc    *configfile.Document // for field lines
}

// parse splits r into YAML documents (JSON is YAML) and decodes each one
// strictly into a Policy (package configfile). It returns what decoded and
// every error; a document that fails does not stop the others.
func parse(r io.Reader, file string) ([]loaded, error) {
	data, err := configfile.ReadAll(r, file)
	if err != nil {
		var le *LoadError
		if errors.As(err, &le) {
			return nil, le
		}
		return nil, &LoadError{File: file, Message: fmt.Sprintf("read policy file: %v", err)}
	}
	docs, errs := configfile.Split(data, file)
	var out []loaded
	for _, d := range docs {
		if !d.IsMapping() {
			errs = append(errs, d.Errorf("", "not a mapping: a policy document has apiVersion, kind, metadata and spec"))
			continue
		}
		var p Policy
		if docErrs := d.Decode(&p); len(docErrs) > 0 {
			errs = append(errs, docErrs...)
			continue
		}
		if docErrs := d.Check(identity); len(docErrs) > 0 {
			errs = append(errs, docErrs...)
			continue
		}
		out = append(out, loaded{policy: p, source: Source{File: file, Document: d.Index, Line: d.Line()}, doc: d})
	}
	return out, errors.Join(errs...)
}

// identity is the apiVersion and kind of a policy document.
var identity = configfile.Identity{APIVersion: APIVersion, Kind: Kind}

// fieldError is a validation error of the policy loaded from l.
func (l *loaded) fieldError(err *field.Error) *LoadError {
	return l.doc.Errorf(err.Field, "%s", err.ErrorBody())
}
