package nodepool

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/poddns/poddns/pkg/resolvconf"
)

// maxSteps bounds the search over the earlier pools' negations for one pool
// and one term of a pod; past it the pool counts as a candidate.
const maxSteps = 100_000

// Pool is a node pool: the nodes its selector matches (and no earlier pool's)
// and the kubelet DNS configuration they share.
type Pool struct {
	// Name names the pool in warnings, annotations and explanations.
	Name string
	// Selector selects the pool's nodes by label; nil or empty: every node.
	Selector *metav1.LabelSelector
	// Profile is the pool's kubelet DNS configuration.
	Profile *resolvconf.NodeProfile
}

// Set is an ordered list of pools; a node belongs to the first pool whose
// selector matches its labels. A Set is read-only and safe for concurrent
// use.
type Set struct {
	pools []compiled
}

type compiled struct {
	Pool
	sel  labels.Selector
	reqs []requirement // the selector's requirements, all of which hold
}

// NewSet checks and compiles pools: at least one, each with a profile, a
// name of at most 253 characters among letters, digits, '-', '_' and '.',
// unique, and a selector the API server accepts.
func NewSet(pools []Pool) (*Set, error) {
	if len(pools) == 0 {
		return nil, errors.New("no node pool")
	}
	s := &Set{pools: make([]compiled, 0, len(pools))}
	seen := map[string]bool{}
	for i, p := range pools {
		if err := checkName(p.Name); err != nil {
			return nil, fmt.Errorf("pool %d: name: %w", i, err)
		}
		if seen[p.Name] {
			return nil, fmt.Errorf("pool %d: name %q: duplicate", i, p.Name)
		}
		seen[p.Name] = true
		if p.Profile == nil {
			return nil, fmt.Errorf("pool %q: no node profile", p.Name)
		}
		c := compiled{Pool: p, sel: labels.Everything()}
		if p.Selector != nil {
			sel, err := metav1.LabelSelectorAsSelector(p.Selector)
			if err != nil {
				return nil, fmt.Errorf("pool %q: nodeSelector: %w", p.Name, err)
			}
			c.sel = sel
			c.reqs = selectorRequirements(p.Selector)
		}
		s.pools = append(s.pools, c)
	}
	return s, nil
}

func checkName(name string) error {
	if name == "" {
		return errors.New("empty")
	}
	if len(name) > 253 {
		return fmt.Errorf("%q: longer than 253 characters", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("%q: only letters, digits, '-', '_' and '.' are allowed", name)
		}
	}
	return nil
}

// Len is the number of pools.
func (s *Set) Len() int { return len(s.pools) }

// Pools returns the pools in order.
func (s *Set) Pools() []Pool {
	out := make([]Pool, len(s.pools))
	for i, c := range s.pools {
		out[i] = c.Pool
	}
	return out
}

// NodePool returns the pool of a node with nodeLabels: the first whose
// selector matches them; false when none does.
func (s *Set) NodePool(nodeLabels map[string]string) (Pool, bool) {
	for _, c := range s.pools {
		if c.sel.Matches(labels.Set(nodeLabels)) {
			return c.Pool, true
		}
	}
	return Pool{}, false
}

// Candidates returns, in order, the pools a pod with spec can land on (see
// the package documentation). nodeLabels are the labels of the node named by
// spec.nodeName when the caller knows them (nil otherwise): the pod then has
// that node's pool as its one candidate, or none.
func (s *Set) Candidates(spec *corev1.PodSpec, nodeLabels map[string]string) []Pool {
	if spec.NodeName != "" && nodeLabels != nil {
		if p, ok := s.NodePool(nodeLabels); ok {
			return []Pool{p}
		}
		return nil
	}
	terms := podTerms(spec)
	var out []Pool
	for i, c := range s.pools {
		negs := make([][]requirement, i)
		for j := range i {
			negs[j] = negate(s.pools[j].reqs)
		}
		for _, t := range terms {
			steps := 0
			if search(slices.Concat(t, c.reqs), negs, &steps) {
				out = append(out, c.Pool)
				break
			}
		}
	}
	return out
}

// op is a requirement's operator, with the scheduler's meaning.
type op int

const (
	opIn op = iota
	opNotIn
	opExists
	opDoesNotExist
	opGt
	opLt
)

// requirement is one condition on one label of a node.
type requirement struct {
	key    string
	op     op
	values []string // opIn, opNotIn
	n      int64    // opGt, opLt
}

// selectorRequirements are the conditions of a label selector, which
// LabelSelectorAsSelector has accepted.
func selectorRequirements(sel *metav1.LabelSelector) []requirement {
	out := equalities(sel.MatchLabels)
	for _, e := range sel.MatchExpressions {
		o, _ := setOp(string(e.Operator))
		out = append(out, requirement{key: e.Key, op: o, values: e.Values})
	}
	return out
}

// equalities are the requirements that each label of m has its value, in
// the order of the labels.
func equalities(m map[string]string) []requirement {
	var out []requirement
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, requirement{key: k, op: opIn, values: []string{m[k]}})
	}
	return out
}

// setOp is the operator of a set-based condition, spelt alike in label
// selectors (metav1.LabelSelectorOperator) and node selector terms
// (corev1.NodeSelectorOperator); false for any other.
func setOp(o string) (op, bool) {
	switch o {
	case "In":
		return opIn, true
	case "NotIn":
		return opNotIn, true
	case "Exists":
		return opExists, true
	case "DoesNotExist":
		return opDoesNotExist, true
	}
	return 0, false
}

// podTerms are the pod's label requirements in disjunctive form: the node
// must satisfy every requirement of one of the terms. No term: no node.
func podTerms(spec *corev1.PodSpec) [][]requirement {
	base := equalities(spec.NodeSelector)
	aff := spec.Affinity
	if aff == nil || aff.NodeAffinity == nil || aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return [][]requirement{base}
	}
	var terms [][]requirement
	for _, t := range aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		if len(t.MatchExpressions) == 0 && len(t.MatchFields) == 0 {
			continue // an empty term matches no node
		}
		reqs, ok := termRequirements(t)
		if !ok {
			continue // an invalid term matches no node
		}
		// matchFields select nodes by name, unknown here: any node.
		terms = append(terms, slices.Concat(base, reqs))
	}
	return terms
}

// termRequirements are a node selector term's label conditions; false when
// the term is invalid (the scheduler then matches no node with it).
func termRequirements(t corev1.NodeSelectorTerm) ([]requirement, bool) {
	out := make([]requirement, 0, len(t.MatchExpressions))
	for _, e := range t.MatchExpressions {
		r := requirement{key: e.Key, values: e.Values}
		var set bool
		r.op, set = setOp(string(e.Operator))
		switch {
		case set:
		case e.Operator == corev1.NodeSelectorOpGt || e.Operator == corev1.NodeSelectorOpLt:
			if len(e.Values) != 1 {
				return nil, false
			}
			n, err := strconv.ParseInt(e.Values[0], 10, 64)
			if err != nil {
				return nil, false
			}
			r.op, r.n, r.values = opGt, n, nil
			if e.Operator == corev1.NodeSelectorOpLt {
				r.op = opLt
			}
		default:
			return nil, false
		}
		out = append(out, r)
	}
	return out, true
}

// negate returns the requirements one of which holds exactly when not all
// of reqs hold. The negation of no requirement (every node) is none: it
// cannot hold.
func negate(reqs []requirement) []requirement {
	out := make([]requirement, 0, len(reqs))
	for _, r := range reqs {
		n := r
		switch r.op {
		case opIn:
			n.op = opNotIn
		case opNotIn:
			n.op = opIn
		case opExists:
			n.op = opDoesNotExist
		case opDoesNotExist:
			n.op = opExists
		default:
			continue // selectors have no Gt, Lt
		}
		out = append(out, n)
	}
	return out
}

// search reports whether some label set satisfies every requirement of base
// and one requirement of each of negs.
func search(base []requirement, negs [][]requirement, steps *int) bool {
	if !satisfiable(base) {
		return false
	}
	if len(negs) == 0 {
		return true
	}
	for _, r := range negs[0] {
		*steps++
		if *steps > maxSteps {
			return true // too many to try: count it as possible
		}
		if search(append(slices.Clip(base), r), negs[1:], steps) {
			return true
		}
	}
	return false
}

// satisfiable reports whether some label set satisfies every requirement:
// labels are independent, so key by key.
func satisfiable(reqs []requirement) bool {
	byKey := map[string]*keyState{}
	for _, r := range reqs {
		s := byKey[r.key]
		if s == nil {
			s = &keyState{}
			byKey[r.key] = s
		}
		s.add(r)
	}
	for _, s := range byKey {
		if !s.satisfiable() {
			return false
		}
	}
	return true
}

// keyState gathers the requirements on one label.
type keyState struct {
	hasIn   bool
	in      []string // the values every In allows
	notIn   map[string]bool
	exists  bool
	absent  bool
	hasLo   bool
	lo      int64 // value > lo
	hasHi   bool
	hi      int64 // value < hi
	present bool  // some requirement needs the label
}

func (s *keyState) add(r requirement) {
	switch r.op {
	case opIn:
		if !s.hasIn {
			s.hasIn, s.in = true, slices.Clone(r.values)
		} else {
			s.in = slices.DeleteFunc(s.in, func(v string) bool { return !slices.Contains(r.values, v) })
		}
		s.present = true
	case opNotIn:
		if s.notIn == nil {
			s.notIn = map[string]bool{}
		}
		for _, v := range r.values {
			s.notIn[v] = true
		}
	case opExists:
		s.exists, s.present = true, true
	case opDoesNotExist:
		s.absent = true
	case opGt:
		if !s.hasLo || r.n > s.lo {
			s.hasLo, s.lo = true, r.n
		}
		s.present = true
	case opLt:
		if !s.hasHi || r.n < s.hi {
			s.hasHi, s.hi = true, r.n
		}
		s.present = true
	}
}

func (s *keyState) satisfiable() bool {
	if s.absent || !s.present {
		// Absent satisfies NotIn and DoesNotExist, and nothing else.
		return !s.present
	}
	if s.hasIn {
		for _, v := range s.in {
			if !s.notIn[v] && s.inRange(v) {
				return true
			}
		}
		return false
	}
	if !s.hasLo && !s.hasHi {
		return true // a value NotIn does not list
	}
	// An integer in range whose decimal form NotIn does not list; a label
	// value has no sign, so it is at least 0.
	lo := int64(-1)
	if s.hasLo && s.lo > lo {
		lo = s.lo
	}
	if lo == math.MaxInt64 {
		return false
	}
	for n, tries := lo+1, 0; tries <= len(s.notIn); n, tries = n+1, tries+1 {
		if s.hasHi && n >= s.hi {
			return false
		}
		if !s.notIn[strconv.FormatInt(n, 10)] {
			return true
		}
		if n == math.MaxInt64 {
			return false
		}
	}
	return false
}

// inRange reports whether v satisfies the Gt and Lt requirements: it parses
// as an integer within them, as the scheduler compares.
func (s *keyState) inRange(v string) bool {
	if !s.hasLo && !s.hasHi {
		return true
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return false
	}
	return (!s.hasLo || n > s.lo) && (!s.hasHi || n < s.hi)
}
