package policy_test

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/configfile"
	"github.com/poddns/poddns/pkg/policy"
)

const invalidDir = "../../testdata/policies/invalid"

// TestLoadInvalid loads every malformed policy file and asserts its exact
// error: file, document, line, field path and message. Every file must be in
// the table and every table entry must have its file, so a new rule comes
// with its fixture.
func TestLoadInvalid(t *testing.T) {
	want := map[string]string{
		"api-version.yaml":                `api-version.yaml: document 1, line 2: apiVersion: unsupported value "poddns.io/v1": want "poddns.io/v1alpha1"`,
		"kind.yaml":                       `kind.yaml: document 1, line 3: kind: unsupported value "DNSPolicies": want "DNSPolicy"`,
		"name-missing.yaml":               `name-missing.yaml: document 1, line 4: metadata.name: Required value: a policy needs a name`,
		"name-invalid.yaml":               `name-invalid.yaml: document 1, line 5: metadata.name: Invalid value: "Ndots_Two": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
		"name-duplicate.yaml":             `name-duplicate.yaml: document 2, line 13: metadata.name: Duplicate value: "ndots": first defined at name-duplicate.yaml: document 1, line 2`,
		"unknown-field.yaml":              `unknown-field.yaml: document 1, line 8: spec.match.namespaceSelectr: unknown field (field names are case-sensitive)`,
		"field-case.yaml":                 `field-case.yaml: document 1, line 8: spec.match.HostNetwork: unknown field (field names are case-sensitive)`,
		"duplicate-field.yaml":            `duplicate-field.yaml: document 1, line 9: spec.actions.ndots: duplicate field (first at line 8)`,
		"wrong-type.yaml":                 `wrong-type.yaml: document 1, line 7: spec.priority: cannot unmarshal string into int32`,
		"yaml-syntax.yaml":                `yaml-syntax.yaml: document 1, line 7: invalid YAML: did not find expected ',' or ']'`,
		"not-a-mapping.yaml":              `not-a-mapping.yaml: document 1, line 2: not a mapping: a policy document has apiVersion, kind, metadata and spec`,
		"mode.yaml":                       `mode.yaml: document 1, line 7: spec.mode: Unsupported value: "dry-run": supported values: "enforce", "audit"`,
		"selector-operator.yaml":          "selector-operator.yaml: document 1, line 10: spec.match.namespaceSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
		"selector-label-key.yaml":         `selector-label-key.yaml: document 1, line 9: spec.match.podSelector.matchLabels: Invalid value: "app/name/x": a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`,
		"match-dnspolicy.yaml":            `match-dnspolicy.yaml: document 1, line 8: spec.match.dnsPolicies[1]: Unsupported value: "clusterfirst": supported values: "ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"`,
		"excluded-namespace.yaml":         `excluded-namespace.yaml: document 1, line 8: spec.match.excludedNamespaces[1]: Invalid value: "Kube_Public": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
		"no-actions.yaml":                 `no-actions.yaml: document 1, line 9: spec.actions: Required value: at least one action: hostNetworkClusterDNS, dnsPolicy, nameservers, searches, ndots or options`,
		"dnspolicy.yaml":                  `dnspolicy.yaml: document 1, line 8: spec.actions.dnsPolicy: Unsupported value: "ClusterFirstWithHostNetwork": supported values: "ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"`,
		"none-without-nameservers.yaml":   `none-without-nameservers.yaml: document 1, line 7: spec.actions.nameservers: Required value: must provide at least one nameserver when dnsPolicy is None`,
		"nameservers-too-many.yaml":       `nameservers-too-many.yaml: document 1, line 9: spec.actions.nameservers: Too many: 4: must have at most 3 items`,
		"nameserver-invalid.yaml":         `nameserver-invalid.yaml: document 1, line 10: spec.actions.nameservers[1]: Invalid value: "010.96.0.10": must not have leading 0s`,
		"nameserver-duplicate.yaml":       `nameserver-duplicate.yaml: document 1, line 8: spec.actions.nameservers[1]: Duplicate value: "169.254.20.10"`,
		"nameservers-empty.yaml":          `nameservers-empty.yaml: document 1, line 8: spec.actions.nameservers: Required value: must list at least one nameserver (leave the field out to keep the pod's)`,
		"search-invalid.yaml":             `search-invalid.yaml: document 1, line 9: spec.actions.searches.add[0]: Invalid value: "Corp.Example.com": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '_', '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?(\._?[a-z0-9]([-_a-z0-9]*[a-z0-9])?)*')`,
		"search-variable.yaml":            `search-variable.yaml: document 1, line 9: spec.actions.searches.add[0]: Invalid value: "$(NAMESPACE).svc.$(DOMAIN)": unknown variable $(DOMAIN): want $(NAMESPACE) or $(CLUSTER_DOMAIN)`,
		"searches-too-many.yaml":          `searches-too-many.yaml: document 1, line 9: spec.actions.searches.add: Too many: 33: must have at most 32 items`,
		"search-line-too-long.yaml":       `search-line-too-long.yaml: document 1, line 9: spec.actions.searches.replace: Invalid value: 11: must not have more than 2048 characters (including spaces) in the search list`,
		"searches-add-and-replace.yaml":   `searches-add-and-replace.yaml: document 1, line 9: spec.actions.searches.add: Forbidden: may not be combined with replace (list every entry in replace)`,
		"searches-empty.yaml":             `searches-empty.yaml: document 1, line 8: spec.actions.searches: Required value: add or replace`,
		"ndots-range.yaml":                `ndots-range.yaml: document 1, line 8: spec.actions.ndots: Invalid value: 16: must be between 0 and 15`,
		"option-empty-name.yaml":          `option-empty-name.yaml: document 1, line 11: spec.actions.options.set[1].name: Required value: must not be empty`,
		"option-name-colon.yaml":          `option-name-colon.yaml: document 1, line 10: spec.actions.options.set[0].name: Invalid value: "timeout:2": must not contain ':' or white space (give the value in value)`,
		"option-duplicate.yaml":           `option-duplicate.yaml: document 1, line 11: spec.actions.options.set[1].name: Duplicate value: "timeout"`,
		"option-set-and-removed.yaml":     `option-set-and-removed.yaml: document 1, line 11: spec.actions.options.remove[0]: Forbidden: option "edns0" is both set and removed`,
		"option-ndots-twice.yaml":         `option-ndots-twice.yaml: document 1, line 10: spec.actions.options.set[0].name: Forbidden: ndots is set by actions.ndots`,
		"option-value-space.yaml":         `option-value-space.yaml: document 1, line 9: spec.actions.options.set[0].value: Invalid value: "2 3": must not contain white space`,
		"options-empty.yaml":              `options-empty.yaml: document 1, line 8: spec.actions.options: Required value: set or remove`,
		"take-away-without-none.yaml":     `take-away-without-none.yaml: document 1, line 9: spec.actions.nameservers: Forbidden: takes away from kubelet's settings, which needs dnsPolicy None, but the policy sets dnsPolicy Default`,
		"hostnetwork-with-dnspolicy.yaml": `hostnetwork-with-dnspolicy.yaml: document 1, line 9: spec.actions.dnsPolicy: Forbidden: may not be combined with hostNetworkClusterDNS`,
	}
	files, err := filepath.Glob(filepath.Join(invalidDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Fatalf("%d invalid policy files, want at least 20", len(files))
	}
	seen := map[string]bool{}
	for _, file := range files {
		name := filepath.Base(file)
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			w, ok := want[name]
			if !ok {
				t.Fatalf("No expected error for %s: add it to the table", name)
			}
			set, err := policy.Load(file)
			if set != nil {
				t.Errorf("Load returned a Set along with the error")
			}
			if err == nil {
				t.Fatalf("Load succeeded, want %s", w)
			}
			got := strings.ReplaceAll(err.Error(), invalidDir+"/", "")
			if got != w {
				t.Errorf("Error:\n got %s\nwant %s", got, w)
			}
			var le *policy.LoadError
			if !errors.As(err, &le) || le.File != file || le.Document < 1 || le.Line < 1 {
				t.Errorf("Error is not a *LoadError with file, document and line: %#v", le)
			}
		})
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("Table entry %s has no file in %s", name, invalidDir)
		}
	}
}

// TestLoadAllErrors checks that every document's errors are reported, across
// files, with the whole directory failing.
func TestLoadAllErrors(t *testing.T) {
	_, err := policy.Load(invalidDir)
	if err == nil {
		t.Fatal("Load of the invalid directory succeeded")
	}
	var n int
	for _, e := range configfile.Leaves(err) {
		var le *policy.LoadError
		if !errors.As(e, &le) {
			t.Errorf("Not a *LoadError: %v", e)
		}
		n++
	}
	files, _ := filepath.Glob(filepath.Join(invalidDir, "*.yaml"))
	// name-duplicate.yaml and name-missing-like files: at least one per file;
	// duplicate names across files add more.
	if n < len(files) {
		t.Errorf("%d errors for %d files, want at least one per file", n, len(files))
	}
}

func TestParseValid(t *testing.T) {
	in := `# comment-only documents are not counted
---
apiVersion: poddns.io/v1alpha1
kind: DNSPolicy
metadata: {name: b, annotations: {owner: platform}}
spec:
  priority: 10
  actions: {ndots: 2}
---
---
{"apiVersion": "poddns.io/v1alpha1", "kind": "DNSPolicy", "metadata": {"name": "a"}, "spec": {"priority": 10, "mode": "audit", "actions": {"hostNetworkClusterDNS": true}}}
---
apiVersion: poddns.io/v1alpha1
kind: DNSPolicy
metadata: {name: c}
spec:
  priority: -1
  override: true
  match:
    namespaceSelector: {matchLabels: {a: b}}
    podSelector: {matchExpressions: [{key: app, operator: Exists}]}
    hostNetwork: false
    dnsPolicies: [ClusterFirst, Default]
    excludedNamespaces: [kube-system]
  actions:
    dnsPolicy: None
    nameservers: [169.254.20.10, "fd00::a"]
    searches: {replace: [$(NAMESPACE).svc.$(CLUSTER_DOMAIN)]}
    options: {set: [{name: timeout, value: "1"}], remove: [edns0]}
`
	set, err := policy.Parse(strings.NewReader(in), "p.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	var got []string
	for _, p := range set.Policies() {
		got = append(got, p.Name+"@"+p.Source.String()+"/"+string(p.Mode))
	}
	want := []string{"c@p.yaml: document 3, line 13/enforce", "a@p.yaml: document 2, line 11/audit", "b@p.yaml: document 1, line 3/enforce"}
	if !slices.Equal(got, want) {
		t.Errorf("Policies:\n got %q\nwant %q", got, want)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, in := range []string{"", "# nothing\n", "---\n---\n"} {
		set, err := policy.Parse(strings.NewReader(in), "e.yaml")
		if err != nil || set.Len() != 0 {
			t.Errorf("Parse(%q) = %d policies, %v; want 0, nil", in, set.Len(), err)
		}
	}
}

const validPolicy = "apiVersion: poddns.io/v1alpha1\nkind: DNSPolicy\nmetadata: {name: %s}\nspec: {actions: {ndots: %d}}\n"

func TestLoadDirectory(t *testing.T) {
	dir := t.TempDir()
	testenv.WriteFile(t, dir, "b.yaml", strings.Replace(strings.Replace(validPolicy, "%s", "b", 1), "%d", "2", 1))
	testenv.WriteFile(t, dir, "a.yml", strings.Replace(strings.Replace(validPolicy, "%s", "a", 1), "%d", "3", 1))
	testenv.WriteFile(t, dir, "README.md", "not a policy")
	testenv.WriteFile(t, dir, "sub/c.yaml", "not read: subdirectories are not loaded")
	set, err := policy.Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if set.Len() != 2 {
		t.Errorf("Len = %d, want 2", set.Len())
	}
	// The same policy name in two files is an error naming both.
	testenv.WriteFile(t, dir, "c.yaml", strings.Replace(strings.Replace(validPolicy, "%s", "a", 1), "%d", "4", 1))
	_, err = policy.Load(dir)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "c.yaml")+`: document 1, line 3: metadata.name: Duplicate value: "a": first defined at `+filepath.Join(dir, "a.yml")) {
		t.Errorf("Load with a duplicate name across files: %v", err)
	}
	if _, err := policy.Load(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing: read policies: no such file or directory") {
		t.Errorf("Load of a missing path: %v", err)
	}
}
