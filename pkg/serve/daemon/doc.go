// Package daemon is dnsd as a library: its versioned configuration
// (DNSDConfig: the handlers' own configurations gathered, decoded with
// package configfile, validated) and the daemon's lifecycle (the handler
// chain in its one order, the object source, the DNS and HTTP listeners,
// reload keeping the last good configuration, lame-duck shutdown).
//
// It exists so that cmd/dnsd only parses flags and handles signals, and so
// that tests and benchmarks can run a whole dnsd in-process through the
// same code the binary runs.
//
// Its registry holds every handler's metrics (each documented in its
// package), Go's and the process's, and the daemon's own:
//
//	poddns_source_reloads_refused_total{reason}   objects-file reloads refused (parse, incomplete, empty)
package daemon
