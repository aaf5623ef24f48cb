// Package cache is dnsd's answer cache, in front of the forwarder. Cluster
// names never reach it: cluster records come before it in the chain and
// answer from the store, so a change in the API shows at once.
//
// Semantics follow CoreDNS's cache plugin (../shared/reference/
// kubernetes-dns.md §2.3), with the same defaults:
//   - Two caches of Capacity entries each (default 9984): success
//     (NOERROR with records) and denial (NXDOMAIN, NODATA, and SERVFAIL).
//     Each is split into 256 shards with their own lock; a full shard
//     evicts an expired entry if it finds one among a few, else an
//     arbitrary one (Go's map order), so memory stays bounded.
//   - The key is the question's name lower-cased, its type and class, and
//     the DO and CD bits of the query.
//   - The TTL of a success entry is the smallest TTL of its records, of a
//     denial entry the smaller of the SOA's TTL and its MINIMUM field (RFC
//     2308); then capped (success 3600 s, denial 1800 s) and floored (5 s).
//     A denial without an SOA, a truncated reply and any rcode other than
//     NOERROR, NXDOMAIN and SERVFAIL are not cached. SERVFAIL (written by
//     the next handler or returned as an rcode, e.g. every upstream
//     failed) is cached for ServfailTTL (5 s; negative disables).
//   - Every record of a reply served from the cache carries the entry's
//     remaining TTL, so TTLs count down; AA is cleared. The reply has the
//     client's ID and question, and records owned by the question's name
//     are renamed to the client's spelling of it (0x20 case is kept).
//   - Prefetch (off by default): an entry hit Prefetch times without a
//     gap longer than PrefetchWindow (1 m) is refreshed in the background
//     when its remaining TTL falls below PrefetchPercent (10 %) of its TTL,
//     or in its last second; at most one refresh per entry and 16 in all.
//   - Serve-stale (RFC 8767; off by default): for ServeStale after expiry
//     an entry is kept; a query for it goes to the next handler first, and
//     when that fails (SERVFAIL, REFUSED, an error) the stale answer is
//     served with TTL StaleTTL (30 s, RFC 8767's recommendation). A
//     SERVFAIL never replaces an entry that can still be served stale.
//   - In-flight coalescing: misses of the same key (the key above) that
//     come while one of them is being answered by the next handler do not
//     ask it again: they wait for that one query, then each gets its own
//     reply (its ID, its question and spelling of the name) from the entry
//     it made, or from a copy of the reply when it was not cacheable. A
//     waiter whose context ends first gets SERVFAIL; the shared query is
//     not cancelled by any one caller (the forwarder's deadline bounds
//     it). Package completion relies on it: a client's A and AAAA walks,
//     completed at the same time, ask the same names, and the upstream
//     sees each question once.
//
// The cache never modifies a message it did not create: replies are copied
// before being stored, and copied again before TTLs are rewritten. A hit is
// packed once, when stored: writers that take packed replies
// (serve.PackedWriter: metrics, querylog, acl, loadbalance, the server's)
// get the stored bytes with the client's ID, question spelling and
// remaining TTLs patched in, no message copied or packed per query
// (packed.go and serve.Wires; loadbalance picks one of a few shuffled
// orders packed once).
//
// Metrics (namespace poddns, subsystem cache):
//
//	poddns_cache_requests_total                 queries seen
//	poddns_cache_hits_total{type}               answered from the cache (success|denial)
//	poddns_cache_misses_total                   handed on
//	poddns_cache_entries{type}                  entries held
//	poddns_cache_evictions_total{type}          entries evicted for room
//	poddns_cache_prefetch_total                 background refreshes
//	poddns_cache_served_stale_total             stale answers served
//	poddns_cache_coalesced_total                misses that waited for an identical query in flight
package cache
