// Package sizing is dnsd's memory formula: how much memory one dnsd needs
// for a cluster of a given size. deploy/ sizes its requests and limits with
// it, and test/integration's TestDNSScaleAPIRestart holds a real dnsd to
// BoundMB across an API-server restart.
//
// Where the figures come from (this machine: go1.26, amd64; dnsd with Go's
// defaults, GOGC 100 and no GOMEMLIMIT):
//   - the live heap of the record store per object, from
//     pkg/serve/store's TestRecordMemory: ~0.5 kB per Pod, ~0.65 kB per
//     ClusterIP Service, ~2.3 kB per headless Service with an EndpointSlice
//     of 3 endpoints;
//   - a real dnsd at ~20k objects (16 500 Pods, 2 500 Services of which
//     1 000 headless, 20 namespaces; TestDNSScaleAPIRestart): RSS 44.5 MB
//     once synced (Go heap in use 16 MB), peak RSS 63.7 to 69.6 MB across
//     an API-server restart and the relists after it (four runs: the
//     peak is where the collector happens to run); an almost empty
//     cluster: RSS 32 MB, peak 36 MB.
//
// The resident memory of a Go program is about its fixed part (code,
// runtime, buffers) plus twice the live heap at GOGC=100 (the heap grows to
// twice what survived the last collection before the next one), plus what
// a relist allocates in flight (one page of 500 decoded objects at a time).
// MBPer1000Pods and MBPer1000Services are that per object with room:
// a headless Service's endpoints and several EndpointSlices per Service are
// folded into the Services term.
//
// The formula is fitted at ~20k objects. `make bench` (BENCHMARKS.md, the
// memory curve) checks it from 0.4k to 61k objects (Go defaults, completion
// on, RSS after load / peak across an API-server restart): 29.9 / 32.0 MB
// at 410 objects (bound 56.8), 47.9 / 58.3 MB at 6 100 (bound 66.8),
// 101.5 / 110.1 MB at 61 000 (bound 164). The peak grows by ~0.94 MB per
// 1000 objects (Pods and Services in the benchmark's 5:1 mix), which puts
// Kubernetes' published limits (161 000 objects) near 205 MB, under the
// 311 MB below: the curve does not call for another formula. The 160k
// fill itself did not finish on the shared machine in the session that
// measured this (115k of its 150k Pods in 40 minutes at load 25-37), so
// that point is an extrapolation, not a measurement.
package sizing

// Cluster is the size of what one dnsd watches.
type Cluster struct {
	// Pods watched: all of the cluster's with search completion or verified
	// pod records on; 0 with both off (the pod watch is off then).
	Pods int
	// Services, headless ones included (with their EndpointSlices).
	Services int
}

// The formula's figures, in MB (MiB).
const (
	// BaseMB is dnsd's fixed part with room: code, runtime, the
	// forwarding cache and buffers at their defaults, and the spread of
	// the peak between runs.
	BaseMB = 56
	// MBPer1000Pods is the memory per 1000 Pods watched.
	MBPer1000Pods = 1.5
	// MBPer1000Services is the memory per 1000 Services (and their
	// EndpointSlices).
	MBPer1000Services = 3.0
)

// BoundMB is the memory one dnsd stays under for c — its peak, relists
// after an API-server restart included — and so its container's memory
// limit:
//
//	MB = 56 + 1.5 × Pods/1000 + 3 × Services/1000
//
// For Kubernetes' published limits (150 000 Pods, 10 000 Services):
// 56 + 225 + 30 = 311 MB (deploy/ sets 320Mi).
func BoundMB(c Cluster) float64 {
	return BaseMB + MBPer1000Pods*float64(c.Pods)/1000 + MBPer1000Services*float64(c.Services)/1000
}
