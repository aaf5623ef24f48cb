package report_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/poddns/poddns/pkg/report"
)

// TestEachReport: results are split into reports by count and by bytes,
// named poddns-0, 1, ..., sorted by pod and policy whatever their order;
// the hash ignores the timestamp; the JSON is a report of the format.
func TestEachReport(t *testing.T) {
	var results []report.Encoded
	for i := 4; i >= 0; i-- {
		r := report.PodResult{
			Pod:      report.Ref{Kind: "Pod", Namespace: "shop", Name: fmt.Sprintf("p%d", i)},
			Workload: report.Ref{Kind: "Deployment", Namespace: "shop", Name: "web"},
			Policies: []report.PolicyResult{{Policy: "b", Result: report.ResultFail, Message: "m"}, {Policy: "a", Result: report.ResultPass}},
		}
		enc, err := report.Encode(&r)
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, enc...)
	}
	docs := func(o report.PolicyReportOptions) []report.Doc {
		var out []report.Doc
		in := append([]report.Encoded(nil), results...)
		n, err := report.EachReport("shop", in, o, func(d report.Doc) error { out = append(out, d); return nil })
		if err != nil || n != len(out) {
			t.Fatalf("EachReport: %d, %v", n, err)
		}
		return out
	}
	got := docs(report.PolicyReportOptions{Format: report.WGPolicy, MaxResults: 4, Timestamp: 1700000000})
	if len(got) != 3 {
		t.Fatalf("%d reports of 10 results by 4, want 3", len(got))
	}
	var first struct {
		APIVersion, Kind string
		Metadata         struct {
			Name, Namespace string
			Labels          map[string]string
		}
		Summary report.Summary
		Results []struct {
			Policy, Result string
			Resources      []report.ResourceRef
			Timestamp      struct{ Seconds int64 }
		}
		Source string
	}
	if err := json.Unmarshal(got[0].JSON, &first); err != nil {
		t.Fatalf("report JSON: %v\n%s", err, got[0].JSON)
	}
	if first.APIVersion != "wgpolicyk8s.io/v1alpha2" || first.Kind != "PolicyReport" || first.Metadata.Name != "poddns-0" || got[2].Name != "poddns-2" ||
		first.Metadata.Labels[report.LabelManagedBy] != "poddns" || first.Source != "" {
		t.Errorf("report head: %+v", first)
	}
	if first.Summary != (report.Summary{Pass: 2, Fail: 2}) || len(first.Results) != 4 ||
		first.Results[0].Resources[0].Name != "p0" || first.Results[0].Policy != "a" || first.Results[1].Policy != "b" ||
		first.Results[0].Timestamp.Seconds != 1700000000 {
		t.Errorf("first report: %+v", first)
	}
	// The same results at another time: the same hashes.
	again := docs(report.PolicyReportOptions{Format: report.WGPolicy, MaxResults: 4, Timestamp: 1700000999})
	for i := range got {
		if got[i].Hash != again[i].Hash {
			t.Errorf("report %d: hash changed with the timestamp", i)
		}
	}
	// By bytes: each result alone over the bound still makes a report.
	if n := len(docs(report.PolicyReportOptions{Format: report.OpenReports, MaxBytes: 1})); n != 10 {
		t.Errorf("%d reports with a 1-byte bound, want one per result (10)", n)
	}
	// openreports.io has a source of its own.
	o := docs(report.PolicyReportOptions{Format: report.OpenReports})
	if len(o) != 1 || !json.Valid(o[0].JSON) || string(o[0].JSON[:60]) == "" {
		t.Fatalf("openreports: %d reports", len(o))
	}
	var head struct{ APIVersion, Kind, Source string }
	_ = json.Unmarshal(o[0].JSON, &head)
	if head.APIVersion != "openreports.io/v1alpha1" || head.Kind != "Report" || head.Source != "poddns" {
		t.Errorf("openreports head: %+v", head)
	}
	// No results, no report.
	if n, _ := report.EachReport("shop", nil, report.PolicyReportOptions{Format: report.WGPolicy}, func(report.Doc) error { return nil }); n != 0 {
		t.Errorf("%d reports of no results", n)
	}
}
