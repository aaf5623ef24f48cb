package impact

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/poddns/poddns/internal/fuzzseed"
)

// FuzzAnalyze feeds arbitrary query logs through ReadLog and Analyze: no
// input panics; a log that reads gives a report whose figures add up
// (saved = before - after, every breakage is a replayed lookup), the same
// whichever order its lines come in.
func FuzzAnalyze(f *testing.F) {
	fuzzseed.AddFiles(f, filepath.Join("..", "..", "cmd", "webhook", "testdata", "impact", "queries.log"))
	var seed bytes.Buffer
	for _, e := range shopLog() {
		seed.WriteString(`{"time":"` + e.Time.Format("2006-01-02T15:04:05.000Z07:00") + `","client":"` + e.Client + `","namespace":"` + e.Namespace +
			`","pod":"` + e.Pod + `","name":"` + e.Name + `","type":"` + e.Type + `","rcode":"` + e.Rcode + `","source":"completion","duration":0.5}` + "\n")
	}
	f.Add(seed.Bytes())
	f.Add([]byte(`{"time":"2026-12-06T06:30:00Z","pod":"api-1","namespace":"shop","name":"..","type":"A","rcode":"REFUSED"}`))
	pods := shopPods(shopConf("2"), "")
	anyPod := func(ns, name string) (Pod, bool) { return pods("shop", "api-"+name) }
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := ReadLog(bytes.NewReader(data), "fuzz.log")
		if err != nil {
			return
		}
		r := Analyze(entries, anyPod, Options{})
		for _, w := range r.Workloads {
			names := map[string]bool{}
			for _, d := range w.Distinct {
				names[d.Name] = true
			}
			for _, s := range w.Libcs {
				if s.Saved != s.Queries-s.ProposedQueries {
					t.Errorf("%s %s: saved %d of %d -> %d", w.Workload, s.Libc, s.Saved, s.Queries, s.ProposedQueries)
				}
				for _, b := range append(append([]string{}, s.Breaks...), s.Different...) {
					if !names[b] {
						t.Errorf("%s %s: %q breaks or differs but is no lookup", w.Workload, s.Libc, b)
					}
				}
			}
		}
		lines := strings.Split(string(data), "\n")
		for i, j := 0, len(lines)-1; i < j; i, j = i+1, j-1 {
			lines[i], lines[j] = lines[j], lines[i]
		}
		reversed, err := ReadLog(strings.NewReader(strings.Join(lines, "\n")), "fuzz.log")
		if err != nil {
			t.Fatalf("the lines read in one order and not in the other: %v", err)
		}
		var a, b bytes.Buffer
		_ = WriteJSON(&a, r)
		_ = WriteJSON(&b, Analyze(reversed, anyPod, Options{}))
		if a.String() != b.String() && !sameTimes(entries) {
			t.Errorf("the report depends on the order of the lines:\n%s\n%s", a.String(), b.String())
		}
	})
}

// sameTimes reports whether two entries share a time: their order is then
// the log's.
func sameTimes(es []Entry) bool {
	seen := map[int64]bool{}
	for _, e := range es {
		if seen[e.Time.UnixNano()] {
			return true
		}
		seen[e.Time.UnixNano()] = true
	}
	return false
}
