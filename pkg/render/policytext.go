package render

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/poddns/poddns/pkg/policy"
)

// WritePolicyText writes reports made with policies for people, as a YAML
// stream that kubectl can read: one document per pod, the patched pod,
// preceded by comment lines — its origin, what the policies did, and the
// resolv.conf it gets (or why it gets none).
func WritePolicyText(w io.Writer, reports []Report) error {
	bw := bufio.NewWriter(w)
	for i := range reports {
		if err := writePolicyReport(bw, &reports[i]); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write reports: %w", err)
	}
	return nil
}

func writePolicyReport(w *bufio.Writer, r *Report) error {
	w.WriteString("---\n")
	fmt.Fprintf(w, "# %s/%s/%s (%s)\n", r.Kind, r.Namespace, r.Name, r.Location)
	pr := r.PolicyReport
	if pr == nil {
		return fmt.Errorf("write report for %s/%s: no policy report", r.Namespace, r.Name)
	}
	if pr.Exempt != "" {
		fmt.Fprintf(w, "# exempt from every policy: %s\n", pr.Exempt)
	} else if len(pr.Applied) > 0 {
		fmt.Fprintf(w, "# applied: %s\n", strings.Join(pr.Applied, ", "))
	} else {
		w.WriteString("# applied: none\n")
	}
	for _, res := range pr.Decision.Results {
		if res.Outcome == policy.OutcomeApplied {
			for _, c := range res.Changes {
				fmt.Fprintf(w, "#   %s: %s\n", res.Policy, DescribeChange(c))
			}
		}
		if res.Outcome == policy.OutcomeApplied || res.Outcome == policy.OutcomeUnchanged {
			for _, k := range res.Kept {
				fmt.Fprintf(w, "#   %s: kept the pod's %s = %s (the policy wants %s)\n", res.Policy, k.Field, orUnset(k.Pod), orUnset(k.Policy))
			}
		}
	}
	for _, res := range pr.Audit {
		for _, c := range res.Changes {
			fmt.Fprintf(w, "# audit, would change: %s: %s\n", res.Policy, DescribeChange(c))
		}
	}
	for _, res := range pr.Skipped {
		fmt.Fprintf(w, "# skipped: %s: %s\n", res.Policy, oneLine(res.Reason))
	}
	if note := resolvConfNote(r, "# resolv.conf: (empty)\n"); note != "" {
		w.WriteString(note)
	} else {
		w.WriteString("# resolv.conf:\n")
		for line := range strings.Lines(r.ResolvConf) {
			fmt.Fprintf(w, "#   %s", line)
		}
		if !strings.HasSuffix(r.ResolvConf, "\n") {
			w.WriteByte('\n')
		}
	}
	writeDiagnostics(w, r)
	y, err := PodYAML(pr.PatchedPod)
	if err != nil {
		return fmt.Errorf("write report for %s/%s: %w", r.Namespace, r.Name, err)
	}
	w.Write(y)
	return nil
}

// DescribeChange is "field: from -> to (reason)", as render -p and `webhook
// report` write a change.
func DescribeChange(c policy.Change) string {
	s := fmt.Sprintf("%s: %s -> %s", c.Field, orUnset(c.From), orUnset(c.To))
	if c.Reason != "" {
		s += " (" + c.Reason + ")"
	}
	return s
}

func orUnset(s string) string {
	if s == "" {
		return "(unset)"
	}
	return s
}

// PodYAML renders pod as a manifest: apiVersion and kind set, without the
// empty status, the null creationTimestamp and empty resources that a typed
// pod carries.
func PodYAML(pod *corev1.Pod) ([]byte, error) {
	p := pod.DeepCopy()
	p.APIVersion, p.Kind = "v1", "Pod"
	j, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode pod: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		return nil, fmt.Errorf("encode pod: %w", err)
	}
	delete(m, "status")
	if md, ok := m["metadata"].(map[string]any); ok && md["creationTimestamp"] == nil {
		delete(md, "creationTimestamp")
	}
	if spec, ok := m["spec"].(map[string]any); ok {
		for _, key := range []string{"containers", "initContainers"} {
			list, _ := spec[key].([]any)
			for _, c := range list {
				if cm, ok := c.(map[string]any); ok {
					if res, ok := cm["resources"].(map[string]any); ok && len(res) == 0 {
						delete(cm, "resources")
					}
				}
			}
		}
	}
	out, err := yaml.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode pod: %w", err)
	}
	return out, nil
}
