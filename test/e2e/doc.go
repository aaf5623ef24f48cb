// Package e2e holds poddns's end-to-end tests: real parts put together the way
// a cluster puts them together, no mocks (DESIGN.md, "Real parts, not mocks").
//
// The stub-resolver tests put the resolv.conf that pkg/resolvconf renders in
// front of the real resolvers pods use — glibc (`getent ahosts`) and musl (a
// tiny getaddrinfo program built with `musl-gcc -static`) — inside a private
// network and mount namespace made with unshare(1), and record every query they
// send to a DNS server on 127.0.0.53:53 in that namespace. Nothing is sent
// outside the namespace and the host's /etc files are never touched.
//
// They need root, unshare, mount, ip, getent and musl-gcc: with CI=true a
// missing one fails the test, elsewhere it is skipped (internal/testenv).
// Every test name contains E2E, so `go test -run E2E ./test/e2e/` runs them all.
package e2e
