// Package querylog is dnsd's query log: one JSON line per query, with who
// asked — the client's address and port and, from the store's pod index,
// the namespace and name of the pod that has that address — what was
// asked, the rcode, the time taken and where the answer came from
// (cluster, cache, upstream, completion, static, filtered: the AAAA
// filter's NODATA; see serve.Source). That
// is what CoreDNS's log plugin cannot say (it knows only an IP), and
// enough to rebuild a client's search walk.
//
// A line looks like
//
//	{"time":"2026-12-06T06:30:00.123456Z","client":"10.244.1.7:40412","proto":"udp","id":4711,
//	 "namespace":"shop","pod":"web-5d9c","name":"api.example.com.","type":"A","rcode":"NOERROR",
//	 "source":"upstream","duration":0.000412}
//
// duration is in seconds; namespace and pod are empty for a client that is
// no known pod (or an address several live pods claim, such as a node's).
//
// The log is off by default. Classes filter by rcode class as CoreDNS's
// `log . { class denial error }` does, Namespaces by the client pod's
// namespace, Sample keeps one query in N. Serving never waits for the log:
// the handler queues a small record on a bounded queue and a single writer
// goroutine encodes and writes the lines (buffered, flushed whenever the
// queue runs empty); a record that finds the queue full is dropped and
// counted in poddns_querylog_dropped_total.
//
// The handler is near the top of dnsd's chain (below only the loop
// probe's), so it sees the final reply of every query that reaches the
// chain. A lookup a handler makes through the chain for a client's query
// (an ExternalName or static CNAME target) is no line of its own.
package querylog
