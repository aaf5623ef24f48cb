package kubeletdiff

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// shrink greedily simplifies a disagreeing case while it still shows a
// disagreement of the given kind (see diffKinds).
func shrink(t testing.TB, dir string, tc *tcase, kind string) *tcase {
	cur := clone(tc)
	for steps := 0; steps < 2000; steps++ {
		improved := false
		for _, cand := range candidates(cur) {
			if slices.Contains(diffKinds(check(t, dir, cand)), kind) {
				cur, improved = cand, true
				break
			}
		}
		if !improved {
			break
		}
	}
	return cur
}

func clone(tc *tcase) *tcase {
	c := &tcase{Name: tc.Name, Node: tc.Node}
	c.Node.ClusterDNS = slices.Clone(tc.Node.ClusterDNS)
	for _, p := range tc.Pods {
		c.Pods = append(c.Pods, p.DeepCopy())
	}
	return c
}

// candidates lists strictly simpler variants of tc.
func candidates(tc *tcase) []*tcase {
	var out []*tcase
	add := func(f func(c *tcase) bool) {
		c := clone(tc)
		if f(c) {
			out = append(out, c)
		}
	}
	// Fewer pods.
	if len(tc.Pods) > 1 {
		for i := range tc.Pods {
			add(func(c *tcase) bool { c.Pods = []*corev1.Pod{c.Pods[i]}; return true })
		}
	}
	// Node.
	add(func(c *tcase) bool { ok := c.Node.Inline; c.Node.Inline = false; return ok })
	add(func(c *tcase) bool { ok := c.Node.NodeIPSplit; c.Node.NodeIPSplit = false; return ok })
	add(func(c *tcase) bool {
		ok := c.Node.FileName != "resolv.conf"
		c.Node.FileName = "resolv.conf"
		return ok
	})
	add(func(c *tcase) bool { ok := c.Node.NodeIP != ""; c.Node.NodeIP = ""; return ok })
	add(func(c *tcase) bool { ok := c.Node.ClusterDomain != ""; c.Node.ClusterDomain = ""; return ok })
	add(func(c *tcase) bool {
		ok := c.Node.ClusterDomain != "" && c.Node.ClusterDomain != "cluster.local"
		c.Node.ClusterDomain = "cluster.local"
		return ok
	})
	for i := range tc.Node.ClusterDNS {
		add(func(c *tcase) bool { c.Node.ClusterDNS = slices.Delete(c.Node.ClusterDNS, i, i+1); return true })
	}
	if tc.Node.Mode == modeFile {
		lines := strings.SplitAfter(tc.Node.Content, "\n")
		for i := range lines {
			add(func(c *tcase) bool {
				c.Node.Content = strings.Join(slices.Delete(slices.Clone(lines), i, i+1), "")
				return true
			})
		}
		add(func(c *tcase) bool {
			s := strings.ReplaceAll(c.Node.Content, "\r\n", "\n")
			ok := s != c.Node.Content
			c.Node.Content = s
			return ok
		})
		// Fewer fields within a line.
		for i, l := range lines {
			f := strings.Fields(l)
			for j := 1; j < len(f); j++ {
				add(func(c *tcase) bool {
					nl := slices.Clone(lines)
					nl[i] = strings.Join(slices.Delete(slices.Clone(f), j, j+1), " ") + "\n"
					c.Node.Content = strings.Join(nl, "")
					return true
				})
			}
		}
	}
	// Pods.
	for pi, p := range tc.Pods {
		if p.Name != "p" {
			add(func(c *tcase) bool { c.Pods[pi].Name = "p"; return true })
		}
		if p.Namespace != "ns" {
			add(func(c *tcase) bool { c.Pods[pi].Namespace = "ns"; return true })
		}
		if p.UID != "u" {
			add(func(c *tcase) bool { c.Pods[pi].UID = "u"; return true })
		}
		if p.Spec.HostNetwork {
			add(func(c *tcase) bool { c.Pods[pi].Spec.HostNetwork = false; return true })
		}
		// Only towards simpler policies, so that shrinking cannot cycle.
		simpler := []corev1.DNSPolicy{corev1.DNSNone, corev1.DNSDefault, corev1.DNSClusterFirst, corev1.DNSClusterFirstWithHostNet}
		rank := slices.Index(simpler, p.Spec.DNSPolicy)
		if rank < 0 {
			rank = len(simpler)
		}
		for _, pol := range simpler[:rank] {
			{
				add(func(c *tcase) bool { c.Pods[pi].Spec.DNSPolicy = pol; return true })
			}
		}
		dc := p.Spec.DNSConfig
		if dc == nil {
			continue
		}
		add(func(c *tcase) bool { c.Pods[pi].Spec.DNSConfig = nil; return true })
		for i := range dc.Nameservers {
			add(func(c *tcase) bool {
				d := c.Pods[pi].Spec.DNSConfig
				d.Nameservers = slices.Delete(d.Nameservers, i, i+1)
				return true
			})
		}
		for i := range dc.Searches {
			add(func(c *tcase) bool {
				d := c.Pods[pi].Spec.DNSConfig
				d.Searches = slices.Delete(d.Searches, i, i+1)
				return true
			})
		}
		for i := range dc.Options {
			add(func(c *tcase) bool {
				d := c.Pods[pi].Spec.DNSConfig
				d.Options = slices.Delete(d.Options, i, i+1)
				return true
			})
		}
	}
	return out
}
