package render

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/poddns/poddns/pkg/manifest"
	"github.com/poddns/poddns/pkg/policy"
)

// WriteExplanation writes, for one pod reported with PodWithPolicies, every
// policy in the order they apply with what it did: why it did not match
// (which criterion failed), what it changed field by field and why (a switch
// to None), which of the pod's own settings it kept, what it would change in
// audit mode, why it was skipped. Then the resulting DNS fields and
// resolv.conf. item is the pod as read, before defaulting.
func WriteExplanation(w io.Writer, item manifest.Item, r *Report) error {
	pr := r.PolicyReport
	if pr == nil {
		return fmt.Errorf("explain %s/%s: no policy report", r.Namespace, r.Name)
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%s %s/%s (%s)\n", r.Kind, r.Namespace, r.Name, r.Location)
	fmt.Fprintf(bw, "namespace labels: %s\n", formatLabels(pr.NamespaceLabels))
	fmt.Fprintf(bw, "pod labels: %s\n", formatLabels(item.Pod.Labels))
	submitted := item.Pod.Spec.DNSPolicy
	note := ""
	if submitted == "" {
		submitted, note = corev1.DNSClusterFirst, " (defaulted)"
	}
	fmt.Fprintf(bw, "submitted: hostNetwork %t, dnsPolicy %s%s, dnsConfig %s\n", item.Pod.Spec.HostNetwork, submitted, note, formatDNSConfig(item.Pod.Spec.DNSConfig))
	if len(r.NodePools) > 0 {
		fmt.Fprintf(bw, "node pools it can land on: %s\n", strings.Join(r.NodePools, ", "))
		if pr.Decision.PoolsNote != "" {
			fmt.Fprintf(bw, "  (%s)\n", pr.Decision.PoolsNote)
		}
	}

	d := &pr.Decision
	bw.WriteString("\npolicies, in the order they apply (priority, then name):\n")
	if d.Exempt != "" {
		fmt.Fprintf(bw, "  exempt from every policy: %s\n", d.Exempt)
	} else if len(d.Results) == 0 {
		bw.WriteString("  (none)\n")
	}
	for i, res := range d.Results {
		fmt.Fprintf(bw, "%3d. %s (priority %d, %s): %s\n", i+1, res.Policy, res.Priority, res.Mode, outcomeText(res))
		for _, c := range res.Changes {
			fmt.Fprintf(bw, "       %s: %s -> %s\n", c.Field, orUnset(c.From), orUnset(c.To))
			if c.Reason != "" {
				fmt.Fprintf(bw, "         because %s\n", c.Reason)
			}
		}
		for _, k := range res.Kept {
			fmt.Fprintf(bw, "       kept the pod's %s = %s (the policy wants %s; override: true would win)\n", k.Field, orUnset(k.Pod), orUnset(k.Policy))
		}
	}

	changed := "unchanged"
	if d.Changed {
		changed = "changed"
	}
	fmt.Fprintf(bw, "\nresult (%s): dnsPolicy %s, dnsConfig %s\n", changed, d.DNSPolicy, formatDNSConfig(d.DNSConfig))
	for _, warn := range d.Warnings {
		fmt.Fprintf(bw, "admission warning: %s\n", oneLine(warn))
	}
	switch {
	case len(r.ValidationErrors) > 0:
		bw.WriteString("rejected by the API server: no pod, no resolv.conf\n")
		for _, e := range r.ValidationErrors {
			fmt.Fprintf(bw, "  %s\n", oneLine(e))
		}
	case r.Error != "":
		fmt.Fprintf(bw, "kubelet cannot create the pod sandbox: %s\n", oneLine(r.Error))
	default:
		bw.WriteString("resolv.conf:\n")
		if r.ResolvConf == "" {
			bw.WriteString("  (empty)\n")
		}
		for line := range strings.Lines(r.ResolvConf) {
			fmt.Fprintf(bw, "  %s", line)
		}
		for _, e := range r.Events {
			fmt.Fprintf(bw, "kubelet event: %s %s %s: %s\n", e.Object, e.Type, e.Reason, oneLine(e.Message))
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("explain: %w", err)
	}
	return nil
}

func outcomeText(r policy.Result) string {
	switch r.Outcome {
	case policy.OutcomeNotMatched:
		return "not matched: " + r.Reason
	case policy.OutcomeSkipped:
		return "skipped for this pod: " + r.Reason
	case policy.OutcomeAudit:
		return "audit, would change (nothing changed):"
	case policy.OutcomeUnchanged:
		return "matched, nothing to change"
	case policy.OutcomeApplied:
		return "applied:"
	}
	return string(r.Outcome)
}

func formatLabels(l map[string]string) string {
	if len(l) == 0 {
		return "(none)"
	}
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + l[k]
	}
	return strings.Join(parts, ", ")
}

func formatDNSConfig(dc *corev1.PodDNSConfig) string {
	if dc == nil {
		return "(none)"
	}
	var parts []string
	if len(dc.Nameservers) > 0 {
		parts = append(parts, "nameservers ["+strings.Join(dc.Nameservers, " ")+"]")
	}
	if len(dc.Searches) > 0 {
		parts = append(parts, "searches ["+strings.Join(dc.Searches, " ")+"]")
	}
	if len(dc.Options) > 0 {
		opts := make([]string, len(dc.Options))
		for i, o := range dc.Options {
			opts[i] = o.Name
			if o.Value != nil {
				opts[i] += ":" + *o.Value
			}
		}
		parts = append(parts, "options ["+strings.Join(opts, " ")+"]")
	}
	if len(parts) == 0 {
		return "{}"
	}
	return strings.Join(parts, ", ")
}
