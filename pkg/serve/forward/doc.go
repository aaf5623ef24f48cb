// Package forward is dnsd's forwarder: the last handler of the chain, which
// sends the names dnsd does not serve itself to upstream resolvers.
//
// Semantics follow CoreDNS's forward plugin with its Kubernetes defaults
// (see ../shared/reference/kubernetes-dns.md §2.4):
//
//   - Upstreams come from the configuration or from a resolv.conf (parsed
//     with pkg/resolvconf, kubelet's rules); per-zone upstreams (stub
//     domains) win over the default ones, the longest zone first. A name no
//     upstream set covers is handed to the next handler (REFUSED at the end
//     of dnsd's chain: dnsd is not an open resolver).
//   - Every try goes over UDP first and is retried over TCP on the same
//     upstream when the reply is truncated (CoreDNS's prefer_udp); with
//     ForceTCP, over TCP only (CoreDNS's force_tcp).
//   - Each try is bounded by TryTimeout (2 s), the whole query by Deadline
//     (5 s); when every try failed the client gets SERVFAIL within the
//     deadline.
//   - Spoofing (the defences of BIND and unbound): every UDP query leaves
//     from a new socket connected to the upstream, so the kernel gives it a
//     random source port from the whole ephemeral range
//     (net.ipv4.ip_local_port_range, 32768-60999 by default: widen it, a
//     namespaced sysctl, for more) and delivers to it only datagrams from
//     the upstream's address and port. The query carries a fresh ID from
//     crypto/rand; a reply is accepted only when its ID and question match
//     (anything else is read, dropped and counted). A blind forger must
//     guess port and ID together, about 2^30.8 tries per query instead of
//     2^16, while the try lasts. RandomizeCase (0x20) adds one bit per
//     letter of the name: the name goes out in random case and the reply
//     must echo it exactly; an upstream that answers in another case is
//     detected by that reply (dropped, counted in case_mismatches_total,
//     the try repeated at once with the name as the client spelt it) and
//     gets names unchanged for CaseFallback (1 h). The limits: a forger on
//     the path (who sees the query) is not stopped by any of this, and
//     answers are not DNSSEC-validated: that needs a validating upstream.
//   - TCP connections (for truncated replies) are pooled per upstream and
//     closed after Expire (10 s) idle; one that timed out or got a reply
//     out of step is never reused.
//   - DNS over TLS (RFC 7858): an upstream written tls://IP[:port] (853
//     by default) gets every query over TLS and nothing else: no UDP, no
//     plain-text fallback, health checks over TLS too. Its certificate is
//     verified against TLSCA (else the system's pool) for TLSServerName (a
//     stub's own wins), else for the upstream's IP address, as CoreDNS
//     verifies without tls_servername; TLS 1.2 at least. A handshake that
//     fails (an unknown CA, another name) fails the try, is counted in
//     tls_handshake_errors_total and logged (repeats once a minute).
//     Connections are pooled, at most PoolSize per upstream, each carrying
//     up to MaxPipelined (64) queries at once; a query takes the busiest
//     connection with room (the fewest connections, and handshakes), and
//     replies, in any order, are matched to their queries by ID and
//     question; anything else on the stream (a late reply, a wrong ID or
//     question) is dropped and counted. A connection is closed after
//     Expire without a query; one the upstream closes is dropped at once,
//     and its queries in flight are sent once more, within their try, on
//     one connection opened after it.
//   - An upstream that failed MaxFails (2) tries in a row is marked down
//     and probed with ". IN NS" every HealthCheck (0.5 s) until any reply
//     comes back; down upstreams are tried only after the healthy ones, and
//     when every upstream is down one is still tried (never a silent
//     outage).
//   - Policy orders the upstreams of each query: random (default),
//     round_robin or sequential.
//   - At most MaxConcurrent (1000) queries are in flight; beyond that a
//     query is answered REFUSED at once, which bounds memory.
//
// Upstreams and ExchangeVia (one try with a named upstream) serve the
// startup loop probe of package loop.
//
// The upstream query is built fresh: the question, RD and CD as the client
// sent them, and an OPT record (buffer MaxUDPSize, the client's DO bit); the
// client's other EDNS0 options are not forwarded. The reply goes back with
// the client's ID and question (case kept), RA set (dnsd offers recursion
// to the clients that reach the forwarder, whatever the upstream said; a
// NOERROR reply without records, AA or RA is a referral to glibc, which
// resends the query, then tries its next nameserver) and without the
// upstream's OPT record (the serving writer adds dnsd's own when the
// client had one).
//
// Metrics (namespace poddns, subsystem forward; CoreDNS's label names):
//
//	poddns_forward_requests_total{to}                     tries sent
//	poddns_forward_responses_total{to,rcode}              replies received
//	poddns_forward_request_duration_seconds{to,rcode}     try round trip
//	poddns_forward_healthcheck_failures_total{to}         failed probes
//	poddns_forward_healthcheck_broken_total               queries with every upstream down
//	poddns_forward_max_concurrent_rejects_total           REFUSED for the in-flight limit
//	poddns_forward_inflight                               queries in flight
//	poddns_forward_conn_cache_hits_total{proto}           pooled TCP or TLS connection reused (never for udp)
//	poddns_forward_conn_cache_misses_total{proto}         new socket dialled (every UDP try)
//	poddns_forward_dropped_replies_total                  packets whose ID or question did not match
//	poddns_forward_case_mismatches_total{to}              replies that did not echo the 0x20 case
//	poddns_forward_tls_handshake_errors_total{to,reason}  failed TLS handshakes (reason certificate or other)
package forward
