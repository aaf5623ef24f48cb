package render

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteJSON writes one JSON object per report, one per line.
func WriteJSON(w io.Writer, reports []Report) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for i := range reports {
		if err := enc.Encode(&reports[i]); err != nil {
			return fmt.Errorf("write report for %s/%s: %w", reports[i].Namespace, reports[i].Name, err)
		}
	}
	return nil
}

// WriteText writes the reports for people. Each report is a header
//
//	# <kind>/<namespace>/<name> (<file>)
//
// then the resolv.conf as the pod gets it, then comment lines labelled
// "validation error:", "warning:", "event:", "error:" and "client note:". Everything that is
// not the file starts with '#', so each block is itself a valid resolv.conf.
// Blocks are separated by a blank line.
func WriteText(w io.Writer, reports []Report) error {
	bw := bufio.NewWriter(w)
	for i := range reports {
		if i > 0 {
			bw.WriteByte('\n')
		}
		writeTextReport(bw, &reports[i])
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write reports: %w", err)
	}
	return nil
}

func writeTextReport(w *bufio.Writer, r *Report) {
	fmt.Fprintf(w, "# %s/%s/%s (%s)\n", r.Kind, r.Namespace, r.Name, r.Location.File)
	switch {
	case len(r.ValidationErrors) > 0:
		w.WriteString("# rejected by the API server: no pod, no resolv.conf\n")
	case r.Error != "":
		w.WriteString("# kubelet cannot create the pod sandbox: no resolv.conf\n")
	case r.ResolvConf == "":
		w.WriteString("# (empty resolv.conf)\n")
	default:
		w.WriteString(r.ResolvConf)
		if !strings.HasSuffix(r.ResolvConf, "\n") {
			w.WriteByte('\n')
		}
	}
	writeDiagnostics(w, r)
}

// writeDiagnostics writes what the API server and kubelet say about the pod,
// one comment line each.
func writeDiagnostics(w *bufio.Writer, r *Report) {
	for _, e := range r.ValidationErrors {
		fmt.Fprintf(w, "# validation error: %s\n", oneLine(e))
	}
	for _, s := range r.Warnings {
		fmt.Fprintf(w, "# warning: %s\n", oneLine(s))
	}
	for _, e := range r.Events {
		fmt.Fprintf(w, "# event: %s %s %s: %s\n", e.Object, e.Type, e.Reason, oneLine(e.Message))
	}
	if r.Error != "" {
		fmt.Fprintf(w, "# error: %s\n", oneLine(r.Error))
	}
	for _, n := range r.ClientNotes {
		fmt.Fprintf(w, "# client note: %s\n", oneLine(n))
	}
}

// oneLine keeps a message on its comment line.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", `\n`) }
