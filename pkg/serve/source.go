package serve

import (
	"context"
	"sync/atomic"
)

// Source is where a reply's answer came from, as the query log reports
// it. Handlers that answer record it with SetSource; the query log reads
// it once the reply is written.
type Source uint32

// The sources a handler records.
const (
	SourceNone       Source = iota // nothing recorded (refused, dropped, answered by the server)
	SourceCluster                  // the cluster zones, from the store
	SourceCache                    // the forwarder's cache
	SourceUpstream                 // an upstream resolver, through the forwarder
	SourceCompletion               // server-side search completion
	SourceStatic                   // static records (hosts)
	SourceFiltered                 // synthesized by a filter (AAAA control)
)

var sourceNames = [...]string{"", "cluster", "cache", "upstream", "completion", "static", "filtered"}

// String is the source's name in the query log ("" for SourceNone).
func (s Source) String() string {
	if int(s) < len(sourceNames) {
		return sourceNames[s]
	}
	return "unknown"
}

// SourceSlot holds the source of one query's reply. It travels in the
// query's context rather than on the ResponseWriter: handlers wrap the
// writer (captures, the cache's flights) and a value in the context
// reaches every handler below the one that made the slot, wrapped or not.
// It is atomic because completion may ask handlers below it while another
// goroutine (a coalesced cache flight) records.
type SourceSlot struct{ v atomic.Uint32 }

// Get returns the recorded source.
func (s *SourceSlot) Get() Source { return Source(s.v.Load()) }

// Set records src.
func (s *SourceSlot) Set(src Source) { s.v.Store(uint32(src)) }

type sourceKey struct{}

// WithSourceSlot returns ctx carrying slot: the handlers called with the
// returned context record where their answer came from in it.
func WithSourceSlot(ctx context.Context, slot *SourceSlot) context.Context {
	return context.WithValue(ctx, sourceKey{}, slot)
}

// SetSource records src as the source of the reply to the query of ctx,
// when something (the query log) asked for it; it costs a context lookup
// otherwise. The last handler to record wins: a handler that answers from
// what handlers below it answered (completion) records after them.
func SetSource(ctx context.Context, src Source) {
	if s, ok := ctx.Value(sourceKey{}).(*SourceSlot); ok {
		s.Set(src)
	}
}

// HasSourceSlot reports whether ctx carries a source slot: the query is
// logged already (a lookup a handler makes for a client's query, such as
// an ExternalName target's, runs with the client query's context).
func HasSourceSlot(ctx context.Context) bool {
	_, ok := ctx.Value(sourceKey{}).(*SourceSlot)
	return ok
}

// SourceOf returns the source recorded for the query of ctx so far.
func SourceOf(ctx context.Context) Source {
	if s, ok := ctx.Value(sourceKey{}).(*SourceSlot); ok {
		return s.Get()
	}
	return SourceNone
}
