// Package store holds what dnsd knows about the cluster — Services,
// EndpointSlices, Pods and Namespaces — as slim records indexed the way DNS
// asks: a Service by namespace and name, with its ready endpoints already
// merged from all its EndpointSlices; every Service and endpoint name by IP
// (for PTR); pods by IP.
//
// It exists to keep the hot path cheap and memory small. Sources (the API
// server watch, an offline file) convert Kubernetes objects with [ToService],
// [ToEndpointSlice], [ToPod] and [ToNamespace], which keep only what DNS
// needs (CoreDNS's scale-test OOMs came from keeping whole objects), and
// write them to a [Store]. Readers take an immutable [Snapshot] with one
// atomic load and never lock: a write copies only the indexes it touches
// and publishes a new snapshot, so a query sees either the state before a
// change or after it, never half of it.
//
// Before the first sync (SetSynced) writes are not published one by one —
// the initial list would copy the indexes once per object — and the
// snapshot stays empty; handlers must answer SERVFAIL, never NXDOMAIN, until
// Synced reports true.
//
// The package knows nothing of DNS wire formats or zones and imports no
// client: it is fed, it does not fetch.
package store
