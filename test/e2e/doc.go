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
// The node-local tests (nodelocal_test.go, issue 11) build a simulated node
// from network namespaces: kube-apiserver and etcd on the node's loopback, a
// kube-proxy-style DNAT of the cluster DNS IP (nftables, iptables-nft and
// iptables-legacy) to a central dnsd in a namespace of its own, a CNI-style
// bridge with three pod namespaces, and dnsd in node-local mode; they prove
// the lookups, conntrack, completion, upgrade, fallback and restart claims.
//
// They need root, unshare, mount, ip, getent and musl-gcc (the node-local
// tests also nsenter, gcc, nft, conntrack, iptables and dig): with CI=true a
// missing one fails the test, elsewhere it is skipped (internal/testenv).
// Every test name contains E2E, so `go test -run E2E ./test/e2e/` runs them all.
package e2e
