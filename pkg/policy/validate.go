package policy

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/poddns/poddns/pkg/resolvconf"
)

// MaxNdots is the largest ndots the resolvers honour (glibc and musl cap it).
const MaxNdots = 15

// supportedDNSPolicies are the dnsPolicy values, in the API server's order.
var supportedDNSPolicies = []string{
	string(corev1.DNSClusterFirstWithHostNet), string(corev1.DNSClusterFirst), string(corev1.DNSDefault), string(corev1.DNSNone),
}

// Sample values substituted into search templates to validate them at load
// time; the real ones are checked again per pod.
const (
	sampleNamespace     = "namespace"
	sampleClusterDomain = "cluster.local"
)

// compiled is a validated policy ready to match and apply.
type compiled struct {
	policy      Policy
	source      Source
	name        string
	priority    int32
	mode        Mode
	override    bool
	nsSelector  labels.Selector // nil: every namespace
	podSelector labels.Selector // nil: every pod
	// nsSel and podSel number the Set's distinct selectors (internSelectors),
	// so that one Evaluate matches each only once; -1 with a nil selector.
	nsSel, podSel int
	hostNetwork   *bool
	dnsPolicies   []corev1.DNSPolicy // nil: any
	excluded      []string
	reasons       reasons

	hostNetworkClusterDNS bool
	dnsPolicy             corev1.DNSPolicy // "" when not set
	nameservers           []string         // nil when not set
	searchAdd             []string         // templates
	searchReplace         []string         // templates; nil when not set
	setOptions            []corev1.PodDNSConfigOption
	removeOptions         []string
}

// compile validates the loaded policies, then sorts them into a Set.
func compile(ps []loaded) (*Set, error) {
	var errs []error
	out := make([]*compiled, 0, len(ps))
	byName := map[string]*loaded{}
	for i := range ps {
		l := &ps[i]
		c, fieldErrs := validatePolicy(&l.policy)
		if prev, ok := byName[l.policy.Metadata.Name]; ok && l.policy.Metadata.Name != "" {
			fieldErrs = append(fieldErrs, &field.Error{Type: field.ErrorTypeDuplicate, Field: "metadata.name",
				BadValue: l.policy.Metadata.Name, Detail: "first defined at " + prev.source.String()})
		} else {
			byName[l.policy.Metadata.Name] = l
		}
		for _, fe := range fieldErrs {
			errs = append(errs, l.fieldError(fe))
		}
		if len(fieldErrs) == 0 {
			c.source = l.source
			out = append(out, c)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].priority != out[j].priority {
			return out[i].priority < out[j].priority
		}
		return out[i].name < out[j].name
	})
	return &Set{policies: out, selectors: internSelectors(out)}, nil
}

// internSelectors numbers the distinct namespace and pod selectors of ps
// (many policies share one) and returns how many there are: Evaluate matches
// each distinct selector once per pod (evaluation.matches). Selectors are the
// same when their kind (namespace or pod) and their requirements are equal.
func internSelectors(ps []*compiled) int {
	type key struct {
		pod  bool
		text string
	}
	type entry struct {
		sel labels.Selector
		id  int
	}
	seen := map[key][]entry{}
	n := 0
	id := func(sel labels.Selector, pod bool) int {
		if sel == nil {
			return -1
		}
		k := key{pod, sel.String()}
		for _, e := range seen[k] {
			if reflect.DeepEqual(e.sel, sel) {
				return e.id
			}
		}
		seen[k] = append(seen[k], entry{sel, n})
		n++
		return n - 1
	}
	for _, c := range ps {
		c.nsSel = id(c.nsSelector, false)
		c.podSel = id(c.podSelector, true)
	}
	return n
}

// validatePolicy checks one policy and compiles it.
func validatePolicy(p *Policy) (*compiled, field.ErrorList) {
	var errs field.ErrorList
	c := &compiled{policy: *p, name: p.Metadata.Name, priority: p.Spec.Priority, override: p.Spec.Override}

	namePath := field.NewPath("metadata", "name")
	if p.Metadata.Name == "" {
		errs = append(errs, field.Required(namePath, "a policy needs a name"))
	} else {
		for _, msg := range validation.IsDNS1123Subdomain(p.Metadata.Name) {
			errs = append(errs, field.Invalid(namePath, p.Metadata.Name, msg))
		}
	}

	spec := field.NewPath("spec")
	switch p.Spec.Mode {
	case "", ModeEnforce:
		c.mode = ModeEnforce
	case ModeAudit:
		c.mode = ModeAudit
	default:
		errs = append(errs, field.NotSupported(spec.Child("mode"), p.Spec.Mode, []Mode{ModeEnforce, ModeAudit}))
	}
	errs = append(errs, c.compileMatch(&p.Spec.Match, spec.Child("match"))...)
	errs = append(errs, c.compileActions(&p.Spec.Actions, spec.Child("actions"))...)
	c.compileReasons()
	return c, errs
}

func (c *compiled) compileMatch(m *Match, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	selector := func(ls *metav1.LabelSelector, p *field.Path) labels.Selector {
		if ls == nil {
			return nil
		}
		verrs := metav1validation.ValidateLabelSelector(ls, metav1validation.LabelSelectorValidationOptions{}, p)
		if len(verrs) > 0 {
			errs = append(errs, verrs...)
			return nil
		}
		sel, err := metav1.LabelSelectorAsSelector(ls)
		if err != nil {
			errs = append(errs, field.Invalid(p, ls, err.Error()))
			return nil
		}
		return sel
	}
	c.nsSelector = selector(m.NamespaceSelector, path.Child("namespaceSelector"))
	c.podSelector = selector(m.PodSelector, path.Child("podSelector"))
	c.hostNetwork = m.HostNetwork
	if m.DNSPolicies != nil {
		c.dnsPolicies = []corev1.DNSPolicy{}
	}
	for i, dp := range m.DNSPolicies {
		if !isDNSPolicy(dp) {
			errs = append(errs, field.NotSupported(path.Child("dnsPolicies").Index(i), dp, supportedDNSPolicies))
			continue
		}
		c.dnsPolicies = append(c.dnsPolicies, corev1.DNSPolicy(dp))
	}
	for i, ns := range m.ExcludedNamespaces {
		for _, msg := range validation.IsDNS1123Label(ns) {
			errs = append(errs, field.Invalid(path.Child("excludedNamespaces").Index(i), ns, msg))
		}
	}
	c.excluded = m.ExcludedNamespaces
	return errs
}

func isDNSPolicy(s string) bool {
	for _, p := range supportedDNSPolicies {
		if s == p {
			return true
		}
	}
	return false
}

func (c *compiled) compileActions(a *Actions, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if !a.HostNetworkClusterDNS && a.DNSPolicy == "" && a.Nameservers == nil && a.Searches == nil && a.Ndots == nil && a.Options == nil {
		return append(errs, field.Required(path, "at least one action: hostNetworkClusterDNS, dnsPolicy, nameservers, searches, ndots or options"))
	}
	c.hostNetworkClusterDNS = a.HostNetworkClusterDNS

	if a.DNSPolicy != "" {
		if !isDNSPolicy(a.DNSPolicy) {
			errs = append(errs, field.NotSupported(path.Child("dnsPolicy"), a.DNSPolicy, supportedDNSPolicies))
		}
		if a.HostNetworkClusterDNS {
			errs = append(errs, field.Forbidden(path.Child("dnsPolicy"), "may not be combined with hostNetworkClusterDNS"))
		}
		c.dnsPolicy = corev1.DNSPolicy(a.DNSPolicy)
	}
	if c.dnsPolicy == corev1.DNSNone && len(a.Nameservers) == 0 {
		errs = append(errs, field.Required(path.Child("nameservers"), "must provide at least one nameserver when dnsPolicy is None"))
	}
	// Actions that take something away from kubelet's settings need None.
	keepsKubelet := a.HostNetworkClusterDNS || (c.dnsPolicy != "" && c.dnsPolicy != corev1.DNSNone)
	if keepsKubelet {
		why := fmt.Sprintf("takes away from kubelet's settings, which needs dnsPolicy None, but the policy sets dnsPolicy %s", c.dnsPolicy)
		if a.HostNetworkClusterDNS {
			why = "takes away from kubelet's settings, which needs dnsPolicy None, but the policy sets hostNetworkClusterDNS"
		}
		if a.Nameservers != nil {
			errs = append(errs, field.Forbidden(path.Child("nameservers"), why))
		}
		if a.Searches != nil && a.Searches.Replace != nil {
			errs = append(errs, field.Forbidden(path.Child("searches", "replace"), why))
		}
		if a.Options != nil && a.Options.Remove != nil {
			errs = append(errs, field.Forbidden(path.Child("options", "remove"), why))
		}
	}

	if a.Nameservers != nil {
		nsPath := path.Child("nameservers")
		if len(a.Nameservers) == 0 {
			errs = append(errs, field.Required(nsPath, "must list at least one nameserver (leave the field out to keep the pod's)"))
		}
		if len(a.Nameservers) > resolvconf.MaxNameservers {
			errs = append(errs, field.TooMany(nsPath, len(a.Nameservers), resolvconf.MaxNameservers))
		}
		seen := map[string]bool{}
		for i, ns := range a.Nameservers {
			if seen[ns] {
				errs = append(errs, field.Duplicate(nsPath.Index(i), ns))
				continue
			}
			seen[ns] = true
			errs = append(errs, apiErrors(&corev1.PodSpec{DNSPolicy: corev1.DNSNone, DNSConfig: &corev1.PodDNSConfig{Nameservers: []string{ns}}}, nsPath.Index(i))...)
		}
		c.nameservers = a.Nameservers
	}

	if s := a.Searches; s != nil {
		sPath := path.Child("searches")
		switch {
		case s.Add == nil && s.Replace == nil:
			errs = append(errs, field.Required(sPath, "add or replace"))
		case s.Add != nil && s.Replace != nil:
			errs = append(errs, field.Forbidden(sPath.Child("add"), "may not be combined with replace (list every entry in replace)"))
		}
		errs = append(errs, validateSearches(s.Add, sPath.Child("add"))...)
		errs = append(errs, validateSearches(s.Replace, sPath.Child("replace"))...)
		if s.Replace != nil && len(s.Replace) == 0 {
			errs = append(errs, field.Required(sPath.Child("replace"), "must list at least one search domain"))
		}
		c.searchAdd = s.Add
		c.searchReplace = s.Replace
	}

	if a.Ndots != nil {
		if *a.Ndots < 0 || *a.Ndots > MaxNdots {
			errs = append(errs, field.Invalid(path.Child("ndots"), *a.Ndots, fmt.Sprintf("must be between 0 and %d", MaxNdots)))
		}
		v := fmt.Sprint(*a.Ndots)
		c.setOptions = append(c.setOptions, corev1.PodDNSConfigOption{Name: "ndots", Value: &v})
	}
	if o := a.Options; o != nil {
		errs = append(errs, c.compileOptions(o, a.Ndots != nil, path)...)
	}
	return errs
}

func (c *compiled) compileOptions(o *OptionActions, hasNdots bool, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	oPath := path.Child("options")
	if o.Set == nil && o.Remove == nil {
		return append(errs, field.Required(oPath, "set or remove"))
	}
	set := map[string]bool{}
	for i, opt := range o.Set {
		p := oPath.Child("set").Index(i).Child("name")
		switch {
		case opt.Name == "":
			errs = append(errs, field.Required(p, "must not be empty"))
			continue
		case strings.ContainsAny(opt.Name, ": \t\n"):
			errs = append(errs, field.Invalid(p, opt.Name, "must not contain ':' or white space (give the value in value)"))
			continue
		case set[opt.Name]:
			errs = append(errs, field.Duplicate(p, opt.Name))
			continue
		case opt.Name == "ndots" && hasNdots:
			errs = append(errs, field.Forbidden(p, "ndots is set by actions.ndots"))
			continue
		}
		if opt.Value != nil && strings.ContainsAny(*opt.Value, " \t\n") {
			errs = append(errs, field.Invalid(oPath.Child("set").Index(i).Child("value"), *opt.Value, "must not contain white space"))
			continue
		}
		set[opt.Name] = true
		c.setOptions = append(c.setOptions, corev1.PodDNSConfigOption{Name: opt.Name, Value: opt.Value})
	}
	removed := map[string]bool{}
	for i, name := range o.Remove {
		p := oPath.Child("remove").Index(i)
		switch {
		case name == "":
			errs = append(errs, field.Required(p, "must not be empty"))
		case removed[name]:
			errs = append(errs, field.Duplicate(p, name))
		case set[name] || (name == "ndots" && hasNdots):
			errs = append(errs, field.Forbidden(p, fmt.Sprintf("option %q is both set and removed", name)))
		default:
			removed[name] = true
			c.removeOptions = append(c.removeOptions, name)
		}
	}
	return errs
}

// validateSearches checks search templates: known variables only, and, with
// sample values substituted, the API server's rules for a search list.
func validateSearches(list []string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(list) > resolvconf.MaxSearchPaths {
		errs = append(errs, field.TooMany(path, len(list), resolvconf.MaxSearchPaths))
	}
	expanded := make([]string, 0, len(list))
	for i, s := range list {
		if bad := unknownVariable(s); bad != "" {
			errs = append(errs, field.Invalid(path.Index(i), s, fmt.Sprintf("unknown variable %s: want %s or %s", bad, VarNamespace, VarClusterDomain)))
			continue
		}
		e := expand(s, sampleNamespace, sampleClusterDomain)
		expanded = append(expanded, e)
		for _, fe := range apiErrors(&corev1.PodSpec{DNSPolicy: corev1.DNSClusterFirst, DNSConfig: &corev1.PodDNSConfig{Searches: []string{e}}}, path.Index(i)) {
			if e != s {
				fe.Detail += fmt.Sprintf(" (with %s=%s, %s=%s)", VarNamespace, sampleNamespace, VarClusterDomain, sampleClusterDomain)
			}
			errs = append(errs, fe)
		}
	}
	if len(errs) == 0 && joinedLen(expanded) > resolvconf.MaxSearchListChars {
		errs = append(errs, field.Invalid(path, len(list), fmt.Sprintf("must not have more than %d characters (including spaces) in the search list", resolvconf.MaxSearchListChars)))
	}
	return errs
}

func joinedLen(list []string) int {
	n := 0
	for i, s := range list {
		if i > 0 {
			n++
		}
		n += len(s)
	}
	return n
}

// apiErrors validates a one-element DNS config with the API server's rules
// (resolvconf.ValidatePodSpec) and returns its errors at path.
func apiErrors(spec *corev1.PodSpec, path *field.Path) field.ErrorList {
	errs, _ := resolvconf.ValidatePodSpec(spec, field.NewPath("spec"))
	out := make(field.ErrorList, 0, len(errs))
	for _, e := range errs {
		out = append(out, &field.Error{Type: e.Type, Field: path.String(), BadValue: e.BadValue, Detail: e.Detail})
	}
	return out
}

// unknownVariable returns the first $(...) in s that is not a known variable.
func unknownVariable(s string) string {
	for {
		i := strings.Index(s, "$(")
		if i < 0 {
			return ""
		}
		j := strings.IndexByte(s[i:], ')')
		if j < 0 {
			return s[i:]
		}
		v := s[i : i+j+1]
		if v != VarNamespace && v != VarClusterDomain {
			return v
		}
		s = s[i+j+1:]
	}
}

// expand substitutes the template variables in s.
func expand(s, namespace, clusterDomain string) string {
	if !strings.Contains(s, "$(") {
		return s
	}
	s = strings.ReplaceAll(s, VarNamespace, namespace)
	return strings.ReplaceAll(s, VarClusterDomain, clusterDomain)
}
