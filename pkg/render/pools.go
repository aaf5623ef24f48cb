package render

import (
	"fmt"
	"slices"
	"strings"

	"github.com/poddns/poddns/pkg/manifest"
	"github.com/poddns/poddns/pkg/nodepool"
	"github.com/poddns/poddns/pkg/policy"
)

// PodOnPools is Pod on node pools: on each of the pools the pod can land on
// (every pool when it matches none), with NodePools naming them. When the
// pools give the same report it is that report; else ResolvConf holds each
// pool's file under a comment naming the pool (as policy.WritePoolFile, and
// the annotation poddns.io/resolv-conf), Events, Error and ClientNotes name
// the pool they are about, and Error is set only when kubelet fails on every
// pool.
func PodOnPools(item manifest.Item, set *nodepool.Set) Report {
	pools := set.Candidates(&item.Pod.Spec, nil)
	if len(pools) == 0 {
		pools = set.Pools()
	}
	return podOn(item, pools)
}

// podOn is PodOnPools on the given pools.
func podOn(item manifest.Item, pools []nodepool.Pool) Report {
	reports := make([]Report, len(pools))
	names := make([]string, len(pools))
	for i, p := range pools {
		reports[i] = Pod(item, p.Profile)
		names[i] = p.Name
	}
	r := reports[0]
	r.NodePools = names
	same := true
	for _, o := range reports[1:] {
		same = same && o.ResolvConf == r.ResolvConf && o.Error == r.Error &&
			slices.Equal(o.Events, r.Events) && slices.Equal(o.ClientNotes, r.ClientNotes)
	}
	if same || len(r.ValidationErrors) > 0 {
		return r // the API server's verdict does not depend on the node
	}
	var b strings.Builder
	failed := 0
	r.Events, r.ClientNotes, r.Error = r.Events[:0:0], []string{}, ""
	for i, o := range reports {
		policy.WritePoolFile(&b, i, names[i], o.ResolvConf, o.Error)
		if o.Error != "" {
			failed++
		}
		for _, ev := range o.Events {
			ev.Message = "node pool " + names[i] + ": " + ev.Message
			r.Events = append(r.Events, ev)
		}
		for _, n := range o.ClientNotes {
			r.ClientNotes = append(r.ClientNotes, "node pool "+names[i]+": "+n)
		}
	}
	r.ResolvConf = b.String()
	if failed == len(reports) {
		r.ResolvConf = ""
		r.Error = fmt.Sprintf("on every node pool; on %s: %s", names[0], reports[0].Error)
	}
	return r
}
