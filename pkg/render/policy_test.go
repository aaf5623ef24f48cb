package render_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/poddns/poddns/pkg/policy"
	"github.com/poddns/poddns/pkg/policy/policytest"
	"github.com/poddns/poddns/pkg/render"
)

const testPolicies = `apiVersion: poddns.io/v1alpha1
kind: DNSPolicy
metadata: {name: ndots}
spec:
  match: {namespaceSelector: {matchLabels: {tune: "yes"}}}
  actions: {ndots: 2}
---
apiVersion: poddns.io/v1alpha1
kind: DNSPolicy
metadata: {name: trial}
spec:
  mode: audit
  actions: {options: {set: [{name: timeout, value: "1"}]}}
`

func engine(t *testing.T) *policy.Engine {
	t.Helper()
	return policytest.StandardEngine(t, testPolicies)
}

// TestPolicyJSONContract checks that with policies every object has the
// seven keys of the contract, unchanged in type, followed by exactly the
// policy keys.
func TestPolicyJSONContract(t *testing.T) {
	set := decode(t, `apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {tune: "yes"}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
spec: {containers: [{name: c}]}
---
apiVersion: v1
kind: Pod
metadata: {name: other, namespace: other}
spec: {containers: [{name: c}]}
`)
	before := set.Pods[0].Pod.DeepCopy()
	reports := render.PodsWithPolicies(set.Pods, engine(t), render.NamespaceLabels(set.Namespaces))
	if !reflect.DeepEqual(set.Pods[0].Pod, before) {
		t.Errorf("PodsWithPolicies changed the item's pod")
	}
	var buf bytes.Buffer
	if err := render.WriteJSON(&buf, reports); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("Lines = %d, want 2", len(lines))
	}
	wantKeys := []string{"applied", "audit", "changed", "clientNotes", "error", "events", "exempt", "name", "namespace", "patchedPod", "policyWarnings", "resolvConf", "skipped", "validationErrors", "warnings"}
	for _, line := range lines {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			t.Fatal(err)
		}
		var keys []string
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if !slices.Equal(keys, wantKeys) {
			t.Errorf("Keys = %q, want %q", keys, wantKeys)
		}
		for _, k := range []string{"events", "validationErrors", "warnings", "clientNotes", "applied", "audit", "skipped", "policyWarnings"} {
			if !strings.HasPrefix(string(obj[k]), "[") {
				t.Errorf("Key %q = %s, want an array", k, obj[k])
			}
		}
	}
	// The seven keys come first, in the contract's order, then clientNotes.
	if !strings.HasPrefix(lines[0], `{"name":"web","namespace":"shop","resolvConf":"search shop.svc.cluster.local svc.cluster.local cluster.local ec2.internal\nnameserver 10.96.0.10\noptions ndots:2\n","events":[],"validationErrors":[],"warnings":[],"error":"","clientNotes":[],"applied":["ndots"],"audit":[{"policy":"trial","priority":0,"mode":"audit","outcome":"audit","changes":[{"field":"spec.dnsConfig.options[timeout]","from":"","to":"timeout:1"}]}],"skipped":[],"changed":true,"exempt":"","policyWarnings":["poddns: policy \"trial\" (audit) would change spec.dnsConfig.options[timeout] from (unset) to timeout:1"],"patchedPod":{`) {
		t.Errorf("First line:\n%s", lines[0])
	}
	if !strings.Contains(lines[1], `"applied":[],`) || !strings.Contains(lines[1], `"changed":false,`) {
		t.Errorf("Second line (no namespace document: only kubernetes.io/metadata.name):\n%s", lines[1])
	}
	// The patched pod carries the webhook's annotations.
	p := reports[0].PatchedPod
	if p.Annotations[policy.AnnotationApplied] != "ndots" || p.Annotations[policy.AnnotationResolvConf] != reports[0].ResolvConf {
		t.Errorf("Annotations = %v", p.Annotations)
	}
	if reports[1].PatchedPod.Annotations != nil {
		t.Errorf("Unchanged pod annotated: %v", reports[1].PatchedPod.Annotations)
	}
}

func TestWritePolicyText(t *testing.T) {
	set := decode(t, "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop, labels: {app: web}}\nspec: {containers: [{name: c, image: nginx}]}\n")
	reports := render.PodsWithPolicies(set.Pods, engine(t), map[string]map[string]string{"shop": {"tune": "yes"}})
	var buf bytes.Buffer
	if err := render.WritePolicyText(&buf, reports); err != nil {
		t.Fatal(err)
	}
	want := `---
# Pod/shop/web (pods.yaml: document 1)
# applied: ndots
#   ndots: spec.dnsConfig.options[ndots]: ndots:5 -> ndots:2
# audit, would change: trial: spec.dnsConfig.options[timeout]: (unset) -> timeout:1
# resolv.conf:
#   search shop.svc.cluster.local svc.cluster.local cluster.local ec2.internal
#   nameserver 10.96.0.10
#   options ndots:2
apiVersion: v1
kind: Pod
metadata:
  annotations:
    poddns.io/applied: ndots
    poddns.io/original-dns: '{"dnsPolicy":"ClusterFirst"}'
    poddns.io/resolv-conf: |
      search shop.svc.cluster.local svc.cluster.local cluster.local ec2.internal
      nameserver 10.96.0.10
      options ndots:2
  labels:
    app: web
  name: web
  namespace: shop
spec:
  containers:
  - image: nginx
    name: c
  dnsConfig:
    options:
    - name: ndots
      value: "2"
  dnsPolicy: ClusterFirst
`
	if buf.String() != want {
		t.Errorf("Text:\n%s\nwant:\n%s", buf.String(), want)
	}
	if err := render.WritePolicyText(&buf, render.Pods(set.Pods, policytest.Profile(t, policytest.StandardNode))); err == nil {
		t.Errorf("WritePolicyText of reports without policies succeeded")
	}
}
