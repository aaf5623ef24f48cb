package manifest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MaxDocumentSize is the most one document of a manifest may hold: a YAML
// document between --- separators or one value of a JSON stream. A List is
// one document: a list larger than this is to be split (e.g. kubectl get -o
// json | jq -c '.items[]').
const MaxDocumentSize = 64 << 20

// maxDocument is MaxDocumentSize, lowered by tests.
var maxDocument int64 = MaxDocumentSize

// errDocumentTooLarge is the error of a document past maxDocument.
var errDocumentTooLarge = errors.New("document too large")

func documentTooLarge() error {
	return fmt.Errorf("larger than %d bytes, the most one manifest document may hold (split it into smaller documents)", maxDocument)
}

// Stream decodes the manifests in r as Decode does, but one document at a
// time: each is called with what a document holds (its pods, namespaces and
// notes) before the next document is read, so that memory is bounded by one
// document, not the input. A document larger than MaxDocumentSize is a
// *DocumentError naming it. A read error of r, a NUL byte or an input larger
// than MaxInputSize stops the decoding: what each was given stays given, and
// the error is returned joined after the *DocumentErrors met before it.
func Stream(r io.Reader, file string, each func(*Set)) error {
	g := &guard{r: r, file: file}
	br := bufio.NewReaderSize(g, 64<<10)
	d := decoder{set: &Set{}, each: each}
	if peekJSON(br) {
		d.decodeJSONStream(br, file, g)
	} else {
		d.decodeYAMLStream(br, file, g)
	}
	d.flush()
	if g.err != nil {
		d.errs = append(d.errs, g.err)
	}
	return errors.Join(d.errs...)
}

// flush hands what the documents so far hold to each, when streaming.
func (d *decoder) flush() {
	if d.each == nil {
		return
	}
	if len(d.set.Pods)+len(d.set.Namespaces)+len(d.set.Notes) > 0 {
		d.each(d.set)
	}
	d.set = &Set{}
}

// guard is the reader under Stream: it refuses a NUL byte and an input past
// maxInput, with the errors Decode gives for them, and remembers its error so
// that the decoders stop at it rather than report it as a document's.
type guard struct {
	r    io.Reader
	file string
	n    int64
	err  error
}

func (g *guard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	if rest := maxInput + 1 - g.n; int64(len(p)) > rest {
		p = p[:rest] // one byte past the cap tells that it is exceeded
	}
	n, err := g.r.Read(p)
	// The bytes before a NUL byte or the cap are handed over and the error
	// comes with the next read, so that the documents they end are read.
	if i := bytes.IndexByte(p[:n], 0); i >= 0 {
		g.err = fmt.Errorf("read %s: NUL byte at offset %d: not a YAML or JSON manifest", g.file, g.n+int64(i))
		g.n += int64(i)
		return i, nil
	}
	if g.n+int64(n) > maxInput {
		g.err = fmt.Errorf("read %s: larger than %d bytes, the most one manifest input may hold (split it, e.g. one file per namespace)", g.file, maxInput)
		keep := maxInput - g.n
		g.n = maxInput
		return int(keep), nil
	}
	g.n += int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		g.err = fmt.Errorf("read %s: %w", g.file, err)
		return n, g.err
	}
	return n, err
}

// peekJSON tells a JSON stream from YAML as isJSON does, by an opening brace
// after any white space, without consuming anything. White space longer than
// the reader's buffer is taken for YAML (of which JSON is a subset).
func peekJSON(br *bufio.Reader) bool {
	for i := 1; i <= br.Size(); i++ {
		b, err := br.Peek(i)
		if len(b) < i || err != nil {
			return false
		}
		switch b[i-1] {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		default:
			return false
		}
	}
	return false
}

// docLimit stops a JSON decoder that reads past limit: the end of the last
// value plus maxDocument.
type docLimit struct {
	r        io.Reader
	n, limit int64
}

func (l *docLimit) Read(p []byte) (int, error) {
	if l.n >= l.limit {
		return 0, errDocumentTooLarge
	}
	if rest := l.limit - l.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	return n, err
}

// yamlDocuments splits a YAML stream into documents as
// k8s.io/apimachinery/pkg/util/yaml's YAMLReader does (lines as its
// LineReader returns them, "\n"-ended; a --- line followed by anything but a
// comment is an error that drops the document it ends), except that a
// document past maxDocument is read to its end and dropped, not kept.
type yamlDocuments struct {
	r *bufio.Reader
}

// next returns the next document, errDocumentTooLarge for one too large, a
// separator error, a read error, or io.EOF at the end.
func (y *yamlDocuments) next() ([]byte, error) {
	var buf bytes.Buffer
	tooLarge := false
	end := func() ([]byte, error) {
		if tooLarge {
			return nil, errDocumentTooLarge
		}
		return buf.Bytes(), nil
	}
	for {
		line, err := y.line()
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if bytes.HasPrefix(line, []byte("---")) {
			trimmed := strings.TrimSpace(string(line[3:]))
			if len(trimmed) > 0 && trimmed[0] != '#' {
				return nil, separatorError{trimmed: trimmed}
			}
			if buf.Len() != 0 || tooLarge {
				return end()
			}
			if err != nil {
				return nil, err
			}
		}
		if err != nil { // io.EOF
			if buf.Len() != 0 || tooLarge {
				return end()
			}
			return nil, err
		}
		if tooLarge {
			continue
		}
		if int64(buf.Len()+len(line)) > maxDocument {
			tooLarge = true
			buf = bytes.Buffer{}
			continue
		}
		buf.Write(line)
	}
}

// line returns one line, "\n"-ended (a "\r\n" end becomes "\n"), keeping at
// most maxDocument+1 bytes of it (the rest of a longer line is dropped: its
// document is too large anyway).
func (y *yamlDocuments) line() ([]byte, error) {
	var buf []byte
	for {
		part, isPrefix, err := y.r.ReadLine()
		if int64(len(buf)) <= maxDocument {
			buf = append(buf, part...)
		}
		if err != nil || !isPrefix {
			return append(buf, '\n'), err
		}
	}
}

// separatorError is a --- line followed by something other than a comment.
type separatorError struct{ trimmed string }

func (e separatorError) Error() string {
	return "invalid Yaml document separator: " + e.trimmed
}

// failed reports whether the guard (if any) has stopped the input: a read
// error the decoders meet is then the guard's, reported once by Stream.
func (g *guard) failed() bool { return g != nil && g.err != nil }
