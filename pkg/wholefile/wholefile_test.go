package wholefile_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/poddns/poddns/pkg/wholefile"
)

// kubectlList is the shape of `kubectl get ns,svc -A -o yaml`.
const kubectlList = `apiVersion: v1
items:
- apiVersion: v1
  kind: Namespace
  metadata:
    name: default
- apiVersion: v1
  kind: Service
  metadata:
    name: web
    namespace: default
  spec:
    clusterIP: 10.96.0.10
kind: List
metadata:
  resourceVersion: ""
`

const kubectlJSON = `{"apiVersion":"v1","items":[{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"default"}}],"kind":"List","metadata":{"resourceVersion":""}}`

func TestCheck(t *testing.T) {
	stream := "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n"
	for _, tc := range []struct {
		name, in string
		whole    bool // else: wraps ErrNotWhole (or does not parse, parseErr)
		parseErr bool
	}{
		{"kubectl YAML List", kubectlList, true, false},
		{"kubectl JSON List", kubectlJSON, true, false},
		{"empty List", "apiVersion: v1\nitems: []\nkind: List\n", true, false},
		{"empty file", "", false, false},
		{"blank file", " \n\n", false, false},
		{"comment only", "# nothing\n", false, false},
		{"stream", stream, false, false},
		// A stream cut at its --- boundary parses as one document: refused
		// because a lone object is not a List either.
		{"stream cut at ---", stream[:strings.Index(stream, "---")], false, false},
		{"stream cut after ---", stream[:strings.Index(stream, "---")+4], false, false},
		{"List cut after an item", kubectlList[:strings.Index(kubectlList, "- apiVersion: v1\n  kind: Service")], false, false},
		{"List cut before kind", kubectlList[:strings.Index(kubectlList, "kind: List")], false, false},
		{"List cut after kind", kubectlList[:strings.Index(kubectlList, "metadata:\n  resourceVersion")], true, false},
		{"kind before items", "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: a}}\n", false, false},
		{"JSON cut", kubectlJSON[:len(kubectlJSON)/2], false, true},
		{"a scalar", "hello\n", false, false},
		{"kind cut short", "apiVersion: v1\nitems: []\nkind: Li", false, false},
		{"PodList", "apiVersion: v1\nitems: []\nkind: PodList\n", true, false},
		{"bad YAML", "items: [\n", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := wholefile.Check([]byte(tc.in), "items", "List")
			switch {
			case tc.whole && err != nil:
				t.Fatalf("Check: %v, want whole", err)
			case tc.whole:
			case err == nil:
				t.Fatal("Check: whole, want an error")
			case tc.parseErr == errors.Is(err, wholefile.ErrNotWhole):
				t.Fatalf("Check: %v; want ErrNotWhole %v", err, !tc.parseErr)
			}
		})
	}
}

// TestCheckEveryCut cuts the kubectl List at every byte: only cuts that
// keep the "kind" line whole pass.
func TestCheckEveryCut(t *testing.T) {
	kindEnd := strings.Index(kubectlList, "kind: List\n") + len("kind: List")
	for _, in := range []string{kubectlList, kubectlJSON} {
		end := len(in)
		if in == kubectlList {
			end = kindEnd
		}
		for n := range end {
			if err := wholefile.Check([]byte(in[:n]), "items", "List"); err == nil {
				t.Errorf("cut at byte %d of %d passed: %q", n, len(in), in[:n])
			}
		}
	}
}

// FuzzCheck: Check never panics, and a whole file followed by a second
// document is never whole.
func FuzzCheck(f *testing.F) {
	f.Add([]byte(kubectlList))
	f.Add([]byte(kubectlJSON))
	f.Add([]byte("apiVersion: v1\nkind: List\nitems: []\n"))
	f.Add([]byte("a: [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if wholefile.Check(data, "items", "List") != nil {
			return
		}
		two := append(append([]byte{}, data...), "\n---\napiVersion: v1\nkind: Namespace\n"...)
		if err := wholefile.Check(two, "items", "List"); err == nil {
			t.Fatalf("two documents passed: %q", two)
		}
	})
}
