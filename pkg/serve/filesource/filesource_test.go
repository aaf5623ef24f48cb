package filesource_test

import (
	"strings"
	"testing"

	"github.com/poddns/poddns/pkg/serve/filesource"
)

func TestRead(t *testing.T) {
	for _, tc := range []struct {
		name                         string
		in                           string
		svcs, slices, pods, ns, skip int
	}{
		{"multi-document YAML", `
apiVersion: v1
kind: Namespace
metadata: {name: default}
---
# comment only
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {clusterIP: 10.96.0.1, futureField: tolerated}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
`, 1, 0, 0, 1, 1},
		{"v1 List with nested list", `
apiVersion: v1
kind: List
items:
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata: {name: web-1, labels: {kubernetes.io/service-name: web}}
  addressType: IPv4
  endpoints: [{addresses: [10.0.0.1]}]
- apiVersion: v1
  kind: PodList
  items:
  - {apiVersion: v1, kind: Pod, metadata: {name: p}, status: {podIP: 10.0.0.1}}
  - {apiVersion: v1, kind: Pod, metadata: {name: pending}}
- {apiVersion: v1, kind: Endpoints, metadata: {name: web}}
`, 0, 1, 1, 0, 1},
		{"JSON stream", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}}
{"apiVersion":"v1","kind":"Service","metadata":{"name":"s","namespace":"a"},"spec":{"clusterIP":"None"}}`, 1, 0, 0, 1, 0},
		{"empty", "", 0, 0, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := filesource.Read(strings.NewReader(tc.in), "in.yaml")
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			o := res.Objects
			skipped := 0
			for _, n := range res.Skipped {
				skipped += n
			}
			if len(o.Services) != tc.svcs || len(o.EndpointSlices) != tc.slices || len(o.Pods) != tc.pods || len(o.Namespaces) != tc.ns || skipped != tc.skip {
				t.Errorf("got %d services, %d slices, %d pods, %d namespaces, %d skipped; want %d, %d, %d, %d, %d",
					len(o.Services), len(o.EndpointSlices), len(o.Pods), len(o.Namespaces), skipped, tc.svcs, tc.slices, tc.pods, tc.ns, tc.skip)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"bad YAML", "apiVersion: v1\nkind: Service\n---\n: : :\n", "in.yaml: document 2"},
		{"no kind", "apiVersion: v1\nmetadata: {name: x}\n", "no kind"},
		{"wrong field type", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: 3}\n", "Service /x"},
		{"bad list item", "apiVersion: v1\nkind: List\nitems: [{apiVersion: v1, kind: Pod, spec: []}]\n", "List item 0"},
		{"not an object", "- a\n- b\n", "document 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := filesource.Read(strings.NewReader(tc.in), "in.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := filesource.LoadFile("testdata/does-not-exist.yaml"); err == nil {
		t.Error("LoadFile of a missing file succeeded")
	}
}

// TestExampleCluster loads the quick-start cluster of the README.
func TestExampleCluster(t *testing.T) {
	res, err := filesource.LoadFile("../../../testdata/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	o := res.Objects
	if len(o.Services) != 9 || len(o.EndpointSlices) != 2 || len(o.Pods) != 4 || len(o.Namespaces) != 3 || len(res.Skipped) != 0 {
		t.Errorf("testdata/cluster.yaml: %d services, %d slices, %d pods, %d namespaces, skipped %v",
			len(o.Services), len(o.EndpointSlices), len(o.Pods), len(o.Namespaces), res.Skipped)
	}
}

// TestKeepNode: a node-local dnsd serving a file keeps only its node's
// pods, as the API source's field selector on spec.nodeName does.
func TestKeepNode(t *testing.T) {
	res, err := filesource.Read(strings.NewReader(`
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Pod, metadata: {name: a, namespace: x}, spec: {nodeName: n1}, status: {podIP: 10.0.0.1}}
- {apiVersion: v1, kind: Pod, metadata: {name: b, namespace: x}, spec: {nodeName: n2}, status: {podIP: 10.0.0.2}}
- {apiVersion: v1, kind: Pod, metadata: {name: c, namespace: x}, status: {podIP: 10.0.0.3}}
- {apiVersion: v1, kind: Pod, metadata: {name: d, namespace: x}, spec: {nodeName: n1}, status: {podIP: 10.0.0.4}}
- {apiVersion: v1, kind: Namespace, metadata: {name: x}}
`), "pods.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if dropped := res.KeepNode("n1"); dropped != 2 {
		t.Errorf("KeepNode dropped %d pods, want 2 (one of n2, one unscheduled)", dropped)
	}
	var names []string
	for _, p := range res.Objects.Pods {
		names = append(names, p.Name)
	}
	if strings.Join(names, ",") != "a,d" || len(res.Objects.Namespaces) != 1 {
		t.Errorf("kept pods %v, namespaces %d; want a,d and the namespace", names, len(res.Objects.Namespaces))
	}
	if dropped := res.KeepNode("n1"); dropped != 0 {
		t.Errorf("KeepNode again dropped %d", dropped)
	}
}
