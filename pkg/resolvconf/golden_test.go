package resolvconf

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/poddns/poddns/internal/golden"
)

// goldenCase is one file under testdata/cases: a node profile and a pod as a
// user writes them.
type goldenCase struct {
	Profile struct {
		ClusterDomain     string   `json:"clusterDomain"`
		ClusterDNS        []string `json:"clusterDNS"`
		NodeIPs           []string `json:"nodeIPs"`
		ResolvConf        string   `json:"resolvConf"`
		ResolvConfContent *string  `json:"resolvConfContent"`
	} `json:"profile"`
	Pod corev1.Pod `json:"pod"`
}

// TestGolden runs each case through the pipeline a pod goes through in a
// cluster (API defaulting, API validation, kubelet) and compares the whole
// outcome with testdata/cases/<name>.golden.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/cases/*.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			golden.Assert(t, strings.TrimSuffix(in, ".yaml")+".golden", runGoldenCase(t, in))
		})
	}
}

func runGoldenCase(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c goldenCase
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	cfg := NodeConfig{ClusterDomain: c.Profile.ClusterDomain, ClusterDNS: c.Profile.ClusterDNS, NodeIPs: c.Profile.NodeIPs, ResolvConf: c.Profile.ResolvConf}
	if c.Profile.ResolvConfContent != nil {
		cfg.ResolvConfData = []byte(*c.Profile.ResolvConfContent)
	}
	profile, err := NewNodeProfile(cfg)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}

	var b strings.Builder
	if first, _, ok := strings.Cut(string(data), "\n"); ok && strings.HasPrefix(first, "#") {
		b.WriteString(first + "\n")
	}
	if ev := profile.CheckLimits(); ev != nil {
		fmt.Fprintf(&b, "== node check\n%s %s %s: %s\n", ev.Type, ev.Reason, ev.Object, ev.Message)
	}
	pod := c.Pod.DeepCopy()
	Default(pod)
	errs, warnings := Validate(pod)
	for _, w := range warnings {
		fmt.Fprintf(&b, "== API warning\n%s\n", w)
	}
	if len(errs) > 0 {
		b.WriteString("== API errors (pod refused)\n")
		for _, e := range errs {
			b.WriteString(e.Error() + "\n")
		}
		return b.String()
	}
	res, err := Compute(pod, profile)
	if err != nil {
		fmt.Fprintf(&b, "== kubelet error (sandbox not created)\n%v\n", err)
		return b.String()
	}
	b.WriteString("== resolv.conf\n" + res.Config.Render())
	for _, ev := range res.Events {
		fmt.Fprintf(&b, "== event\n%s %s %s: %s\n", ev.Type, ev.Reason, ev.Object, ev.Message)
	}
	return b.String()
}
