package manifest_test

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/manifest"
)

// got is what a test compares for one item.
type got struct {
	Loc                   string
	APIVersion, Kind      string
	Name, Namespace       string
	SpecPath              string
	PodName, PodNamespace string
	UID                   types.UID
	Labels, Annotations   map[string]string
	DNSPolicy             corev1.DNSPolicy
	HostNetwork           bool
	Container             string
}

func summarise(it manifest.Item) got {
	g := got{
		Loc:        it.Location.String(),
		APIVersion: it.APIVersion, Kind: it.Kind,
		Name: it.Name, Namespace: it.Namespace,
		SpecPath: it.SpecPath.String(),
		PodName:  it.Pod.Name, PodNamespace: it.Pod.Namespace,
		UID:    it.Pod.UID,
		Labels: it.Pod.Labels, Annotations: it.Pod.Annotations,
		DNSPolicy: it.Pod.Spec.DNSPolicy, HostNetwork: it.Pod.Spec.HostNetwork,
	}
	if len(it.Pod.Spec.Containers) > 0 {
		g.Container = it.Pod.Spec.Containers[0].Name
	}
	return g
}

const podSpec = `
    dnsPolicy: ClusterFirstWithHostNet
    hostNetwork: true
    containers: [{name: c, image: busybox}]`

// kindCase is a manifest and the items it decodes to.
type kindCase struct {
	name string
	in   string
	want []got
}

// templated is the case of a workload of kind whose pod template is at
// spec.template.spec (with podSpec), named name in namespace ns ("": none
// given, the default namespace).
func templated(apiVersion, kind, name, ns string) kindCase {
	meta, wantNS := "{name: "+name+"}", "default"
	if ns != "" {
		meta, wantNS = "{name: "+name+", namespace: "+ns+"}", ns
	}
	return kindCase{
		name: kind,
		in:   "apiVersion: " + apiVersion + "\nkind: " + kind + "\nmetadata: " + meta + "\nspec:\n  template:\n   spec:" + podSpec,
		want: []got{{Loc: "f: document 1", APIVersion: apiVersion, Kind: kind, Name: name, Namespace: wantNS, SpecPath: "spec.template.spec",
			PodName: name, PodNamespace: wantNS, DNSPolicy: "ClusterFirstWithHostNet", HostNetwork: true, Container: "c"}},
	}
}

func TestDecodeKinds(t *testing.T) {
	tests := []kindCase{
		{
			name: "Pod",
			in: `apiVersion: v1
kind: Pod
metadata: {name: p, namespace: ns, uid: u-1, labels: {app: a}, annotations: {x: v}}
spec:
  dnsPolicy: None
  containers: [{name: c}]`,
			want: []got{{Loc: "f: document 1", APIVersion: "v1", Kind: "Pod", Name: "p", Namespace: "ns", SpecPath: "spec",
				PodName: "p", PodNamespace: "ns", UID: "u-1", Labels: map[string]string{"app": "a"}, Annotations: map[string]string{"x": "v"},
				DNSPolicy: "None", Container: "c"}},
		},
		{
			name: "Pod without namespace is in default, dnsPolicy not defaulted",
			in:   "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c}]}\n",
			want: []got{{Loc: "f: document 1", APIVersion: "v1", Kind: "Pod", Name: "p", Namespace: "default", SpecPath: "spec",
				PodName: "p", PodNamespace: "default", Container: "c"}},
		},
		{
			name: "Deployment",
			in: `apiVersion: apps/v1
kind: Deployment
metadata: {name: d, namespace: ns, uid: u-2, labels: {workload: label}}
spec:
  selector: {matchLabels: {app: d}}
  template:
    metadata: {labels: {app: d}, annotations: {a: b}}
    spec: {dnsPolicy: ClusterFirstWithHostNet, hostNetwork: true, containers: [{name: c}]}`,
			want: []got{{Loc: "f: document 1", APIVersion: "apps/v1", Kind: "Deployment", Name: "d", Namespace: "ns", SpecPath: "spec.template.spec",
				PodName: "d", PodNamespace: "ns", UID: "u-2", Labels: map[string]string{"app": "d"}, Annotations: map[string]string{"a": "b"},
				DNSPolicy: "ClusterFirstWithHostNet", HostNetwork: true, Container: "c"}},
		},
		templated("apps/v1", "StatefulSet", "s", ""),
		templated("apps/v1", "DaemonSet", "ds", "kube-system"),
		templated("apps/v1", "ReplicaSet", "rs", ""),
		templated("v1", "ReplicationController", "rc", ""),
		templated("batch/v1", "Job", "j", "batch"),
		{
			name: "CronJob",
			in: `apiVersion: batch/v1
kind: CronJob
metadata: {name: cj, namespace: batch}
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        metadata: {labels: {job: cj}}
        spec:
          containers: [{name: c}]`,
			want: []got{{Loc: "f: document 1", APIVersion: "batch/v1", Kind: "CronJob", Name: "cj", Namespace: "batch", SpecPath: "spec.jobTemplate.spec.template.spec",
				PodName: "cj", PodNamespace: "batch", Labels: map[string]string{"job": "cj"}, Container: "c"}},
		},
		{
			name: "PodTemplate",
			in:   "apiVersion: v1\nkind: PodTemplate\nmetadata: {name: pt}\ntemplate:\n  spec:\n   dnsPolicy: Default\n   containers: [{name: c}]\n",
			want: []got{{Loc: "f: document 1", APIVersion: "v1", Kind: "PodTemplate", Name: "pt", Namespace: "default", SpecPath: "template.spec",
				PodName: "pt", PodNamespace: "default", DNSPolicy: "Default", Container: "c"}},
		},
		{
			name: "multi-document YAML with comments, empty documents and skipped kinds",
			in: `# leading comment
---
apiVersion: v1
kind: Pod
metadata: {name: a}
spec: {containers: [{name: c}]}
---
# only a comment
---
apiVersion: v1
kind: Service
metadata: {name: svc}
---
apiVersion: v1
kind: Pod
metadata: {name: b}
spec: {containers: [{name: c}]}
...
`,
			want: []got{
				{Loc: "f: document 1", APIVersion: "v1", Kind: "Pod", Name: "a", Namespace: "default", SpecPath: "spec", PodName: "a", PodNamespace: "default", Container: "c"},
				{Loc: "f: document 3", APIVersion: "v1", Kind: "Pod", Name: "b", Namespace: "default", SpecPath: "spec", PodName: "b", PodNamespace: "default", Container: "c"},
			},
		},
		{
			name: "v1 List with mixed items and a nested typed list",
			in: `apiVersion: v1
kind: List
metadata: {}
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: a, namespace: x}
  spec: {containers: [{name: c}]}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: cm}
- apiVersion: batch/v1
  kind: Job
  metadata: {name: j}
  spec: {template: {spec: {containers: [{name: c}]}}}
- apiVersion: v1
  kind: PodList
  items:
  - metadata: {name: inner}
    spec: {containers: [{name: c}]}`,
			want: []got{
				{Loc: "f: document 1: items[0]", APIVersion: "v1", Kind: "Pod", Name: "a", Namespace: "x", SpecPath: "spec", PodName: "a", PodNamespace: "x", Container: "c"},
				{Loc: "f: document 1: items[2]", APIVersion: "batch/v1", Kind: "Job", Name: "j", Namespace: "default", SpecPath: "spec.template.spec", PodName: "j", PodNamespace: "default", Container: "c"},
				{Loc: "f: document 1: items[3].items[0]", APIVersion: "v1", Kind: "Pod", Name: "inner", Namespace: "default", SpecPath: "spec", PodName: "inner", PodNamespace: "default", Container: "c"},
			},
		},
		{
			name: "typed DeploymentList",
			in: `{"apiVersion": "apps/v1", "kind": "DeploymentList", "items": [
  {"metadata": {"name": "one", "namespace": "a"}, "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}},
  {"metadata": {"name": "two"}, "spec": {"template": {"spec": {"dnsPolicy": "None", "containers": [{"name": "c"}]}}}}
]}`,
			want: []got{
				{Loc: "f: document 1: items[0]", APIVersion: "apps/v1", Kind: "Deployment", Name: "one", Namespace: "a", SpecPath: "spec.template.spec", PodName: "one", PodNamespace: "a", Container: "c"},
				{Loc: "f: document 1: items[1]", APIVersion: "apps/v1", Kind: "Deployment", Name: "two", Namespace: "default", SpecPath: "spec.template.spec", PodName: "two", PodNamespace: "default", DNSPolicy: "None", Container: "c"},
			},
		},
		{
			name: "JSON stream",
			in: `{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}, "spec": {"containers": [{"name": "c"}]}}
{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b", "namespace": "n"}, "spec": {"containers": [{"name": "c"}]}}`,
			want: []got{
				{Loc: "f: document 1", APIVersion: "v1", Kind: "Pod", Name: "a", Namespace: "default", SpecPath: "spec", PodName: "a", PodNamespace: "default", Container: "c"},
				{Loc: "f: document 2", APIVersion: "v1", Kind: "Pod", Name: "b", Namespace: "n", SpecPath: "spec", PodName: "b", PodNamespace: "n", Container: "c"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := manifest.Decode(strings.NewReader(tt.in), "f")
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			var gots []got
			for _, it := range set.Pods {
				gots = append(gots, summarise(it))
			}
			if !reflect.DeepEqual(gots, tt.want) {
				t.Errorf("Items:\n got %+v\nwant %+v", gots, tt.want)
			}
		})
	}
}

func TestDecodeNamespacesAndNotes(t *testing.T) {
	in := `apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels: {poddns.io/enabled: "true"}
---
apiVersion: v1
kind: Service
metadata: {name: web}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
---
apiVersion: v1
kind: ReplicationController
metadata: {name: rc}
spec: {}
---
apiVersion: v1
kind: ServiceList
items: [{metadata: {name: a}}, {metadata: {name: b}}]
---
apiVersion: v1
kind: NamespaceList
items: [{metadata: {name: other}}]
`
	set, err := manifest.Decode(strings.NewReader(in), "m.yaml")
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if len(set.Pods) != 0 {
		t.Errorf("Pods = %d, want 0", len(set.Pods))
	}
	var namespaces []string
	for _, ns := range set.Namespaces {
		namespaces = append(namespaces, ns.Location.String()+" "+ns.Namespace.Name+" "+ns.Namespace.Labels["poddns.io/enabled"])
	}
	wantNS := []string{"m.yaml: document 1 shop true", "m.yaml: document 6: items[0] other "}
	if !reflect.DeepEqual(namespaces, wantNS) {
		t.Errorf("Namespaces = %q, want %q", namespaces, wantNS)
	}
	var notes []string
	for _, n := range set.Notes {
		notes = append(notes, n.String())
	}
	wantNotes := []string{
		`m.yaml: document 2: skipped v1 Service "web": not a kind poddns reads`,
		`m.yaml: document 3: skipped example.com/v1 Widget "w": not a kind poddns reads`,
		`m.yaml: document 4: skipped v1 ReplicationController "rc": no pod template (spec.template)`,
		`m.yaml: document 5: skipped v1 ServiceList with 2 items: not a kind poddns reads`,
	}
	if !reflect.DeepEqual(notes, wantNotes) {
		t.Errorf("Notes:\n got %q\nwant %q", notes, wantNotes)
	}
}

func TestDecodeErrors(t *testing.T) {
	good := "apiVersion: v1\nkind: Pod\nmetadata: {name: ok}\nspec: {containers: [{name: c}]}\n"
	tests := []struct {
		name     string
		in       string
		want     []string // one substring per error, in order
		wantPods int
	}{
		{
			name:     "unknown field (strict)",
			in:       good + "---\napiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec: {dnsPolicy: None, dnsconfig: {}, containers: [{name: c}]}\n",
			want:     []string{`bad.yaml: document 2: strict decoding error: unknown field "spec.dnsconfig"`},
			wantPods: 1,
		},
		{
			name:     "duplicate field",
			in:       good + "---\napiVersion: v1\nkind: Pod\nmetadata: {name: a, name: b}\n",
			want:     []string{`bad.yaml: document 2: `, `"name" already set`},
			wantPods: 1,
		},
		{
			name:     "YAML syntax error, later documents still read",
			in:       "apiVersion: v1\nkind: Pod\nmetadata: {name: [\n---\n" + good,
			want:     []string{"bad.yaml: document 1: yaml: line"},
			wantPods: 1,
		},
		{
			name: "missing kind",
			in:   "apiVersion: v1\nmetadata: {name: x}\n",
			want: []string{"bad.yaml: document 1: Object 'Kind' is missing"},
		},
		{
			name: "missing apiVersion",
			in:   "kind: Pod\nmetadata: {name: x}\n",
			want: []string{"bad.yaml: document 1: Object 'apiVersion' is missing"},
		},
		{
			name: "not an object",
			in:   "- a\n- b\n---\njust a string\n",
			want: []string{"bad.yaml: document 1: not an object", "bad.yaml: document 2: not an object"},
		},
		{
			name: "wrong field type",
			in:   "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {hostNetwork: yes please}\n",
			want: []string{"bad.yaml: document 1: ", "hostNetwork"},
		},
		{
			name:     "bad separator",
			in:       good + "--- not a separator\n" + good,
			want:     []string{"bad.yaml: document 1: invalid Yaml document separator"},
			wantPods: 1,
		},
		{
			name:     "broken JSON stream",
			in:       `{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}, "spec": {}} {"apiVersion": `,
			want:     []string{"bad.yaml: document 2: invalid JSON"},
			wantPods: 1,
		},
		{
			name: "bad list item",
			in:   "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  spec: {bogus: 1}\n",
			want: []string{`bad.yaml: document 1: items[0]: strict decoding error: unknown field "spec.bogus"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := manifest.Decode(strings.NewReader(tt.in), "bad.yaml")
			if err == nil {
				t.Fatalf("Decode succeeded, want errors %q", tt.want)
			}
			var docErr *manifest.DocumentError
			if !errors.As(err, &docErr) {
				t.Errorf("Error %v is not a *DocumentError", err)
			}
			msg := err.Error()
			rest := msg
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("Error %q does not contain %q (in order)", msg, w)
				}
				rest = rest[i+len(w):]
			}
			if len(set.Pods) != tt.wantPods {
				t.Errorf("Pods = %d, want %d", len(set.Pods), tt.wantPods)
			}
		})
	}
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	pod := func(name string) string {
		return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name + "}\nspec: {containers: [{name: c}]}\n"
	}
	testenv.WriteFile(t, dir, "d/b.yaml", pod("b"))
	testenv.WriteFile(t, dir, "d/a.yml", pod("a"))
	testenv.WriteFile(t, dir, "d/c.json", `{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "c"}, "spec": {"containers": [{"name": "c"}]}}`)
	testenv.WriteFile(t, dir, "d/notes.txt", pod("ignored"))
	testenv.WriteFile(t, dir, "d/sub/deep.yaml", pod("ignored"))
	single := testenv.WriteFile(t, dir, "single.yaml", pod("s"))

	set, err := manifest.Read([]string{single, filepath.Join(dir, "d"), "-"}, strings.NewReader(pod("stdin")))
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	var names []string
	for _, it := range set.Pods {
		names = append(names, it.Name+"@"+strings.TrimPrefix(it.File, dir+"/"))
	}
	want := []string{"s@single.yaml", "a@d/a.yml", "b@d/b.yaml", "c@d/c.json", "stdin@<stdin>"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("Pods = %q, want %q", names, want)
	}

	set, err = manifest.Read([]string{filepath.Join(dir, "missing.yaml"), single}, nil)
	if err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("Read error = %v, want one naming missing.yaml", err)
	}
	if len(set.Pods) != 1 {
		t.Errorf("Pods after a missing file = %d, want 1 (the other file is still read)", len(set.Pods))
	}
}

func TestDecodeDoesNotShareState(t *testing.T) {
	in := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c}]}}}\n"
	set, err := manifest.Decode(strings.NewReader(in), "f")
	if err != nil {
		t.Fatal(err)
	}
	set.Pods[0].Pod.Spec.DNSPolicy = corev1.DNSNone
	set.Pods[0].Pod.Labels["a"] = "changed"
	again, _ := manifest.Decode(strings.NewReader(in), "f")
	if again.Pods[0].Pod.Spec.DNSPolicy != "" || again.Pods[0].Pod.Labels["a"] != "b" {
		t.Errorf("Decoding again sees an earlier change: %+v", again.Pods[0].Pod)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("apiVersion: v1\nkind: List\nitems: [{apiVersion: v1, kind: Pod, metadata: {name: a}}]\n"))
	f.Add([]byte("apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec: {jobTemplate: {spec: {template: {spec: {}}}}}\n---\n- x\n"))
	f.Add([]byte(`{"apiVersion": "apps/v1", "kind": "DeploymentList", "items": [{}]}`))
	f.Add([]byte("apiVersion: v1\nkind: ReplicationController\nspec: {}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, _ := manifest.Decode(strings.NewReader(string(data)), "fuzz")
		for _, it := range set.Pods {
			if it.Pod == nil || it.SpecPath == nil || it.Namespace == "" {
				t.Errorf("Incomplete item %+v", it)
			}
		}
	})
}

// TestDecodeRefusesNonManifests (issue 12, item 12): a file of NUL bytes and
// an input over the size cap are errors, never an empty set of manifests.
func TestDecodeRefusesNonManifests(t *testing.T) {
	for _, tc := range []struct {
		name, input, want string
	}{
		{"NUL bytes", strings.Repeat("\x00", 4096), "NUL byte at offset 0: not a YAML or JSON manifest"},
		{"a NUL byte in a document", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\x00\n", "NUL byte at offset 44"},
		{"over the cap", "apiVersion: v1\nkind: Namespace\nmetadata: {name: " + strings.Repeat("a", 100) + "}\n", "larger than 64 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer manifest.SetMaxInput(manifest.SetMaxInput(64))
			if tc.name != "over the cap" {
				manifest.SetMaxInput(1 << 20)
			}
			set, err := manifest.Decode(strings.NewReader(tc.input), "in.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "in.yaml") {
				t.Errorf("Decode: %v, want an error naming in.yaml with %q", err, tc.want)
			}
			if len(set.Pods)+len(set.Namespaces) != 0 {
				t.Errorf("Decode returned objects from a refused input: %+v", set)
			}
		})
	}
}
