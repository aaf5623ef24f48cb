package policy

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/poddns/poddns/pkg/resolvconf"
)

// applier applies one policy to a state, recording changes and the pod's
// settings it kept. The merge rules are in the package documentation.
type applier struct {
	ev      *evaluation
	c       *compiled
	st      *state
	changes []Change
	kept    []Kept
	// fresh reports that st still equals the evaluation's current state
	// (st starts as its clone), so kubelet's result for it is the one the
	// evaluation keeps. Every change to st clears it.
	fresh bool
	// shared reports that st.config is still the evaluation's current
	// dnsConfig (copy on write: most matching policies change nothing); own
	// copies it before a change.
	shared bool
}

// own gives st a dnsConfig of its own before it is changed in place.
func (a *applier) own() {
	if a.shared {
		a.st.config = a.st.config.DeepCopy()
		a.shared = false
	}
}

func (a *applier) change(fieldPath, from, to, reason string) {
	a.changes = append(a.changes, Change{Field: fieldPath, From: from, To: to, Reason: reason})
}

func (a *applier) keep(fieldPath, pod, policy string) {
	a.kept = append(a.kept, Kept{Field: fieldPath, Pod: pod, Policy: policy})
}

// kubelet is kubelet's result for the state as it is now.
// The result is shared with the evaluation: callers must not modify it.
func (a *applier) kubelet() (resolvconf.Config, error) {
	if a.fresh {
		res, err := a.ev.curKubelet()
		return res.Config, err
	}
	res, err := resolvconf.Compute(a.st.pod(a.ev), a.ev.e.profile)
	return res.Config, err
}

// base is kubelet's result for the state without its dnsConfig: what kubelet
// generates itself, which a dnsConfig cannot take away from.
func (a *applier) base() (resolvconf.Config, error) { return a.ev.base(a.st.policy) }

// config returns st's dnsConfig (made when nil) for the caller to read or
// change; st is no longer fresh.
func (a *applier) config() *corev1.PodDNSConfig {
	a.own()
	a.fresh = false
	if a.st.config == nil {
		a.st.config = &corev1.PodDNSConfig{}
	}
	return a.st.config
}

// origExplicitPolicy reports whether the pod chose its dnsPolicy itself:
// anything but ClusterFirst, which is also what an empty one defaults to.
func (a *applier) origExplicitPolicy() bool { return a.ev.orig.policy != corev1.DNSClusterFirst }

// apply runs the policy's actions. It returns a reason when the policy cannot
// be applied to this pod at all.
func (a *applier) apply() string {
	c, ev := a.c, a.ev
	override := c.override
	orig := ev.orig.config
	if orig == nil {
		orig = &corev1.PodDNSConfig{}
	}

	// dnsPolicy.
	var want corev1.DNSPolicy
	if c.hostNetworkClusterDNS && ev.hostNetwork && a.st.policy == corev1.DNSClusterFirst {
		want = corev1.DNSClusterFirstWithHostNet
	}
	if c.dnsPolicy != "" {
		want = c.dnsPolicy
	}
	policyKept := false
	if want != "" && want != a.st.policy && a.origExplicitPolicy() && ev.orig.policy != want && !override {
		a.keep("spec.dnsPolicy", string(ev.orig.policy), string(want))
		want, policyKept = "", true
	}
	if want != "" && want != a.st.policy && want != corev1.DNSNone {
		a.change("spec.dnsPolicy", string(a.st.policy), string(want), "")
		a.st.policy, a.fresh = want, false
	}

	// What needs None: the policy says so, or it takes away from kubelet's
	// settings (decided against the state as it is).
	isNone := a.st.policy == corev1.DNSNone
	var needNone []string // why, for the explanation
	if want == corev1.DNSNone && !isNone {
		needNone = append(needNone, "the policy sets dnsPolicy None")
	}

	var nameservers []string
	if c.nameservers != nil {
		if len(orig.Nameservers) > 0 && !slices.Equal(orig.Nameservers, c.nameservers) && !override {
			a.keep("spec.dnsConfig.nameservers", fmtList(orig.Nameservers), fmtList(c.nameservers))
		} else {
			nameservers = c.nameservers
			if !isNone {
				k, err := a.kubelet()
				if err != nil {
					return "kubelet fails for this pod: " + err.Error()
				}
				if !slices.Equal(k.Nameservers, nameservers) {
					needNone = append(needNone, "nameservers are replaced")
				}
			}
		}
	}

	var searches []string
	if c.searchReplace != nil {
		list := a.expandAll(c.searchReplace)
		if len(orig.Searches) > 0 && !slices.Equal(orig.Searches, list) && !override {
			a.keep("spec.dnsConfig.searches", fmtList(orig.Searches), fmtList(list))
		} else {
			searches = list
			if !isNone {
				k, err := a.kubelet()
				if err != nil {
					return "kubelet fails for this pod: " + err.Error()
				}
				if !slices.Equal(k.Searches, searches) {
					needNone = append(needNone, "searches are replaced")
				}
			}
		}
	}

	var remove []string
	for _, name := range c.removeOptions {
		if v, ok := optionValue(orig.Options, name); ok && !override {
			a.keep(optionField(name), formatOption(name, v), "(removed)")
			continue
		}
		remove = append(remove, name)
		if !isNone {
			b, err := a.base()
			if err != nil {
				return "kubelet fails for this pod: " + err.Error()
			}
			if hasOptionText(b.Options, name) {
				needNone = append(needNone, fmt.Sprintf("option %s is removed", name))
			}
		}
	}

	if len(needNone) > 0 && !isNone {
		if a.origExplicitPolicy() && ev.orig.policy != corev1.DNSNone && !override {
			if !policyKept {
				a.keep("spec.dnsPolicy", string(ev.orig.policy), "None (because "+strings.Join(needNone, ", ")+")")
			}
			nameservers, searches = nil, nil
			remove = slices.DeleteFunc(remove, func(name string) bool {
				return slices.Contains(needNone, fmt.Sprintf("option %s is removed", name))
			})
		} else {
			k, err := a.kubelet()
			if err != nil {
				return "cannot switch to dnsPolicy None: kubelet fails for this pod: " + err.Error()
			}
			from := a.st.policy
			old := fmtConfig(a.st.config)
			a.st.policy, a.fresh, a.shared = corev1.DNSNone, false, false
			a.st.config = &corev1.PodDNSConfig{
				Nameservers: slices.Clone(k.Nameservers),
				Searches:    slices.Clone(k.Searches),
				Options:     parseOptions(k.Options),
			}
			reason := fmt.Sprintf("%s can only add to what kubelet generates, and %s: the pod switches to None with the complete configuration kubelet would give it on the node profile", from, strings.Join(needNone, ", "))
			if want == corev1.DNSNone {
				reason = "the policy sets dnsPolicy None: the pod gets the complete configuration kubelet would give it on the node profile, then the policy's edits"
			}
			a.change("spec.dnsPolicy", string(from), string(corev1.DNSNone), reason)
			a.change("spec.dnsConfig", old, fmtConfig(a.st.config), "this is kubelet's result for the pod, where the policy's edits start")
			isNone = true
		}
	}

	if isNone {
		if nameservers != nil && !slices.Equal(a.config().Nameservers, nameservers) {
			a.change("spec.dnsConfig.nameservers", fmtList(a.config().Nameservers), fmtList(nameservers), "")
			a.config().Nameservers = slices.Clone(nameservers)
		}
		if searches != nil && !slices.Equal(a.config().Searches, searches) {
			a.change("spec.dnsConfig.searches", fmtList(a.config().Searches), fmtList(searches), "")
			a.config().Searches = slices.Clone(searches)
		}
	}
	for _, name := range remove {
		if a.st.config == nil {
			break
		}
		if v, ok := optionValue(a.st.config.Options, name); ok {
			a.own()
			a.fresh = false
			a.st.config.Options = slices.DeleteFunc(a.st.config.Options, func(o corev1.PodDNSConfigOption) bool { return o.Name == name })
			a.change(optionField(name), formatOption(name, v), "", "")
		}
	}

	// Searches to add: appended when kubelet's list does not have them yet.
	if c.searchAdd != nil {
		add := a.expandAll(c.searchAdd)
		var have []string
		if isNone {
			have = a.config().Searches
		} else {
			k, err := a.kubelet()
			if err != nil {
				return "kubelet fails for this pod: " + err.Error()
			}
			have = k.Searches
		}
		var missing []string
		for _, s := range add {
			if !slices.Contains(have, s) && !slices.Contains(missing, s) {
				missing = append(missing, s)
			}
		}
		if len(missing) > 0 {
			before := fmtList(a.config().Searches)
			a.config().Searches = append(a.config().Searches, missing...)
			a.change("spec.dnsConfig.searches", before, fmtList(a.config().Searches), "")
		}
	}

	// Options to set: upsert by name, unless the pod set the option itself.
	for _, opt := range c.setOptions {
		value := ""
		if opt.Value != nil {
			value = *opt.Value
		}
		if v, ok := optionValue(orig.Options, opt.Name); ok && v != value && !override {
			a.keep(optionField(opt.Name), formatOption(opt.Name, v), formatOption(opt.Name, value))
			continue
		}
		current, has := "", false
		if isNone {
			current, has = optionValue(a.config().Options, opt.Name)
		} else {
			k, err := a.kubelet()
			if err != nil {
				return "kubelet fails for this pod: " + err.Error()
			}
			current, has = optionTextValue(k.Options, opt.Name)
		}
		if has && current == value {
			continue
		}
		from := ""
		if has {
			from = formatOption(opt.Name, current)
		}
		a.config().Options = upsertOption(a.config().Options, opt)
		a.change(optionField(opt.Name), from, formatOption(opt.Name, value), "")
	}
	a.st.normalize()
	a.fresh = false
	return ""
}

// normalize drops empty lists, and an empty dnsConfig of a policy other than
// None, so that equal configurations compare equal. It never changes the
// dnsConfig in place (it may be shared, see applier.shared): it replaces it.
func (s *state) normalize() {
	dc := s.config
	if dc == nil {
		return
	}
	if dc.Nameservers != nil && len(dc.Nameservers) == 0 ||
		dc.Searches != nil && len(dc.Searches) == 0 ||
		dc.Options != nil && len(dc.Options) == 0 {
		n := *dc
		if len(n.Nameservers) == 0 {
			n.Nameservers = nil
		}
		if len(n.Searches) == 0 {
			n.Searches = nil
		}
		if len(n.Options) == 0 {
			n.Options = nil
		}
		dc = &n
		s.config = dc
	}
	if s.policy != corev1.DNSNone && dc.Nameservers == nil && dc.Searches == nil && dc.Options == nil {
		s.config = nil
	}
}

func (a *applier) expandAll(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = expand(s, a.ev.namespace, a.ev.e.profile.Config().ClusterDomain)
	}
	return out
}

func optionField(name string) string { return "spec.dnsConfig.options[" + name + "]" }

// optionValue returns the value of the last option named name (kubelet's
// merge lets a later one win).
func optionValue(opts []corev1.PodDNSConfigOption, name string) (string, bool) {
	value, found := "", false
	for _, o := range opts {
		if o.Name == name {
			found = true
			value = ""
			if o.Value != nil {
				value = *o.Value
			}
		}
	}
	return value, found
}

// optionTextValue finds name in resolv.conf option tokens ("name:value").
func optionTextValue(opts []string, name string) (string, bool) {
	for _, o := range opts {
		n, v, _ := strings.Cut(o, ":")
		if n == name {
			return v, true
		}
	}
	return "", false
}

func hasOptionText(opts []string, name string) bool {
	_, ok := optionTextValue(opts, name)
	return ok
}

// upsertOption sets the value of the options named opt.Name (all of them, so
// kubelet's last-wins merge gives opt's value) or appends opt.
func upsertOption(opts []corev1.PodDNSConfigOption, opt corev1.PodDNSConfigOption) []corev1.PodDNSConfigOption {
	found := false
	for i := range opts {
		if opts[i].Name == opt.Name {
			opts[i].Value = cloneString(opt.Value)
			found = true
		}
	}
	if !found {
		opts = append(opts, corev1.PodDNSConfigOption{Name: opt.Name, Value: cloneString(opt.Value)})
	}
	return opts
}

func cloneString(s *string) *string {
	if s == nil {
		return nil
	}
	v := *s
	return &v
}

// parseOptions turns resolv.conf option tokens into dnsConfig options.
func parseOptions(tokens []string) []corev1.PodDNSConfigOption {
	if len(tokens) == 0 {
		return nil
	}
	out := make([]corev1.PodDNSConfigOption, len(tokens))
	for i, t := range tokens {
		name, value, ok := strings.Cut(t, ":")
		out[i].Name = name
		if ok && value != "" {
			v := value
			out[i].Value = &v
		}
	}
	return out
}

func formatOption(name, value string) string {
	if value == "" {
		return name
	}
	return name + ":" + value
}

func fmtList(list []string) string {
	if len(list) == 0 {
		return ""
	}
	return "[" + strings.Join(list, " ") + "]"
}

// fmtConfig renders a dnsConfig on one line for explanations.
func fmtConfig(dc *corev1.PodDNSConfig) string {
	if dc == nil {
		return ""
	}
	var parts []string
	if len(dc.Nameservers) > 0 {
		parts = append(parts, "nameservers "+fmtList(dc.Nameservers))
	}
	if len(dc.Searches) > 0 {
		parts = append(parts, "searches "+fmtList(dc.Searches))
	}
	if len(dc.Options) > 0 {
		opts := make([]string, len(dc.Options))
		for i, o := range dc.Options {
			v := ""
			if o.Value != nil {
				v = *o.Value
			}
			opts[i] = formatOption(o.Name, v)
		}
		parts = append(parts, "options "+fmtList(opts))
	}
	if len(parts) == 0 {
		return "{}"
	}
	return strings.Join(parts, ", ")
}
