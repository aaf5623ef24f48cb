package manifest_test

import (
	"strings"
	"testing"

	"github.com/poddns/poddns/pkg/manifest"
)

const smallPod = "apiVersion: v1\nkind: Pod\nmetadata: {name: small}\nspec: {containers: [{name: c}]}\n"

// TestStreamDocumentCap (issue 12, item 12): a document past the per-document
// cap is an error naming the file and the document; in YAML the documents
// around it are still read, in JSON the stream stops there.
func TestStreamDocumentCap(t *testing.T) {
	big := "apiVersion: v1\nkind: Pod\nmetadata:\n  name: big\n  annotations:\n    a: " + strings.Repeat("x", 300) + "\nspec: {containers: [{name: c}]}\n"
	bigJSON := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"big","annotations":{"a":"` + strings.Repeat("x", 300) + `"}},"spec":{"containers":[{"name":"c"}]}}`
	smallJSON := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"small"},"spec":{"containers":[{"name":"c"}]}}`
	for _, tt := range []struct {
		name, in, wantErr string
		wantPods          []string
	}{
		{"yaml", smallPod + "---\n" + big + "---\n" + smallPod, "f.yaml: document 2: larger than 256 bytes, the most one manifest document may hold", []string{"small", "small"}},
		{"yaml one long line", smallPod + "---\n" + strings.Repeat("y", 5000) + "\n---\n" + smallPod, "f.yaml: document 2: larger than 256 bytes", []string{"small", "small"}},
		{"json", smallJSON + "\n" + bigJSON + "\n" + smallJSON, "f.yaml: document 2: larger than 256 bytes, the most one manifest document may hold (split it into smaller documents) (the rest of the file is not read)", []string{"small"}},
		{"under the cap", smallPod + "---\n" + smallPod, "", []string{"small", "small"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer manifest.SetMaxDocument(manifest.SetMaxDocument(256))
			var pods []string
			err := manifest.Stream(strings.NewReader(tt.in), "f.yaml", func(s *manifest.Set) {
				for _, p := range s.Pods {
					pods = append(pods, p.Name)
				}
			})
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
			if strings.Join(pods, ",") != strings.Join(tt.wantPods, ",") {
				t.Errorf("pods %v, want %v", pods, tt.wantPods)
			}
		})
	}
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r *strings.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	if len(p) > 64 {
		p = p[:64] // small reads, so that laziness shows
	}
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestStreamHandsOverEachDocument: Stream gives each document's pods before
// it has read the input to its end, in YAML and JSON.
func TestStreamHandsOverEachDocument(t *testing.T) {
	smallJSON := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"small"},"spec":{"containers":[{"name":"c"}]}}` + "\n"
	for name, in := range map[string]string{
		"yaml": strings.Repeat(smallPod+"---\n", 2000),
		"json": strings.Repeat(smallJSON, 2000),
	} {
		t.Run(name, func(t *testing.T) {
			r := &countingReader{r: strings.NewReader(in)}
			first := -1
			pods := 0
			if err := manifest.Stream(r, "f", func(s *manifest.Set) {
				if first < 0 {
					first = r.n
				}
				pods += len(s.Pods)
			}); err != nil {
				t.Fatal(err)
			}
			if pods != 2000 {
				t.Fatalf("%d pods, want 2000", pods)
			}
			if first < 0 || first > 128<<10 {
				t.Errorf("first document handed over after %d of %d bytes were read", first, len(in))
			}
		})
	}
}

// TestStreamStopsAtBadInput: a NUL byte or an input past MaxInputSize stops
// Stream with Decode's error; what came before it was handed over.
func TestStreamStopsAtBadInput(t *testing.T) {
	for _, tt := range []struct{ name, in, wantErr string }{
		{"NUL byte", smallPod + "---\n" + smallPod + "\x00", "read f: NUL byte at offset 166: not a YAML or JSON manifest"},
		{"too large", smallPod + "---\n" + smallPod + strings.Repeat("#", 200), "read f: larger than 300 bytes, the most one manifest input may hold"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer manifest.SetMaxInput(manifest.SetMaxInput(300))
			pods := 0
			err := manifest.Stream(strings.NewReader(tt.in), "f", func(s *manifest.Set) { pods += len(s.Pods) })
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
			if pods != 1 {
				t.Errorf("%d pods handed over, want the 1 before the bad input", pods)
			}
		})
	}
}
