// Package certstandin does, through the API server, what cert-manager and
// its cainjector would do for the cert-manager objects of deploy/: it reads
// the Issuers and Certificates applied to the cluster, writes each
// Certificate's Secret (a self-signed CA from a selfSigned Issuer, a
// certificate signed by a CA Issuer's Secret otherwise), marks the
// Certificate Ready, and copies the CA into the caBundle of every webhook
// configuration annotated cert-manager.io/inject-ca-from.
//
// It exists because cert-manager cannot be built here (its commands are
// nested modules the module proxy does not serve), yet the one-node cluster
// test must run deploy/ as users install it: the objects are applied as
// they are, and what cert-manager would produce is made from them, not
// pre-seeded. Only the selfSigned and ca issuer types deploy/ uses are
// supported; renewal is not (each call issues what is missing).
//
// This package is test support: only _test.go files may import it.
package certstandin

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// InjectAnnotation is cainjector's annotation: <namespace>/<Certificate>.
const InjectAnnotation = "cert-manager.io/inject-ca-from"

// Scheme holds the built-in types and cert-manager's.
var Scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(cmapi.AddToScheme(s))
	return s
}()

// Result is what Issue wrote.
type Result struct {
	// Secrets are the Secrets written, as namespace/name.
	Secrets []string
	// Injected are the webhook configurations whose caBundle was set.
	Injected []string
}

// CRDDir returns cert-manager's CRDs (deploy/crds of the
// github.com/cert-manager/cert-manager module go.mod requires, in the module
// cache: controller-gen's output, what its Helm chart is built from). goCmd
// runs `go list -m` in the repository root.
func CRDDir(ctx context.Context, goCmd, root string) (string, error) {
	cmd := exec.CommandContext(ctx, goCmd, "list", "-m", "-f", "{{.Dir}}", "github.com/cert-manager/cert-manager")
	cmd.Dir = root
	out, err := cmd.Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		return "", fmt.Errorf("locating the cert-manager module (go list -m; run `go mod download github.com/cert-manager/cert-manager`): %v", err)
	}
	return filepath.Join(dir, "deploy", "crds"), nil
}

// Issue writes the Secret of every Certificate in the cluster that has
// none, marks each Certificate Ready, then injects the CAs. A Certificate
// whose Issuer is missing, of another type, or whose CA Secret is not
// written yet (after every other one was tried) is an error.
func Issue(ctx context.Context, cfg *rest.Config) (*Result, error) {
	c, err := client.New(cfg, client.Options{Scheme: Scheme})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	var certs cmapi.CertificateList
	if err := c.List(ctx, &certs); err != nil {
		return nil, fmt.Errorf("list Certificates: %w", err)
	}
	res := &Result{}
	// A CA Issuer needs its Secret: issue in rounds until none is left or a
	// round makes no progress.
	pending := certs.Items
	for len(pending) > 0 {
		var next []cmapi.Certificate
		var errs []error
		for i := range pending {
			crt := &pending[i]
			err := issueOne(ctx, c, crt, res)
			if errors.Is(err, errNotReady) {
				next = append(next, *crt)
				errs = append(errs, err)
				continue
			}
			if err != nil {
				return res, err
			}
		}
		if len(next) == len(pending) {
			return res, errors.Join(errs...)
		}
		pending = next
	}
	return res, inject(ctx, c, res)
}

// errNotReady: the Certificate's CA Secret does not exist yet.
var errNotReady = errors.New("CA Secret not issued yet")

// issueOne writes crt's Secret unless it holds a certificate already, and
// sets crt's Ready condition.
func issueOne(ctx context.Context, c client.Client, crt *cmapi.Certificate, res *Result) error {
	name := crt.Namespace + "/" + crt.Name
	ref := crt.Spec.IssuerRef
	if ref.Kind != "" && ref.Kind != cmapi.IssuerKind || ref.Group != "" && ref.Group != "cert-manager.io" {
		return fmt.Errorf("Certificate %s: issuer kind %q group %q: only namespaced cert-manager.io Issuers are supported", name, ref.Kind, ref.Group)
	}
	var iss cmapi.Issuer
	if err := c.Get(ctx, client.ObjectKey{Namespace: crt.Namespace, Name: ref.Name}, &iss); err != nil {
		return fmt.Errorf("Certificate %s: Issuer %s: %w", name, ref.Name, err)
	}
	var secret corev1.Secret
	err := c.Get(ctx, client.ObjectKey{Namespace: crt.Namespace, Name: crt.Spec.SecretName}, &secret)
	exists := err == nil
	switch {
	case err == nil && len(secret.Data[corev1.TLSCertKey]) > 0:
		// Issued before (cert-manager leaves a valid Secret alone).
	case err != nil && !apierrors.IsNotFound(err):
		return fmt.Errorf("Certificate %s: Secret: %w", name, err)
	default:
		var signer *keyPair
		switch {
		case iss.Spec.SelfSigned != nil:
		case iss.Spec.CA != nil:
			if signer, err = readKeyPair(ctx, c, crt.Namespace, iss.Spec.CA.SecretName); err != nil {
				if apierrors.IsNotFound(err) {
					return fmt.Errorf("Certificate %s: Issuer %s: %w", name, iss.Name, errNotReady)
				}
				return fmt.Errorf("Certificate %s: Issuer %s: %w", name, iss.Name, err)
			}
		default:
			return fmt.Errorf("Certificate %s: Issuer %s: only selfSigned and ca issuers are supported", name, iss.Name)
		}
		data, err := sign(crt, signer)
		if err != nil {
			return fmt.Errorf("Certificate %s: %w", name, err)
		}
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: crt.Namespace, Name: crt.Spec.SecretName,
				Annotations: map[string]string{
					cmapi.CertificateNameKey:      crt.Name,
					cmapi.IssuerNameAnnotationKey: iss.Name, cmapi.IssuerKindAnnotationKey: cmapi.IssuerKind,
					cmapi.IssuerGroupAnnotationKey: "cert-manager.io",
					cmapi.CommonNameAnnotationKey:  crt.Spec.CommonName,
					cmapi.AltNamesAnnotationKey:    strings.Join(crt.Spec.DNSNames, ","),
				},
			},
			Type: corev1.SecretTypeTLS,
			Data: data,
		}
		if !exists {
			err = c.Create(ctx, s)
		} else {
			secret.Data, secret.Annotations = s.Data, s.Annotations
			err = c.Update(ctx, &secret)
		}
		if err != nil {
			return fmt.Errorf("Certificate %s: write Secret %s: %w", name, crt.Spec.SecretName, err)
		}
		res.Secrets = append(res.Secrets, crt.Namespace+"/"+crt.Spec.SecretName)
	}
	return markReady(ctx, c, crt)
}

// markReady sets crt's Ready condition (True, reason Ready) through the
// status subresource, as cert-manager's readiness controller does.
func markReady(ctx context.Context, c client.Client, crt *cmapi.Certificate) error {
	now := metav1.Now()
	crt.Status.Conditions = []cmapi.CertificateCondition{{
		Type: cmapi.CertificateConditionReady, Status: cmmeta.ConditionTrue,
		Reason: "Ready", Message: "Certificate is up to date and has not expired (certstandin)",
		LastTransitionTime: &now, ObservedGeneration: crt.Generation,
	}}
	if err := c.Status().Update(ctx, crt); err != nil {
		return fmt.Errorf("Certificate %s/%s: status: %w", crt.Namespace, crt.Name, err)
	}
	return nil
}

// keyPair is a CA's certificate and key.
type keyPair struct {
	cert *x509.Certificate
	der  []byte
	key  crypto.Signer
}

func readKeyPair(ctx context.Context, c client.Client, namespace, name string) (*keyPair, error) {
	var s corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &s); err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		return nil, fmt.Errorf("Secret %s/%s: %w", namespace, name, err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("Secret %s/%s: %w", namespace, name, err)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("Secret %s/%s: key is no crypto.Signer", namespace, name)
	}
	return &keyPair{cert: cert, der: pair.Certificate[0], key: signer}, nil
}

// sign makes crt's key and certificate as its spec says (key algorithm and
// size, subject, names, usages, duration, isCA), signed by signer or by
// itself, and returns the Secret's data: tls.crt, tls.key and ca.crt (the
// signer's certificate, or the certificate itself when self-signed).
func sign(crt *cmapi.Certificate, signer *keyPair) (map[string][]byte, error) {
	key, keyPEM, err := newKey(crt.Spec.PrivateKey)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	lifetime := 90 * 24 * time.Hour // cert-manager's default duration
	if crt.Spec.Duration != nil {
		lifetime = crt.Spec.Duration.Duration
	}
	now := time.Now().Add(-time.Minute)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: crt.Spec.CommonName},
		NotBefore:    now, NotAfter: now.Add(lifetime),
		DNSNames:              crt.Spec.DNSNames,
		BasicConstraintsValid: true,
		IsCA:                  crt.Spec.IsCA,
	}
	for _, ip := range crt.Spec.IPAddresses {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	usages := crt.Spec.Usages
	if len(usages) == 0 {
		usages = []cmapi.KeyUsage{cmapi.UsageDigitalSignature, cmapi.UsageKeyEncipherment}
	}
	for _, u := range usages {
		switch u {
		case cmapi.UsageDigitalSignature:
			tmpl.KeyUsage |= x509.KeyUsageDigitalSignature
		case cmapi.UsageKeyEncipherment:
			tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
		case cmapi.UsageCertSign:
			tmpl.KeyUsage |= x509.KeyUsageCertSign
		case cmapi.UsageServerAuth:
			tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		case cmapi.UsageClientAuth:
			tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
		default:
			return nil, fmt.Errorf("usage %q is not supported", u)
		}
	}
	if crt.Spec.IsCA {
		tmpl.KeyUsage |= x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	}
	parent, parentKey := tmpl, crypto.Signer(key)
	if signer != nil {
		parent, parentKey = signer.cert, signer.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	caPEM := certPEM
	if signer != nil {
		caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: signer.der})
	}
	return map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM, cmmeta.TLSCAKey: caPEM}, nil
}

// newKey generates the private key spec asks for (cert-manager's default:
// RSA 2048) in its default PKCS#1 encoding (SEC 1 for ECDSA).
func newKey(spec *cmapi.CertificatePrivateKey) (crypto.Signer, []byte, error) {
	alg, size := cmapi.RSAKeyAlgorithm, 0
	if spec != nil {
		if spec.Algorithm != "" {
			alg = spec.Algorithm
		}
		size = spec.Size
		if spec.Encoding != "" && spec.Encoding != cmapi.PKCS1 {
			return nil, nil, fmt.Errorf("private key encoding %q is not supported", spec.Encoding)
		}
	}
	switch alg {
	case cmapi.RSAKeyAlgorithm:
		if size == 0 {
			size = 2048
		}
		k, err := rsa.GenerateKey(rand.Reader, size)
		if err != nil {
			return nil, nil, err
		}
		return k, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), nil
	case cmapi.ECDSAKeyAlgorithm:
		curves := map[int]elliptic.Curve{0: elliptic.P256(), 256: elliptic.P256(), 384: elliptic.P384(), 521: elliptic.P521()}
		curve, ok := curves[size]
		if !ok {
			return nil, nil, fmt.Errorf("ECDSA key size %d is not supported", size)
		}
		k, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, nil, err
		}
		return k, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
	default:
		return nil, nil, fmt.Errorf("private key algorithm %q is not supported", alg)
	}
}

// inject sets clientConfig.caBundle of every webhook of each
// MutatingWebhookConfiguration annotated InjectAnnotation to ca.crt of the
// named Certificate's Secret, as cainjector does.
func inject(ctx context.Context, c client.Client, res *Result) error {
	var list admissionregistrationv1.MutatingWebhookConfigurationList
	if err := c.List(ctx, &list); err != nil {
		return fmt.Errorf("list MutatingWebhookConfigurations: %w", err)
	}
	for i := range list.Items {
		m := &list.Items[i]
		from, ok := m.Annotations[InjectAnnotation]
		if !ok {
			continue
		}
		ns, name, ok := strings.Cut(from, "/")
		if !ok {
			return fmt.Errorf("MutatingWebhookConfiguration %s: %s %q is not <namespace>/<name>", m.Name, InjectAnnotation, from)
		}
		var crt cmapi.Certificate
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &crt); err != nil {
			return fmt.Errorf("MutatingWebhookConfiguration %s: Certificate %s: %w", m.Name, from, err)
		}
		var s corev1.Secret
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: crt.Spec.SecretName}, &s); err != nil {
			return fmt.Errorf("MutatingWebhookConfiguration %s: Certificate %s: %w", m.Name, from, err)
		}
		ca := s.Data[cmmeta.TLSCAKey]
		if len(ca) == 0 {
			return fmt.Errorf("MutatingWebhookConfiguration %s: Secret %s/%s has no %s", m.Name, ns, s.Name, cmmeta.TLSCAKey)
		}
		for j := range m.Webhooks {
			m.Webhooks[j].ClientConfig.CABundle = ca
		}
		if err := c.Update(ctx, m); err != nil {
			return fmt.Errorf("MutatingWebhookConfiguration %s: %w", m.Name, err)
		}
		res.Injected = append(res.Injected, m.Name)
	}
	return nil
}
