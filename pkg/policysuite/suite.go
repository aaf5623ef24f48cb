package policysuite

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/poddns/poddns/pkg/configfile"
	"github.com/poddns/poddns/pkg/manifest"
	"github.com/poddns/poddns/pkg/nodeprofile"
	"github.com/poddns/poddns/pkg/policy"
	"github.com/poddns/poddns/pkg/render"
)

// The apiVersion, kind and file name of a suite.
const (
	APIVersion = "poddns.io/v1alpha1"
	Kind       = "PolicyTest"
	FileName   = "poddns-test.yaml"
)

// Suite is a poddns-test.yaml file.
type Suite struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Policies  []string `json:"policies"`
	Resources []string `json:"resources"`
	Mode      string   `json:"mode,omitempty"`
	Profile   string   `json:"profile,omitempty"`
	Results   []Expect `json:"results"`
}

// Expect is what one pod must get. A nil field is not checked.
type Expect struct {
	Pod        string               `json:"pod"`
	Kind       string               `json:"kind,omitempty"`
	Applied    *[]string            `json:"applied,omitempty"`
	Skipped    *[]string            `json:"skipped,omitempty"`
	Audit      *[]string            `json:"audit,omitempty"`
	Exempt     *string              `json:"exempt,omitempty"`
	DNSPolicy  *corev1.DNSPolicy    `json:"dnsPolicy,omitempty"`
	DNSConfig  *corev1.PodDNSConfig `json:"dnsConfig,omitempty"`
	ResolvConf *string              `json:"resolvConf,omitempty"`
	Warnings   *[]string            `json:"warnings,omitempty"`
	// NodePools are the node pools the pod can land on (a NodeProfileSet
	// profile), in the set's order.
	NodePools *[]string `json:"nodePools,omitempty"`
}

// Mismatch is one field of a pod that differs from the expectation.
type Mismatch struct {
	Field string
	Want  string
	Got   string
}

// Case is the outcome for one expectation.
type Case struct {
	Pod        string
	Kind       string
	Mismatches []Mismatch
}

// Passed reports whether the pod got what was expected.
func (c *Case) Passed() bool { return len(c.Mismatches) == 0 }

// Result is the outcome of a suite.
type Result struct {
	// Name and File identify the suite.
	Name, File string
	Policies   int
	Cases      []Case
	// Unchecked are the pods of the resources without an expectation.
	Unchecked []string
	// Notes are what reading the manifests noted (skipped kinds).
	Notes []string
}

// Failed returns the number of failed cases.
func (r *Result) Failed() int {
	n := 0
	for i := range r.Cases {
		if !r.Cases[i].Passed() {
			n++
		}
	}
	return n
}

// Identity is the apiVersion and kind of a suite.
var Identity = configfile.Identity{APIVersion: APIVersion, Kind: Kind}

// Paths are the files the suite names: relative to its directory.
func (s *Suite) Paths() []*string {
	var paths []*string
	for _, list := range [][]string{s.Policies, s.Resources} {
		for i := range list {
			paths = append(paths, &list[i])
		}
	}
	return append(paths, &s.Profile)
}

// Read decodes the suite at path, a poddns-test.yaml file or a directory
// holding one, strictly (package configfile); the paths it names are made
// relative to its directory.
func Read(path string) (*Suite, string, error) {
	if info, err := os.Stat(path); err == nil && info.IsDir() {
		path = filepath.Join(path, FileName)
	}
	var s Suite
	if err := configfile.DecodeFile(path, Identity, &s); err != nil {
		return nil, path, fmt.Errorf("read suite: %w", err)
	}
	if len(s.Policies) == 0 || len(s.Resources) == 0 {
		return nil, path, fmt.Errorf("read suite %s: policies and resources are required", path)
	}
	for i, e := range s.Results {
		if _, _, ok := strings.Cut(e.Pod, "/"); !ok {
			return nil, path, fmt.Errorf("read suite %s: results[%d].pod: %q is not namespace/name", path, i, e.Pod)
		}
	}
	return &s, path, nil
}

// Run reads and runs the suite at path. Its error is for a suite that cannot
// run (unreadable suite, policies or manifests); mismatches are in the Result.
func Run(path string) (*Result, error) {
	s, file, err := Read(path)
	if err != nil {
		return nil, err
	}
	set, err := policy.Load(s.Policies...)
	if err != nil {
		return nil, fmt.Errorf("suite %s: %w", file, err)
	}
	o := nodeprofile.Options{Profile: s.Profile}
	profile, pools, _, err := o.Profiles()
	if err != nil {
		return nil, fmt.Errorf("suite %s: profile: %w", file, err)
	}
	engine, err := policy.NewEngine(set, policy.EngineOptions{Profile: profile, Pools: pools, Mode: policy.GlobalMode(s.Mode)})
	if err != nil {
		return nil, fmt.Errorf("suite %s: %w", file, err)
	}
	ms, err := manifest.Read(s.Resources, nil)
	if err != nil {
		return nil, fmt.Errorf("suite %s: resources: %w", file, err)
	}
	reports := render.PodsWithPolicies(ms.Pods, engine, render.NamespaceLabels(ms.Namespaces))

	res := &Result{Name: s.Metadata.Name, File: file, Policies: set.Len()}
	for _, n := range ms.Notes {
		res.Notes = append(res.Notes, n.String())
	}
	checked := make([]bool, len(reports))
	for _, e := range s.Results {
		c := Case{Pod: e.Pod, Kind: e.Kind}
		var found []int
		for i := range reports {
			r := &reports[i]
			if r.Namespace+"/"+r.Name == e.Pod && (e.Kind == "" || e.Kind == r.Kind) {
				found = append(found, i)
			}
		}
		switch len(found) {
		case 0:
			c.Mismatches = []Mismatch{{Field: "pod", Want: e.Pod, Got: "(no such pod in the resources)"}}
		case 1:
			checked[found[0]] = true
			c.Kind = reports[found[0]].Kind
			c.Mismatches = compare(&e, &reports[found[0]])
		default:
			c.Mismatches = []Mismatch{{Field: "pod", Want: e.Pod, Got: fmt.Sprintf("%d objects of that name: give kind", len(found))}}
		}
		res.Cases = append(res.Cases, c)
	}
	for i := range reports {
		if !checked[i] {
			res.Unchecked = append(res.Unchecked, fmt.Sprintf("%s/%s/%s", reports[i].Kind, reports[i].Namespace, reports[i].Name))
		}
	}
	return res, nil
}

// compare lists the expected fields that differ.
func compare(e *Expect, r *render.Report) []Mismatch {
	var ms []Mismatch
	pr := r.PolicyReport
	names := func(rs []policy.Result) []string {
		out := []string{}
		for _, x := range rs {
			out = append(out, x.Policy)
		}
		return out
	}
	list := func(field string, want *[]string, got []string) {
		if want == nil {
			return
		}
		w := *want
		if w == nil {
			w = []string{}
		}
		if got == nil {
			got = []string{}
		}
		if !slices.Equal(w, got) {
			ms = append(ms, Mismatch{Field: field, Want: formatList(w), Got: formatList(got)})
		}
	}
	list("applied", e.Applied, pr.Applied)
	list("skipped", e.Skipped, names(pr.Skipped))
	list("audit", e.Audit, names(pr.Audit))
	if e.Exempt != nil && *e.Exempt != pr.Exempt {
		ms = append(ms, Mismatch{Field: "exempt", Want: *e.Exempt, Got: pr.Exempt})
	}
	pod := pr.PatchedPod
	if e.DNSPolicy != nil && *e.DNSPolicy != pod.Spec.DNSPolicy {
		ms = append(ms, Mismatch{Field: "dnsPolicy", Want: string(*e.DNSPolicy), Got: string(pod.Spec.DNSPolicy)})
	}
	if e.DNSConfig != nil && !reflect.DeepEqual(policy.CompactDNSConfig(e.DNSConfig), policy.CompactDNSConfig(pod.Spec.DNSConfig)) {
		ms = append(ms, Mismatch{Field: "dnsConfig", Want: toYAML(e.DNSConfig), Got: toYAML(pod.Spec.DNSConfig)})
	}
	if e.ResolvConf != nil {
		got := r.ResolvConf
		if r.Failed() {
			got = "(none: " + strings.Join(append(slices.Clone(r.ValidationErrors), r.Error), "; ") + ")"
		}
		if got != *e.ResolvConf {
			ms = append(ms, Mismatch{Field: "resolvConf", Want: *e.ResolvConf, Got: got})
		}
	}
	list("warnings", e.Warnings, pr.PolicyWarnings)
	list("nodePools", e.NodePools, r.NodePools)
	return ms
}

func formatList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	return "[" + strings.Join(l, ", ") + "]"
}

func toYAML(v any) string {
	if reflect.ValueOf(v).IsNil() {
		return "(none)\n"
	}
	b, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Sprintf("(%v)\n", err)
	}
	return string(b)
}
