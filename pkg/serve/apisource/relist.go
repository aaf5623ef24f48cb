package apisource

import (
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// A relist (after an API-server restart every kind relists at once) decodes
// the whole cluster again: Go's collector, at GOGC 100, lets the heap grow
// to twice what survived the last collection before it collects that
// garbage, so the process's peak memory would be its steady memory plus up
// to its whole live heap (measured 1.33-1.56x the steady RSS at ~20k
// objects) — in every replica at once, which is when a memory limit
// OOM-kills them all. relistGuard holds the Go runtime to a soft memory
// limit a little above what it used when the relist began, for as long
// as relists go on: the collector runs as often as that takes, trading a
// relist's CPU (a rare event) for a flat memory curve. Records that a relist
// does not change are shared with the store (Store.Shared*), so a relist
// needs little more live memory than the state before it.
type relistGuard struct {
	mu     sync.Mutex
	active bool
	prev   int64 // the soft limit before (math.MaxInt64: none)
	limit  int64 // the soft limit set (0: none set)
	// headroom is the fraction of the Go runtime's memory at the start
	// that the relists may use on top of it, at least minHeadroom bytes.
	headroom    float64
	minHeadroom int64
}

// The relist headroom: 15% of the runtime's memory, at least 8 MiB (a small
// cluster's relist would otherwise collect nonstop).
const (
	relistHeadroom    = 0.15
	relistMinHeadroom = 8 << 20
)

func newRelistGuard() *relistGuard {
	return &relistGuard{headroom: relistHeadroom, minHeadroom: relistMinHeadroom}
}

// start sets the soft limit if no relist is going on; it never raises a
// limit already set (GOMEMLIMIT, or pkg/memlimit's from the container).
func (g *relistGuard) start() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.active {
		return
	}
	used := runtimeMemory()
	limit := used + max(int64(float64(used)*g.headroom), g.minHeadroom)
	g.prev = debug.SetMemoryLimit(-1)
	g.active = true
	if limit < g.prev {
		debug.SetMemoryLimit(limit)
		g.limit = limit
	} else {
		g.limit = 0
	}
}

// end restores the soft limit from before the relists.
func (g *relistGuard) end() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.active {
		return
	}
	if g.limit != 0 {
		debug.SetMemoryLimit(g.prev)
	}
	g.active, g.limit = false, 0
}

// runtimeMemory is the memory the soft limit counts: what the Go runtime
// has mapped and not returned to the OS.
func runtimeMemory() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64()) - int64(s[1].Value.Uint64())
}
