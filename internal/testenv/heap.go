package testenv

import "runtime"

// LiveHeap is the Go heap in use after two collections: about what is
// reachable, for tests that measure the memory of a record or an entry by
// the difference before and after making many of them.
func LiveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
