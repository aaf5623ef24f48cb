package main

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/google/pprof/profile"
)

// ProfileSummary is where one pprof profile says the time or memory goes:
// its functions with the most flat (self) cost.
type ProfileSummary struct {
	File  string // base name, beside the results file
	Unit  string // "ms" for CPU, "MB" for memory
	Total float64
	Top   []ProfileEntry
}

// ProfileEntry is one function's self and cumulative cost.
type ProfileEntry struct {
	Func      string
	Flat, Cum float64
}

// profileTop is how many functions a summary lists.
const profileTop = 12

// readProfiles summarises the profiles each scale of run names (files in
// dir); a profile that cannot be read is reported and left out.
func readProfiles(dir string, run *DNSRun) map[string]map[string]ProfileSummary {
	out := map[string]map[string]ProfileSummary{}
	for _, sc := range run.Scales {
		for _, kind := range slices.Sorted(maps.Keys(sc.Profiles)) {
			file := sc.Profiles[kind]
			s, err := summarize(filepath.Join(dir, filepath.Base(file)))
			if err != nil {
				fmt.Fprintf(os.Stderr, "report: profile %s: %v\n", file, err)
				continue
			}
			if out[sc.Name] == nil {
				out[sc.Name] = map[string]ProfileSummary{}
			}
			out[sc.Name][kind] = s
		}
	}
	return out
}

// summarize reads a CPU profile (its cpu sample type) or a heap profile
// (inuse_space) and totals each function's flat and cumulative cost.
func summarize(path string) (ProfileSummary, error) {
	f, err := os.Open(path)
	if err != nil {
		return ProfileSummary{}, err
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		return ProfileSummary{}, fmt.Errorf("parse: %w", err)
	}
	idx, unit, scale := -1, "", 1.0
	for i, st := range p.SampleType {
		switch {
		case st.Type == "cpu" && st.Unit == "nanoseconds":
			idx, unit, scale = i, "ms", 1e-6
		case st.Type == "inuse_space" && st.Unit == "bytes":
			idx, unit, scale = i, "MB", 1.0/(1<<20)
		}
	}
	if idx < 0 {
		return ProfileSummary{}, fmt.Errorf("no cpu or inuse_space samples")
	}
	flat, cum := map[string]float64{}, map[string]float64{}
	total := 0.0
	for _, s := range p.Sample {
		v := float64(s.Value[idx]) * scale
		total += v
		seen := map[string]bool{}
		for i, loc := range s.Location {
			for j, line := range loc.Line {
				if line.Function == nil {
					continue
				}
				name := line.Function.Name
				if i == 0 && j == 0 {
					flat[name] += v // the innermost frame
				}
				if !seen[name] {
					seen[name] = true
					cum[name] += v
				}
			}
		}
	}
	names := make([]string, 0, len(flat))
	for n := range flat {
		names = append(names, n)
	}
	sort.Slice(names, func(a, b int) bool {
		if flat[names[a]] != flat[names[b]] {
			return flat[names[a]] > flat[names[b]]
		}
		return names[a] < names[b]
	})
	s := ProfileSummary{File: filepath.Base(path), Unit: unit, Total: total}
	for _, n := range names[:min(profileTop, len(names))] {
		s.Top = append(s.Top, ProfileEntry{Func: n, Flat: flat[n], Cum: cum[n]})
	}
	return s, nil
}

// writeProfiles writes the summaries of one scale.
func writeProfiles(b *strings.Builder, sums map[string]ProfileSummary) {
	if len(sums) == 0 {
		return
	}
	b.WriteString("Where dnsd's time and memory go (pprof, top functions by self cost; `go tool pprof -top bench/results/<file>` for the rest):\n\n")
	for _, kind := range slices.Sorted(maps.Keys(sums)) {
		s := sums[kind]
		fmt.Fprintf(b, "**%s** (`%s`, total %.1f %s)\n\n| Function | Self %s | Self %% | Cumulative %% |\n|---|--:|--:|--:|\n", kind, s.File, s.Total, s.Unit, s.Unit)
		for _, e := range s.Top {
			fmt.Fprintf(b, "| `%s` | %.1f | %.1f | %.1f |\n", e.Func, e.Flat, pct(e.Flat, s.Total), pct(e.Cum, s.Total))
		}
		b.WriteString("\n")
	}
}

func pct(v, total float64) float64 {
	if total == 0 {
		return 0
	}
	return 100 * v / total
}
