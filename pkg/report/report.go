package report

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"sigs.k8s.io/yaml"

	"github.com/poddns/poddns/pkg/policy"
	"github.com/poddns/poddns/pkg/render"
)

// Report is what `webhook report` prints: the pods whose DNS differs from
// what the policies give them at creation, grouped by owning workload, and
// the pods that cannot be judged.
type Report struct {
	// Checked counts the pods compared; Differ those that differ.
	Checked int `json:"checked"`
	Differ  int `json:"differ"`
	// Workloads are the workloads with pods that differ, by namespace,
	// kind and name.
	Workloads []Workload `json:"workloads"`
	// Unknown are the pods that cannot be judged (BasisUnknown).
	Unknown []PodResult `json:"unknown"`
}

// Workload is a workload with pods that differ, and what fixes them.
type Workload struct {
	Workload Ref         `json:"workload"`
	Action   string      `json:"action"`
	Pods     []PodResult `json:"pods"`
}

// Builder collects pod results one at a time, keeping only the ones a
// Report lists.
type Builder struct {
	checked   int
	workloads map[Ref]*Workload
	unknown   []PodResult
}

// Add counts r and keeps it when the pod differs or cannot be judged.
func (b *Builder) Add(r PodResult) {
	b.checked++
	switch {
	case r.Basis == BasisUnknown:
		b.unknown = append(b.unknown, r)
	case r.Differs:
		if b.workloads == nil {
			b.workloads = map[Ref]*Workload{}
		}
		key := r.Workload
		key.UID = ""
		w := b.workloads[key]
		if w == nil {
			w = &Workload{Workload: r.Workload, Action: r.Action}
			b.workloads[key] = w
		}
		w.Pods = append(w.Pods, r)
	}
}

// Report returns the report, sorted.
func (b *Builder) Report() Report {
	rep := Report{Checked: b.checked, Workloads: []Workload{}, Unknown: b.unknown}
	if rep.Unknown == nil {
		rep.Unknown = []PodResult{}
	}
	for _, w := range b.workloads {
		sort.Slice(w.Pods, func(i, j int) bool { return w.Pods[i].Pod.Name < w.Pods[j].Pod.Name })
		rep.Differ += len(w.Pods)
		rep.Workloads = append(rep.Workloads, *w)
	}
	sort.Slice(rep.Workloads, func(i, j int) bool {
		a, b := rep.Workloads[i].Workload, rep.Workloads[j].Workload
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Name < b.Name
	})
	sort.Slice(rep.Unknown, func(i, j int) bool {
		a, b := rep.Unknown[i].Pod, rep.Unknown[j].Pod
		return a.Namespace < b.Namespace || a.Namespace == b.Namespace && a.Name < b.Name
	})
	return rep
}

// Output formats of Write.
const (
	FormatText = "text"
	FormatJSON = "json"
	FormatYAML = "yaml"
)

// Write writes rep in format: text for people, json or yaml (the Report's
// fields) for tools.
func Write(w io.Writer, rep *Report, format string) error {
	switch format {
	case FormatJSON:
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return fmt.Errorf("encode report: %w", err)
		}
		_, err = w.Write(append(b, '\n'))
		return err
	case FormatYAML:
		b, err := yaml.Marshal(rep)
		if err != nil {
			return fmt.Errorf("encode report: %w", err)
		}
		_, err = w.Write(b)
		return err
	case FormatText:
		return writeText(w, rep)
	}
	return fmt.Errorf("unknown output format %q: want text, json or yaml", format)
}

func writeText(w io.Writer, rep *Report) error {
	bw := bufio.NewWriter(w)
	for _, wl := range rep.Workloads {
		noun := "pods differ"
		if len(wl.Pods) == 1 {
			noun = "pod differs"
		}
		fmt.Fprintf(bw, "%s: %d %s\n", wl.Workload, len(wl.Pods), noun)
		fmt.Fprintf(bw, "  fix: %s\n", wl.Action)
		for _, p := range wl.Pods {
			fmt.Fprintf(bw, "  pod %s (compared with %s)\n", p.Pod.Name, p.ComparedWith)
			for _, c := range p.Changes {
				fmt.Fprintf(bw, "    %s\n", render.DescribeChange(c))
			}
			for _, pr := range p.Policies {
				if pr.Result != ResultPass {
					fmt.Fprintf(bw, "    %s %s: %s\n", pr.Result, pr.Policy, pr.Message)
				}
			}
		}
	}
	if len(rep.Unknown) > 0 {
		fmt.Fprintf(bw, "cannot tell (%d):\n", len(rep.Unknown))
		for _, p := range rep.Unknown {
			fmt.Fprintf(bw, "  pod %s/%s of %s: %s\n", p.Pod.Namespace, p.Pod.Name, p.Workload, p.ComparedWith)
		}
	}
	fmt.Fprintf(bw, "%d of %d pods differ from what the policies give them at creation", rep.Differ, rep.Checked)
	if len(rep.Unknown) > 0 {
		fmt.Fprintf(bw, "; %d cannot be judged", len(rep.Unknown))
	}
	bw.WriteString("\n")
	return bw.Flush()
}

// FormatChanges is the changes as explain writes them, "; "-separated.
func FormatChanges(cs []policy.Change) string { return describe(cs) }
