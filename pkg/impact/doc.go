// Package impact predicts what a DNS policy change does to the lookups pods
// really make, before it is made: `webhook impact`.
//
// Lowering ndots is the usual cure for query amplification, but it changes
// what stub resolvers do: musl never searches a name with ndots or more
// dots (web.shop.svc stops resolving at ndots:2), glibc walks on past NODATA
// where musl stops. Teams otherwise find out by logging lookups for weeks.
//
// The input is dnsd's query log (one JSON line per query, with the pod that
// asked; see pkg/serve/querylog). For every pod in it, Reconstruct rebuilds
// the names the application asked for from the wire queries of its search
// walks, by the pod's current resolv.conf (with completion off a walk shows
// as name.<search1>, name.<search2>, ..., name.; with completion on, the
// log's completion source marks the one query the client made). Then
// Resolve replays each lookup with glibc's and musl's search algorithms
// (Names and the stop rules, the behaviour the e2e tests pin down with the
// real resolvers) through the file the pod has now and the one it would get
// under the proposed policies. The log's answers are the oracle of what
// exists; a name the log never asked is unknown, taken not to exist and
// reported as such. Analyze groups the results per workload: lookups that
// would stop resolving (and with which libc), lookups that would resolve to
// another name, and the wire queries saved.
//
// Everything but ManifestPods is pure: no network, no clock.
package impact
