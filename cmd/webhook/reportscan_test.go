package main

import (
	"strings"
	"testing"
	"time"
)

// TestReportScanConfig: the scan is off by default; the file sets it and a
// flag wins; bad values are errors.
func TestReportScanConfig(t *testing.T) {
	o, err := parseServe(t, "-p", "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if o.cfg.ReportScanInterval != 0 || o.cfg.ReportScanQPS != 20 || o.cfg.ReportNamespaceSelector != "poddns.io/enabled=true" ||
		o.reportScanner(nil, o.logger(streams{})) != nil {
		t.Errorf("defaults: the scan is on or not as documented: %+v", o.cfg)
	}
	cfg := writeConfig(t, "apiVersion: poddns.io/v1alpha1\nkind: WebhookConfig\npolicies: [p]\nreportScanInterval: 5m\nreportScanQPS: 10\nleaderElectionNamespace: poddns-system\n")
	o, err = parseServe(t, "--config", cfg, "--report-scan-interval", "30s")
	if err != nil {
		t.Fatal(err)
	}
	if o.cfg.ReportScanInterval.D() != 30*time.Second || o.cfg.ReportScanQPS != 10 || o.cfg.LeaderElectionNamespace != "poddns-system" {
		t.Errorf("file then flag: %+v", o.cfg)
	}
	for _, tc := range []struct{ args, want string }{
		{"--report-scan-interval=-1s", "reportScanInterval -1s is negative"},
		{"--report-scan-qps=0", "reportScanQPS 0: want 1 to 1000"},
		{"--report-namespace-selector=a in (", "reportNamespaceSelector"},
	} {
		if _, err := parseServe(t, "-p", "p.yaml", tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.args, err, tc.want)
		}
	}
}
