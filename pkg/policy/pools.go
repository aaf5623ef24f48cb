package policy

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/poddns/poddns/pkg/nodepool"
	"github.com/poddns/poddns/pkg/resolvconf"
)

// PoolPreview is the pod's resolv.conf on one node pool it can land on.
type PoolPreview struct {
	// Pool names the node pool.
	Pool string `json:"pool"`
	// ResolvConf, Events and PreviewError are as in Decision, on the pool's
	// profile.
	ResolvConf   string             `json:"resolvConf"`
	Events       []resolvconf.Event `json:"events,omitempty"`
	PreviewError string             `json:"previewError,omitempty"`
}

// PoolsNote is Decision.PoolsNote for a pod whose requirements match no
// pool.
const PoolsNote = "no node pool's selector can match a node this pod can land on: it was checked on every pool"

// evaluatePools is Evaluate on the candidate pools of the pod (all pools
// when it has none; nodeLabels are its node's when known): evaluated on
// each; a policy skipped on some pool but not on every one is skipped on
// all, with the reason naming the pool; a policy whose result differs from
// pool to pool (the pod gets one dnsConfig) is skipped too; again until
// nothing changes. The previews are per pool.
func (e *Engine) evaluatePools(pod *corev1.Pod, namespaceLabels, nodeLabels map[string]string) Decision {
	cands := e.pools.Candidates(&pod.Spec, nodeLabels)
	note := ""
	if len(cands) == 0 {
		cands, note = e.pools.Pools(), PoolsNote
	}
	excluded := map[string]string{}
	ds := make([]Decision, len(cands))
	evs := make([]*evaluation, len(cands))
	// Each round excludes at least one more policy, or ends.
	for range e.Set().Len() + 1 {
		for i, c := range cands {
			ds[i], evs[i] = e.evaluateOn(c.Profile, pod, namespaceLabels, excluded)
		}
		if ds[0].Exempt != "" || ds[0].Invalid != nil {
			break
		}
		if !excludeSkipped(ds, cands, excluded) && !excludeDivergent(ds, evs, cands, excluded) {
			break
		}
	}
	d := ds[0]
	d.Warnings = mergeWarnings(ds, cands)
	d.PoolsNote = note
	decidePools(&d, evs, cands)
	if d.Changed && !evs[0].fitAnnotations(pod, &d) {
		for _, ev := range evs {
			ev.reset()
		}
		decidePools(&d, evs, cands)
	}
	return d
}

// excludeSkipped adds to excluded the policies skipped on some pool for a
// reason of that pool's: skipped on some pools only, for different reasons
// on different pools, or for kubelet's reasons (truncation, failure), which
// depend on the node. It reports whether it added any.
func excludeSkipped(ds []Decision, cands []nodepool.Pool, excluded map[string]string) bool {
	added := false
	for i, r := range ds[0].Results {
		if _, ok := excluded[r.Policy]; ok || r.Outcome == OutcomeNotMatched {
			continue
		}
		var on []string
		reason, same := "", true
		for k := range ds {
			rk := ds[k].Results[i]
			if rk.Outcome != OutcomeSkipped {
				continue
			}
			if reason == "" {
				reason = rk.Reason
			}
			same = same && rk.Reason == reason
			on = append(on, fmt.Sprintf("%q", cands[k].Name))
		}
		if len(on) == 0 || len(on) == len(ds) && same && !strings.HasPrefix(reason, "kubelet ") {
			continue
		}
		pools := "node pool " + on[0]
		if len(on) > 1 {
			pools = "node pools " + strings.Join(on, ", ")
		}
		excluded[r.Policy] = fmt.Sprintf("on %s: %s", pools, reason)
		added = true
	}
	return added
}

// excludeDivergent adds to excluded the first policy after which the pod's
// DNS fields differ from pool to pool, when they differ in the end (only
// the end state is the pod's), and reports whether there was one.
func excludeDivergent(ds []Decision, evs []*evaluation, cands []nodepool.Pool, excluded map[string]string) bool {
	same := func(a, b state) bool {
		return a.policy == b.policy && equality.Semantic.DeepEqual(a.config, b.config)
	}
	for k := 1; k < len(evs); k++ {
		if same(evs[0].cur, evs[k].cur) {
			continue
		}
		// The state moves only where a policy applies on some pool.
		for i, r := range ds[0].Results {
			if r.Outcome != OutcomeApplied && ds[k].Results[i].Outcome != OutcomeApplied {
				continue
			}
			if !same(evs[0].trail[i], evs[k].trail[i]) {
				excluded[r.Policy] = fmt.Sprintf("its result depends on the node pool (it differs between %q and %q) and a pod has one dnsConfig for every pool it can land on", cands[0].Name, cands[k].Name)
				return true
			}
		}
	}
	return false
}

// mergeWarnings keeps each pool's warnings in order, once; a warning that
// not every pool gives names the pools that do.
func mergeWarnings(ds []Decision, cands []nodepool.Pool) []string {
	var out []string
	seen := map[string]bool{}
	for k := range ds {
		for _, w := range ds[k].Warnings {
			if seen[w] {
				continue
			}
			seen[w] = true
			var on []string
			for j := range ds {
				if slices.Contains(ds[j].Warnings, w) {
					on = append(on, fmt.Sprintf("%q", cands[j].Name))
				}
			}
			if len(on) < len(ds) {
				label := "node pool "
				if len(on) > 1 {
					label = "node pools "
				}
				w = "poddns: on " + label + strings.Join(on, ", ") + ": " + strings.TrimPrefix(w, "poddns: ")
			}
			out = append(out, w)
		}
	}
	return out
}

// decidePools fills the decision's DNS fields (the same on every pool) and
// its previews: per pool in Pools, and in ResolvConf the one file when every
// pool gives the same, else each pool's under a comment naming it.
// PreviewError is set only when kubelet fails on every pool.
func decidePools(d *Decision, evs []*evaluation, cands []nodepool.Pool) {
	evs[0].decide(d)
	d.Pools = make([]PoolPreview, len(evs))
	same := true
	for k, ev := range evs {
		var pd Decision
		ev.decide(&pd)
		d.Pools[k] = PoolPreview{Pool: cands[k].Name, ResolvConf: pd.ResolvConf, Events: pd.Events, PreviewError: pd.PreviewError}
		if k > 0 && (pd.ResolvConf != d.Pools[0].ResolvConf || pd.PreviewError != d.Pools[0].PreviewError || !slices.Equal(pd.Events, d.Pools[0].Events)) {
			same = false
		}
	}
	if same {
		return
	}
	failed := 0
	d.Events = nil
	for _, p := range d.Pools {
		if p.PreviewError != "" {
			failed++
		}
		for _, ev := range p.Events {
			ev.Message = "node pool " + p.Pool + ": " + ev.Message
			d.Events = append(d.Events, ev)
		}
	}
	var b strings.Builder
	for k, p := range d.Pools {
		WritePoolFile(&b, k, p.Pool, p.ResolvConf, p.PreviewError)
	}
	d.ResolvConf, d.PreviewError = b.String(), ""
	if failed == len(d.Pools) {
		d.PreviewError = "kubelet fails on every node pool: " + d.Pools[0].PreviewError
	}
}

// WritePoolFile writes the k-th (from 0) pool's file of a preview that
// differs from pool to pool: after a blank line unless first, a comment
// "# node pool NAME", kubelet's error as a comment when it fails, then the
// file. The whole is still a resolv.conf: comments are ignored.
func WritePoolFile(b *strings.Builder, k int, pool, resolvConf, kubeletErr string) {
	if k > 0 {
		b.WriteString("\n")
	}
	fmt.Fprintf(b, "# node pool %s\n", pool)
	if kubeletErr != "" {
		fmt.Fprintf(b, "# kubelet fails: %s\n", strings.ReplaceAll(kubeletErr, "\n", " "))
	}
	b.WriteString(resolvConf)
}
