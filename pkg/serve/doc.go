// Package serve is dnsd's small DNS serving framework on top of
// github.com/miekg/dns: the handler contract, the chain that runs handlers
// in one explicit order, the UDP and TCP listeners, EDNS0 and truncation,
// and the per-query [Request] helper.
//
// It exists so that every DNS feature of dnsd (cluster records, search
// completion, cache, forwarding, metrics) is a small [Handler] in its own
// package, tested on its own, owning its configuration, and put together in
// one place (the ordered list in package daemon) — the model is CoreDNS's
// plugin chain and plugin.cfg, without its registry and Corefile.
//
// # The handler contract
//
// A [Handler] answers with ServeDNS(ctx, w, r) (rcode, error), as in
// CoreDNS:
//
//   - If the handler wrote a reply to w, it returns the reply's rcode (or
//     any value other than the four below) and a nil error, or an error that
//     the top of the chain only logs and counts.
//   - If it returns dns.RcodeServerFailure, dns.RcodeRefused,
//     dns.RcodeFormatError or dns.RcodeNotImplemented, it wrote nothing, and
//     the server writes a minimal reply with that rcode ([ClientWrite]).
//   - A handler that does not own a name hands the query to the next one
//     with [NextOrFailure].
//   - A handler about to wait (for an upstream's reply, for another
//     query's flight) calls [Blocking] first: over UDP its worker answers
//     the datagrams of one read inline, and hands the others and the
//     socket to another worker only when told (or, late, when a watcher
//     notices).
//   - A handler is done with w (and the addresses it gives) and with r
//     when it returns: the server reuses its writers, and a handler's own
//     writer wrapping w may be reused too. Work that goes on after (a
//     cache's background refresh) copies what it needs first.
//
// Handlers never mutate a *dns.Msg they did not create: the request belongs
// to the server and a reply may be shared (a cache keeps it); copy first
// (dns.Msg.Copy). The [ResponseWriter] this package gives to the chain
// follows the same rule when it truncates a reply.
//
// # Size, EDNS0 and truncation
//
// Handlers build complete answers and never think about sizes. On UDP the
// writer fits every reply into the client's advertised EDNS0 buffer (512
// bytes without EDNS0, at most [MaxUDPSize]), dropping whole records and
// setting TC so that the client retries over TCP, where the full answer is
// sent. When the query carried an OPT record, the reply carries one too.
//
// # Packed replies
//
// A handler that keeps replies in wire form (the cache) writes them with
// [WritePacked]: writers that implement [PackedWriter] pass the [Packed]
// reply on (recording its rcode, asking for a shuffle), and the server's
// writer sends its bytes with an OPT record added as above, or fits its
// message when it is too large; any other writer gets the message.
//
// # Listeners
//
// [Server] listens on one address with TCP and with one SO_REUSEPORT UDP
// socket per core (the kernel spreads queries over them, as CoreDNS's
// multisocket does), and reports when all sockets are bound, so tests never
// sleep. Each UDP socket reads the datagrams that are ready and sends the
// replies in batches (recvmmsg and sendmmsg; udp.go says why).
//
// This package must not know any DNS data (zones, records, Kubernetes); it
// only moves messages.
package serve
