package serve

import (
	"context"
	"sync/atomic"

	"github.com/miekg/dns"
)

// Atomic is a Handler that runs whichever handler was stored last, so a
// configuration reload can replace part of a chain while queries are
// served: a query runs entirely on the handler it started with.
type Atomic struct {
	h atomic.Pointer[Handler]
}

// NewAtomic returns an Atomic running h.
func NewAtomic(h Handler) *Atomic {
	a := &Atomic{}
	a.Store(h)
	return a
}

// Store makes h the handler for the queries that come next.
func (a *Atomic) Store(h Handler) { a.h.Store(&h) }

// Load returns the current handler.
func (a *Atomic) Load() Handler { return *a.h.Load() }

// ServeDNS runs the current handler.
func (a *Atomic) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	return a.Load().ServeDNS(ctx, w, r)
}

// Name is the current handler's name.
func (a *Atomic) Name() string { return a.Load().Name() }
