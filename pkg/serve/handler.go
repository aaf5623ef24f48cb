package serve

import (
	"context"
	"errors"

	"github.com/miekg/dns"
)

// Handler answers DNS queries; see the package comment for the contract.
type Handler interface {
	// ServeDNS answers r on w, or hands it on; see the package comment for
	// what the returned rcode means.
	ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error)
	// Name names the handler in logs, metrics and errors.
	Name() string
}

// HandlerFunc turns a function into a Handler named "func".
type HandlerFunc func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error)

// ServeDNS calls f.
func (f HandlerFunc) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	return f(ctx, w, r)
}

// Name implements Handler.
func (f HandlerFunc) Name() string { return "func" }

// Plugin makes a handler that hands what it does not answer to next.
type Plugin func(next Handler) Handler

// Chain puts plugins together: the first plugin is the outermost (it sees
// every query first), the last one hands on to last. last may be nil: a
// query that reaches the end of the chain is then refused.
func Chain(last Handler, plugins ...Plugin) Handler {
	h := last
	if h == nil {
		h = Refused
	}
	for i := len(plugins) - 1; i >= 0; i-- {
		h = plugins[i](h)
	}
	return h
}

// Refused is the end of a chain: it answers REFUSED, which tells a client
// that this server does not serve the name (dnsd is not an open resolver).
var Refused Handler = refused{}

type refused struct{}

func (refused) ServeDNS(context.Context, dns.ResponseWriter, *dns.Msg) (int, error) {
	return dns.RcodeRefused, nil
}
func (refused) Name() string { return "refused" }

// ErrNoNextHandler is returned by NextOrFailure when a handler has no next
// handler to hand a query to.
var ErrNoNextHandler = errors.New("no next handler")

// NextOrFailure calls next, or, when next is nil, returns SERVFAIL and an
// error naming the handler name that had nothing to hand on to. An error
// next returns comes back as an *Error naming next (unless it already is
// an *Error), so the top of the chain knows which handler failed.
func NextOrFailure(ctx context.Context, name string, next Handler, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if next == nil {
		return dns.RcodeServerFailure, &Error{Handler: name, Err: ErrNoNextHandler}
	}
	rcode, err := next.ServeDNS(ctx, w, r)
	if err != nil {
		var he *Error
		if !errors.As(err, &he) {
			err = &Error{Handler: next.Name(), Err: err}
		}
	}
	return rcode, err
}

// ClientWrite reports whether rcode means that the handler has written its
// reply: every rcode except SERVFAIL, REFUSED, FORMERR and NOTIMP.
func ClientWrite(rcode int) bool {
	switch rcode {
	case dns.RcodeServerFailure, dns.RcodeRefused, dns.RcodeFormatError, dns.RcodeNotImplemented:
		return false
	}
	return true
}

// Error is an error of a named handler, as the top of the chain logs it.
type Error struct {
	Handler string
	Err     error
}

func (e *Error) Error() string { return e.Handler + ": " + e.Err.Error() }

// Unwrap returns the handler's error.
func (e *Error) Unwrap() error { return e.Err }
