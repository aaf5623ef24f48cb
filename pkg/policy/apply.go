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
//
// The state starts as the evaluation's current one, sharing its dnsConfig:
// reads go through current, every change through setPolicy, edit or
// replace, which copy the dnsConfig before its first change and mark the
// state changed (kubelet's result for it is then computed again).
type applier struct {
	ev      *evaluation
	c       *compiled
	st      *state
	changes []Change
	kept    []Kept
	changed bool // st differs from the evaluation's current state
	owned   bool // st.config is st's own, not the evaluation's
}

func (a *applier) change(fieldPath, from, to, reason string) {
	a.changes = append(a.changes, Change{Field: fieldPath, From: from, To: to, Reason: reason})
}

func (a *applier) keep(fieldPath, pod, policy string) {
	a.kept = append(a.kept, Kept{Field: fieldPath, Pod: pod, Policy: policy})
}

// errKubelet is kubelet failing for the pod: the policy cannot be applied.
type errKubelet struct{ err error }

func (e errKubelet) Error() string { return "kubelet fails for this pod: " + e.err.Error() }

// kubelet is kubelet's result for the state as it is now. It is shared with
// the evaluation: callers must not modify it.
func (a *applier) kubelet() (resolvconf.Config, error) {
	var res resolvconf.Result
	var err error
	if a.changed {
		res, err = resolvconf.Compute(a.st.pod(a.ev), a.ev.profile)
	} else {
		res, err = a.ev.curKubelet()
	}
	if err != nil {
		return res.Config, errKubelet{err}
	}
	return res.Config, nil
}

// base is kubelet's result for the state without its dnsConfig: what kubelet
// generates itself, which a dnsConfig cannot take away from.
func (a *applier) base() (resolvconf.Config, error) {
	b, err := a.ev.base(a.st.policy)
	if err != nil {
		return b, errKubelet{err}
	}
	return b, nil
}

// current is st's dnsConfig to read (empty when it has none).
func (a *applier) current() *corev1.PodDNSConfig {
	if a.st.config == nil {
		return &corev1.PodDNSConfig{}
	}
	return a.st.config
}

// edit returns st's dnsConfig to change (made when nil, copied when still
// the evaluation's).
func (a *applier) edit() *corev1.PodDNSConfig {
	if !a.owned {
		a.st.config, a.owned = a.st.config.DeepCopy(), true
	}
	if a.st.config == nil {
		a.st.config = &corev1.PodDNSConfig{}
	}
	a.changed = true
	return a.st.config
}

// replace gives st the dnsPolicy policy and the dnsConfig dc.
func (a *applier) replace(policy corev1.DNSPolicy, dc *corev1.PodDNSConfig) {
	a.st.policy, a.st.config = policy, dc
	a.changed, a.owned = true, true
}

// origExplicitPolicy reports whether the pod chose its dnsPolicy itself:
// anything but ClusterFirst, which is also what an empty one defaults to.
func (a *applier) origExplicitPolicy() bool { return a.ev.orig.policy != corev1.DNSClusterFirst }

// noneReason is why the state must switch to dnsPolicy None: the policy
// takes away from what kubelet generates (option, when it removes one).
type noneReason struct {
	why    string
	option string
}

func joinReasons(rs []noneReason) string {
	whys := make([]string, len(rs))
	for i, r := range rs {
		whys[i] = r.why
	}
	return strings.Join(whys, ", ")
}

// apply runs the policy's actions. An error is why the policy cannot be
// applied to this pod at all.
func (a *applier) apply() error {
	c := a.c
	orig := a.ev.orig.config
	if orig == nil {
		orig = &corev1.PodDNSConfig{}
	}
	want, policyKept := a.applyPolicy()

	// What needs None: the policy says so, or it takes away from kubelet's
	// settings (decided against the state as it is).
	isNone := a.st.policy == corev1.DNSNone
	var needNone []noneReason
	if want == corev1.DNSNone && !isNone {
		needNone = append(needNone, noneReason{why: "the policy sets dnsPolicy None"})
	}
	nameservers, err := a.replacement("spec.dnsConfig.nameservers", orig.Nameservers, c.nameservers, isNone,
		func(k resolvconf.Config) []string { return k.Nameservers }, "nameservers are replaced", &needNone)
	if err != nil {
		return err
	}
	var searches []string
	if c.searchReplace != nil {
		if searches, err = a.replacement("spec.dnsConfig.searches", orig.Searches, a.expandAll(c.searchReplace), isNone,
			func(k resolvconf.Config) []string { return k.Searches }, "searches are replaced", &needNone); err != nil {
			return err
		}
	}
	var remove []string
	for _, name := range c.removeOptions {
		if v, ok := optionValue(orig.Options, name); ok && !c.override {
			a.keep(optionField(name), formatOption(name, v), "(removed)")
			continue
		}
		remove = append(remove, name)
		if !isNone {
			b, err := a.base()
			if err != nil {
				return err
			}
			if hasOptionText(b.Options, name) {
				needNone = append(needNone, noneReason{why: fmt.Sprintf("option %s is removed", name), option: name})
			}
		}
	}

	if len(needNone) > 0 && !isNone {
		if a.origExplicitPolicy() && a.ev.orig.policy != corev1.DNSNone && !c.override {
			// The pod chose its dnsPolicy: it stays, and so does what only
			// None could take away.
			if !policyKept {
				a.keep("spec.dnsPolicy", string(a.ev.orig.policy), "None (because "+joinReasons(needNone)+")")
			}
			nameservers, searches = nil, nil
			remove = slices.DeleteFunc(remove, func(name string) bool {
				return slices.ContainsFunc(needNone, func(r noneReason) bool { return r.option == name })
			})
		} else {
			if err := a.switchToNone(want, needNone); err != nil {
				return err
			}
			isNone = true
		}
	}
	if isNone {
		a.setList("spec.dnsConfig.nameservers", func(dc *corev1.PodDNSConfig) *[]string { return &dc.Nameservers }, nameservers)
		a.setList("spec.dnsConfig.searches", func(dc *corev1.PodDNSConfig) *[]string { return &dc.Searches }, searches)
	}
	a.removeOptions(remove)
	if err := a.addSearches(isNone); err != nil {
		return err
	}
	if err := a.setOptions(orig, isNone); err != nil {
		return err
	}
	a.st.normalize()
	a.changed = true
	return nil
}

// applyPolicy applies the policy's dnsPolicy, but None (which apply decides
// with the rest). It returns the dnsPolicy wanted ("" for none) and whether
// the pod's own was kept.
func (a *applier) applyPolicy() (want corev1.DNSPolicy, kept bool) {
	c, ev := a.c, a.ev
	if c.hostNetworkClusterDNS && ev.hostNetwork && a.st.policy == corev1.DNSClusterFirst {
		want = corev1.DNSClusterFirstWithHostNet
	}
	if c.dnsPolicy != "" {
		want = c.dnsPolicy
	}
	if want != "" && want != a.st.policy && a.origExplicitPolicy() && ev.orig.policy != want && !c.override {
		a.keep("spec.dnsPolicy", string(ev.orig.policy), string(want))
		return "", true
	}
	if want != "" && want != a.st.policy && want != corev1.DNSNone {
		a.change("spec.dnsPolicy", string(a.st.policy), string(want), "")
		a.replace(want, a.st.config)
		a.owned = false // the dnsConfig is still the evaluation's
	}
	return want, false
}

// replacement is the list the policy replaces a field with (policy; nil:
// the policy does not), or nil when the pod set the field itself and the
// policy does not override it. Outside None, a list that differs from
// kubelet's (of) needs None, for why.
func (a *applier) replacement(field string, pod, policy []string, isNone bool, of func(resolvconf.Config) []string, why string, needNone *[]noneReason) ([]string, error) {
	if policy == nil {
		return nil, nil
	}
	if len(pod) > 0 && !slices.Equal(pod, policy) && !a.c.override {
		a.keep(field, fmtList(pod), fmtList(policy))
		return nil, nil
	}
	if !isNone {
		k, err := a.kubelet()
		if err != nil {
			return nil, err
		}
		if !slices.Equal(of(k), policy) {
			*needNone = append(*needNone, noneReason{why: why})
		}
	}
	return policy, nil
}

// switchToNone gives the state dnsPolicy None with kubelet's complete
// configuration for it, where the policy's edits start.
func (a *applier) switchToNone(want corev1.DNSPolicy, needNone []noneReason) error {
	k, err := a.kubelet()
	if err != nil {
		return fmt.Errorf("cannot switch to dnsPolicy None: %w", err)
	}
	from, old := a.st.policy, fmtConfig(a.st.config)
	a.replace(corev1.DNSNone, &corev1.PodDNSConfig{
		Nameservers: slices.Clone(k.Nameservers),
		Searches:    slices.Clone(k.Searches),
		Options:     parseOptions(k.Options),
	})
	reason := fmt.Sprintf("%s can only add to what kubelet generates, and %s: the pod switches to None with the complete configuration kubelet would give it on the node profile", from, joinReasons(needNone))
	if want == corev1.DNSNone {
		reason = "the policy sets dnsPolicy None: the pod gets the complete configuration kubelet would give it on the node profile, then the policy's edits"
	}
	a.change("spec.dnsPolicy", string(from), string(corev1.DNSNone), reason)
	a.change("spec.dnsConfig", old, fmtConfig(a.st.config), "this is kubelet's result for the pod, where the policy's edits start")
	return nil
}

// setList sets the list field of the dnsConfig to list, when list is not
// nil and differs.
func (a *applier) setList(field string, of func(*corev1.PodDNSConfig) *[]string, list []string) {
	if list == nil || slices.Equal(*of(a.current()), list) {
		return
	}
	a.change(field, fmtList(*of(a.current())), fmtList(list), "")
	*of(a.edit()) = slices.Clone(list)
}

// removeOptions removes the options named from the dnsConfig.
func (a *applier) removeOptions(names []string) {
	for _, name := range names {
		if v, ok := optionValue(a.current().Options, name); ok {
			dc := a.edit()
			dc.Options = slices.DeleteFunc(dc.Options, func(o corev1.PodDNSConfigOption) bool { return o.Name == name })
			a.change(optionField(name), formatOption(name, v), "", "")
		}
	}
}

// addSearches appends the searches to add that kubelet's list (None: the
// dnsConfig's) does not have yet.
func (a *applier) addSearches(isNone bool) error {
	if a.c.searchAdd == nil {
		return nil
	}
	have := a.current().Searches
	if !isNone {
		k, err := a.kubelet()
		if err != nil {
			return err
		}
		have = k.Searches
	}
	var missing []string
	for _, s := range a.expandAll(a.c.searchAdd) {
		if !slices.Contains(have, s) && !slices.Contains(missing, s) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		before := fmtList(a.current().Searches)
		dc := a.edit()
		dc.Searches = append(dc.Searches, missing...)
		a.change("spec.dnsConfig.searches", before, fmtList(dc.Searches), "")
	}
	return nil
}

// setOptions upserts the options to set by name, unless the pod set the
// option itself (orig) and the policy does not override it.
func (a *applier) setOptions(orig *corev1.PodDNSConfig, isNone bool) error {
	for _, opt := range a.c.setOptions {
		value := ""
		if opt.Value != nil {
			value = *opt.Value
		}
		if v, ok := optionValue(orig.Options, opt.Name); ok && v != value && !a.c.override {
			a.keep(optionField(opt.Name), formatOption(opt.Name, v), formatOption(opt.Name, value))
			continue
		}
		current, has := optionValue(a.current().Options, opt.Name)
		if !isNone {
			k, err := a.kubelet()
			if err != nil {
				return err
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
		dc := a.edit()
		dc.Options = upsertOption(dc.Options, opt)
		a.change(optionField(opt.Name), from, formatOption(opt.Name, value), "")
	}
	return nil
}

// normalize drops empty lists, and an empty dnsConfig of a policy other than
// None, so that equal configurations compare equal. It never changes the
// dnsConfig in place (it may be shared, see applier.shared): it replaces it.
func (s *state) normalize() {
	dc := CompactDNSConfig(s.config)
	if dc == nil {
		return
	}
	s.config = dc
	if s.policy != corev1.DNSNone && dc.Nameservers == nil && dc.Searches == nil && dc.Options == nil {
		s.config = nil
	}
}

// CompactDNSConfig makes dc's empty lists nil, so that [] and an omitted
// list compare equal. It returns dc itself when no list is empty, else a
// shallow copy: dc is never changed.
func CompactDNSConfig(dc *corev1.PodDNSConfig) *corev1.PodDNSConfig {
	if dc == nil {
		return nil
	}
	if (dc.Nameservers == nil || len(dc.Nameservers) > 0) &&
		(dc.Searches == nil || len(dc.Searches) > 0) &&
		(dc.Options == nil || len(dc.Options) > 0) {
		return dc // no empty list to drop
	}
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
	return &n
}

func (a *applier) expandAll(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = expand(s, a.ev.namespace, a.ev.profile.Config().ClusterDomain)
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
