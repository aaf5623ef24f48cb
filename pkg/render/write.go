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
	if note := resolvConfNote(r, "# (empty resolv.conf)\n"); note != "" {
		w.WriteString(note)
	} else {
		w.WriteString(r.ResolvConf)
		if !strings.HasSuffix(r.ResolvConf, "\n") {
			w.WriteByte('\n')
		}
	}
	writeDiagnostics(w, r)
}

// resolvConfNote is the comment line the text reports write instead of the
// pod's resolv.conf when there is none to show: the API server rejects the
// pod, kubelet cannot create its sandbox, or the file is empty (empty, in
// the report's words). It is "" when there is a resolv.conf to show.
func resolvConfNote(r *Report, empty string) string {
	switch {
	case len(r.ValidationErrors) > 0:
		return "# rejected by the API server: no pod, no resolv.conf\n"
	case r.Error != "":
		return "# kubelet cannot create the pod sandbox: no resolv.conf\n"
	case r.ResolvConf == "":
		return empty
	}
	return ""
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

// Format is an output form of reports.
type Format int

// The forms of WriteText, WritePolicyText and WriteJSON.
const (
	FormatText Format = iota
	FormatPolicyText
	FormatJSON
)

// ReportWriter writes reports one at a time, each as soon as it is made, in
// one of the output forms: the bytes are those the form's Write function
// writes for all the reports at once. It counts what it wrote, so that a
// caller keeps no report.
type ReportWriter struct {
	w      io.Writer
	format Format
	// Written and Failed count the reports written and those of them that Failed.
	Written, Failed int
}

// NewReportWriter returns a ReportWriter writing to w in format f.
func NewReportWriter(w io.Writer, f Format) *ReportWriter {
	return &ReportWriter{w: w, format: f}
}

// Write writes one report.
func (rw *ReportWriter) Write(r *Report) error {
	var err error
	switch rw.format {
	case FormatJSON:
		err = WriteJSON(rw.w, []Report{*r})
	case FormatPolicyText:
		err = WritePolicyText(rw.w, []Report{*r})
	default:
		if rw.Written > 0 {
			if _, err := io.WriteString(rw.w, "\n"); err != nil {
				return fmt.Errorf("write reports: %w", err)
			}
		}
		err = WriteText(rw.w, []Report{*r})
	}
	if err != nil {
		return err
	}
	rw.Written++
	if r.Failed() {
		rw.Failed++
	}
	return nil
}
