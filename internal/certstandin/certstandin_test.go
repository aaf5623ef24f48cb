package certstandin

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/poddns/poddns/internal/deployrender"
	"github.com/poddns/poddns/internal/testenv"
)

// TestIssueDeployBase applies deploy/base's Namespace, cert-manager objects
// and MutatingWebhookConfiguration as they are to a real API server with
// cert-manager's CRDs, issues, and checks the result as the API server uses
// it: a TLS server with the webhook's Secret is trusted, under the
// Service's name, by a client holding only the injected caBundle. A second
// call leaves the Secrets alone.
func TestIssueDeployBase(t *testing.T) {
	ctx := context.Background()
	root := testenv.Root(t)
	crds, err := CRDDir(ctx, "go", root)
	if err != nil {
		t.Fatal(err)
	}
	env := testenv.Start(t, func(e *envtest.Environment) { e.CRDDirectoryPaths = []string{crds} })
	objs, err := deployrender.Render(filepath.Join(root, "deploy", "base"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range objs {
		switch u.GetKind() {
		case "Namespace", "Issuer", "Certificate", "MutatingWebhookConfiguration":
			if err := env.Client.Create(ctx, u); err != nil {
				t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
			}
		}
	}
	c, err := client.New(env.Config, client.Options{Scheme: Scheme})
	if err != nil {
		t.Fatal(err)
	}
	var res *Result
	// The Certificates' CRD may still be settling in the API server's
	// discovery right after envtest installed it.
	for start := time.Now(); ; time.Sleep(200 * time.Millisecond) {
		if res, err = Issue(ctx, env.Config); err == nil || time.Since(start) > 10*time.Second {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(res.Secrets)
	if want := []string{"poddns-system/poddns-ca", "poddns-system/poddns-webhook-tls"}; !slices.Equal(res.Secrets, want) {
		t.Errorf("Secrets %q, want %q", res.Secrets, want)
	}
	if !slices.Equal(res.Injected, []string{"poddns"}) {
		t.Errorf("Injected %q", res.Injected)
	}

	secret := func(name string) *corev1.Secret {
		var s corev1.Secret
		if err := c.Get(ctx, client.ObjectKey{Namespace: "poddns-system", Name: name}, &s); err != nil {
			t.Fatal(err)
		}
		return &s
	}
	ca, leaf := secret("poddns-ca"), secret("poddns-webhook-tls")
	caCert := parse(t, ca.Data[corev1.TLSCertKey])
	if !caCert.IsCA || caCert.Subject.CommonName != "poddns-ca" || caCert.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA: isCA %v CN %q usage %b", caCert.IsCA, caCert.Subject.CommonName, caCert.KeyUsage)
	}
	if string(leaf.Data[cmmeta.TLSCAKey]) != string(ca.Data[corev1.TLSCertKey]) || leaf.Type != corev1.SecretTypeTLS {
		t.Errorf("webhook Secret: type %s, ca.crt is not the CA's certificate", leaf.Type)
	}
	leafCert := parse(t, leaf.Data[corev1.TLSCertKey])
	if k, ok := leafCert.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("webhook key %T, want ECDSA P-256 (privateKey of certificate.yaml)", leafCert.PublicKey)
	}
	if d := leafCert.NotAfter.Sub(leafCert.NotBefore); d < 2159*time.Hour || d > 2161*time.Hour {
		t.Errorf("webhook certificate valid for %v, want certificate.yaml's 2160h", d)
	}
	var m admissionregistrationv1.MutatingWebhookConfiguration
	if err := c.Get(ctx, client.ObjectKey{Name: "poddns"}, &m); err != nil {
		t.Fatal(err)
	}
	handshake(t, leaf, m.Webhooks[0].ClientConfig.CABundle, "poddns-webhook.poddns-system.svc")

	var crts cmapi.CertificateList
	if err := c.List(ctx, &crts, client.InNamespace("poddns-system")); err != nil {
		t.Fatal(err)
	}
	for _, crt := range crts.Items {
		if len(crt.Status.Conditions) != 1 || crt.Status.Conditions[0].Type != cmapi.CertificateConditionReady || crt.Status.Conditions[0].Status != cmmeta.ConditionTrue {
			t.Errorf("Certificate %s: conditions %+v, want Ready", crt.Name, crt.Status.Conditions)
		}
	}

	again, err := Issue(ctx, env.Config)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Secrets) != 0 || string(secret("poddns-webhook-tls").Data[corev1.TLSCertKey]) != string(leaf.Data[corev1.TLSCertKey]) {
		t.Errorf("a second Issue rewrote %q", again.Secrets)
	}
}

func parse(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatalf("no PEM block in %q", certPEM)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// handshake serves TLS on loopback with s's key pair and dials it as the API
// server would: trusting only caBundle, verifying serverName.
func handshake(t *testing.T, s *corev1.Secret, caBundle []byte, serverName string) {
	t.Helper()
	pair, err := tls.X509KeyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err == nil {
			_, _ = io.WriteString(conn, "ok")
			conn.Close()
		}
	}()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caBundle) {
		t.Fatal("caBundle holds no certificate")
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: serverName})
	if err != nil {
		t.Fatalf("TLS to the webhook's certificate with the injected caBundle: %v", err)
	}
	conn.Close()
}
