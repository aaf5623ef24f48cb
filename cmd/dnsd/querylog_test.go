package main

import (
	"strings"
	"testing"

	"github.com/poddns/poddns/pkg/serve/dnstest"
)

// TestSwitchConfigErrors: bad queryLog and errors blocks are refused.
func TestSwitchConfigErrors(t *testing.T) {
	header := "apiVersion: poddns.io/v1alpha1\nkind: DNSDConfig\n"
	for _, tc := range []struct{ file, want string }{
		{header + "queryLog: {classes: [denials]}\n", "queryLog: class"},
		{header + "queryLog: {sample: 0}\n", "sample"},
		{header + "queryLog: {enabld: true}\n", "unknown field"},
		{header + "errors: {patterns: ['(']}\n", "errors: pattern"},
	} {
		if _, err := loadArgs(t, "--config", dnstest.WriteFile(t, "c.yaml", tc.file), "--source", "x"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want one containing %q", tc.file, err, tc.want)
		}
	}
}
