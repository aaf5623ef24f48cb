package main

import (
	"os"
	"testing"
)

// TestReportGolden runs `webhook report` on manifests of a cluster where a
// policy changed since some pods were made (cmd/webhook/testdata/report):
// the Deployment pod and the bare pod made under the old version, the
// CronJob pod made before its namespace opted in and the pod of a namespace
// that opted out since are listed by workload with the fix; the pod made
// under the current version is not; the pod changed without a record cannot
// be judged.
func TestReportGolden(t *testing.T) {
	const td = "cmd/webhook/testdata/report/"
	cluster, err := os.ReadFile("testdata/report/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  []string
		stdin string
	}{
		{name: "report_text", args: []string{"report", "-p", td + "policies.yaml", "-f", td + "cluster.yaml"}},
		{name: "report_json", args: []string{"report", "-p", td + "policies.yaml", "-f", td + "cluster.yaml", "-o", "json"}},
		// From stdin, read twice through the spool: the same report.
		{name: "report_stdin_yaml", args: []string{"report", "-p", td + "policies.yaml", "-f", "-", "-o", "yaml"}, stdin: string(cluster)},
		{name: "report_every_namespace", args: []string{"report", "-p", td + "policies.yaml", "-f", td + "cluster.yaml", "--namespace-selector="}},
		{name: "report_usage", args: []string{"report", "-p", td + "policies.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkGolden(t, tt.name, tt.args, tt.stdin)
		})
	}
}
