// Command report turns the newest benchmark results in bench/results/ into
// BENCHMARKS.md and SVG plots (make bench-report).
//
// It reads the newest dns-*.json with "kind": "dns" and "scales" (older
// files in another schema are skipped) and the newest webhook-*.json, newest
// by the UTC time in the file name. The output depends only on those files:
// the same JSON gives the same bytes.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	results := flag.String("results", "bench/results", "directory of the result files")
	out := flag.String("o", "BENCHMARKS.md", "Markdown file to write")
	plots := flag.String("plots", "bench/results/plots", "directory to write the SVG plots to")
	flag.Parse()
	if err := run(*results, *out, *plots); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func run(results, out, plots string) error {
	in, err := findInputs(results)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(filepath.Dir(out), plots)
	if err != nil {
		return err
	}
	o := Generate(in, filepath.ToSlash(rel))
	if len(o.Plots) > 0 {
		if err := os.MkdirAll(plots, 0o755); err != nil {
			return err
		}
	}
	for _, p := range o.Plots {
		if err := os.WriteFile(filepath.Join(plots, p.Name), []byte(p.SVG), 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(out, []byte(o.Markdown), 0o644); err != nil {
		return err
	}
	fmt.Printf("report: wrote %s and %d plots in %s (dns: %s, webhook: %s)\n", out, len(o.Plots), plots, orDash(in.DNSFile), orDash(in.WebhookFile))
	return nil
}
