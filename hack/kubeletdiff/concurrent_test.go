package kubeletdiff

import (
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConcurrentProfile computes the pods of random cases from several
// goroutines on one shared NodeProfile (documented as safe for concurrent
// use) and compares every result with kubelet's. Run it with -race to let the
// race detector look as well (slow to build).
func TestConcurrentProfile(t *testing.T) {
	seed := uint64(envInt("KUBELETDIFF_SEED", time.Now().UnixNano()))
	n := 300
	if testing.Short() {
		n = 50
	}
	g := gen{rand.New(rand.NewPCG(seed, 0x636f6e63))}
	dir := t.TempDir()
	for i := 0; i < n; i++ {
		tc := g.testCase()
		path := setupFiles(t, dir, &tc.Node)
		k := runKubelet(tc, path)
		if k.StartErr != nil {
			continue
		}
		p, err := newProfile(tc, path)
		if err != nil {
			t.Fatalf("seed %d: NewNodeProfile: %v", seed, err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var diffs []string
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for rep := 0; rep < 5; rep++ {
					o := nodeOutcome{StartLogs: k.StartLogs, Check: k.Check, Pods: computePods(t, tc, p)}
					if d := compare(k, o); len(d) > 0 {
						mu.Lock()
						diffs = append(diffs, d...)
						mu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
		if len(diffs) > 0 {
			t.Fatalf("seed %d, case %d: concurrent Compute on one profile disagrees with kubelet:\n  %s\ncase: %s",
				seed, i, strings.Join(diffs[:min(len(diffs), 5)], "\n  "), describe(tc))
		}
	}
}
