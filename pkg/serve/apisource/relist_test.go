package apisource

import (
	"math"
	"runtime/debug"
	"testing"
)

// TestRelistGuard: a relist holds the soft memory limit a headroom above
// the runtime's memory, never above a limit already set, and its end
// restores the limit from before.
func TestRelistGuard(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	for _, tc := range []struct {
		name  string
		prev  int64 // the soft limit before the relist
		lower bool  // whether the relist lowers it
	}{
		{"no limit", math.MaxInt64, true},
		{"a container's limit well above", 1 << 40, true},
		{"a limit below the headroom", 1 << 20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetMemoryLimit(tc.prev)
			g := newRelistGuard()
			used := runtimeMemory()
			g.start()
			got := debug.SetMemoryLimit(-1)
			if tc.lower {
				if lo, hi := used+relistMinHeadroom, used+max(int64(0.2*float64(used)), relistMinHeadroom)+4<<20; got < lo || got > hi {
					t.Errorf("during the relist the limit is %d, want in [%d, %d] (runtime memory %d)", got, lo, hi, used)
				}
			} else if got != tc.prev {
				t.Errorf("during the relist the limit is %d, want the lower one set before, %d", got, tc.prev)
			}
			g.start() // a second kind's relist: unchanged
			if again := debug.SetMemoryLimit(-1); again != got {
				t.Errorf("a second start moved the limit from %d to %d", got, again)
			}
			g.end()
			if after := debug.SetMemoryLimit(-1); after != tc.prev {
				t.Errorf("after the relists the limit is %d, want %d as before", after, tc.prev)
			}
			g.end() // a second end changes nothing
			if after := debug.SetMemoryLimit(-1); after != tc.prev {
				t.Errorf("a second end set the limit to %d", after)
			}
		})
	}
}
