package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
)

// writeProfile writes a profile of sampleType whose samples are stacks
// (innermost first) with values.
func writeProfile(t *testing.T, path string, st *profile.ValueType, stacks [][]string, values []int64) {
	t.Helper()
	p := &profile.Profile{SampleType: []*profile.ValueType{st}}
	funcs := map[string]*profile.Function{}
	locs := map[string]*profile.Location{}
	for i, stack := range stacks {
		s := &profile.Sample{Value: []int64{values[i]}}
		for _, name := range stack {
			if locs[name] == nil {
				funcs[name] = &profile.Function{ID: uint64(len(funcs) + 1), Name: name}
				p.Function = append(p.Function, funcs[name])
				locs[name] = &profile.Location{ID: uint64(len(locs) + 1), Line: []profile.Line{{Function: funcs[name]}}}
				p.Location = append(p.Location, locs[name])
			}
			s.Location = append(s.Location, locs[name])
		}
		p.Sample = append(p.Sample, s)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := p.Write(f); err != nil {
		t.Fatal(err)
	}
}

func TestSummarize(t *testing.T) {
	dir := t.TempDir()
	cpu := filepath.Join(dir, "cpu.pprof")
	// 6 ms in sendmsg under WriteMsg under ServeDNS, 3 ms in Pack under
	// WriteMsg, 1 ms in ServeDNS itself; recursion counts once in cum.
	writeProfile(t, cpu, &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		[][]string{{"sendmsg", "WriteMsg", "ServeDNS"}, {"Pack", "WriteMsg", "ServeDNS", "ServeDNS"}, {"ServeDNS"}},
		[]int64{6e6, 3e6, 1e6})
	s, err := summarize(cpu)
	if err != nil {
		t.Fatal(err)
	}
	if s.Unit != "ms" || s.Total != 10 || len(s.Top) != 3 {
		t.Fatalf("summary %+v, want 10 ms over 3 functions", s)
	}
	want := []ProfileEntry{{"sendmsg", 6, 6}, {"Pack", 3, 3}, {"ServeDNS", 1, 10}}
	for i, e := range want {
		if s.Top[i] != e {
			t.Errorf("top %d = %+v, want %+v", i, s.Top[i], e)
		}
	}

	heap := filepath.Join(dir, "heap.pprof")
	writeProfile(t, heap, &profile.ValueType{Type: "inuse_space", Unit: "bytes"}, [][]string{{"ToPod", "Upsert"}}, []int64{2 << 20})
	if s, err := summarize(heap); err != nil || s.Unit != "MB" || s.Total != 2 || s.Top[0].Func != "ToPod" {
		t.Errorf("heap summary %+v, %v; want 2 MB in ToPod", s, err)
	}

	var b strings.Builder
	writeProfiles(&b, map[string]ProfileSummary{"cpu-cluster": mustSummary(t, cpu)})
	if !strings.Contains(b.String(), "| `sendmsg` | 6.0 | 60.0 | 60.0 |") {
		t.Errorf("writeProfiles:\n%s", b.String())
	}

	bad := filepath.Join(dir, "bad.pprof")
	os.WriteFile(bad, []byte("not a profile"), 0o644)
	if _, err := summarize(bad); err == nil {
		t.Error("summarize accepted a file that is not a profile")
	}
}

func mustSummary(t *testing.T, path string) ProfileSummary {
	t.Helper()
	s, err := summarize(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
