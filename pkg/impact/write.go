package impact

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteJSON writes r as one indented JSON object.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes r for people: per workload, a line per libc with the
// lookups that break or resolve differently and the wire queries before and
// after, then each such lookup, then the names the log never asked.
func WriteText(w io.Writer, r *Report) error {
	var b strings.Builder
	for i, wl := range r.Workloads {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s: %s %s, %s\n", wl.Workload, plural(len(wl.Pods), "pod"), strings.Join(wl.Pods, " "), plural(wl.Lookups, "lookup"))
		for _, s := range wl.Libcs {
			fmt.Fprintf(&b, "  %-6s %d breaking, %d resolving differently, wire queries %d -> %d (%d saved)\n",
				s.Libc+":", len(s.Breaks), len(s.Different), s.Queries, s.ProposedQueries, s.Saved)
		}
		for _, d := range wl.Distinct {
			for _, rp := range d.Replays {
				if rp.Change == Same {
					continue
				}
				fmt.Fprintf(&b, "  %s with %s: %s: %s -> %s\n", strings.ToUpper(string(rp.Change)), rp.Libc, d.Name, describe(rp.Current), describe(rp.Proposed))
			}
			if d.Completed > 0 {
				fmt.Fprintf(&b, "  completed by dnsd, not replayed: %s (%s)\n", d.Name, plural(d.Completed, "lookup"))
			}
		}
		for _, u := range wl.Unknown {
			fmt.Fprintf(&b, "  unknown: %s is not in the log; taken not to exist\n", u)
		}
		for _, n := range wl.Notes {
			fmt.Fprintf(&b, "  note: %s\n", n)
		}
	}
	for _, u := range r.Unmatched {
		who := "client " + u.Client + " (no pod)"
		if u.Pod != "" {
			who = "pod " + u.Namespace + "/" + u.Pod + " (not in the manifests)"
		}
		fmt.Fprintf(&b, "not replayed: %s: %s\n", who, plural(u.Queries, "query"))
	}
	if len(r.Workloads) == 0 && len(r.Unmatched) == 0 {
		b.WriteString("no queries in the log\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// describe is an outcome in a few words: "found NAME (N names)".
func describe(o Outcome) string {
	var s string
	switch o.Result {
	case Found:
		s = "found " + o.Name
	case NotFound:
		s = "not found"
	default:
		s = "failed"
		if o.Name != "" {
			s += " at " + o.Name
		}
	}
	return fmt.Sprintf("%s (asks %s)", s, strings.Join(o.Asked, " "))
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	if strings.HasSuffix(what, "y") {
		return fmt.Sprintf("%d %sies", n, what[:len(what)-1])
	}
	return fmt.Sprintf("%d %ss", n, what)
}
