package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/poddns/poddns/internal/golden"
)

// TestGenerateGolden renders the fixture results (testdata/results: an
// older DNS file to skip, the newest DNS and webhook files to use, and an
// older DNS file whose scale default the newest lacks and whose scale small
// the newest replaces) and compares BENCHMARKS.md and every plot with the
// reviewed goldens.
func TestGenerateGolden(t *testing.T) {
	in, err := findInputs("testdata/results")
	if err != nil {
		t.Fatal(err)
	}
	if in.DNSFile != "dns-20260102T000000Z.json" || in.WebhookFile != "webhook-20260102T000000Z.json" {
		t.Fatalf("picked %q and %q, want the newest files in the new schema", in.DNSFile, in.WebhookFile)
	}
	var got []string
	for _, sc := range in.DNS.Scales {
		got = append(got, sc.Name+" from "+sc.From.File)
	}
	want := []string{"small from dns-20260102T000000Z.json", "default from dns-20251230T000000Z.json", "large from dns-20260102T000000Z.json"}
	if !slices.Equal(got, want) {
		t.Errorf("scales %q, want %q (each from the newest file that has it, smallest first)", got, want)
	}
	out := Generate(in, "bench/results/plots")
	golden.Assert(t, "testdata/golden/BENCHMARKS.md", out.Markdown)
	if len(out.Plots) != 4 {
		t.Errorf("%d plots, want 4", len(out.Plots))
	}
	for _, p := range out.Plots {
		golden.Assert(t, filepath.Join("testdata/golden/plots", p.Name), p.SVG)
	}
}

// TestGenerateDeterministic: the same JSON gives the same bytes.
func TestGenerateDeterministic(t *testing.T) {
	in, err := findInputs("testdata/results")
	if err != nil {
		t.Fatal(err)
	}
	first := Generate(in, "p")
	for range 5 {
		again := Generate(in, "p")
		if again.Markdown != first.Markdown {
			t.Fatal("Markdown differs between runs")
		}
		for i := range first.Plots {
			if again.Plots[i] != first.Plots[i] {
				t.Fatalf("plot %s differs between runs", first.Plots[i].Name)
			}
		}
	}
}

// TestRunWritesFiles runs the command's work into a temporary directory, and
// with no results at all.
func TestRunWritesFiles(t *testing.T) {
	dir := t.TempDir()
	md, plots := filepath.Join(dir, "BENCHMARKS.md"), filepath.Join(dir, "bench", "results", "plots")
	if err := run("testdata/results", md, plots); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	in, _ := findInputs("testdata/results")
	if want := Generate(in, "bench/results/plots").Markdown; string(got) != want {
		t.Errorf("BENCHMARKS.md differs from Generate's output with the relative plot directory")
	}
	for _, name := range []string{"dns-qps.svg", "dns-p99.svg", "dns-memory.svg", "webhook-p99.svg"} {
		if _, err := os.Stat(filepath.Join(plots, name)); err != nil {
			t.Error(err)
		}
	}

	empty := t.TempDir()
	if err := run(empty, filepath.Join(empty, "B.md"), filepath.Join(empty, "plots")); err != nil {
		t.Fatal(err)
	}
}

func TestNiceTicks(t *testing.T) {
	for _, tt := range []struct {
		lo, hi float64
		want   []float64
	}{
		{0, 10, []float64{0, 2, 4, 6, 8, 10}},
		{0, 52000, []float64{0, 10000, 20000, 30000, 40000, 50000, 60000}},
		{0.3, 1.4, []float64{0.2, 0.4, 0.6, 0.8, 1, 1.2, 1.4}},
	} {
		got := niceTicks(tt.lo, tt.hi, 6)
		if len(got) != len(tt.want) {
			t.Errorf("niceTicks(%v, %v) = %v, want %v", tt.lo, tt.hi, got, tt.want)
			continue
		}
		for i := range got {
			if d := got[i] - tt.want[i]; d > 1e-9 || d < -1e-9 {
				t.Errorf("niceTicks(%v, %v) = %v, want %v", tt.lo, tt.hi, got, tt.want)
				break
			}
		}
	}
}
