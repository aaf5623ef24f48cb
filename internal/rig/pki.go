package rig

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"time"
)

// CA is the rig's certificate authority: it signs the API server's serving
// certificate and every client certificate of the cluster, and is the
// --client-ca-file of the API server and kubelet. Tests may issue more
// certificates with it (e.g. a webhook's serving certificate).
type CA struct {
	// CertPEM is the CA certificate (the cluster's ca.crt).
	CertPEM []byte
	cert    *x509.Certificate
	key     crypto.Signer
	serial  int64
}

// KeyPair is a certificate and its private key, both PEM-encoded.
type KeyPair struct {
	CertPEM, KeyPEM []byte
}

// NewCA makes a CA valid for a day.
func NewCA(name string) (*CA, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{CertPEM: pemBlock("CERTIFICATE", der), cert: cert, key: key, serial: 1}, nil
}

// CertRequest says what a certificate issued by a CA is for: a client
// (CommonName and Organization are the Kubernetes user and groups) or a
// server (DNSNames and IPs are its names).
type CertRequest struct {
	CommonName   string
	Organization []string
	DNSNames     []string
	IPs          []string
	Server       bool
}

// Issue signs a new key for r, valid for a day.
func (ca *CA) Issue(r CertRequest) (KeyPair, error) {
	key, err := newKey()
	if err != nil {
		return KeyPair{}, err
	}
	ca.serial++
	usage := x509.ExtKeyUsageClientAuth
	if r.Server {
		usage = x509.ExtKeyUsageServerAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial),
		Subject:      pkix.Name{CommonName: r.CommonName, Organization: r.Organization},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     r.DNSNames,
	}
	for _, s := range r.IPs {
		ip := net.ParseIP(s)
		if ip == nil {
			return KeyPair{}, fmt.Errorf("certificate for %s: bad IP %q", r.CommonName, s)
		}
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return KeyPair{}, fmt.Errorf("certificate for %s: %w", r.CommonName, err)
	}
	kpem, err := keyPEM(key)
	if err != nil {
		return KeyPair{}, err
	}
	return KeyPair{CertPEM: pemBlock("CERTIFICATE", der), KeyPEM: kpem}, nil
}
