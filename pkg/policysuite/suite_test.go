package policysuite_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/poddns/poddns/pkg/policysuite"
)

func TestRunExamples(t *testing.T) {
	res, err := policysuite.Run("../../testdata/policies/suite")
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Failed() != 0 || len(res.Cases) < 10 || res.Policies < 5 {
		var buf bytes.Buffer
		_ = policysuite.Write(&buf, res)
		t.Errorf("Example suite: %d failed of %d, %d policies:\n%s", res.Failed(), len(res.Cases), res.Policies, buf.String())
	}
}

func TestRunMismatch(t *testing.T) {
	res, err := policysuite.Run("testdata/mismatch/poddns-test.yaml")
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	var buf bytes.Buffer
	if err := policysuite.Write(&buf, res); err != nil {
		t.Fatal(err)
	}
	want := `suite mismatch (testdata/mismatch/poddns-test.yaml): 1 policies, 4 pods checked
FAIL  Pod/shop/web
      skipped:
        - [x]
        + []
      dnsPolicy:
        - None
        + ClusterFirst
      dnsConfig:
          options:
          - name: ndots
        -   value: "3"
        +   value: "2"
      resolvConf:
        - nameserver 1.1.1.1
        + search shop.svc.cluster.local svc.cluster.local cluster.local ec2.internal
        + nameserver 10.96.0.10
        + options ndots:2
FAIL  Deployment/shop/web
      pod:
        - shop/web
        + (no such pod in the resources)
FAIL  shop/twin
      pod:
        - shop/twin
        + 2 objects of that name: give kind
PASS  Pod/shop/ok
note: not checked (no expectation): Pod/shop/twin
note: not checked (no expectation): Deployment/shop/twin
note: not checked (no expectation): Pod/shop/extra
note: testdata/mismatch/pods.yaml: document 6: skipped v1 Service "svc": not a kind poddns reads
1 passed, 3 failed
`
	if got := buf.String(); got != want {
		t.Errorf("Report:\n%s\nwant:\n%s", got, want)
	}
}

func TestReadErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, suite, want string
	}{
		{"unknown field", "apiVersion: poddns.io/v1alpha1\nkind: PolicyTest\npolicies: [a]\nresources: [b]\nresult: []\n", "line 5: result: unknown field"},
		{"field case", "apiVersion: poddns.io/v1alpha1\nkind: PolicyTest\nPolicies: [a]\nresources: [b]\n", "line 3: Policies: unknown field (field names are case-sensitive)"},
		{"duplicate field", "apiVersion: poddns.io/v1alpha1\nkind: PolicyTest\npolicies: [a]\npolicies: [a]\nresources: [b]\n", "line 4: policies: duplicate field (first at line 3)"},
		{"second document", "apiVersion: poddns.io/v1alpha1\nkind: PolicyTest\npolicies: [a]\nresources: [b]\n---\nresults: []\n", "document 2, line 6: 2 documents: expected one PolicyTest"},
		{"kind", "apiVersion: poddns.io/v1alpha1\nkind: Test\npolicies: [a]\nresources: [b]\n", `line 2: kind: unsupported value "Test": want "PolicyTest"`},
		{"no policies", "apiVersion: poddns.io/v1alpha1\nkind: PolicyTest\nresources: [b]\n", "policies and resources are required"},
		{"pod not namespace-name", "apiVersion: poddns.io/v1alpha1\nkind: PolicyTest\npolicies: [a]\nresources: [b]\nresults: [{pod: web}]\n", `results[0].pod: "web" is not namespace/name`},
		{"missing policies", "apiVersion: poddns.io/v1alpha1\nkind: PolicyTest\npolicies: [nope]\nresources: [b]\n", "nope: read policies: no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".yaml")
			if err := os.WriteFile(path, []byte(tt.suite), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := policysuite.Run(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	if _, err := policysuite.Run(dir); err == nil || !strings.Contains(err.Error(), "poddns-test.yaml: no such file or directory") {
		t.Errorf("Run of a directory without a suite: %v", err)
	}
}
