// Package bench holds the DNS benchmark of `make bench` / `make bench-dns`
// (TestBenchDNS): dnsd against CoreDNS and unbound with dnsperf and glibc,
// at a chosen cluster scale, results as JSON under bench/results/. It runs
// only when PODDNS_BENCH_OUT is set; `go test ./...` skips it. See
// bench/README.md.
package bench

import (
	"fmt"
	"net"
	"os"
	"testing"
)

// trivialEnv makes the test binary a trivial DNS server on the address it
// names instead of running tests: the load generator's ceiling is measured
// against it.
const trivialEnv = "PODDNS_BENCH_TRIVIAL_SERVER"

func TestMain(m *testing.M) {
	if addr := os.Getenv(trivialEnv); addr != "" {
		os.Exit(serveTrivial(addr))
	}
	os.Exit(m.Run())
}

// serveTrivial answers every UDP query on addr with the query itself
// turned into an empty NOERROR reply (QR and RA set, rcode 0), without
// parsing it: as cheap as a DNS server can be, so that what limits the
// ceiling run is the load generator. It runs until killed.
func serveTrivial(addr string) int {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "trivial server:", err)
		return 1
	}
	buf := make([]byte, 65535)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			fmt.Fprintln(os.Stderr, "trivial server:", err)
			return 1
		}
		if n < 12 {
			continue
		}
		buf[2] = 0x80 | buf[2]&0x01 // QR, opcode QUERY, RD kept
		buf[3] = 0x80               // RA, rcode NOERROR
		_, _ = pc.WriteTo(buf[:n], from)
	}
}
