package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/validation/field"
	sigsjson "sigs.k8s.io/json"
	sigsyaml "sigs.k8s.io/yaml"
)

// MaxFileSize is the most Parse reads of one policy file.
const MaxFileSize = 4 << 20

// policyExtensions are the file names Load takes from a directory.
var policyExtensions = []string{".yaml", ".yml", ".json"}

// LoadError is a policy document that could not be loaded: where, which field,
// and why.
type LoadError struct {
	// File is the path as given to Load, or the name given to Parse.
	File string
	// Document counts the file's YAML documents from 1 (empty documents are
	// not counted); 0 when the error is about the whole file.
	Document int
	// Line is the line in File of the field (or of the document when the
	// field cannot be located); 0 when unknown.
	Line int
	// Field is the field path in the document, e.g. spec.actions.ndots; empty
	// for an error about the whole document.
	Field string
	// Message says what is wrong.
	Message string
}

// Error returns "file: document N, line L: field: message".
func (e *LoadError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Document > 0 {
		fmt.Fprintf(&b, ": document %d", e.Document)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, ", line %d", e.Line)
	}
	if e.Field != "" {
		b.WriteString(": ")
		b.WriteString(e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Message)
	return b.String()
}

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
		flat = append(flat, flatten(e)...)
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

// flatten returns the errors joined in err.
func flatten(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, flatten(e)...)
	}
	return out
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

// policyFiles returns path itself, or the policy files of a directory.
func policyFiles(path string) ([]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, &LoadError{File: path, Message: fmt.Sprintf("read policies: %v", unwrapPathError(err))}
	}
	if !info.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, &LoadError{File: path, Message: fmt.Sprintf("read policy directory: %v", unwrapPathError(err))}
	}
	var files []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "..") || !hasPolicyExtension(name) {
			continue
		}
		full := filepath.Join(path, name)
		// Follow symbolic links (ConfigMap keys are links into ..data).
		info, err := os.Stat(full)
		if err != nil {
			return nil, &LoadError{File: full, Message: fmt.Sprintf("read policies: %v", unwrapPathError(err))}
		}
		if info.Mode().IsRegular() {
			files = append(files, full)
		}
	}
	sort.Strings(files)
	return files, nil
}

func hasPolicyExtension(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	for _, want := range policyExtensions {
		if ext == want {
			return true
		}
	}
	return false
}

// loaded is a decoded, not yet validated policy with what validation needs to
// name lines.
type loaded struct {
	policy Policy
	source Source
	root   *yaml.Node // the document's mapping, for field lines
}

// parse splits r into YAML documents (JSON is YAML) and decodes each one
// strictly into a Policy. It returns what decoded and every error; a document
// that fails does not stop the others.
func parse(r io.Reader, file string) ([]loaded, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, &LoadError{File: file, Message: fmt.Sprintf("read policy file: %v", err)}
	}
	if len(data) > MaxFileSize {
		return nil, &LoadError{File: file, Message: fmt.Sprintf("file larger than %d bytes", MaxFileSize)}
	}
	var (
		out  []loaded
		errs []error
		n    int
	)
	for _, chunk := range splitDocuments(data) {
		var doc yaml.Node
		if err := yaml.Unmarshal(chunk.data, &doc); err != nil {
			errs = append(errs, syntaxError(file, n+1, chunk.line, err))
			n++
			continue
		}
		if isEmptyDocument(&doc) {
			continue
		}
		n++
		shiftLines(&doc, chunk.line-1)
		p, root, docErrs := decodeDocument(file, n, &doc, chunk)
		if len(docErrs) > 0 {
			errs = append(errs, docErrs...)
			continue
		}
		out = append(out, loaded{policy: p, source: Source{File: file, Document: n, Line: root.Line}, root: root})
	}
	return out, errors.Join(errs...)
}

// document is one YAML document of a file and the line it starts on.
type document struct {
	data []byte
	line int
}

// splitDocuments splits a YAML stream at its separator lines: "---" at the
// start of a line followed by nothing but white space or a comment, as the
// Kubernetes YAML reader does.
func splitDocuments(data []byte) []document {
	var (
		docs  []document
		cur   document
		start = 1
	)
	cur.line = 1
	lineNo := 0
	for len(data) > 0 {
		lineNo++
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i+1], data[i+1:]
		} else {
			data = nil
		}
		if rest, ok := bytes.CutPrefix(line, []byte("---")); ok {
			trimmed := bytes.TrimSpace(rest)
			if len(trimmed) == 0 || trimmed[0] == '#' {
				docs = append(docs, cur)
				start = lineNo + 1
				cur = document{line: start}
				continue
			}
		}
		cur.data = append(cur.data, line...)
	}
	return append(docs, cur)
}

// shiftLines adds offset to the line of every node under n, so that lines
// count in the file rather than in the document.
func shiftLines(n *yaml.Node, offset int) {
	n.Line += offset
	for _, c := range n.Content {
		shiftLines(c, offset)
	}
}

// syntaxError turns a YAML parser error ("yaml: line 3: ...", lines counted
// in the document) into a LoadError with the line in the file.
func syntaxError(file string, doc, firstLine int, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "error converting YAML to JSON: yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, tail, ok := strings.Cut(rest, ": "); ok {
			if _, scanErr := fmt.Sscanf(num, "%d", &line); scanErr == nil {
				msg = tail
				line += firstLine - 1
			}
		}
	}
	if line == 0 {
		line = firstLine
	}
	return &LoadError{File: file, Document: doc, Line: line, Message: "invalid YAML: " + msg}
}

func isEmptyDocument(doc *yaml.Node) bool {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return true
	}
	c := doc.Content[0]
	return c.Kind == yaml.ScalarNode && c.Tag == "!!null"
}

// decodeDocument decodes one document strictly. The returned node is the
// document's top-level mapping.
func decodeDocument(file string, doc int, d *yaml.Node, chunk document) (Policy, *yaml.Node, []error) {
	root := d.Content[0]
	fail := func(line int, path, msg string) []error {
		return []error{&LoadError{File: file, Document: doc, Line: line, Field: path, Message: msg}}
	}
	if root.Kind != yaml.MappingNode {
		return Policy{}, root, fail(root.Line, "", "not a mapping: a policy document has apiVersion, kind, metadata and spec")
	}
	var errs []error
	for _, dup := range duplicateKeys(root, "") {
		errs = append(errs, &LoadError{File: file, Document: doc, Line: dup.line, Field: dup.path,
			Message: fmt.Sprintf("duplicate field (first at line %d)", dup.first)})
	}
	if len(errs) > 0 {
		return Policy{}, root, errs
	}
	// The conversion Kubernetes uses (YAML 1.1 scalars, as kubectl reads
	// manifests); the node tree above only serves lines and duplicates.
	j, err := sigsyaml.YAMLToJSONStrict(chunk.data)
	if err != nil {
		return Policy{}, root, []error{syntaxError(file, doc, chunk.line, err)}
	}
	var p Policy
	strict, err := sigsjson.UnmarshalStrict(j, &p)
	if err != nil {
		path, msg := typeErrorPath(err)
		return Policy{}, root, fail(lineOf(root, path), path, msg)
	}
	for _, se := range strict {
		path, msg := se.Error(), se.Error()
		var fe sigsjson.FieldError
		if errors.As(se, &fe) {
			path = fe.FieldPath()
			msg, _, _ = strings.Cut(se.Error(), " ")
			msg += " field" // "unknown field" / "duplicate field"
			if strings.HasPrefix(se.Error(), "unknown") {
				msg = "unknown field (field names are case-sensitive)"
			}
		}
		errs = append(errs, &LoadError{File: file, Document: doc, Line: lineOf(root, path), Field: path, Message: msg})
	}
	if len(errs) > 0 {
		return Policy{}, root, errs
	}
	if p.APIVersion != APIVersion {
		errs = append(errs, &LoadError{File: file, Document: doc, Line: lineOf(root, "apiVersion"), Field: "apiVersion",
			Message: fmt.Sprintf("unsupported value %q: want %q", p.APIVersion, APIVersion)})
	}
	if p.Kind != Kind {
		errs = append(errs, &LoadError{File: file, Document: doc, Line: lineOf(root, "kind"), Field: "kind",
			Message: fmt.Sprintf("unsupported value %q: want %q", p.Kind, Kind)})
	}
	return p, root, errs
}

// typeErrorPath extracts the field path from a decoding error such as
// `json: cannot unmarshal string into Go struct field Spec.spec.priority of
// type int32`, returning the path and a shorter message.
func typeErrorPath(err error) (string, string) {
	msg := strings.TrimPrefix(err.Error(), "json: ")
	const marker = " into Go struct field "
	head, rest, ok := strings.Cut(msg, marker)
	if !ok {
		return "", msg
	}
	qualified, typ, ok := strings.Cut(rest, " of type ")
	if !ok {
		return "", msg
	}
	_, path, _ := strings.Cut(qualified, ".") // drop the Go struct name
	return path, fmt.Sprintf("%s into %s", head, typ)
}

type duplicate struct {
	path        string
	line, first int
}

// duplicateKeys finds repeated keys in every mapping under n, with their field
// paths, in document order.
func duplicateKeys(n *yaml.Node, path string) []duplicate {
	var out []duplicate
	switch n.Kind {
	case yaml.MappingNode:
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			child := joinField(path, k.Value)
			if first, ok := seen[k.Value]; ok {
				out = append(out, duplicate{path: child, line: k.Line, first: first})
				continue
			}
			seen[k.Value] = k.Line
			out = append(out, duplicateKeys(v, child)...)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			out = append(out, duplicateKeys(c, fmt.Sprintf("%s[%d]", path, i))...)
		}
	}
	return out
}

func joinField(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// lineOf returns the line of the field at path ("spec.match.podSelector",
// "spec.actions.nameservers[1]") in the mapping root: the line of its key, or
// of its element in a list; the nearest existing ancestor's when the field is
// not in the document.
func lineOf(root *yaml.Node, path string) int {
	n := root
	line := root.Line
	for _, seg := range splitPath(path) {
		next, l := child(n, seg)
		if next == nil {
			break
		}
		n, line = next, l
	}
	return line
}

// pathSegment is one step of a field path: a key or an index.
type pathSegment struct {
	key   string
	index int // -1 for a key
}

func splitPath(path string) []pathSegment {
	var segs []pathSegment
	for part := range strings.SplitSeq(path, ".") {
		if part == "" {
			continue
		}
		key, rest, _ := strings.Cut(part, "[")
		if key != "" {
			segs = append(segs, pathSegment{key: key, index: -1})
		}
		for rest != "" {
			num, after, _ := strings.Cut(rest, "]")
			var i int
			if _, err := fmt.Sscanf(num, "%d", &i); err == nil {
				segs = append(segs, pathSegment{index: i})
			}
			_, rest, _ = strings.Cut(after, "[")
		}
	}
	return segs
}

// child returns the node one segment below n and the line that names it.
func child(n *yaml.Node, seg pathSegment) (*yaml.Node, int) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if seg.index >= 0 {
		if n.Kind == yaml.SequenceNode && seg.index < len(n.Content) {
			c := n.Content[seg.index]
			return c, c.Line
		}
		return nil, 0
	}
	if n.Kind != yaml.MappingNode {
		return nil, 0
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Value == seg.key {
			return n.Content[i+1], k.Line
		}
	}
	return nil, 0
}

// fieldError is a validation error of the policy loaded from l.
func (l *loaded) fieldError(err *field.Error) *LoadError {
	msg := err.ErrorBody()
	return &LoadError{File: l.source.File, Document: l.source.Document, Line: lineOf(l.root, err.Field), Field: err.Field, Message: msg}
}
