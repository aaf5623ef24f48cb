package testenv

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// ParallelCreate runs fn(i) for i in [0, n) on workers goroutines, for
// tests and benchmarks that fill an API server; the first error stops it.
// A call is retried a few times with backoff (the API server may shed load
// while etcd catches up); AlreadyExists counts as done.
func ParallelCreate(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				var err error
				for try := range 6 {
					if err = fn(ctx, i); err == nil || apierrors.IsAlreadyExists(err) {
						err = nil
						break
					}
					time.Sleep(time.Duration(100<<try) * time.Millisecond) // backing off a loaded API server
				}
				if err != nil {
					errc <- fmt.Errorf("item %d: %w", i, err)
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// Fill creates a control plane's objects kind by kind, each kind with
// ParallelCreate, for the tests and benchmarks that fill an API server:
// Step creates one kind and returns when it is done, Go creates one
// alongside the other kinds, and Wait waits for those and fails the test
// with the error of every kind that failed. Each kind done is logged with
// its count, time and rate.
type Fill struct {
	t   testing.TB
	ctx context.Context
	// Note, if set, is added to each kind's log line (the benchmark's load
	// average).
	Note func() string
	// Failed, if set, is called when a kind fails (the benchmark cancels
	// the other kinds).
	Failed func()

	mu   sync.Mutex
	errs []string
	wg   sync.WaitGroup
}

// NewFill returns a fill that creates with ctx.
func NewFill(t testing.TB, ctx context.Context) *Fill {
	return &Fill{t: t, ctx: ctx}
}

// Step creates n objects of one kind (what) with fn on workers goroutines.
func (f *Fill) Step(what string, n, workers int, fn func(ctx context.Context, i int) error) {
	f.t.Helper()
	s := time.Now()
	if err := ParallelCreate(f.ctx, n, workers, fn); err != nil {
		f.mu.Lock()
		f.errs = append(f.errs, fmt.Sprintf("fill %s: %v", what, err))
		f.mu.Unlock()
		if f.Failed != nil {
			f.Failed()
		}
		return
	}
	note := ""
	if f.Note != nil {
		note = "; " + f.Note()
	}
	f.t.Logf("fill: %d %s in %s (%.0f/s%s)", n, what, time.Since(s).Round(time.Millisecond), float64(n)/time.Since(s).Seconds(), note)
}

// Go runs Step on a goroutine of its own.
func (f *Fill) Go(what string, n, workers int, fn func(ctx context.Context, i int) error) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		f.Step(what, n, workers, fn)
	}()
}

// Wait waits for the kinds started with Go and fails the test if any kind
// failed.
func (f *Fill) Wait() {
	f.t.Helper()
	f.wg.Wait()
	if len(f.errs) > 0 {
		f.t.Fatal(strings.Join(f.errs, "\n"))
	}
}
