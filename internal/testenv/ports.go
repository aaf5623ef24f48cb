package testenv

import (
	"net"
	"strconv"
	"testing"
)

// FreeTCPPort returns a loopback TCP port that was free a moment ago, for a
// server a test starts that takes a port rather than a listener.
func FreeTCPPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreeDNSPort returns a loopback port free for both UDP and TCP a moment
// ago (a DNS server listens on both), trying at most 20 ports.
func FreeDNSPort(t testing.TB) int {
	t.Helper()
	for range 20 {
		port := FreeTCPPort(t)
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no loopback port free for both UDP and TCP after 20 tries")
	return 0
}
