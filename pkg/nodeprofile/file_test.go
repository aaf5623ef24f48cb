package nodeprofile_test

import (
	"strings"
	"testing"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/nodeprofile"
)

// errorCase is an input that must fail to parse, with a substring of the
// error.
type errorCase struct {
	name string
	in   string
	want string
}

// checkParseErrors checks that parse (named what) refuses each case's
// input, read as the file file, with an error containing the case's want.
func checkParseErrors[T any](t *testing.T, what string, parse func([]byte, string) (T, error), file string, cases []errorCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse([]byte(tt.in), file)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s error = %v, want one containing %q", what, err, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	checkParseErrors(t, "Parse", nodeprofile.Parse, "profile.yaml", []errorCase{
		{"unknown field", "apiVersion: poddns.io/v1alpha1\nkind: NodeProfile\nresolvconf: /etc/resolv.conf\n", "profile.yaml: document 1, line 3: resolvconf: unknown field"},
		{"duplicate field", "apiVersion: poddns.io/v1alpha1\nkind: NodeProfile\nclusterDomain: a\nclusterDomain: b\n", "line 4: clusterDomain: duplicate field (first at line 3)"},
		{"wrong kind", "apiVersion: poddns.io/v1alpha1\nkind: DNSPolicy\n", `line 2: kind: unsupported value "DNSPolicy": want "NodeProfile"`},
		{"wrong apiVersion", "apiVersion: poddns.io/v1\nkind: NodeProfile\n", `line 1: apiVersion: unsupported value "poddns.io/v1"`},
		{"no apiVersion", "kind: NodeProfile\nclusterDomain: a\n", `apiVersion: unsupported value ""`},
		{"empty", "# nothing\n", "no document"},
		{"two documents", "apiVersion: poddns.io/v1alpha1\nkind: NodeProfile\n---\napiVersion: poddns.io/v1alpha1\nkind: NodeProfile\n", "document 2, line 4: 2 documents: expected one NodeProfile"},
		{"wrong type", "apiVersion: poddns.io/v1alpha1\nkind: NodeProfile\nclusterDNS: 10.0.0.10\n", "line 3: clusterDNS: cannot unmarshal string"},
		{"content without a file", "apiVersion: poddns.io/v1alpha1\nkind: NodeProfile\nresolvConf: \"\"\nresolvConfContent: \"nameserver 10.0.0.2\"\n", `resolvConfContent is set but resolvConf is ""`},
		{"not YAML", "apiVersion: [\n", "invalid YAML"},
		{"field case", "apiVersion: poddns.io/v1alpha1\nkind: NodeProfile\nClusterDomain: a\n", "line 3: ClusterDomain: unknown field (field names are case-sensitive)"},
	})
}

func TestParseKubeletConfig(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		wantErr     string
		wantWarning string
		wantResolv  *string
		wantDNS     []string
	}{
		{
			name:       "absent resolvConf stays nil",
			in:         kubeletMinimal,
			wantResolv: nil,
		},
		{
			name:       "explicit empty resolvConf",
			in:         kubeletNoFile,
			wantResolv: ptr(""),
			wantDNS:    []string{"10.100.0.10"},
		},
		{
			name:        "unknown field is a warning, as in kubelet",
			in:          "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nclusterDNS: [10.0.0.10]\nclusterDNs: [10.0.0.11]\n",
			wantWarning: `Using lenient decoding as strict decoding failed: strict decoding error: unknown field "clusterDNs"`,
			wantDNS:     []string{"10.0.0.10"},
		},
		{
			name:    "another kind",
			in:      "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n",
			wantErr: "failed to decode: no kind \"KubeProxyConfiguration\" is registered",
		},
		{
			name:    "no kind",
			in:      "apiVersion: kubelet.config.k8s.io/v1beta1\nclusterDomain: a\n",
			wantErr: "failed to decode: Object 'Kind' is missing",
		},
		{
			name:    "garbage",
			in:      "}{",
			wantErr: "failed to decode",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kc, warnings, err := nodeprofile.ParseKubeletConfig([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKubeletConfig: %v", err)
			}
			if tt.wantWarning == "" && len(warnings) > 0 || tt.wantWarning != "" && (len(warnings) != 1 || !strings.Contains(warnings[0], tt.wantWarning)) {
				t.Errorf("Warnings = %q, want %q", warnings, tt.wantWarning)
			}
			if (kc.ResolverConfig == nil) != (tt.wantResolv == nil) || kc.ResolverConfig != nil && *kc.ResolverConfig != *tt.wantResolv {
				t.Errorf("ResolverConfig = %v, want %v", kc.ResolverConfig, tt.wantResolv)
			}
			if strings.Join(kc.ClusterDNS, ",") != strings.Join(tt.wantDNS, ",") {
				t.Errorf("ClusterDNS = %q, want %q", kc.ClusterDNS, tt.wantDNS)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestReadKubeletConfigWarningNamesFile(t *testing.T) {
	dir := t.TempDir()
	path := testenv.WriteFile(t, dir, "kubelet.yaml", "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nbogus: 1\n")
	_, warnings, err := nodeprofile.ReadKubeletConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], path) || !strings.Contains(warnings[0], `unknown field "bogus"`) {
		t.Errorf("Warnings = %q, want one naming %s and the field", warnings, path)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(profileAll))
	f.Add([]byte(profileContent))
	f.Add([]byte("apiVersion: poddns.io/v1alpha1\nkind: NodeProfile\n---\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := nodeprofile.Parse(data, "profile.yaml")
		if err == nil && (p.APIVersion != nodeprofile.APIVersion || p.Kind != nodeprofile.Kind) {
			t.Errorf("Parse accepted apiVersion %q kind %q", p.APIVersion, p.Kind)
		}
	})
}
