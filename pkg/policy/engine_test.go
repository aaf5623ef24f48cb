package policy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/policy"
	"github.com/poddns/poddns/pkg/policy/policytest"
	"github.com/poddns/poddns/pkg/resolvconf"
)

// configMapVolume lays out dir as kubelet does for a ConfigMap volume: each
// key is a symbolic link to ..data/<key>, ..data is a link to a timestamped
// directory. swap writes a new timestamped directory and replaces ..data
// atomically (rename of a new link over the old one).
type configMapVolume struct {
	t   *testing.T
	dir string
	n   int
}

func (v *configMapVolume) swap(files map[string]string) {
	t := v.t
	v.n++
	ts := fmt.Sprintf("..2026_11_22_19_00_%02d.%d", v.n, 1000+v.n)
	for name, content := range files {
		testenv.WriteFile(t, filepath.Join(v.dir, ts), name, content)
		link := filepath.Join(v.dir, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		t.Fatal(err)
	}
}

func policyDoc(name string, ndots int) string {
	return fmt.Sprintf(validPolicy, name, ndots)
}

// TestEngineSwapConfigMap: policies loaded from a ConfigMap volume and
// swapped in are what the engine evaluates with; a bad version does not
// load and the engine keeps the last good set.
func TestEngineSwapConfigMap(t *testing.T) {
	vol := &configMapVolume{t: t, dir: t.TempDir()}
	vol.swap(map[string]string{"policies.yaml": policyDoc("ndots", 2)})

	e := newEngine(t, "", "")
	reload := func() error {
		s, err := policy.Load(vol.dir)
		if err == nil {
			e.Swap(s)
		}
		return err
	}
	if err := reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	ndots := func() string {
		d := e.Evaluate(pod(t, plainPod), nil)
		if d.DNSConfig == nil || len(d.DNSConfig.Options) == 0 {
			return ""
		}
		return *d.DNSConfig.Options[0].Value
	}
	if got := ndots(); got != "2" || e.Set().Len() != 1 {
		t.Fatalf("After the first load: ndots %q, %d policies; want 2, 1", got, e.Set().Len())
	}

	// An update through the ..data swap is picked up.
	vol.swap(map[string]string{"policies.yaml": policyDoc("ndots", 3)})
	if err := reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := ndots(); got != "3" {
		t.Errorf("After the swap: ndots %q, want 3", got)
	}

	// A bad update does not load; the engine keeps the last good set.
	vol.swap(map[string]string{"policies.yaml": strings.Replace(policyDoc("ndots", 3), "ndots: 3", "ndots: 30", 1)})
	err := reload()
	if err == nil || !strings.Contains(err.Error(), "policies.yaml: document 1, line 4: spec.actions.ndots: Invalid value: 30: must be between 0 and 15") {
		t.Errorf("Bad reload error = %v", err)
	}
	if got := ndots(); got != "3" {
		t.Errorf("After a bad reload: ndots %q, want the last good 3", got)
	}

	// Fixed again.
	vol.swap(map[string]string{"policies.yaml": policyDoc("ndots", 1)})
	if err := reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := ndots(); got != "1" {
		t.Errorf("After a good reload: ndots %q, want 1", got)
	}
}

// TestEngineConcurrentSwap evaluates while swapping sets; run with -race.
func TestEngineConcurrentSwap(t *testing.T) {
	e := newEngine(t, doc("a", "  actions: {ndots: 2}"), "")
	sets := make([]*policy.Set, 2)
	for i := range sets {
		s, err := policy.Parse(strings.NewReader(policyDoc("p", i+1)), "p.yaml")
		if err != nil {
			t.Fatal(err)
		}
		sets[i] = s
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := pod(t, plainPod)
			for i := 0; i < 200; i++ {
				d := e.Evaluate(p, nil)
				if len(d.Results) != 1 {
					t.Errorf("Results = %d, want 1 (one whole set)", len(d.Results))
					return
				}
			}
		}()
	}
	for i := 0; i < 200; i++ {
		e.Swap(sets[i%2])
	}
	wg.Wait()
}

func TestNewEngine(t *testing.T) {
	p := policytest.Profile(t, policytest.StandardNode)
	if _, err := policy.NewEngine(nil, policy.EngineOptions{}); err == nil || err.Error() != "new policy engine: no node profile" {
		t.Errorf("NewEngine without a profile: %v", err)
	}
	if _, err := policy.NewEngine(nil, policy.EngineOptions{Profile: p, Mode: "dry-run"}); err == nil ||
		err.Error() != `new policy engine: unknown mode "dry-run": want enforce, audit or per-policy` {
		t.Errorf("NewEngine with a bad mode: %v", err)
	}
	e, err := policy.NewEngine(nil, policy.EngineOptions{Profile: p})
	if err != nil || e.Mode() != policy.GlobalPerPolicy || e.Set().Len() != 0 {
		t.Fatalf("NewEngine(nil) = mode %q, %d policies, %v", e.Mode(), e.Set().Len(), err)
	}
	d := e.Evaluate(&corev1.Pod{}, nil)
	if d.Changed || d.DNSPolicy != corev1.DNSClusterFirst || len(d.Results) != 0 {
		t.Errorf("Evaluate with no policies = %+v", d)
	}
}

func TestParseGlobalMode(t *testing.T) {
	for in, want := range map[string]policy.GlobalMode{"": "per-policy", "per-policy": "per-policy", "enforce": "enforce", "audit": "audit"} {
		if got, err := policy.ParseGlobalMode(in); got != want || err != nil {
			t.Errorf("ParseGlobalMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := policy.ParseGlobalMode("Audit"); err == nil {
		t.Errorf("ParseGlobalMode(Audit) succeeded; modes are case-sensitive")
	}
}

func TestNamespaceLabels(t *testing.T) {
	ns := &corev1.Namespace{}
	ns.Name = "shop"
	ns.Labels = map[string]string{"team": "a", "kubernetes.io/metadata.name": "wrong"}
	got := policy.NamespaceLabels(ns)
	if len(got) != 2 || got["team"] != "a" || got["kubernetes.io/metadata.name"] != "shop" {
		t.Errorf("NamespaceLabels = %v", got)
	}
	if ns.Labels["kubernetes.io/metadata.name"] != "wrong" {
		t.Errorf("NamespaceLabels modified the namespace")
	}
}

func TestPreviewError(t *testing.T) {
	p := policytest.Profile(t, resolvconf.NodeConfig{ClusterDNS: []string{"10.96.0.10"}, ResolvConf: "/nonexistent/resolv.conf"})
	set := policytest.Parse(t, doc("ndots", "  actions: {ndots: 2}")+doc("local", "  priority: 1\n  actions: {nameservers: [169.254.20.10]}"))
	e := policytest.Engine(t, set, policy.EngineOptions{Profile: p})
	d := e.Evaluate(pod(t, plainPod), nil)
	if d.PreviewError != "open /nonexistent/resolv.conf: no such file or directory" || d.ResolvConf != "" {
		t.Errorf("PreviewError = %q, ResolvConf = %q", d.PreviewError, d.ResolvConf)
	}
	// Without kubelet's result, nothing can be compared or synthesized.
	if r := d.Results[0]; r.Outcome != policy.OutcomeSkipped || !strings.Contains(r.Reason, "kubelet fails for this pod") {
		t.Errorf("ndots = %+v, want skipped", r)
	}
	if r := d.Results[1]; r.Outcome != policy.OutcomeSkipped {
		t.Errorf("local = %+v, want skipped", r)
	}
}

func TestMutate(t *testing.T) {
	e := newEngine(t, doc("ndots", "  actions: {ndots: 2}")+doc("trial", "  mode: audit\n  actions: {options: {set: [{name: rotate}]}}"), "")
	p := pod(t, "metadata: {annotations: {keep: me}}\n"+plainPod)
	d := e.Evaluate(p, nil)
	if !d.Mutate(p) {
		t.Fatalf("Patch = false, want true")
	}
	want := map[string]string{
		"keep":              "me",
		"poddns.io/applied": "ndots",
		// As submitted: no dnsPolicy, no dnsConfig.
		"poddns.io/original-dns": "{}",
		"poddns.io/resolv-conf": "search shop.svc.cluster.local svc.cluster.local cluster.local ec2.internal\n" +
			"nameserver 10.96.0.10\noptions ndots:2\n",
	}
	if !reflect.DeepEqual(p.Annotations, want) {
		t.Errorf("Annotations = %q, want %q", p.Annotations, want)
	}
	// Reinvocation: nothing changes, the annotations stay as they are.
	before := p.DeepCopy()
	d = e.Evaluate(p, nil)
	if d.Mutate(p) || !reflect.DeepEqual(p, before) {
		t.Errorf("Patch of the patched pod changed it")
	}
	// Audit only: not even an annotation.
	audit := newEngine(t, doc("trial", "  mode: audit\n  actions: {options: {set: [{name: rotate}]}}"), "")
	p = pod(t, plainPod)
	before = p.DeepCopy()
	d = audit.Evaluate(p, nil)
	if d.Mutate(p) || !reflect.DeepEqual(p, before) || len(d.Warnings) != 1 {
		t.Errorf("Audit-only Patch changed the pod or gave no warning: %v, %q", p.Annotations, d.Warnings)
	}
}

func TestExempt(t *testing.T) {
	e := newEngine(t, doc("ndots", "  actions: {ndots: 2}"), "")
	tests := []struct {
		name, pod, want string
	}{
		{"opt-out annotation", "metadata: {annotations: {poddns.io/skip: 'true'}}\n" + plainPod, `the pod opts out with the annotation poddns.io/skip: "true"`},
		{"mirror pod", "metadata: {annotations: {kubernetes.io/config.mirror: abc}}\n" + plainPod, "mirror pod of a static pod: kubelet ignores changes made at admission"},
		{"Windows pod", "spec: {os: {name: windows}, containers: [{name: c}]}", "Windows pod: kubelet's Windows DNS differs from what poddns models"},
		{"skip annotation not true", "metadata: {annotations: {poddns.io/skip: 'false'}}\n" + plainPod, ""},
		{"Linux pod", "spec: {os: {name: linux}, containers: [{name: c}]}", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := e.Evaluate(pod(t, tt.pod), nil)
			if d.Exempt != tt.want {
				t.Errorf("Exempt = %q, want %q", d.Exempt, tt.want)
			}
			if exempt := tt.want != ""; exempt != !d.Changed || exempt != (len(d.Results) == 0) {
				t.Errorf("Changed = %t, %d results for exempt = %t", d.Changed, len(d.Results), exempt)
			}
			if d.ResolvConf == "" {
				t.Errorf("No preview")
			}
		})
	}
}
