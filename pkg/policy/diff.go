package policy

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// DiffDNS returns the field-level difference between two pods' DNS fields,
// from (a pod as it is) to (as it should be), as Changes named and rendered
// as Evaluate names and renders the changes of a policy (spec.dnsPolicy,
// spec.dnsConfig.nameservers, spec.dnsConfig.searches,
// spec.dnsConfig.options[NAME]), so that explain's text reads the same for
// both. An empty dnsPolicy is ClusterFirst; an empty dnsConfig is none.
func DiffDNS(fromPolicy corev1.DNSPolicy, from *corev1.PodDNSConfig, toPolicy corev1.DNSPolicy, to *corev1.PodDNSConfig) []Change {
	if fromPolicy == "" {
		fromPolicy = corev1.DNSClusterFirst
	}
	if toPolicy == "" {
		toPolicy = corev1.DNSClusterFirst
	}
	if from == nil {
		from = &corev1.PodDNSConfig{}
	}
	if to == nil {
		to = &corev1.PodDNSConfig{}
	}
	var out []Change
	if fromPolicy != toPolicy {
		out = append(out, Change{Field: "spec.dnsPolicy", From: string(fromPolicy), To: string(toPolicy)})
	}
	if !slices.Equal(from.Nameservers, to.Nameservers) {
		out = append(out, Change{Field: "spec.dnsConfig.nameservers", From: fmtList(from.Nameservers), To: fmtList(to.Nameservers)})
	}
	if !slices.Equal(from.Searches, to.Searches) {
		out = append(out, Change{Field: "spec.dnsConfig.searches", From: fmtList(from.Searches), To: fmtList(to.Searches)})
	}
	// Options by name, in the order they first appear (from's, then to's).
	var names []string
	for _, o := range append(slices.Clone(from.Options), to.Options...) {
		if !slices.Contains(names, o.Name) {
			names = append(names, o.Name)
		}
	}
	for _, name := range names {
		fv, fok := optionValue(from.Options, name)
		tv, tok := optionValue(to.Options, name)
		if fok == tok && fv == tv {
			continue
		}
		c := Change{Field: optionField(name)}
		if fok {
			c.From = formatOption(name, fv)
		}
		if tok {
			c.To = formatOption(name, tv)
		}
		out = append(out, c)
	}
	return out
}
