package rig

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
)

// newKey makes a P-256 key, which every component of the cluster accepts.
func newKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

// keyPEM encodes key as PKCS#8 PEM.
func keyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pemBlock("PRIVATE KEY", der), nil
}

// serviceAccountKey returns a new key pair for signing ServiceAccount
// tokens: the private key (PKCS#8) and the public key (PKIX), PEM-encoded.
func serviceAccountKey() (priv, pub []byte, err error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	if priv, err = keyPEM(key); err != nil {
		return nil, nil, err
	}
	pk, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	return priv, pemBlock("PUBLIC KEY", pk), nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
