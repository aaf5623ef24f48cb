package resolvconf

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// supportedPolicies are the dnsPolicy values the API server accepts, in the
// order its error message lists them.
var supportedPolicies = []corev1.DNSPolicy{
	corev1.DNSClusterFirstWithHostNet, corev1.DNSClusterFirst, corev1.DNSDefault, corev1.DNSNone,
}

// Default applies the API server's DNS defaulting to pod: an empty dnsPolicy
// becomes ClusterFirst. Nothing else about DNS is defaulted.
func Default(pod *corev1.Pod) { DefaultPodSpec(&pod.Spec) }

// DefaultPodSpec is Default for a pod spec, e.g. a workload's pod template.
func DefaultPodSpec(spec *corev1.PodSpec) {
	if spec.DNSPolicy == "" {
		spec.DNSPolicy = corev1.DNSClusterFirst
	}
}

// Validate returns the API server's errors for pod's spec.dnsPolicy and
// spec.dnsConfig, with its field paths and messages, and the warnings it
// returns when the pod is accepted (a non-canonical IPv6 nameserver). Warnings
// are only returned when there are no errors, as the API server only warns
// about a pod it stores. The pod is validated as given: call Default first to
// see what a create request does.
func Validate(pod *corev1.Pod) (field.ErrorList, []string) {
	return ValidatePodSpec(&pod.Spec, field.NewPath("spec"))
}

// ValidatePodSpec is Validate for a pod spec found at path, e.g.
// spec.template.spec in a Deployment.
func ValidatePodSpec(spec *corev1.PodSpec, path *field.Path) (field.ErrorList, []string) {
	policy := spec.DNSPolicy
	var errs field.ErrorList
	switch policy {
	case corev1.DNSClusterFirstWithHostNet, corev1.DNSClusterFirst, corev1.DNSDefault, corev1.DNSNone:
	case "":
		errs = append(errs, field.Required(path.Child("dnsPolicy"), ""))
	default:
		errs = append(errs, field.NotSupported(path.Child("dnsPolicy"), &policy, supportedPolicies))
	}
	errs = append(errs, validateDNSConfig(spec.DNSConfig, policy, path.Child("dnsConfig"))...)
	if len(errs) > 0 {
		return errs, nil
	}
	var warnings []string
	if spec.DNSConfig != nil {
		nsPath := path.Child("dnsConfig", "nameservers")
		for i, ns := range spec.DNSConfig.Nameservers {
			warnings = append(warnings, validation.GetWarningsForIP(nsPath.Index(i), ns)...)
		}
	}
	return nil, warnings
}

// validateDNSConfig is the API server's validatePodDNSConfig with strict IP
// validation (on by default since 1.36) and relaxed search validation (the only
// rule since 1.37).
func validateDNSConfig(dc *corev1.PodDNSConfig, policy corev1.DNSPolicy, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if policy == corev1.DNSNone {
		if dc == nil {
			return append(errs, field.Required(path, fmt.Sprintf("must provide `dnsConfig` when `dnsPolicy` is %s", corev1.DNSNone)))
		}
		if len(dc.Nameservers) == 0 {
			return append(errs, field.Required(path.Child("nameservers"), fmt.Sprintf("must provide at least one DNS nameserver when `dnsPolicy` is %s", corev1.DNSNone)))
		}
	}
	if dc == nil {
		return nil
	}
	nsPath := path.Child("nameservers")
	if len(dc.Nameservers) > MaxNameservers {
		errs = append(errs, field.Invalid(nsPath, dc.Nameservers, fmt.Sprintf("must not have more than %v nameservers", MaxNameservers)))
	}
	for i, ns := range dc.Nameservers {
		errs = append(errs, validation.IsValidIPForLegacyField(nsPath.Index(i), ns, true, nil)...)
	}
	searchPath := path.Child("searches")
	if len(dc.Searches) > MaxSearchPaths {
		errs = append(errs, field.Invalid(searchPath, dc.Searches, fmt.Sprintf("must not have more than %v search paths", MaxSearchPaths)))
	}
	if joinedLen(dc.Searches) > MaxSearchListChars {
		errs = append(errs, field.Invalid(searchPath, dc.Searches, fmt.Sprintf("must not have more than %v characters (including spaces) in the search list", MaxSearchListChars)))
	}
	for i, s := range dc.Searches {
		if s == "." {
			continue
		}
		s = strings.TrimSuffix(s, ".")
		if isSearchDomain(s) {
			continue // the common case, without the regular expression
		}
		for _, msg := range validation.IsDNS1123SubdomainWithUnderscore(s) {
			errs = append(errs, field.Invalid(searchPath.Index(i), s, msg))
		}
	}
	for i, o := range dc.Options {
		if o.Name == "" {
			errs = append(errs, field.Required(path.Child("options").Index(i), "must not be empty"))
		}
	}
	return errs
}

// isSearchDomain reports whether s passes the API server's relaxed search
// check (validation.IsDNS1123SubdomainWithUnderscore) without its regular
// expression: at most 253 characters of dot-separated labels, each an optional
// '_' followed by lower-case letters, digits, '-' and '_' that start and end
// with a letter or digit. It is only a fast path: a false answer is followed
// by the API server's own check, which gives the messages.
func isSearchDomain(s string) bool {
	if len(s) == 0 || len(s) > validation.DNS1123SubdomainMaxLength {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		label = strings.TrimPrefix(label, "_")
		if label == "" || !isAlnum(label[0]) || !isAlnum(label[len(label)-1]) {
			return false
		}
		for i := 1; i < len(label)-1; i++ {
			if c := label[i]; !isAlnum(c) && c != '-' && c != '_' {
				return false
			}
		}
	}
	return true
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
