package resolvconf

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const subdomainMsg = `a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '_', '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?(\._?[a-z0-9]([-_a-z0-9]*[a-z0-9])?)*')`

func TestValidate(t *testing.T) {
	searches := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = "s" + strings.Repeat("x", i) + ".example"
		}
		return out
	}
	// Nine 227-character entries joined with spaces: 2051 characters.
	long := func(n, size int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = strings.Repeat(string(rune('a'+i)), size)
		}
		return out
	}
	at2048 := append(long(8, 253), strings.Repeat("z", 16))
	over2048 := append(long(8, 253), strings.Repeat("z", 17))

	tests := []struct {
		name         string
		policy       corev1.DNSPolicy
		dc           *corev1.PodDNSConfig
		wantErrs     []string
		wantWarnings []string
	}{
		{name: "ClusterFirst", policy: corev1.DNSClusterFirst},
		{name: "ClusterFirstWithHostNet without hostNetwork is valid", policy: corev1.DNSClusterFirstWithHostNet},
		{name: "Default", policy: corev1.DNSDefault},
		{name: "empty policy", policy: "", wantErrs: []string{"spec.dnsPolicy: Required value"}},
		{name: "unknown policy", policy: "Bogus", wantErrs: []string{`spec.dnsPolicy: Unsupported value: "Bogus": supported values: "ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"`}},
		{name: "policies are case-sensitive", policy: "clusterFirst", wantErrs: []string{`spec.dnsPolicy: Unsupported value: "clusterFirst": supported values: "ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"`}},
		{name: "None without dnsConfig", policy: corev1.DNSNone, wantErrs: []string{"spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"}},
		{
			name: "None without nameservers stops before other checks", policy: corev1.DNSNone,
			dc:       &corev1.PodDNSConfig{Nameservers: []string{}, Searches: []string{"BAD"}, Options: []corev1.PodDNSConfigOption{{}}},
			wantErrs: []string{"spec.dnsConfig.nameservers: Required value: must provide at least one DNS nameserver when `dnsPolicy` is None"},
		},
		{name: "None with a nameserver", policy: corev1.DNSNone, dc: &corev1.PodDNSConfig{Nameservers: []string{"169.254.20.10"}}},
		{name: "unsupported policy still gets dnsConfig errors", policy: "Bogus", dc: &corev1.PodDNSConfig{Options: []corev1.PodDNSConfigOption{{}}}, wantErrs: []string{
			`spec.dnsPolicy: Unsupported value: "Bogus": supported values: "ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"`,
			"spec.dnsConfig.options[0]: Required value: must not be empty",
		}},
		{name: "three nameservers", policy: corev1.DNSClusterFirst, dc: &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1", "2.2.2.2", "3.3.3.3"}}},
		{name: "four nameservers", policy: corev1.DNSClusterFirst, dc: &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"}}, wantErrs: []string{
			`spec.dnsConfig.nameservers: Invalid value: ["1.1.1.1","2.2.2.2","3.3.3.3","4.4.4.4"]: must not have more than 3 nameservers`,
		}},
		{name: "IP rules", policy: corev1.DNSClusterFirst, dc: &corev1.PodDNSConfig{Nameservers: []string{"010.1.1.1", "::ffff:1.2.3.4", "fe80::1%eth0"}}, wantErrs: []string{
			`spec.dnsConfig.nameservers[0]: Invalid value: "010.1.1.1": must not have leading 0s`,
			`spec.dnsConfig.nameservers[1]: Invalid value: "::ffff:1.2.3.4": must not be an IPv4-mapped IPv6 address`,
			`spec.dnsConfig.nameservers[2]: Invalid value: "fe80::1%eth0": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)`,
		}},
		{name: "garbage and empty nameserver", policy: corev1.DNSClusterFirst, dc: &corev1.PodDNSConfig{Nameservers: []string{"dns.example", ""}}, wantErrs: []string{
			`spec.dnsConfig.nameservers[0]: Invalid value: "dns.example": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)`,
			`spec.dnsConfig.nameservers[1]: Invalid value: "": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)`,
		}},
		{
			name: "non-canonical IPv6 is a warning", policy: corev1.DNSClusterFirst,
			dc:           &corev1.PodDNSConfig{Nameservers: []string{"fd00::a", "2001:DB8:0:0:0:0:0:1"}},
			wantWarnings: []string{`spec.dnsConfig.nameservers[1]: IPv6 address "2001:DB8:0:0:0:0:0:1" should be in RFC 5952 canonical format ("2001:db8::1")`},
		},
		{
			name: "no warnings for an invalid pod", policy: corev1.DNSClusterFirst,
			dc:       &corev1.PodDNSConfig{Nameservers: []string{"2001:DB8::1"}, Options: []corev1.PodDNSConfigOption{{}}},
			wantErrs: []string{"spec.dnsConfig.options[0]: Required value: must not be empty"},
		},
		{name: "32 searches", policy: corev1.DNSClusterFirst, dc: &corev1.PodDNSConfig{Searches: searches(32)}},
		{name: "33 searches", policy: corev1.DNSClusterFirst, dc: &corev1.PodDNSConfig{Searches: searches(33)}, wantErrs: []string{
			(&field.Error{Type: field.ErrorTypeInvalid, Field: "spec.dnsConfig.searches", BadValue: searches(33), Detail: "must not have more than 32 search paths"}).Error(),
		}},
		{name: "2048 characters", policy: corev1.DNSClusterFirst, dc: &corev1.PodDNSConfig{Searches: at2048}},
		{name: "2049 characters", policy: corev1.DNSClusterFirst, dc: &corev1.PodDNSConfig{Searches: over2048}, wantErrs: []string{
			(&field.Error{Type: field.ErrorTypeInvalid, Field: "spec.dnsConfig.searches", BadValue: over2048, Detail: "must not have more than 2048 characters (including spaces) in the search list"}).Error(),
		}},
		{name: "253 characters", policy: corev1.DNSClusterFirst, dc: &corev1.PodDNSConfig{Searches: []string{strings.Repeat("a", 253)}}},
		{name: "253 characters and a trailing dot", policy: corev1.DNSClusterFirst, dc: &corev1.PodDNSConfig{Searches: []string{strings.Repeat("a", 253) + "."}}},
		{name: "254 characters", policy: corev1.DNSClusterFirst, dc: &corev1.PodDNSConfig{Searches: []string{strings.Repeat("a", 254)}}, wantErrs: []string{
			`spec.dnsConfig.searches[0]: Invalid value: "` + strings.Repeat("a", 254) + `": must be no more than 253 characters`,
		}},
		{name: "relaxed search rules", policy: corev1.DNSClusterFirst, dc: &corev1.PodDNSConfig{Searches: []string{".", "example.com.", "_srv.example.com", "a_b.example", strings.Repeat("l", 64) + ".example"}}},
		{name: "invalid searches report the value without its trailing dot", policy: corev1.DNSClusterFirst, dc: &corev1.PodDNSConfig{Searches: []string{"Bad.", "..", "", "a..b", "x_", "-a"}}, wantErrs: []string{
			`spec.dnsConfig.searches[0]: Invalid value: "Bad": ` + subdomainMsg,
			`spec.dnsConfig.searches[1]: Invalid value: ".": ` + subdomainMsg,
			`spec.dnsConfig.searches[2]: Invalid value: "": ` + subdomainMsg,
			`spec.dnsConfig.searches[3]: Invalid value: "a..b": ` + subdomainMsg,
			`spec.dnsConfig.searches[4]: Invalid value: "x_": ` + subdomainMsg,
			`spec.dnsConfig.searches[5]: Invalid value: "-a": ` + subdomainMsg,
		}},
		{name: "options: names required, values free", policy: corev1.DNSClusterFirst, dc: &corev1.PodDNSConfig{Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr("2")}, {Name: ""}, {Name: "a b:c", Value: ptr(" any ")}, {Value: ptr("x")}}}, wantErrs: []string{
			"spec.dnsConfig.options[1]: Required value: must not be empty",
			"spec.dnsConfig.options[3]: Required value: must not be empty",
		}},
		{name: "errors accumulate in order", policy: corev1.DNSDefault, dc: &corev1.PodDNSConfig{Nameservers: []string{"x", "1.1.1.1", "2.2.2.2", "3.3.3.3"}, Searches: []string{"A"}, Options: []corev1.PodDNSConfigOption{{}}}, wantErrs: []string{
			`spec.dnsConfig.nameservers: Invalid value: ["x","1.1.1.1","2.2.2.2","3.3.3.3"]: must not have more than 3 nameservers`,
			`spec.dnsConfig.nameservers[0]: Invalid value: "x": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)`,
			`spec.dnsConfig.searches[0]: Invalid value: "A": ` + subdomainMsg,
			"spec.dnsConfig.options[0]: Required value: must not be empty",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs, warnings := Validate(pod(tt.policy, false, tt.dc))
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if !reflect.DeepEqual(got, tt.wantErrs) {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.wantErrs)
			}
			if !reflect.DeepEqual(warnings, tt.wantWarnings) {
				t.Errorf("warnings:\n got %q\nwant %q", warnings, tt.wantWarnings)
			}
		})
	}
}

func TestValidatePodSpecPath(t *testing.T) {
	spec := &corev1.PodSpec{DNSPolicy: corev1.DNSNone}
	errs, _ := ValidatePodSpec(spec, field.NewPath("spec", "template", "spec"))
	want := "spec.template.spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"
	if len(errs) != 1 || errs[0].Error() != want {
		t.Errorf("errors = %v, want %q", errs, want)
	}
	spec = &corev1.PodSpec{DNSPolicy: corev1.DNSClusterFirst, DNSConfig: &corev1.PodDNSConfig{Nameservers: []string{"FD00::A"}}}
	_, warnings := ValidatePodSpec(spec, field.NewPath("spec", "jobTemplate", "spec", "template", "spec"))
	wantW := `spec.jobTemplate.spec.template.spec.dnsConfig.nameservers[0]: IPv6 address "FD00::A" should be in RFC 5952 canonical format ("fd00::a")`
	if len(warnings) != 1 || warnings[0] != wantW {
		t.Errorf("warnings = %q, want %q", warnings, wantW)
	}
}

func TestDefault(t *testing.T) {
	p := pod("", true, nil)
	Default(p)
	if p.Spec.DNSPolicy != corev1.DNSClusterFirst {
		t.Errorf("dnsPolicy = %q, want ClusterFirst", p.Spec.DNSPolicy)
	}
	if p.Spec.DNSConfig != nil || !p.Spec.HostNetwork {
		t.Errorf("Default changed more than dnsPolicy: %+v", p.Spec)
	}
	p = pod(corev1.DNSDefault, false, nil)
	Default(p)
	if p.Spec.DNSPolicy != corev1.DNSDefault {
		t.Errorf("dnsPolicy = %q, want Default kept", p.Spec.DNSPolicy)
	}
	p = pod("clusterfirst", false, nil)
	Default(p)
	if p.Spec.DNSPolicy != "clusterfirst" {
		t.Errorf("dnsPolicy = %q, a wrong-case value must not be corrected", p.Spec.DNSPolicy)
	}
}

// FuzzIsSearchDomain holds the fast path to the API server's own check.
func FuzzIsSearchDomain(f *testing.F) {
	for _, s := range []string{"a", "_srv.example.com", "a_b.example", "a..b", "x_", "_", "__a", "-a", "a-", "A", "a._b", "a._", strings.Repeat("a", 254), "1.2.3.4", "a.-b", "é.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := len(validation.IsDNS1123SubdomainWithUnderscore(s)) == 0
		if got := isSearchDomain(s); got != want {
			t.Fatalf("isSearchDomain(%q) = %v, the API server's check says %v", s, got, want)
		}
	})
}
