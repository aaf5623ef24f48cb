package configfile

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode"

	yaml "go.yaml.in/yaml/v3"
	sigsjson "sigs.k8s.io/json"
	sigsyaml "sigs.k8s.io/yaml"
)

// Error is a document that could not be read: where, which field, and why.
type Error struct {
	// File is the path or name the document was read from.
	File string
	// Document counts the file's YAML documents from 1 (empty documents are
	// not counted); 0 when the error is about the whole file.
	Document int
	// Line is the line in File of the field (or of the document when the
	// field cannot be located); 0 when unknown.
	Line int
	// Field is the field path in the document, e.g. spec.actions.ndots;
	// empty for an error about the whole document.
	Field string
	// Message says what is wrong.
	Message string
}

// Error returns "file: document N, line L: field: message".
func (e *Error) Error() string {
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

// Document is one non-empty YAML document of a file.
type Document struct {
	// File names the file in errors.
	File string
	// Index counts the file's documents from 1, empty ones not counted.
	Index int
	data  []byte     // the document's text
	first int        // the line of the file the text starts on
	root  *yaml.Node // the top-level node; lines count in the file
}

// Line is the line of the document's top-level node.
func (d *Document) Line() int { return d.root.Line }

// Errorf returns an *Error about the field at path (a dotted path with
// [i] indexes; "" for the whole document), on the field's line.
func (d *Document) Errorf(path, format string, args ...any) *Error {
	return &Error{File: d.File, Document: d.Index, Line: d.FieldLine(path), Field: path, Message: fmt.Sprintf(format, args...)}
}

// Split returns the non-empty documents of data, a file's content named
// file in errors. A document that is not YAML is an *Error and is left
// out; the others are returned.
func Split(data []byte, file string) ([]*Document, []error) {
	var (
		docs []*Document
		errs []error
		n    int
	)
	for _, c := range splitDocuments(data) {
		var node yaml.Node
		if err := yaml.Unmarshal(c.data, &node); err != nil {
			n++
			errs = append(errs, syntaxError(file, n, c.line, err))
			continue
		}
		if isEmptyDocument(&node) {
			continue
		}
		n++
		shiftLines(&node, c.line-1)
		docs = append(docs, &Document{File: file, Index: n, data: c.data, first: c.line, root: node.Content[0]})
	}
	return docs, errs
}

// Decode decodes the document strictly into v, a pointer, over the values
// v already holds: a field the document leaves out keeps its value. A
// document that is not a mapping, a duplicate field, a value of the wrong
// type and an unknown field (names are case-sensitive) are errors, each an
// *Error on its line; v is not to be used after an error.
func (d *Document) Decode(v any) []error {
	if d.root.Kind != yaml.MappingNode {
		return []error{d.Errorf("", "not a mapping")}
	}
	var errs []error
	for _, dup := range duplicateKeys(d.root, "") {
		errs = append(errs, &Error{File: d.File, Document: d.Index, Line: dup.line, Field: dup.path,
			Message: fmt.Sprintf("duplicate field (first at line %d)", dup.first)})
	}
	if len(errs) > 0 {
		return errs
	}
	// The conversion Kubernetes uses (YAML 1.1 scalars, as kubectl reads
	// manifests); the node tree only serves lines and duplicates.
	j, err := sigsyaml.YAMLToJSONStrict(d.data)
	if err != nil {
		return []error{syntaxError(d.File, d.Index, d.first, err)}
	}
	strict, err := sigsjson.UnmarshalStrict(j, v)
	if ve := (*valueError)(nil); errors.As(err, &ve) {
		return []error{d.Errorf(findScalar(d.root, "", ve.value), "%s", ve.msg)}
	}
	if err != nil {
		path, msg := typeErrorPath(err)
		return []error{d.Errorf(path, "%s", msg)}
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
		errs = append(errs, d.Errorf(path, "%s", msg))
	}
	return errs
}

// Identity is the apiVersion and kind of a versioned file.
type Identity struct {
	APIVersion string
	Kind       string
}

// Check returns an *Error for each of the document's apiVersion and kind
// that is not id's.
func (d *Document) Check(id Identity) []error {
	var errs []error
	for _, f := range []struct{ field, want string }{{"apiVersion", id.APIVersion}, {"kind", id.Kind}} {
		if got := d.scalar(f.field); got != f.want {
			errs = append(errs, d.Errorf(f.field, "unsupported value %q: want %q", got, f.want))
		}
	}
	return errs
}

// scalar is the value of a top-level scalar field, "" when absent.
func (d *Document) scalar(key string) string {
	n, _ := child(d.root, pathSegment{key: key, index: -1})
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return ""
	}
	return n.Value
}

// chunk is one YAML document of a file and the line it starts on.
type chunk struct {
	data []byte
	line int
}

// splitDocuments splits a YAML stream at its separator lines: "---" at the
// start of a line followed by nothing but white space or a comment, as the
// Kubernetes YAML reader does.
func splitDocuments(data []byte) []chunk {
	var docs []chunk
	cur := chunk{line: 1}
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
				cur = chunk{line: lineNo + 1}
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
// in the document) into an *Error with the line in the file.
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
	return &Error{File: file, Document: doc, Line: line, Message: "invalid YAML: " + msg}
}

func isEmptyDocument(doc *yaml.Node) bool {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return true
	}
	c := doc.Content[0]
	return c.Kind == yaml.ScalarNode && c.Tag == "!!null"
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
	// Drop the Go names of embedded structs (their fields are written
	// inline): file field names start in lower case.
	var segs []string
	for seg := range strings.SplitSeq(path, ".") {
		if seg != "" && !unicode.IsUpper(rune(seg[0])) {
			segs = append(segs, seg)
		}
	}
	return strings.Join(segs, "."), fmt.Sprintf("%s into %s", head, typ)
}

type duplicate struct {
	path        string
	line, first int
}

// duplicateKeys finds repeated keys in every mapping under n, with their
// field paths, in document order.
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

// FieldLine returns the line of the field at path ("spec.match.podSelector",
// "spec.actions.nameservers[1]"): the line of its key, or of its element in
// a list; the nearest existing ancestor's when the field is not in the
// document.
func (d *Document) FieldLine(path string) int {
	n := d.root
	line := n.Line
	for _, seg := range splitPath(path) {
		next, l := child(n, seg)
		if next == nil {
			break
		}
		n, line = next, l
	}
	return line
}

// findScalar returns the path of the first scalar under n, in document
// order, whose value is value ("" when none is).
func findScalar(n *yaml.Node, path, value string) string {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Value == value {
			return path
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if p := findScalar(n.Content[i+1], joinField(path, n.Content[i].Value), value); p != "" {
				return p
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if p := findScalar(c, fmt.Sprintf("%s[%d]", path, i), value); p != "" {
				return p
			}
		}
	}
	return ""
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

// Leaves returns the errors joined in err (errors.Join, nested too), in
// order: one per problem of a load.
func Leaves(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, Leaves(e)...)
	}
	return out
}

// Kind is the document's top-level kind, "" when absent or not a string:
// for files that may hold one of several kinds.
func (d *Document) Kind() string { return d.scalar("kind") }
