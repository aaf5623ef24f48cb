package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/poddns/poddns/pkg/resolvconf"
)

// Outcome is what a policy did to a pod.
type Outcome string

const (
	// OutcomeApplied: the policy matched and changed the pod.
	OutcomeApplied Outcome = "applied"
	// OutcomeUnchanged: the policy matched but the pod already was as it
	// wants, or the pod's own settings won.
	OutcomeUnchanged Outcome = "unchanged"
	// OutcomeAudit: the policy matched in audit mode; Changes are what it
	// would change. Nothing was changed.
	OutcomeAudit Outcome = "audit"
	// OutcomeSkipped: the policy matched, but its result for this pod would
	// be rejected by the API server or truncated by kubelet, so it was not
	// applied (Reason says why). The other policies still apply.
	OutcomeSkipped Outcome = "skipped"
	// OutcomeNotMatched: the policy does not select the pod (Reason says
	// which criterion failed).
	OutcomeNotMatched Outcome = "not-matched"
)

// Change is one field a policy changes.
type Change struct {
	// Field is spec.dnsPolicy, spec.dnsConfig (a None switch),
	// spec.dnsConfig.nameservers, spec.dnsConfig.searches or
	// spec.dnsConfig.options[NAME].
	Field string `json:"field"`
	// From and To are the values before and after, as the pod's resolver
	// sees them; "" is unset.
	From string `json:"from"`
	To   string `json:"to"`
	// Reason explains a change that is not literally in the policy (a switch
	// to None).
	Reason string `json:"reason,omitempty"`
}

// Kept is a setting the pod made itself that a policy without override: true
// left alone.
type Kept struct {
	Field  string `json:"field"`
	Pod    string `json:"pod"`
	Policy string `json:"policy"`
}

// Result is what one policy did to one pod.
type Result struct {
	Policy   string  `json:"policy"`
	Priority int32   `json:"priority"`
	Mode     Mode    `json:"mode"` // the effective mode (global override applied)
	Outcome  Outcome `json:"outcome"`
	// Changes are what the policy changed (audit: would change; skipped:
	// would have changed), field by field, in the order made.
	Changes []Change `json:"changes,omitempty"`
	// Kept are the pod's own settings the policy did not override.
	Kept []Kept `json:"kept,omitempty"`
	// Reason says why a policy did not match or was skipped.
	Reason string `json:"reason,omitempty"`
}

// Decision is the outcome of evaluating one pod.
type Decision struct {
	// Exempt, when not empty, says why no policy was evaluated for the pod:
	// the opt-out annotation, a mirror pod, a Windows pod.
	Exempt string `json:"exempt,omitempty"`
	// Results has one entry per policy of the Set, in precedence order
	// (none for an exempt pod).
	Results []Result `json:"results"`
	// DNSPolicy and DNSConfig are the pod's DNS fields after the applied
	// policies (the submitted ones, defaulted, when none changed anything).
	DNSPolicy corev1.DNSPolicy     `json:"dnsPolicy"`
	DNSConfig *corev1.PodDNSConfig `json:"dnsConfig,omitempty"`
	// Changed reports whether DNSPolicy or DNSConfig differ from the pod's.
	Changed bool `json:"changed"`
	// ResolvConf is the file kubelet gives the pod with the new fields on the
	// engine's node profile, with kubelet's Events; PreviewError is kubelet's
	// error instead when it fails the sandbox.
	ResolvConf   string             `json:"resolvConf"`
	Events       []resolvconf.Event `json:"events,omitempty"`
	PreviewError string             `json:"previewError,omitempty"`
	// Invalid are the API server's errors for the DNS fields of the pod as
	// submitted (resolvconf.ValidatePodSpec): such a pod is left exactly as
	// it is, every policy that selects it is skipped, and the API server
	// rejects it with its own message.
	Invalid []string `json:"invalid,omitempty"`
	// PreviewOmitted reports that the annotation poddns.io/resolv-conf is
	// left out: with it the pod's annotations would exceed the API server's
	// limit (a warning says so).
	PreviewOmitted bool `json:"previewOmitted,omitempty"`
	// Warnings are for the client (admission warnings): skipped policies and
	// what audit policies would change.
	Warnings []string `json:"warnings,omitempty"`
	// Pools are the node pools the pod was evaluated on (engines with node
	// pools only), each with its preview; ResolvConf then holds each pool's
	// file under a comment naming the pool when they differ.
	Pools []PoolPreview `json:"pools,omitempty"`
	// PoolsNote says why the pod was evaluated on every pool (PoolsNote).
	PoolsNote string `json:"poolsNote,omitempty"`
}

// Annotation kubelet puts on the mirror pods of static pods.
const annotationMirror = corev1.MirrorPodAnnotationKey

// exemption returns why pod is exempt from every policy, or "".
func exemption(pod *corev1.Pod) string {
	switch {
	case pod.Annotations[AnnotationSkip] == "true":
		return "the pod opts out with the annotation " + AnnotationSkip + `: "true"`
	case pod.Annotations[annotationMirror] != "":
		return "mirror pod of a static pod: kubelet ignores changes made at admission"
	case pod.Spec.OS != nil && pod.Spec.OS.Name == corev1.Windows:
		return "Windows pod: kubelet's Windows DNS differs from what poddns models"
	}
	return ""
}

// Applied returns the names of the policies that changed the pod, in order.
func (d *Decision) Applied() []string {
	var names []string
	for _, r := range d.results(func(o Outcome) bool { return o == OutcomeApplied }) {
		names = append(names, r.Policy)
	}
	return names
}

// Skipped returns the results of the policies skipped for this pod.
func (d *Decision) Skipped() []Result {
	return d.results(func(o Outcome) bool { return o == OutcomeSkipped })
}

// Audited returns the results of the matched audit-mode policies.
func (d *Decision) Audited() []Result {
	return d.results(func(o Outcome) bool { return o == OutcomeAudit })
}

// Matched returns the results of every policy that selected the pod.
func (d *Decision) Matched() []Result {
	return d.results(func(o Outcome) bool { return o != OutcomeNotMatched })
}

// results returns the results whose outcome keep accepts, in order.
func (d *Decision) results(keep func(Outcome) bool) []Result {
	var out []Result
	for _, r := range d.Results {
		if keep(r.Outcome) {
			out = append(out, r)
		}
	}
	return out
}

// SetDNSFields sets pod's dnsPolicy and dnsConfig (a deep copy) to the
// decision's, and nothing else (Mutate adds the annotations).
func (d *Decision) SetDNSFields(pod *corev1.Pod) {
	pod.Spec.DNSPolicy = d.DNSPolicy
	pod.Spec.DNSConfig = d.DNSConfig.DeepCopy()
}

// Evaluate decides what the policies do to pod, a pod being created in the
// namespace pod.Namespace — the admission handler sets it from the request,
// as pods of controllers may come without one — whose Namespace has
// namespaceLabels (kubernetes.io/metadata.name is added when missing). pod
// is not modified; an empty dnsPolicy is taken as ClusterFirst, as the API
// server defaults it. A pod with the annotation poddns.io/skip: "true", a
// mirror pod or a Windows pod is exempt (Decision.Exempt). Evaluate is pure
// and never fails: what cannot be done is in the Decision; Decision.Mutate
// applies it.
func (e *Engine) Evaluate(pod *corev1.Pod, namespaceLabels map[string]string) Decision {
	if e.pools != nil {
		return e.evaluatePools(pod, namespaceLabels, nil)
	}
	d, ev := e.evaluateOn(e.profile, pod, namespaceLabels, nil)
	ev.fit(pod, &d)
	return d
}

// fit is fitAnnotations for a decision made on one profile: when the
// annotation that records the change does not fit, the change is not made
// (tooling reverts applied policies from it).
func (ev *evaluation) fit(pod *corev1.Pod, d *Decision) {
	if d.Changed && !ev.fitAnnotations(pod, d) {
		ev.reset()
		ev.decide(d)
	}
}

// reset takes the evaluation back to the pod as submitted.
func (ev *evaluation) reset() {
	ev.cur = ev.orig
	ev.curResOK = false
}

// evaluateOn is Evaluate on one node profile, but for the annotations'
// size (fitAnnotations). The policies named in excluded are skipped with
// the reason given there (node pools: a policy that fails on another pool
// the pod can land on).
func (e *Engine) evaluateOn(profile *resolvconf.NodeProfile, pod *corev1.Pod, namespaceLabels map[string]string, excluded map[string]string) (Decision, *evaluation) {
	set := e.Set()
	ev := newEvaluation(e, profile, pod)
	ev.matches = make([]int8, set.selectors)
	nsLabels := labels.Set(withMetadataName(namespaceLabels, pod.Namespace))
	podLabels := labels.Set(pod.Labels)
	if excluded != nil {
		ev.trail = make([]state, 0, len(set.policies))
	}

	d := Decision{Exempt: exemption(pod)}
	if d.Exempt == "" {
		d.Results = make([]Result, 0, len(set.policies))
		// A pod the API server rejects as submitted is never "repaired":
		// it keeps its fields, so that the API server says what is wrong.
		d.Invalid = ev.curErrs
	}
	for _, c := range set.policies {
		if d.Exempt != "" {
			break
		}
		if ev.trail != nil && len(d.Results) > 0 {
			ev.trail = append(ev.trail, ev.cur) // after the previous policy
		}
		// The result is filled in place: a Result is large, and 200 of
		// them are written per pod.
		d.Results = append(d.Results, Result{Policy: c.name, Priority: c.priority, Mode: e.effectiveMode(c)})
		r := &d.Results[len(d.Results)-1]
		if reason := c.mismatch(ev, nsLabels, podLabels); reason != "" {
			r.Outcome, r.Reason = OutcomeNotMatched, reason
			continue
		}
		if d.Invalid != nil {
			r.Outcome, r.Reason = OutcomeSkipped, invalidReason
			continue
		}
		if reason, ok := excluded[c.name]; ok {
			r.Outcome, r.Reason = OutcomeSkipped, reason
		} else {
			ev.evaluate(c, r)
		}
		switch {
		case r.Outcome == OutcomeSkipped && r.Mode == ModeAudit:
			d.Warnings = append(d.Warnings, fmt.Sprintf("poddns: policy %q (audit) would not be applied: %s", c.name, r.Reason))
		case r.Outcome == OutcomeSkipped:
			d.Warnings = append(d.Warnings, fmt.Sprintf("poddns: policy %q not applied: %s", c.name, r.Reason))
		case r.Outcome == OutcomeAudit && len(r.Changes) > 0:
			d.Warnings = append(d.Warnings, fmt.Sprintf("poddns: policy %q (audit) would change %s", c.name, describeChanges(r.Changes)))
		}
	}
	if ev.trail != nil && len(d.Results) > 0 {
		ev.trail = append(ev.trail, ev.cur)
	}
	if d.Invalid != nil && len(d.Matched()) > 0 {
		d.Warnings = append(d.Warnings, "poddns: the pod is left unchanged: the API server rejects its DNS settings: "+strings.Join(d.Invalid, "; "))
	}
	ev.decide(&d)
	return d, ev
}

// invalidReason is the Reason of every policy that selects a pod the API
// server rejects as submitted.
const invalidReason = "the pod as submitted is rejected by the API server (its DNS fields are invalid): poddns leaves it unchanged"

// decide fills the decision's DNS fields and preview from the current state.
func (ev *evaluation) decide(d *Decision) {
	d.DNSPolicy = ev.cur.policy
	d.DNSConfig = ev.cur.config.DeepCopy()
	d.Changed = d.DNSPolicy != ev.orig.policy || !equality.Semantic.DeepEqual(d.DNSConfig, ev.orig.config)
	// The preview is kubelet's result for the final state, which the last
	// applied policy's check has usually computed already.
	d.ResolvConf, d.Events, d.PreviewError = "", nil, ""
	res, err := ev.curKubelet()
	if err != nil {
		d.PreviewError = err.Error()
	} else {
		d.ResolvConf = res.Config.Render()
		d.Events = res.Events
	}
}

// fitAnnotations checks that the annotations Patch writes fit in the API
// server's limit on a pod's annotations (the sum of the lengths of keys and
// values, apimachinery's ValidateAnnotationsSize). When only the preview
// does not fit, it is omitted (PreviewOmitted) with a warning. When not even
// AnnotationApplied and AnnotationOriginal fit, every applied policy is
// marked skipped with a warning and fitAnnotations returns false: the caller
// leaves the pod as it is.
func (ev *evaluation) fitAnnotations(pod *corev1.Pod, d *Decision) bool {
	ann := make(map[string]string, len(pod.Annotations)+3)
	maps.Copy(ann, pod.Annotations)
	delete(ann, AnnotationResolvConf)
	ann[AnnotationApplied] = strings.Join(d.Applied(), ",")
	ann[AnnotationOriginal] = EncodeOriginal(pod)
	if apivalidation.ValidateAnnotationsSize(ann) != nil {
		reason := fmt.Sprintf("the pod's annotations leave no room for %s and %s: with them they would total %d bytes, the API server allows %d; a change that cannot be recorded is not made",
			AnnotationApplied, AnnotationOriginal, annotationsSize(ann), apivalidation.TotalAnnotationSizeLimitB)
		for i := range d.Results {
			if r := &d.Results[i]; r.Outcome == OutcomeApplied {
				r.Outcome, r.Reason = OutcomeSkipped, reason
			}
		}
		d.Warnings = append(d.Warnings, "poddns: the pod is left unchanged: "+reason)
		return false
	}
	if d.PreviewError == "" {
		ann[AnnotationResolvConf] = d.ResolvConf
		if apivalidation.ValidateAnnotationsSize(ann) != nil {
			d.PreviewOmitted = true
			d.Warnings = append(d.Warnings, fmt.Sprintf("poddns: the annotation %s is left out: with it the pod's annotations would exceed the API server's limit of %d bytes", AnnotationResolvConf, apivalidation.TotalAnnotationSizeLimitB))
		}
	}
	return true
}

// annotationsSize is what ValidateAnnotationsSize counts.
func annotationsSize(ann map[string]string) int {
	n := 0
	for k, v := range ann {
		n += len(k) + len(v)
	}
	return n
}

func (e *Engine) effectiveMode(c *compiled) Mode {
	switch e.mode {
	case GlobalEnforce:
		return ModeEnforce
	case GlobalAudit:
		return ModeAudit
	}
	return c.mode
}

// describeChanges is "F from A to B; ..." for a warning.
func describeChanges(cs []Change) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("%s from %s to %s", c.Field, orUnset(c.From), orUnset(c.To))
	}
	return strings.Join(parts, "; ")
}

func orUnset(s string) string {
	if s == "" {
		return "(unset)"
	}
	return s
}

// mismatch returns why c does not select the pod, or "". The texts are
// prepared at compile time (compileReasons): 200 policies are checked per pod.
func (c *compiled) mismatch(ev *evaluation, nsLabels, podLabels labels.Set) string {
	if slices.Contains(c.excluded, ev.namespace) {
		return c.reasons.excluded
	}
	if c.hostNetwork != nil && *c.hostNetwork != ev.hostNetwork {
		return c.reasons.hostNetwork
	}
	if c.dnsPolicies != nil && !slices.Contains(c.dnsPolicies, ev.orig.policy) {
		return "dnsPolicy is " + string(ev.orig.policy) + c.reasons.dnsPolicies
	}
	if c.nsSelector != nil && !ev.match(c.nsSel, c.nsSelector, nsLabels) {
		return c.reasons.nsSelector
	}
	if c.podSelector != nil && !ev.match(c.podSel, c.podSelector, podLabels) {
		return c.reasons.podSelector
	}
	return ""
}

// match is sel.Matches(set), remembered for the rest of the evaluation under
// the selector's number id (internSelectors): the labels do not change
// during one Evaluate, and many policies share a selector.
func (ev *evaluation) match(id int, sel labels.Selector, set labels.Set) bool {
	if id < 0 || id >= len(ev.matches) {
		return sel.Matches(set)
	}
	switch ev.matches[id] {
	case matchYes:
		return true
	case matchNo:
		return false
	}
	ok := sel.Matches(set)
	ev.matches[id] = matchNo
	if ok {
		ev.matches[id] = matchYes
	}
	return ok
}

// Values of evaluation.matches.
const (
	matchUnknown int8 = iota
	matchYes
	matchNo
)

// reasons are the texts of mismatch.
type reasons struct {
	excluded, hostNetwork, dnsPolicies, nsSelector, podSelector string
}

func (c *compiled) compileReasons() {
	c.reasons.excluded = fmt.Sprintf("the namespace is in excludedNamespaces %v", c.excluded)
	if c.hostNetwork != nil {
		c.reasons.hostNetwork = fmt.Sprintf("hostNetwork is %t, the policy wants %t", !*c.hostNetwork, *c.hostNetwork)
	}
	c.reasons.dnsPolicies = fmt.Sprintf(", the policy wants one of %v", c.dnsPolicies)
	if c.nsSelector != nil {
		c.reasons.nsSelector = fmt.Sprintf("namespaceSelector %q does not match the namespace's labels", c.nsSelector.String())
	}
	if c.podSelector != nil {
		c.reasons.podSelector = fmt.Sprintf("podSelector %q does not match the pod's labels", c.podSelector.String())
	}
}

// state is a pod's DNS fields while policies apply.
type state struct {
	policy corev1.DNSPolicy
	config *corev1.PodDNSConfig
}

func (s state) clone() state { return state{policy: s.policy, config: s.config.DeepCopy()} }

// pod is a minimal pod with s's DNS fields for resolvconf.
func (s state) pod(ev *evaluation) *corev1.Pod {
	p := &corev1.Pod{}
	p.Name, p.Namespace, p.UID = ev.name, ev.namespace, ev.uid
	p.Spec.HostNetwork = ev.hostNetwork
	p.Spec.DNSPolicy = s.policy
	p.Spec.DNSConfig = s.config
	return p
}

// evaluation is one Evaluate call: the pod as submitted and as the policies
// leave it so far, with the API errors and kubelet truncation events of that
// state, so each policy is blamed only for what it adds.
type evaluation struct {
	e           *Engine
	profile     *resolvconf.NodeProfile
	name        string
	namespace   string
	uid         types.UID
	hostNetwork bool
	orig        state // as submitted, defaulted
	cur         state // after the policies applied so far
	curErrs     []string
	curForming  []string
	// curRes is kubelet's result for cur once computed (curResOK): most
	// policies start from the same state, and the last check of an applied
	// policy is the preview.
	curRes   resolvconf.Result
	curErr   error
	curResOK bool
	// bases are kubelet's results for a state without dnsConfig, by
	// dnsPolicy (applier.base).
	bases []baseResult
	// matches remembers selector results by selector number (match).
	matches []int8
	// trail, when not nil (node pools), is the state after each policy, by
	// the policy's index in the Set.
	trail []state
}

type baseResult struct {
	policy corev1.DNSPolicy
	config resolvconf.Config
	err    error
}

// curKubelet is resolvconf.Compute for the current state, computed once per
// state. The result is shared: callers must not modify it.
func (ev *evaluation) curKubelet() (resolvconf.Result, error) {
	if !ev.curResOK {
		ev.curRes, ev.curErr = resolvconf.Compute(ev.cur.pod(ev), ev.profile)
		ev.curResOK = true
	}
	return ev.curRes, ev.curErr
}

// base is kubelet's result for a state with dnsPolicy policy and no
// dnsConfig, computed once per policy. The result is shared: callers must not
// modify it.
func (ev *evaluation) base(policy corev1.DNSPolicy) (resolvconf.Config, error) {
	for _, b := range ev.bases {
		if b.policy == policy {
			return b.config, b.err
		}
	}
	s := state{policy: policy}
	res, err := resolvconf.Compute(s.pod(ev), ev.profile)
	ev.bases = append(ev.bases, baseResult{policy: policy, config: res.Config, err: err})
	return res.Config, err
}

func newEvaluation(e *Engine, profile *resolvconf.NodeProfile, pod *corev1.Pod) *evaluation {
	ev := &evaluation{
		e:           e,
		profile:     profile,
		name:        pod.Name,
		namespace:   pod.Namespace,
		uid:         pod.UID,
		hostNetwork: pod.Spec.HostNetwork,
		orig:        state{policy: pod.Spec.DNSPolicy, config: pod.Spec.DNSConfig},
	}
	if ev.orig.policy == "" {
		ev.orig.policy = corev1.DNSClusterFirst
	}
	ev.cur = ev.orig.clone()
	ev.curErrs, ev.curForming, ev.curRes, ev.curErr, ev.curResOK = ev.check(ev.cur)
	return ev
}

// specPath is where check validates; a field.Path is immutable.
var specPath = field.NewPath("spec")

// check returns the API errors of s and kubelet's DNSConfigForming messages,
// and kubelet's result for s when it was computed (ok).
func (ev *evaluation) check(s state) (errs, forming []string, res resolvconf.Result, resErr error, ok bool) {
	spec := corev1.PodSpec{DNSPolicy: s.policy, DNSConfig: s.config, HostNetwork: ev.hostNetwork}
	fieldErrs, _ := resolvconf.ValidatePodSpec(&spec, specPath)
	for _, fe := range fieldErrs {
		errs = append(errs, fe.Error())
	}
	if len(fieldErrs) > 0 {
		return errs, nil, res, nil, false
	}
	res, resErr = resolvconf.Compute(s.pod(ev), ev.profile)
	if resErr != nil {
		return errs, nil, res, resErr, true
	}
	for _, event := range res.Events {
		if event.Reason == resolvconf.ReasonDNSConfigForming {
			forming = append(forming, event.Message)
		}
	}
	return errs, forming, res, nil, true
}

// evaluate applies c to the current state and fills r; the state moves on
// only when c is enforced and valid.
func (ev *evaluation) evaluate(c *compiled, r *Result) {
	// next shares cur's dnsConfig until the applier changes it (edit).
	next := ev.cur
	a := applier{ev: ev, c: c, st: &next}
	if err := a.apply(); err != nil {
		r.Outcome, r.Reason, r.Changes, r.Kept = OutcomeSkipped, err.Error(), a.changes, a.kept
		return
	}
	r.Changes, r.Kept = a.changes, a.kept
	if len(a.changes) == 0 {
		r.Outcome = OutcomeUnchanged
		return
	}
	errs, forming, res, resErr, resOK := ev.check(next)
	if added := newItems(errs, ev.curErrs); len(added) > 0 {
		r.Outcome = OutcomeSkipped
		r.Reason = "the API server would reject the result: " + strings.Join(added, "; ")
		return
	}
	if added := newItems(forming, ev.curForming); len(added) > 0 {
		r.Outcome = OutcomeSkipped
		r.Reason = "kubelet would truncate the result: " + strings.Join(added, "; ")
		return
	}
	if r.Mode == ModeAudit {
		r.Outcome = OutcomeAudit
		return
	}
	r.Outcome = OutcomeApplied
	ev.cur, ev.curErrs, ev.curForming = next, errs, forming
	ev.curRes, ev.curErr, ev.curResOK = res, resErr, resOK
}

func newItems(list, before []string) []string {
	var out []string
	for _, s := range list {
		if !slices.Contains(before, s) {
			out = append(out, s)
		}
	}
	return out
}
