package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// podStream is an io.Reader that makes n pod documents as they are read,
// never holding more than one.
type podStream struct {
	n, made int
	buf     []byte
	// read counts the bytes handed out.
	read int64
}

func (p *podStream) Read(b []byte) (int, error) {
	for len(p.buf) == 0 {
		if p.made == p.n {
			return 0, io.EOF
		}
		p.made++
		p.buf = fmt.Appendf(p.buf[:0], "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: pod-%d\n  namespace: team\nspec:\n  containers:\n  - name: c\n    image: busybox\n", p.made)
	}
	n := copy(b, p.buf)
	p.buf = p.buf[n:]
	p.read += int64(n)
	return n, nil
}

// firstWrite records how much of the input had been made when the first
// report was written.
type firstWrite struct {
	in      *podStream
	madeAt  int
	written int64
}

func (w *firstWrite) Write(b []byte) (int, error) {
	if w.written == 0 {
		w.madeAt = w.in.made
	}
	w.written += int64(len(b))
	return len(b), nil
}

// TestRenderStreams (issue 12, item 12): render writes a pod's report as soon
// as it is made, while the rest of the input is still unread, with and
// without policies. Before, it read the whole input first.
func TestRenderStreams(t *testing.T) {
	t.Chdir("../..")
	const n = 2000
	for _, args := range [][]string{
		{"render", "-f", "-"},
		{"render", "-f", "-", "-o", "json"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			in := &podStream{n: n}
			out := &firstWrite{in: in}
			var stderr bytes.Buffer
			if code := run(args, in, out, &stderr); code != exitOK {
				t.Fatalf("exit status %d\n%s", code, stderr.String())
			}
			if in.made != n || out.written == 0 {
				t.Fatalf("made %d of %d pods, wrote %d bytes", in.made, n, out.written)
			}
			if out.madeAt > 10 {
				t.Errorf("the first report was written after %d of %d pods had been read: want it written before the input is read (at most 10)", out.madeAt, n)
			}
		})
	}
}

// TestRenderStdinNamespacesLast: with policies, Namespace documents on stdin
// after the pods that need their labels still apply (stdin is spooled and
// read twice), exactly as with files.
func TestRenderStdinNamespacesLast(t *testing.T) {
	t.Chdir("../..")
	var stdin []byte
	for _, f := range []string{"testdata/pods/examples.yaml", "testdata/pods/namespaces.yaml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		stdin = append(append(stdin, b...), "\n---\n"...)
	}
	var fromFiles, fromStdin, stderr bytes.Buffer
	if code := run([]string{"render", "-p", "testdata/policies", "-f", "testdata/pods/examples.yaml", "-f", "testdata/pods/namespaces.yaml"}, nil, &fromFiles, &stderr); code != exitOK {
		t.Fatalf("files: exit status %d\n%s", code, stderr.String())
	}
	if code := run([]string{"render", "-p", "testdata/policies", "-f", "-"}, bytes.NewReader(stdin), &fromStdin, &stderr); code != exitOK {
		t.Fatalf("stdin: exit status %d\n%s", code, stderr.String())
	}
	got := strings.ReplaceAll(fromStdin.String(), "<stdin>", filepath.FromSlash("testdata/pods/examples.yaml"))
	if got != fromFiles.String() {
		t.Errorf("stdin with namespaces last renders\n%s\nwant as from files\n%s", got, fromFiles.String())
	}
	if !strings.Contains(got, "# applied: node-local-cache") {
		t.Errorf("no namespace-selected policy applied:\n%s", got)
	}
}

// heapPeak samples the live heap every few writes.
type heapPeak struct {
	writes int
	peak   uint64
}

func (h *heapPeak) Write(b []byte) (int, error) {
	h.writes++
	if h.writes%2000 == 0 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		h.peak = max(h.peak, m.HeapAlloc)
	}
	return len(b), nil
}

// TestRenderMemoryBounded (issue 12, item 12): rendering 100,000 pods made on
// the fly keeps the live heap, sampled after a GC while reports are written,
// within 8 MiB of where it started (bounded by a document, not the input).
// Before, it held every pod and report until the end: 35 MB more here.
func TestRenderMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("renders 100,000 pods")
	}
	t.Chdir("../..")
	const n = 100_000
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	base := m.HeapAlloc
	in := &podStream{n: n}
	out := &heapPeak{}
	var stderr bytes.Buffer
	if code := run([]string{"render", "-f", "-", "-o", "json"}, in, out, &stderr); code != exitOK {
		t.Fatalf("exit status %d\n%s", code, stderr.String())
	}
	if in.made != n {
		t.Fatalf("made %d of %d pods", in.made, n)
	}
	growth := int64(out.peak) - int64(base)
	t.Logf("100,000 pods (%d MB of input): live heap grew by at most %.1f MB", in.read>>20, float64(growth)/(1<<20))
	if limit := int64(8 << 20); growth > limit {
		t.Errorf("live heap grew by %d bytes rendering %d pods: want at most %d", growth, n, limit)
	}
}
