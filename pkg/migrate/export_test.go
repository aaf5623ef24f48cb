package migrate

import "testing"

// SetTLSTransport makes the translation take the forwarder as speaking DNS
// over TLS (on) or not for the test's duration, so
// that both translations of tls:// upstreams are tested whether or not the
// forwarder has its transport yet.
func SetTLSTransport(t *testing.T, on bool) {
	old := tlsTransport
	tlsTransport = func() bool { return on }
	t.Cleanup(func() { tlsTransport = old })
}
