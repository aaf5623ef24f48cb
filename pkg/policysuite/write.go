package policysuite

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Write prints the result for people: one PASS or FAIL line per pod, a
// readable diff under each failure (multi-line values line by line, "-" for
// the expectation and "+" for what the pod got), then the totals.
func Write(w io.Writer, r *Result) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "suite %s (%s): %d policies, %d pods checked\n", r.Name, r.File, r.Policies, len(r.Cases))
	for _, c := range r.Cases {
		status := "PASS"
		if !c.Passed() {
			status = "FAIL"
		}
		name := c.Pod
		if c.Kind != "" {
			name = c.Kind + "/" + c.Pod
		}
		fmt.Fprintf(bw, "%s  %s\n", status, name)
		for _, m := range c.Mismatches {
			fmt.Fprintf(bw, "      %s:\n", m.Field)
			writeDiff(bw, m.Want, m.Got)
		}
	}
	for _, u := range r.Unchecked {
		fmt.Fprintf(bw, "note: not checked (no expectation): %s\n", u)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(bw, "note: %s\n", n)
	}
	fmt.Fprintf(bw, "%d passed, %d failed\n", len(r.Cases)-r.Failed(), r.Failed())
	return bw.Flush()
}

// writeDiff shows want and got line by line: lines both have in the same place
// with two spaces, the others with - (want) and + (got).
func writeDiff(w *bufio.Writer, want, got string) {
	wl := strings.Split(strings.TrimSuffix(want, "\n"), "\n")
	gl := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	// Common prefix and suffix; the middle is shown as removed then added.
	p := 0
	for p < len(wl) && p < len(gl) && wl[p] == gl[p] {
		p++
	}
	s := 0
	for s < len(wl)-p && s < len(gl)-p && wl[len(wl)-1-s] == gl[len(gl)-1-s] {
		s++
	}
	for _, l := range wl[:p] {
		fmt.Fprintf(w, "          %s\n", l)
	}
	for _, l := range wl[p : len(wl)-s] {
		fmt.Fprintf(w, "        - %s\n", l)
	}
	for _, l := range gl[p : len(gl)-s] {
		fmt.Fprintf(w, "        + %s\n", l)
	}
	for _, l := range wl[len(wl)-s:] {
		fmt.Fprintf(w, "          %s\n", l)
	}
}
