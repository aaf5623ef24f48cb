package testenv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// fillRecorder records what a Fill logs and how it fails the test.
type fillRecorder struct {
	testing.TB
	mu     sync.Mutex
	logs   []string
	failed string
}

func (r *fillRecorder) Helper() {}
func (r *fillRecorder) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}
func (r *fillRecorder) Fatal(args ...any) { r.failed = fmt.Sprint(args...) }

// TestFill: every object of every kind is created, each kind done is logged
// with its note, a kind that fails calls Failed and Wait fails the test
// naming it (after the retries of ParallelCreate: about 6 s).
func TestFill(t *testing.T) {
	t.Parallel()
	r := &fillRecorder{TB: t}
	f := NewFill(r, context.Background())
	f.Note = func() string { return "note" }
	var failedCalls atomic.Int32
	f.Failed = func() { failedCalls.Add(1) }
	var created [3]atomic.Int32
	f.Step("namespaces", 5, 2, func(_ context.Context, i int) error { created[0].Add(1); return nil })
	f.Go("services", 7, 3, func(_ context.Context, i int) error { created[1].Add(1); return nil })
	f.Go("pods", 4, 1, func(_ context.Context, i int) error {
		if i == 2 {
			return errors.New("boom")
		}
		created[2].Add(1)
		return nil
	})
	f.Wait()
	if created[0].Load() != 5 || created[1].Load() != 7 || created[2].Load() != 2 {
		t.Errorf("created %d, %d, %d, want 5, 7 and 2 (the pods stop at their error)", created[0].Load(), created[1].Load(), created[2].Load())
	}
	logs := strings.Join(r.logs, "\n")
	for _, want := range []string{"fill: 5 namespaces in ", "fill: 7 services in "} {
		if !strings.Contains(logs, want) || !strings.Contains(logs, "/s; note)") {
			t.Errorf("logs %q: want a line with %q and the note", logs, want)
		}
	}
	if strings.Contains(logs, "pods in") {
		t.Errorf("logs %q: the failed kind logged as done", logs)
	}
	if failedCalls.Load() != 1 || r.failed != "fill pods: item 2: boom" {
		t.Errorf("Failed called %d times, test failed with %q; want once and %q", failedCalls.Load(), r.failed, "fill pods: item 2: boom")
	}
}
