package dnstest

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/internal/testenv"
)

// TLSServerName is the name in the server certificates of a TLSCA (with
// the address 127.0.0.1).
const TLSServerName = "dns.test"

// TLSCA is a self-signed CA made for one test (valid for an hour) and a
// server certificate it signed, for DNS-over-TLS upstreams on loopback.
type TLSCA struct {
	// File is the CA certificate in PEM, in a directory of the test's.
	File string
	// Server is a certificate for TLSServerName and 127.0.0.1.
	Server tls.Certificate
}

// NewTLSCA makes a CA (ECDSA P-256) and its server certificate.
func NewTLSCA(tb testing.TB) *TLSCA {
	tb.Helper()
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "poddns test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, caKey := testenv.IssueCert(tb, caTmpl, nil, nil)
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: TLSServerName},
		DNSNames: []string{TLSServerName}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, key := testenv.IssueCert(tb, tmpl, caCert, caKey)
	file := testenv.WriteFile(tb, tb.TempDir(), "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})))
	return &TLSCA{File: file, Server: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}
}

// StartTLSUpstream is StartUpstream over DNS over TLS with ca's server
// certificate: it returns the address as forward takes it
// ("tls://127.0.0.1:port") and the count of queries (loop probes
// excepted).
func StartTLSUpstream(tb testing.TB, ca *TLSCA, ip string) (string, *atomic.Int32) {
	tb.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{ca.Server}, MinVersion: tls.VersionTLS12})
	if err != nil {
		tb.Fatal(err)
	}
	var n atomic.Int32
	Activate(tb, &dns.Server{Listener: ln, Net: "tcp-tls", Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		_ = w.WriteMsg(upstreamReply(r, ip, &n))
	})})
	return "tls://" + ln.Addr().String(), &n
}
