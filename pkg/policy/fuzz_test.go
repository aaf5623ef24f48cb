package policy_test

import (
	"bytes"
	"path/filepath"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/poddns/poddns/internal/fuzzseed"
	"github.com/poddns/poddns/pkg/configfile"
	"github.com/poddns/poddns/pkg/policy"
	"github.com/poddns/poddns/pkg/policy/policytest"
)

// FuzzParse feeds arbitrary files to the loader. It must never panic; an
// error must be a joined list of *LoadError; a Set that loads must evaluate
// a few pods without panicking, leave them unmodified and be idempotent.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{invalidDir, "../../testdata/policies"} {
		fuzzseed.AddFiles(f, filepath.Join(dir, "*.yaml"))
	}
	f.Add([]byte(doc("a", "  actions: {dnsPolicy: None, nameservers: [1.1.1.1], options: {remove: [ndots]}}")))
	f.Add([]byte("{}"))
	f.Add([]byte("- a\n- b"))
	f.Add([]byte("a: &x [*x]"))

	profile := policytest.Profile(f, policytest.StandardNode)
	pods := []*corev1.Pod{
		{Spec: corev1.PodSpec{}},
		{Spec: corev1.PodSpec{HostNetwork: true}},
		{Spec: corev1.PodSpec{DNSPolicy: corev1.DNSDefault, DNSConfig: &corev1.PodDNSConfig{Options: []corev1.PodDNSConfigOption{{Name: "ndots"}}}}},
		{Spec: corev1.PodSpec{DNSPolicy: corev1.DNSNone, DNSConfig: &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}, Searches: []string{"a.example"}}}},
	}
	for _, p := range pods {
		p.Namespace, p.Name = "shop", "p"
		p.Labels = map[string]string{"app": "web"}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := policy.Parse(bytes.NewReader(data), "fuzz.yaml")
		if err != nil {
			if set != nil {
				t.Fatalf("Parse returned a Set and an error")
			}
			for _, e := range configfile.Leaves(err) {
				if _, ok := e.(*policy.LoadError); !ok {
					t.Fatalf("Error %T is not a *LoadError: %v", e, e)
				}
			}
			return
		}
		e := policytest.Engine(t, set, policy.EngineOptions{Profile: profile})
		for _, p := range pods {
			before := p.DeepCopy()
			d := e.Evaluate(p, map[string]string{"team": "a"})
			if !reflect.DeepEqual(p, before) {
				t.Fatalf("Evaluate modified the pod")
			}
			mutated := p.DeepCopy()
			d.SetDNSFields(mutated)
			again := e.Evaluate(mutated, map[string]string{"team": "a"})
			if again.Changed {
				t.Fatalf("Not idempotent: %s %+v then %s %+v", d.DNSPolicy, d.DNSConfig, again.DNSPolicy, again.DNSConfig)
			}
		}
	})
}
