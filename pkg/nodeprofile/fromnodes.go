package nodeprofile

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Node annotations that carry a node's kubelet DNS settings, which Node
// objects do not show: `webhook profile` reads them. Set them where nodes
// are made (a bootstrap script, a DaemonSet), e.g.
//
//	kubectl annotate node N poddns.io/node-resolv-conf="$(cat /etc/resolv.conf)"
const (
	// AnnotationClusterDNS is kubelet's --cluster-dns: IPs, comma-separated.
	AnnotationClusterDNS = "poddns.io/cluster-dns"
	// AnnotationClusterDomain is kubelet's --cluster-domain.
	AnnotationClusterDomain = "poddns.io/cluster-domain"
	// AnnotationNodeResolvConf is the content of the resolver file kubelet
	// reads (--resolv-conf): the host's search domains and options.
	AnnotationNodeResolvConf = "poddns.io/node-resolv-conf"
)

// Node labels FromNodes groups nodes by.
const (
	LabelInstanceType     = corev1.LabelInstanceTypeStable // node.kubernetes.io/instance-type
	LabelInstanceTypeBeta = corev1.LabelInstanceType       // beta.kubernetes.io/instance-type
	LabelOS               = corev1.LabelOSStable           // kubernetes.io/os
)

// DefaultPoolLabels are the labels that name a node's pool, in the order
// FromNodes looks for them: poddns's own, then GKE's, EKS's, AKS's and
// Karpenter's.
var DefaultPoolLabels = []string{
	"poddns.io/pool",
	"cloud.google.com/gke-nodepool",
	"eks.amazonaws.com/nodegroup",
	"kubernetes.azure.com/agentpool",
	"karpenter.sh/nodepool",
}

// FromNodesOptions configure FromNodes.
type FromNodesOptions struct {
	// PoolLabels name a node's pool, the first present winning; nil:
	// DefaultPoolLabels. Nodes with none are grouped by instance type and OS.
	PoolLabels []string
	// Settings, when not nil, is a NodeProfileSet whose defaults are copied
	// and whose profiles, by name, give their pool's kubelet settings: they
	// win over the nodes' annotations field by field. Its selectors are not
	// used.
	Settings *SetFile
}

// FromNodes builds a NodeProfileSet from a cluster's Node objects: one
// profile per pool of nodes, named and selected by the pool label the nodes
// carry (see FromNodesOptions.PoolLabels), else by their instance type and
// OS. Profiles with a pool label come first (in the order of the labels,
// then by name), then those by instance type: a node belongs to the first
// profile that selects it, so a labelled node stays in its pool. The
// kubelet settings come from opts.Settings, else from the nodes'
// annotations (AnnotationClusterDNS, ...), else are left out (the built-in
// defaults then apply). The notes say, for people, what could not be
// filled and where nodes of one pool disagree.
func FromNodes(nodes []corev1.Node, opts FromNodesOptions) (*SetFile, []string) {
	keys := opts.PoolLabels
	if keys == nil {
		keys = DefaultPoolLabels
	}
	var notes []string
	groups := map[string]*nodeGroup{}
	for i := range nodes {
		n := &nodes[i]
		g := newGroup(n.Labels, keys)
		if old, ok := groups[g.id]; ok {
			g = old
		} else {
			groups[g.id] = g
		}
		g.nodes = append(g.nodes, n)
	}
	ordered := make([]*nodeGroup, 0, len(groups))
	for _, g := range groups {
		ordered = append(ordered, g)
	}
	slices.SortFunc(ordered, func(a, b *nodeGroup) int {
		return cmp.Or(cmp.Compare(a.rank, b.rank), cmp.Compare(a.name, b.name), cmp.Compare(a.id, b.id))
	})

	f := &SetFile{APIVersion: APIVersion, Kind: SetKind}
	given := map[string]*SetProfile{}
	if s := opts.Settings; s != nil {
		f.Defaults = s.Defaults
		for i := range s.Profiles {
			given[s.Profiles[i].Name] = &s.Profiles[i]
		}
	}
	used := map[string]bool{}
	for _, g := range ordered {
		name := g.name
		for i := 2; used[name]; i++ {
			name = fmt.Sprintf("%s-%d", g.name, i)
		}
		used[name] = true
		p := SetProfile{Name: name, NodeSelector: g.selector}
		p.Settings, notes = fromAnnotations(name, g.nodes, notes)
		if s, ok := given[name]; ok {
			p.Settings = overlay(p.Settings, s.Settings)
		}
		notes = append(notes, unfilled(name, p.Settings, f.Defaults)...)
		f.Profiles = append(f.Profiles, p)
	}
	var unused []string
	for name := range given {
		if !used[name] {
			unused = append(unused, fmt.Sprintf("profile %q of the settings file is not a pool of the cluster's nodes: left out", name))
		}
	}
	slices.Sort(unused)
	notes = append(notes, unused...)
	if len(nodes) == 0 {
		notes = append(notes, "no nodes: the set has no profile")
	}
	return f, notes
}

// nodeGroup is the nodes of one pool.
type nodeGroup struct {
	id       string // what the nodes share
	name     string
	rank     int // the pool label's index; len(labels) for instance types
	selector *metav1.LabelSelector
	nodes    []*corev1.Node
}

func newGroup(labels map[string]string, keys []string) *nodeGroup {
	for i, k := range keys {
		if v, ok := labels[k]; ok {
			return &nodeGroup{
				id: k + "=" + v, name: poolName(v), rank: i,
				selector: &metav1.LabelSelector{MatchLabels: map[string]string{k: v}},
			}
		}
	}
	g := &nodeGroup{rank: len(keys), selector: &metav1.LabelSelector{}}
	var parts []string
	typeKey := LabelInstanceType
	if _, ok := labels[typeKey]; !ok {
		if _, ok := labels[LabelInstanceTypeBeta]; ok {
			typeKey = LabelInstanceTypeBeta
		}
	}
	for _, k := range []string{typeKey, LabelOS} {
		if v, ok := labels[k]; ok {
			if g.selector.MatchLabels == nil {
				g.selector.MatchLabels = map[string]string{}
			}
			g.selector.MatchLabels[k] = v
			parts = append(parts, v)
			g.id += k + "=" + v + ","
		} else {
			g.selector.MatchExpressions = append(g.selector.MatchExpressions, metav1.LabelSelectorRequirement{Key: k, Operator: metav1.LabelSelectorOpDoesNotExist})
			g.id += "!" + k + ","
		}
	}
	g.name = poolName(strings.Join(parts, "-"))
	if g.name == "" {
		g.name = "other"
	}
	return g
}

// poolName makes v a pool name: characters other than letters, digits, '-',
// '_' and '.' become '-'.
func poolName(v string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '-'
	}, v)
}

// fromAnnotations reads a pool's kubelet settings from its nodes'
// annotations: the value most nodes give (the first node's by name on a
// tie), with a note when nodes disagree or some lack it.
func fromAnnotations(pool string, nodes []*corev1.Node, notes []string) (Settings, []string) {
	slices.SortFunc(nodes, func(a, b *corev1.Node) int { return cmp.Compare(a.Name, b.Name) })
	var s Settings
	for _, key := range []string{AnnotationClusterDNS, AnnotationClusterDomain, AnnotationNodeResolvConf} {
		counts := map[string]int{}
		var order []string
		missing := 0
		for _, n := range nodes {
			v, ok := n.Annotations[key]
			if !ok {
				missing++
				continue
			}
			if counts[v] == 0 {
				order = append(order, v)
			}
			counts[v]++
		}
		if len(order) == 0 {
			continue
		}
		best := order[0]
		for _, v := range order[1:] {
			if counts[v] > counts[best] {
				best = v
			}
		}
		if len(order) > 1 {
			notes = append(notes, fmt.Sprintf("pool %q: its nodes disagree on %s (%d values): using the one of %d of %d nodes", pool, key, len(order), counts[best], len(nodes)))
		}
		if missing > 0 {
			notes = append(notes, fmt.Sprintf("pool %q: %d of %d nodes lack %s", pool, missing, len(nodes), key))
		}
		v := best
		switch key {
		case AnnotationClusterDNS:
			s.ClusterDNS = []string{}
			for ip := range strings.SplitSeq(v, ",") {
				if ip = strings.TrimSpace(ip); ip != "" {
					s.ClusterDNS = append(s.ClusterDNS, ip)
				}
			}
		case AnnotationClusterDomain:
			s.ClusterDomain = &v
		case AnnotationNodeResolvConf:
			if !strings.HasSuffix(v, "\n") {
				v += "\n"
			}
			s.ResolvConfContent = &v
		}
	}
	return s, notes
}

// overlay is base with every field top sets.
func overlay(base, top Settings) Settings {
	if top.ClusterDomain != nil {
		base.ClusterDomain = top.ClusterDomain
	}
	if top.ClusterDNS != nil {
		base.ClusterDNS = top.ClusterDNS
	}
	if top.NodeIPs != nil {
		base.NodeIPs = top.NodeIPs
	}
	if top.ResolvConf != nil {
		base.ResolvConf, base.ResolvConfContent = top.ResolvConf, nil
	}
	if top.ResolvConfContent != nil {
		base.ResolvConfContent = top.ResolvConfContent
	}
	return base
}

// unfilled says which kubelet settings of pool neither it nor the defaults
// give.
func unfilled(pool string, s Settings, defaults *Settings) []string {
	if defaults == nil {
		defaults = &Settings{}
	}
	var out []string
	if s.ClusterDNS == nil && defaults.ClusterDNS == nil {
		out = append(out, fmt.Sprintf("pool %q: cluster DNS unknown: set clusterDNS in the settings file or annotate its nodes with %s; the built-in %s applies", pool, AnnotationClusterDNS, DefaultClusterDNS))
	}
	if s.ClusterDomain == nil && defaults.ClusterDomain == nil {
		out = append(out, fmt.Sprintf("pool %q: cluster domain unknown: set clusterDomain in the settings file or annotate its nodes with %s; the built-in %s applies", pool, AnnotationClusterDomain, DefaultClusterDomain))
	}
	if s.ResolvConf == nil && s.ResolvConfContent == nil && defaults.ResolvConf == nil && defaults.ResolvConfContent == nil {
		out = append(out, fmt.Sprintf("pool %q: the node's resolv.conf (host search domains, options) unknown: set resolvConfContent in the settings file or annotate its nodes with %s; the built-in typical node file applies", pool, AnnotationNodeResolvConf))
	}
	return out
}
