package main

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/poddns/poddns/pkg/serve/dnstest"
)

// TestExampleSwitchBlocks: the commented-out queryLog, errors, static, aaaa
// and rewrite blocks of testdata/dnsd.yaml, uncommented, load.
func TestExampleSwitchBlocks(t *testing.T) {
	b, err := os.ReadFile("../../testdata/dnsd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := "apiVersion: poddns.io/v1alpha1\nkind: DNSDConfig\n"
	blocks := map[string]bool{}
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "# ")
		switch {
		case ok && !in && slices.Contains([]string{"queryLog:", "errors:", "static:", "aaaa:", "rewrite:"}, rest):
			in = true
			blocks[rest] = true
		case ok && in && (strings.HasPrefix(rest, "  ") || strings.HasPrefix(rest, "- ")):
		default:
			in = false
		}
		if in {
			out += rest + "\n"
		}
	}
	if len(blocks) != 5 {
		t.Fatalf("found the blocks %v in testdata/dnsd.yaml, want 5", blocks)
	}
	cfg, err := loadArgs(t, "--config", dnstest.WriteFile(t, "dnsd.yaml", out), "--source", "x")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !cfg.QueryLog.Enabled || !cfg.Errors.Enabled || len(cfg.Static) != 2 || cfg.AAAA.Filter != "none" || len(cfg.Rewrite) != 3 {
		t.Errorf("loaded %+v", cfg)
	}
}
