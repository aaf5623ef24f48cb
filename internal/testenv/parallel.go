package testenv

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
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
