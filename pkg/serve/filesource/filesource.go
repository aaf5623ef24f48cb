// Package filesource reads Kubernetes objects from a YAML or JSON file —
// the output of `kubectl get svc,endpointslices,pods,ns -A -o yaml`, a v1
// List, several `---`-separated documents or a JSON stream — and turns them
// into the store's slim records, so dnsd can serve a cluster without one:
// for a quick start, for debugging a real cluster's objects offline, and in
// tests.
//
// Any of those forms loads, but only a single List with its kind after its
// items (kubectl's own output) is whole by pkg/wholefile's rule: dnsd
// reloads only from such a file (see Result.NotWhole).
//
// Objects are decoded into the k8s.io/api types (Service, discovery.k8s.io/v1
// EndpointSlice, Pod, Namespace) and converted with the store's To*
// functions, exactly as the API source converts what it watches, so both
// sources serve the same answers for the same objects. Other kinds (v1
// Endpoints, Deployments, ...) are counted as skipped, not errors. Unknown
// fields are tolerated, as kubectl output from a newer server may carry
// some. The package does not import client-go.
package filesource

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/poddns/poddns/pkg/serve/store"
	"github.com/poddns/poddns/pkg/wholefile"
)

// Result is what a file held.
type Result struct {
	Objects store.Objects
	// Skipped counts the objects of other kinds, by "apiVersion/kind".
	Skipped map[string]int
	// NotWhole, set by LoadFile, says why the file may have been read
	// incomplete by pkg/wholefile's rule (nil when it is one List with
	// kind after items, as kubectl writes it). Such a file parses, but a
	// cut at a document or item boundary cannot be told from its end, so
	// dnsd loads it at startup but refuses to reload from it.
	NotWhole error
	// podNodes is the spec.nodeName of each of Objects.Pods, for
	// KeepNode.
	podNodes []string
}

// KeepNode keeps only the pods scheduled on node (spec.nodeName), as a
// node-local dnsd's pod watch does, and returns how many it dropped.
func (r *Result) KeepNode(node string) int {
	kept, nodes := r.Objects.Pods[:0], r.podNodes[:0]
	for i, p := range r.Objects.Pods {
		if r.podNodes[i] == node {
			kept, nodes = append(kept, p), append(nodes, node)
		}
	}
	dropped := len(r.Objects.Pods) - len(kept)
	r.Objects.Pods, r.podNodes = kept, nodes
	return dropped
}

// Total is the number of objects kept (skipped kinds not counted).
func (r *Result) Total() int {
	o := r.Objects
	return len(o.Services) + len(o.EndpointSlices) + len(o.Pods) + len(o.Namespaces)
}

// LoadFile reads the objects in the file at path and checks whether the
// file is whole (Result.NotWhole).
func LoadFile(path string) (*Result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read objects file: %w", err)
	}
	res, err := Read(bytes.NewReader(data), path)
	if err != nil {
		return nil, err
	}
	if err := wholefile.Check(data, "items", "List"); err != nil {
		res.NotWhole = fmt.Errorf("%s: %w", path, err)
	}
	return res, nil
}

// Read reads the objects in r, naming the input name in errors. A
// malformed document is an error: a partial cluster would answer NXDOMAIN
// for names that exist.
func Read(r io.Reader, name string) (*Result, error) {
	res := &Result{Skipped: map[string]int{}}
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	for doc := 1; ; doc++ {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return res, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", name, doc, err)
		}
		if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
			continue
		}
		if err := res.add(raw, 0); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", name, doc, err)
		}
	}
}

type header struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Items      []json.RawMessage `json:"items"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

// maxListDepth bounds Lists inside Lists.
const maxListDepth = 4

func (res *Result) add(raw json.RawMessage, depth int) error {
	var h header
	if err := json.Unmarshal(raw, &h); err != nil {
		return fmt.Errorf("not a Kubernetes object: %w", err)
	}
	if h.Kind == "" {
		return errors.New("not a Kubernetes object: no kind")
	}
	if strings.HasSuffix(h.Kind, "List") {
		if depth >= maxListDepth {
			return fmt.Errorf("%s nested more than %d deep", h.Kind, maxListDepth)
		}
		for i, item := range h.Items {
			if err := res.add(item, depth+1); err != nil {
				return fmt.Errorf("%s item %d: %w", h.Kind, i, err)
			}
		}
		return nil
	}
	var err error
	switch h.APIVersion + "/" + h.Kind {
	case "v1/Service":
		_, err = appendSlim(raw, store.ToService, &res.Objects.Services)
	case "discovery.k8s.io/v1/EndpointSlice":
		_, err = appendSlim(raw, store.ToEndpointSlice, &res.Objects.EndpointSlices)
	case "v1/Pod":
		var o *corev1.Pod
		if o, err = appendSlim(raw, store.ToPod, &res.Objects.Pods); o != nil {
			res.podNodes = append(res.podNodes, o.Spec.NodeName)
		}
	case "v1/Namespace":
		_, err = appendSlim(raw, store.ToNamespace, &res.Objects.Namespaces)
	default:
		res.Skipped[h.APIVersion+"/"+h.Kind]++
	}
	if err != nil {
		return fmt.Errorf("%s %s/%s: %w", h.Kind, h.Metadata.Namespace, h.Metadata.Name, err)
	}
	return nil
}

// appendSlim decodes raw as a T and appends the store's slim form of it
// (slim) to dst, unless slim leaves the object out; it returns the object
// it appended, nil for none.
func appendSlim[T, S any](raw []byte, slim func(*T) (S, bool), dst *[]S) (*T, error) {
	var o T
	if err := json.Unmarshal(raw, &o); err != nil {
		return nil, err
	}
	s, ok := slim(&o)
	if !ok {
		return nil, nil
	}
	*dst = append(*dst, s)
	return &o, nil
}
