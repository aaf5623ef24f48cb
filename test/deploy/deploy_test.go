package deploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/poddns/poddns/internal/certstandin"
	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/nodeprofile"
	"github.com/poddns/poddns/pkg/policy"
	padmission "github.com/poddns/poddns/pkg/policy/admission"
	"github.com/poddns/poddns/pkg/policysuite"
	"github.com/poddns/poddns/pkg/serve/daemon"
)

// The names deploy/ gives the two programs; the checks start from them.
const (
	systemNamespace = "poddns-system"
	webhookName     = "poddns-webhook" // Deployment, Service, Certificate
	dnsdName        = "poddns-dnsd"    // Deployment, Service
	policiesName    = "poddns-policies"
	webhookConfig   = "poddns" // MutatingWebhookConfiguration
)

// endpoints are the HTTP paths each program really serves on its health
// port: controller-runtime's manager in `webhook serve` (cmd/webhook/serve.go:
// AddHealthzCheck, AddReadyzCheck), dnsd's health server (/health, /ready).
var endpoints = map[string]struct{ liveness, readiness string }{
	"webhook": {liveness: "/healthz", readiness: "/readyz"},
	"dnsd":    {liveness: "/health", readiness: "/ready"},
}

// webhookServeConfig is the part of `webhook serve`'s WebhookConfig
// (cmd/webhook/serve.go) the checks need; cmd/webhook's own test
// (TestServeDeployConfig) decodes the whole file strictly.
type webhookServeConfig struct {
	Policies           []string `json:"policies"`
	Mode               string   `json:"mode"`
	NodeProfile        string   `json:"nodeProfile"`
	Port               int      `json:"port"`
	CertDir            string   `json:"certDir"`
	HealthProbeAddress string   `json:"healthProbeAddress"`
	MetricsAddress     string   `json:"metricsAddress"`
}

// TestDeploy renders the base and every overlay, checks the references
// between their objects, and applies them to a real API server.
func TestDeploy(t *testing.T) {
	var renderings []*rendering
	for _, tg := range targets(t) {
		renderings = append(renderings, render(t, tg))
	}
	if t.Failed() {
		t.FailNow()
	}
	bins := buildBinaries(t)

	checks := []struct {
		name  string
		check func(*testing.T, *rendering, binaries) []string
	}{
		{"cert-manager issuer chain", checkIssuers},
		{"serving certificate, CA injection and the webhook Service", checkServingCertificate},
		{"Service selectors and target ports", checkServices},
		{"probes", checkProbes},
		{"dnsd lameduck outlasts its readiness probe", checkLameduck},
		{"mounted ConfigMaps and Secrets exist", checkVolumes},
		{"webhook configuration file", checkWebhookConfig},
		{"dnsd configuration file", checkDNSDConfig},
		{"container args are the programs' flags", checkArgs},
		{"policies ConfigMap", checkPolicies},
		{"dnsd cluster DNS address", checkDNSAddress},
		{"security context", checkSecurity},
		{"autoscaling and traffic distribution", checkAutoscaling},
		{"dnsd memory sized by the formula", checkDNSDMemory},
		{"node-local DaemonSet", checkNodeLocal},
		{"dnsd config and static records reload in place", checkLiveReload},
		{"taking over from CoreDNS", checkCoreDNSTakeover},
	}
	for _, r := range renderings {
		t.Run(r.name, func(t *testing.T) {
			for _, c := range checks {
				t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
					for _, msg := range c.check(t, r, bins) {
						t.Errorf("%s (%s): %s", r.name, r.dir, msg)
					}
				})
			}
		})
	}

	// The overlays that must say what they promise.
	t.Run("audit overlay runs the webhook in audit mode", func(t *testing.T) {
		for _, r := range renderings {
			if r.name != "audit" {
				continue
			}
			if mode, err := webhookMode(r); err != nil || mode != string(policy.GlobalAudit) {
				t.Errorf("audit: the webhook's global mode is %q (%v), want audit", mode, err)
			}
			return
		}
		t.Error("no overlay named audit")
	})

	// Its effect cannot be tested here (no CNI enforces it): its shape and
	// references are, and the server-side dry run below applies it.
	t.Run("networkpolicy overlay limits who reaches the webhook", func(t *testing.T) {
		for _, r := range renderings {
			np, ok := find[*networkingv1.NetworkPolicy](r, systemNamespace, webhookName)
			if r.name != "networkpolicy" {
				if ok {
					t.Errorf("%s: a NetworkPolicy %s; it belongs to the optional component only", r.name, webhookName)
				}
				continue
			}
			if !ok {
				t.Fatal("networkpolicy: no NetworkPolicy poddns-webhook")
			}
			for _, msg := range checkWebhookNetworkPolicy(r, np) {
				t.Error("networkpolicy: " + msg)
			}
			return
		}
		t.Error("no overlay named networkpolicy")
	})

	t.Run("shipped policy suite", func(t *testing.T) {
		res, err := policysuite.Run(filepath.Join(testenv.Root(t), "deploy", "policies", "suite"))
		if err != nil {
			t.Fatalf("webhook test deploy/policies/suite: %v", err)
		}
		if n := res.Failed(); n > 0 {
			var b strings.Builder
			_ = policysuite.Write(&b, res)
			t.Errorf("webhook test deploy/policies/suite: %d failed:\n%s", n, b.String())
		}
	})

	t.Run("server-side dry run", func(t *testing.T) {
		env := testenv.Start(t, func(e *envtest.Environment) {
			e.CRDDirectoryPaths = []string{certManagerCRDs(t)}
			e.ErrorIfCRDPathMissing = true
		})
		// A client of its own that records the API server's warnings:
		// PodSecurity admission (the namespace enforces "restricted")
		// reports a violating pod template as a warning on the Deployment.
		warnings := &testenv.WarningRecorder{}
		cfg := rest.CopyConfig(env.Config)
		cfg.WarningHandler = warnings
		c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range renderings {
			t.Run(r.name, func(t *testing.T) { apply(t, c, warnings, r) })
		}
		// The dry run is worth something only if the API server refuses
		// and warns there: a broken copy of a rendered Deployment must get
		// an error, a privileged one a PodSecurity warning.
		t.Run("dry run catches breakage", func(t *testing.T) {
			d, ok := find[deployment](renderings[0], systemNamespace, dnsdName)
			if !ok {
				t.Fatal("no dnsd Deployment")
			}
			ctx := context.Background()
			bad := d.DeepCopy()
			bad.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort = 70000
			if err := dryRun(ctx, c, bad); err == nil {
				t.Error("a Deployment with container port 70000 passed the dry run")
			}
			privileged := d.DeepCopy()
			privileged.Spec.Template.Spec.Containers[0].SecurityContext.Capabilities.Add = []corev1.Capability{"SYS_ADMIN"}
			warnings.Take()
			if err := dryRun(ctx, c, privileged); err != nil {
				t.Fatalf("privileged Deployment: %v", err)
			}
			if w := warnings.Take(); !slices.ContainsFunc(w, func(s string) bool { return strings.Contains(s, "PodSecurity") }) {
				t.Errorf("a Deployment adding SYS_ADMIN got no PodSecurity warning (warnings: %q)", w)
			}
		})
	})
}

// dryRun applies a typed object with a server-side dry run.
func dryRun(ctx context.Context, c client.Client, obj client.Object) error {
	gvk, err := apiutil.GVKForObject(obj, scheme)
	if err != nil {
		return err
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvk)
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "status")
	return c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("poddns-deploy-test"), client.ForceOwnership, client.DryRunAll)
}

// certManagerCRDs returns the directory of cert-manager's CRDs in the module
// cache: deploy/crds of the github.com/cert-manager/cert-manager version in
// go.mod, plain controller-gen output (the Helm chart templates them; this
// directory is what the chart is built from).
func certManagerCRDs(t *testing.T) string {
	t.Helper()
	root := testenv.Root(t)
	crds, err := certstandin.CRDDir(context.Background(), goCmd(), root)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"cert-manager.io_certificates.yaml", "cert-manager.io_issuers.yaml"} {
		if _, err := os.Stat(filepath.Join(crds, f)); err != nil {
			t.Fatalf("cert-manager CRDs: %v", err)
		}
	}
	return crds
}

func goCmd() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return "go"
}

// apply creates the Namespace for real, then applies every other object
// with a server-side dry run: schema, defaulting, validation and admission
// of the real API server, nothing persisted.
func apply(t *testing.T, c client.Client, warnings *testenv.WarningRecorder, r *rendering) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	owner := client.FieldOwner("poddns-deploy-test")
	var ns, n int
	for _, o := range r.objects {
		if o.u.GetKind() == "Namespace" {
			ns++
			if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.u.DeepCopy()), owner, client.ForceOwnership); err != nil {
				t.Errorf("%s: apply %s: %v", r.name, o, err)
			}
		}
	}
	if ns == 0 {
		t.Errorf("%s: no Namespace in the render", r.name)
	}
	for _, o := range r.objects {
		if o.u.GetKind() == "Namespace" {
			continue
		}
		n++
		warnings.Take()
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.u.DeepCopy()), owner, client.ForceOwnership, client.DryRunAll); err != nil {
			t.Errorf("%s: server-side dry-run apply of %s (%s): %v", r.name, o, gvkOf(o), err)
		}
		for _, w := range warnings.Take() {
			t.Errorf("%s: server-side dry-run apply of %s: the API server warns: %s", r.name, o, w)
		}
	}
	t.Logf("%s: %d namespace(s) applied, %d objects dry-run applied", r.name, ns, n)
}

// binaries are the programs' help texts, to check container args against.
type binaries struct{ webhookServeHelp, dnsdHelp string }

// buildBinaries builds cmd/webhook and cmd/dnsd and reads their flags'
// help.
func buildBinaries(t *testing.T) binaries {
	t.Helper()
	root := testenv.Root(t)
	dir := t.TempDir()
	build := exec.Command(goCmd(), "build", "-o", dir+string(filepath.Separator), "./cmd/webhook", "./cmd/dnsd")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/webhook ./cmd/dnsd: %v\n%s", err, out)
	}
	help := func(name string, args ...string) string {
		// --help exits non-zero in some programs; the text is what counts.
		out, _ := exec.Command(filepath.Join(dir, name), args...).CombinedOutput()
		if !strings.Contains(string(out), "--config") {
			t.Fatalf("%s %s printed no flags:\n%s", name, strings.Join(args, " "), out)
		}
		return string(out)
	}
	return binaries{webhookServeHelp: help("webhook", "serve", "--help"), dnsdHelp: help("dnsd", "--help")}
}

// checkIssuers: every Certificate's issuerRef resolves to an Issuer of the
// render in its namespace, a CA Issuer's Secret is written by an isCA
// Certificate, and the chain starts at a selfSigned Issuer.
func checkIssuers(_ *testing.T, r *rendering, _ binaries) []string {
	var msgs []string
	certs := all[certificate](r)
	if len(certs) == 0 {
		return []string{"no cert-manager Certificate in the render"}
	}
	for _, c := range certs {
		ref := c.Spec.IssuerRef
		if ref.Group != "" && ref.Group != "cert-manager.io" {
			msgs = append(msgs, fmt.Sprintf("Certificate %s: issuerRef group %q, want cert-manager.io", key(c.Namespace, c.Name), ref.Group))
			continue
		}
		if ref.Kind != "" && ref.Kind != "Issuer" {
			msgs = append(msgs, fmt.Sprintf("Certificate %s: issuerRef kind %q, want Issuer (the chain is namespaced)", key(c.Namespace, c.Name), ref.Kind))
			continue
		}
		is, ok := find[issuer](r, c.Namespace, ref.Name)
		if !ok {
			msgs = append(msgs, fmt.Sprintf("Certificate %s: issuerRef names Issuer %s, which is not in the render", key(c.Namespace, c.Name), key(c.Namespace, ref.Name)))
			continue
		}
		switch {
		case is.Spec.SelfSigned != nil:
			if !c.Spec.IsCA {
				msgs = append(msgs, fmt.Sprintf("Certificate %s is signed by the selfSigned Issuer %s but is not a CA: sign serving certificates with a CA Issuer", key(c.Namespace, c.Name), is.Name))
			}
		case is.Spec.CA != nil:
			var signer []string
			for _, ca := range certs {
				if ca.Namespace == is.Namespace && ca.Spec.SecretName == is.Spec.CA.SecretName && ca.Spec.IsCA {
					signer = append(signer, ca.Name)
				}
			}
			if len(signer) != 1 {
				msgs = append(msgs, fmt.Sprintf("CA Issuer %s uses Secret %q, written by %d isCA Certificates of the render (%v), want 1", key(is.Namespace, is.Name), is.Spec.CA.SecretName, len(signer), signer))
			}
		default:
			msgs = append(msgs, fmt.Sprintf("Issuer %s is neither selfSigned nor ca", key(is.Namespace, is.Name)))
		}
	}
	return msgs
}

// checkServingCertificate: the MutatingWebhookConfiguration calls the
// webhook Service, inject-ca-from names the Certificate whose DNS names are
// that Service's, and the Secret of that Certificate is what the webhook
// Deployment mounts at its certDir.
func checkServingCertificate(_ *testing.T, r *rendering, _ binaries) []string {
	var msgs []string
	m, ok := find[mwc](r, "", webhookConfig)
	if !ok {
		return []string{"no MutatingWebhookConfiguration " + webhookConfig}
	}
	inject := m.Annotations["cert-manager.io/inject-ca-from"]
	certNS, certName, found := strings.Cut(inject, "/")
	if !found {
		return []string{fmt.Sprintf("MutatingWebhookConfiguration %s: cert-manager.io/inject-ca-from is %q, want <namespace>/<Certificate>", m.Name, inject)}
	}
	cert, ok := find[certificate](r, certNS, certName)
	if !ok {
		return []string{fmt.Sprintf("cert-manager.io/inject-ca-from names Certificate %s, which is not in the render", inject)}
	}
	for _, w := range m.Webhooks {
		svcRef := w.ClientConfig.Service
		if svcRef == nil {
			msgs = append(msgs, fmt.Sprintf("webhook %s: clientConfig has no service", w.Name))
			continue
		}
		if w.ClientConfig.URL != nil || len(w.ClientConfig.CABundle) > 0 {
			msgs = append(msgs, fmt.Sprintf("webhook %s: clientConfig has a url or a caBundle; cainjector fills caBundle", w.Name))
		}
		if svcRef.Path == nil || *svcRef.Path != padmission.Path {
			msgs = append(msgs, fmt.Sprintf("webhook %s: clientConfig.service.path %v, want %s (the path the handler is served on)", w.Name, svcRef.Path, padmission.Path))
		}
		svc, ok := find[service](r, svcRef.Namespace, svcRef.Name)
		if !ok {
			msgs = append(msgs, fmt.Sprintf("webhook %s calls Service %s, which is not in the render", w.Name, key(svcRef.Namespace, svcRef.Name)))
			continue
		}
		port := int32(443)
		if svcRef.Port != nil {
			port = *svcRef.Port
		}
		if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == port }) {
			msgs = append(msgs, fmt.Sprintf("webhook %s calls port %d of Service %s, which has no such port", w.Name, port, svc.Name))
		}
		for _, dns := range []string{svc.Name + "." + svc.Namespace + ".svc", svc.Name + "." + svc.Namespace + ".svc.cluster.local"} {
			if !slices.Contains(cert.Spec.DNSNames, dns) {
				msgs = append(msgs, fmt.Sprintf("Certificate %s: dnsNames %v lack %s, the name the API server calls", inject, cert.Spec.DNSNames, dns))
			}
		}
		if cert.Namespace != svc.Namespace {
			msgs = append(msgs, fmt.Sprintf("Certificate %s is not in the webhook Service's namespace %s", inject, svc.Namespace))
		}
	}
	// The Secret is mounted where `webhook serve` reads tls.crt and tls.key.
	d, c, cfg, err := webhookContainer(r)
	if err != nil {
		return append(msgs, err.Error())
	}
	v, err := mountFor(d, c, cfg.CertDir)
	switch {
	case err != nil:
		msgs = append(msgs, fmt.Sprintf("certDir %s: %v", cfg.CertDir, err))
	case v.Secret == nil || v.Secret.SecretName != cert.Spec.SecretName:
		msgs = append(msgs, fmt.Sprintf("certDir %s is volume %q, want the Secret %q of Certificate %s", cfg.CertDir, v.Name, cert.Spec.SecretName, inject))
	}
	return msgs
}

// checkServices: each Service selects the pods of one Deployment of the
// render, and each port's targetPort is a container port of the same
// protocol.
func checkServices(_ *testing.T, r *rendering, _ binaries) []string {
	var msgs []string
	svcs := all[service](r)
	if len(svcs) < 2 {
		msgs = append(msgs, fmt.Sprintf("%d Services in the render, want the webhook's and dnsd's", len(svcs)))
	}
	for _, s := range svcs {
		var selected []*appsv1.Deployment
		for _, d := range all[deployment](r) {
			if d.Namespace == s.Namespace && len(s.Spec.Selector) > 0 && matches(s.Spec.Selector, d.Spec.Template.Labels) {
				selected = append(selected, d)
			}
		}
		if len(selected) != 1 {
			msgs = append(msgs, fmt.Sprintf("Service %s selects the pods of %d Deployments, want 1", key(s.Namespace, s.Name), len(selected)))
			continue
		}
		d := selected[0]
		for _, p := range s.Spec.Ports {
			target := p.TargetPort.String()
			if p.TargetPort.IntVal == 0 && p.TargetPort.StrVal == "" {
				target = fmt.Sprint(p.Port)
			}
			ok := false
			for i := range d.Spec.Template.Spec.Containers {
				if _, err := containerPort(&d.Spec.Template.Spec.Containers[i], target, p.Protocol); err == nil {
					ok = true
				}
			}
			if !ok {
				msgs = append(msgs, fmt.Sprintf("Service %s port %q (%d/%s): targetPort %s is no %s port of Deployment %s's containers", key(s.Namespace, s.Name), p.Name, p.Port, p.Protocol, target, p.Protocol, d.Name))
			}
		}
	}
	return msgs
}

func matches(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// checkProbes: each program's liveness and readiness probes reach its
// real endpoints on the port its configuration makes it serve them on.
func checkProbes(_ *testing.T, r *rendering, _ binaries) []string {
	var msgs []string
	for _, p := range []struct {
		deploy, container string
		healthAddr        func(*appsv1.Deployment, *corev1.Container) (string, error)
	}{
		{webhookName, "webhook", func(d *appsv1.Deployment, c *corev1.Container) (string, error) {
			cfg, err := readWebhookConfig(r, d, c)
			return cfg.HealthProbeAddress, err
		}},
		{dnsdName, "dnsd", func(d *appsv1.Deployment, c *corev1.Container) (string, error) {
			cfg, err := readDNSDConfig(r, d, c)
			return cfg.HealthListen, err
		}},
	} {
		d, c, err := container(r, namespaceOf(r, p.deploy), p.deploy, p.container)
		if err != nil {
			msgs = append(msgs, err.Error())
			continue
		}
		addr, err := p.healthAddr(d, c)
		if err != nil {
			msgs = append(msgs, err.Error())
			continue
		}
		_, healthPort, err := net.SplitHostPort(addr)
		if err != nil {
			msgs = append(msgs, fmt.Sprintf("%s: health address %q: %v", p.container, addr, err))
			continue
		}
		want := endpoints[p.container]
		for _, pr := range []struct {
			kind  string
			probe *corev1.Probe
			path  string
		}{{"livenessProbe", c.LivenessProbe, want.liveness}, {"readinessProbe", c.ReadinessProbe, want.readiness}} {
			if pr.probe == nil || pr.probe.HTTPGet == nil {
				msgs = append(msgs, fmt.Sprintf("%s: no HTTP %s", p.container, pr.kind))
				continue
			}
			g := pr.probe.HTTPGet
			if g.Path != pr.path {
				msgs = append(msgs, fmt.Sprintf("%s: %s path %s, want %s (what the program serves)", p.container, pr.kind, g.Path, pr.path))
			}
			cp, err := containerPort(c, g.Port.String(), corev1.ProtocolTCP)
			if err != nil {
				msgs = append(msgs, fmt.Sprintf("%s: %s port: %v", p.container, pr.kind, err))
				continue
			}
			if fmt.Sprint(cp.ContainerPort) != healthPort {
				msgs = append(msgs, fmt.Sprintf("%s: %s probes port %d, but the program serves health on %s", p.container, pr.kind, cp.ContainerPort, addr))
			}
		}
	}
	return msgs
}

// flushAllowance is what dnsd's lameduck must leave after its readiness
// probe has failed for kubelet, the EndpointSlice controller and kube-proxy
// to mark the endpoint not serving and delete the conntrack entries that
// still send queries to the pod (deploy/base/dnsd/config.yaml says why; in
// test/cluster's rig it took 0.1-0.6 s at load 17-20).
const flushAllowance = 5 * time.Second

// checkLameduck: after SIGTERM, dnsd keeps answering until its readiness
// probe has failed (periodSeconds x failureThreshold) plus flushAllowance,
// and the termination grace period covers the lameduck and the wait for
// queries in flight, so that kubelet does not cut it short.
func checkLameduck(_ *testing.T, r *rendering, _ binaries) []string {
	d, c, cfg, err := dnsdContainer(r)
	if err != nil {
		return []string{err.Error()}
	}
	p := c.ReadinessProbe
	if p == nil {
		return []string{"dnsd: no readiness probe"}
	}
	// The API server's defaults for fields left out.
	period, threshold := p.PeriodSeconds, p.FailureThreshold
	if period == 0 {
		period = 10
	}
	if threshold == 0 {
		threshold = 3
	}
	lameduck, unready := cfg.Lameduck.D(), time.Duration(period*threshold)*time.Second
	var msgs []string
	if lameduck < unready+flushAllowance {
		msgs = append(msgs, fmt.Sprintf("dnsd: lameduck %s, but its readiness probe needs up to %s (periodSeconds %d x failureThreshold %d) to fail: "+
			"want at least %s more for kube-proxy to flush the conntrack entries pointing at the pod", lameduck, unready, period, threshold, flushAllowance))
	}
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = *g
	}
	if need := lameduck + daemon.ShutdownWait; time.Duration(grace)*time.Second < need {
		msgs = append(msgs, fmt.Sprintf("dnsd: terminationGracePeriodSeconds %d, shorter than its lameduck %s plus %s for queries in flight", grace, lameduck, daemon.ShutdownWait))
	}
	return msgs
}

// checkVolumes: every ConfigMap a pod mounts is in the render, and every
// Secret is one a Certificate of the render writes.
func checkVolumes(_ *testing.T, r *rendering, _ binaries) []string {
	var msgs []string
	for _, ds := range all[daemonSet](r) {
		for _, v := range ds.Spec.Template.Spec.Volumes {
			if v.ConfigMap != nil {
				if _, ok := find[configMap](r, ds.Namespace, v.ConfigMap.Name); !ok {
					msgs = append(msgs, fmt.Sprintf("DaemonSet %s mounts ConfigMap %s, which is not in the render", ds.Name, v.ConfigMap.Name))
				}
			}
		}
	}
	for _, d := range all[deployment](r) {
		for _, v := range d.Spec.Template.Spec.Volumes {
			switch {
			case v.ConfigMap != nil:
				if _, ok := find[configMap](r, d.Namespace, v.ConfigMap.Name); !ok {
					msgs = append(msgs, fmt.Sprintf("Deployment %s mounts ConfigMap %s, which is not in the render", d.Name, v.ConfigMap.Name))
				}
			case v.Secret != nil:
				if !slices.ContainsFunc(all[certificate](r), func(c certificate) bool {
					return c.Namespace == d.Namespace && c.Spec.SecretName == v.Secret.SecretName
				}) {
					msgs = append(msgs, fmt.Sprintf("Deployment %s mounts Secret %s, which no Certificate of the render writes", d.Name, v.Secret.SecretName))
				}
			}
		}
	}
	return msgs
}

// webhookArgs returns the flags of the webhook container after "serve".
func webhookArgs(c *corev1.Container) ([]string, error) {
	args := append(slices.Clone(c.Command), c.Args...)
	i := slices.Index(args, "serve")
	if i < 0 {
		return nil, fmt.Errorf("webhook container: args %q do not run `serve`", args)
	}
	return args[i+1:], nil
}

// flagValue returns the value of --name in args (--name=value or --name
// value), the last one winning as in pflag.
func flagValue(args []string, name string) (string, bool) {
	val, ok := "", false
	for i, a := range args {
		if v, found := strings.CutPrefix(a, "--"+name+"="); found {
			val, ok = v, true
		} else if a == "--"+name && i+1 < len(args) {
			val, ok = args[i+1], true
		}
	}
	return val, ok
}

// readWebhookConfig reads the WebhookConfig the webhook container is given
// with --config from the rendered ConfigMap mounted there.
func readWebhookConfig(r *rendering, d *appsv1.Deployment, c *corev1.Container) (webhookServeConfig, error) {
	var cfg webhookServeConfig
	args, err := webhookArgs(c)
	if err != nil {
		return cfg, err
	}
	path, ok := flagValue(args, "config")
	if !ok {
		return cfg, errors.New("webhook container: no --config")
	}
	data, err := configFile(r, d, c, path)
	if err != nil {
		return cfg, fmt.Errorf("webhook --config: %w", err)
	}
	if err := yaml.Unmarshal([]byte(data), &cfg); err != nil {
		return cfg, fmt.Errorf("webhook --config %s: %w", path, err)
	}
	return cfg, nil
}

// webhookContainer returns the webhook's Deployment, its container and its
// configuration file, parsed.
func webhookContainer(r *rendering) (*appsv1.Deployment, *corev1.Container, webhookServeConfig, error) {
	d, c, err := container(r, systemNamespace, webhookName, "webhook")
	if err != nil {
		return nil, nil, webhookServeConfig{}, err
	}
	cfg, err := readWebhookConfig(r, d, c)
	return d, c, cfg, err
}

// webhookMode is the webhook's global mode: --mode, else the config file's.
func webhookMode(r *rendering) (string, error) {
	d, c, err := container(r, systemNamespace, webhookName, "webhook")
	if err != nil {
		return "", err
	}
	args, err := webhookArgs(c)
	if err != nil {
		return "", err
	}
	if m, ok := flagValue(args, "mode"); ok {
		return m, nil
	}
	cfg, err := readWebhookConfig(r, d, c)
	return cfg.Mode, err
}

// checkWebhookConfig: the files the configuration names are mounted, the
// node profile parses, and the listen ports are container ports.
func checkWebhookConfig(_ *testing.T, r *rendering, _ binaries) []string {
	d, c, cfg, err := webhookContainer(r)
	if err != nil {
		return []string{err.Error()}
	}
	var msgs []string
	if mode, err := webhookMode(r); err != nil {
		msgs = append(msgs, err.Error())
	} else if _, err := policy.ParseGlobalMode(mode); err != nil {
		msgs = append(msgs, fmt.Sprintf("webhook mode: %v", err))
	}
	if _, err := readNodeProfile(r, d, c, cfg.NodeProfile); err != nil {
		msgs = append(msgs, "webhook: "+err.Error())
	}
	for _, p := range cfg.Policies {
		v, err := mountFor(d, c, p)
		if err != nil {
			msgs = append(msgs, fmt.Sprintf("webhook policies %s: %v", p, err))
		} else if v.ConfigMap == nil || v.ConfigMap.Name != policiesName {
			msgs = append(msgs, fmt.Sprintf("webhook policies %s: volume %q is not the ConfigMap %s", p, v.Name, policiesName))
		}
	}
	for _, p := range []struct{ name, addr string }{
		{"webhook", fmt.Sprintf(":%d", cfg.Port)}, {"metrics", cfg.MetricsAddress}, {"health", cfg.HealthProbeAddress},
	} {
		msgs = append(msgs, portMatches(c, p.name, p.addr, corev1.ProtocolTCP)...)
	}
	return msgs
}

// portMatches checks that the container port of that name is the port of
// addr, where the program listens.
func portMatches(c *corev1.Container, name, addr string, protocol corev1.Protocol) []string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return []string{fmt.Sprintf("%s: address %q: %v", c.Name, addr, err)}
	}
	cp, err := containerPort(c, name, protocol)
	if err != nil {
		return []string{fmt.Sprintf("%s listens on %s (%s): %v", c.Name, addr, name, err)}
	}
	if fmt.Sprint(cp.ContainerPort) != port {
		return []string{fmt.Sprintf("%s: container port %q is %d, but the program listens on %s", c.Name, name, cp.ContainerPort, addr)}
	}
	return nil
}

// readNodeProfile reads and strictly parses the node profile at path.
func readNodeProfile(r *rendering, d *appsv1.Deployment, c *corev1.Container, path string) (*nodeprofile.File, error) {
	data, err := configFile(r, d, c, path)
	if err != nil {
		return nil, fmt.Errorf("node profile: %w", err)
	}
	f, err := nodeprofile.Parse([]byte(data), path)
	if err != nil {
		return nil, fmt.Errorf("node profile: %w", err)
	}
	return f, nil
}

// readDNSDConfig reads the DNSDConfig the dnsd container is given with
// --config, with dnsd's own strict parser (over its defaults).
func readDNSDConfig(r *rendering, d *appsv1.Deployment, c *corev1.Container) (daemon.Config, error) {
	path, ok := flagValue(append(slices.Clone(c.Command), c.Args...), "config")
	if !ok {
		return daemon.Config{}, errors.New("dnsd container: no --config")
	}
	data, err := configFile(r, d, c, path)
	if err != nil {
		return daemon.Config{}, fmt.Errorf("dnsd --config: %w", err)
	}
	cfg, err := daemon.ParseConfig([]byte(data), path)
	if err != nil {
		return cfg, fmt.Errorf("dnsd --config: %w", err)
	}
	return cfg, nil
}

// dnsdContainer returns dnsd's Deployment, its container and its
// configuration file, parsed.
func dnsdContainer(r *rendering) (*appsv1.Deployment, *corev1.Container, daemon.Config, error) {
	d, c, err := container(r, dnsdNamespace(r), dnsdName, "dnsd")
	if err != nil {
		return nil, nil, daemon.Config{}, err
	}
	cfg, err := readDNSDConfig(r, d, c)
	return d, c, cfg, err
}

// validateDNSDConfig runs dnsd's own validation of its configuration. The
// files it names are the pod's (the node's resolv.conf, the mounted node
// profile), so they are replaced by stand-ins: a resolv.conf with one
// nameserver, and the node profile from the render.
func validateDNSDConfig(t *testing.T, r *rendering, d *appsv1.Deployment, c *corev1.Container, cfg daemon.Config) error {
	dir := t.TempDir()
	if cfg.Forward.ResolvConf != "" {
		p := filepath.Join(dir, "resolv.conf")
		if err := os.WriteFile(p, []byte("nameserver 192.0.2.53\n"), 0o644); err != nil {
			return err
		}
		cfg.Forward.ResolvConf = p
	}
	if cfg.Completion.NodeProfile != "" {
		data, err := configFile(r, d, c, cfg.Completion.NodeProfile)
		if err != nil {
			return fmt.Errorf("completion node profile: %w", err)
		}
		p := filepath.Join(dir, "profile.yaml")
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			return err
		}
		cfg.Completion.NodeProfile = p
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("dnsd rejects its configuration: %w", err)
	}
	return nil
}

// checkDNSDConfig: dnsd's own parser and validation accept its
// configuration, dnsd listens on :53 (UDP and TCP container ports), its
// health and metrics ports are container ports, its node profile is mounted
// and parses.
func checkDNSDConfig(t *testing.T, r *rendering, _ binaries) []string {
	d, c, cfg, err := dnsdContainer(r)
	if err != nil {
		return []string{err.Error()}
	}
	var msgs []string
	if err := validateDNSDConfig(t, r, d, c, cfg); err != nil {
		msgs = append(msgs, err.Error())
	}
	if _, port, err := net.SplitHostPort(cfg.Listen); err != nil || port != "53" {
		msgs = append(msgs, fmt.Sprintf("dnsd listens on %q, want :53", cfg.Listen))
	}
	msgs = append(msgs, portMatches(c, "dns", cfg.Listen, corev1.ProtocolUDP)...)
	msgs = append(msgs, portMatches(c, "dns-tcp", cfg.Listen, corev1.ProtocolTCP)...)
	msgs = append(msgs, portMatches(c, "health", cfg.HealthListen, corev1.ProtocolTCP)...)
	msgs = append(msgs, portMatches(c, "metrics", cfg.MetricsListen, corev1.ProtocolTCP)...)
	if cfg.Completion.NodeProfile != "" {
		if _, err := readNodeProfile(r, d, c, cfg.Completion.NodeProfile); err != nil {
			msgs = append(msgs, "dnsd: "+err.Error())
		}
	}
	if p := d.Spec.Template.Spec.PriorityClassName; p != "system-cluster-critical" {
		msgs = append(msgs, fmt.Sprintf("dnsd priorityClassName %q, want system-cluster-critical", p))
	}
	if p := d.Spec.Template.Spec.DNSPolicy; p != corev1.DNSDefault {
		msgs = append(msgs, fmt.Sprintf("dnsd dnsPolicy %q, want Default (never depend on the cluster DNS)", p))
	}
	return msgs
}

// checkArgs: every --flag a container passes is a flag of the program.
func checkArgs(_ *testing.T, r *rendering, b binaries) []string {
	var msgs []string
	for _, p := range []struct{ deploy, container, help string }{
		{webhookName, "webhook", b.webhookServeHelp},
		{dnsdName, "dnsd", b.dnsdHelp},
	} {
		_, c, err := container(r, namespaceOf(r, p.deploy), p.deploy, p.container)
		if err != nil {
			msgs = append(msgs, err.Error())
			continue
		}
		for _, a := range append(slices.Clone(c.Command), c.Args...) {
			if !strings.HasPrefix(a, "--") {
				continue
			}
			name, _, _ := strings.Cut(a, "=")
			if !strings.Contains(p.help, name+" ") && !strings.Contains(p.help, name+"\n") {
				msgs = append(msgs, fmt.Sprintf("%s: %s is not a flag of the program (see its --help)", p.container, name))
			}
		}
	}
	return msgs
}

// checkPolicies: the policies ConfigMap has no name hash, holds every
// deploy/policies/*.yaml file, and its files load as one valid policy set.
func checkPolicies(t *testing.T, r *rendering, _ binaries) []string {
	cm, ok := find[configMap](r, systemNamespace, policiesName)
	if !ok {
		return []string{fmt.Sprintf("no ConfigMap %s/%s (without a name hash: the webhook reloads it in place)", systemNamespace, policiesName)}
	}
	var msgs []string
	root, _ := testenv.RepoRoot()
	files, err := filepath.Glob(filepath.Join(root, "deploy", "policies", "*.yaml"))
	if err != nil || len(files) == 0 {
		return []string{fmt.Sprintf("deploy/policies has no *.yaml files (%v)", err)}
	}
	for _, f := range files {
		want, err := os.ReadFile(f)
		if err != nil {
			return []string{err.Error()}
		}
		if got, ok := cm.Data[filepath.Base(f)]; !ok {
			msgs = append(msgs, fmt.Sprintf("ConfigMap %s lacks deploy/policies/%s: list it in deploy/policies/Kustomization", policiesName, filepath.Base(f)))
		} else if got != string(want) {
			msgs = append(msgs, fmt.Sprintf("ConfigMap %s: %s differs from deploy/policies", policiesName, filepath.Base(f)))
		}
	}
	dir := t.TempDir()
	for k, v := range cm.Data {
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o644); err != nil {
			return append(msgs, err.Error())
		}
	}
	set, err := policy.Load(dir)
	if err != nil {
		msgs = append(msgs, fmt.Sprintf("the policies of ConfigMap %s do not load: %v", policiesName, err))
	} else if set.Len() == 0 {
		msgs = append(msgs, fmt.Sprintf("ConfigMap %s holds no policy", policiesName))
	}
	return msgs
}

// policyNameservers returns the nameservers the rendered policies set.
func policyNameservers(r *rendering) (map[string][]string, error) {
	cm, ok := find[configMap](r, systemNamespace, policiesName)
	if !ok {
		return nil, errors.New("no policies ConfigMap")
	}
	out := map[string][]string{}
	for file, data := range cm.Data {
		for i, doc := range strings.Split(data, "\n---") {
			var p struct {
				Metadata struct{ Name string }
				Spec     struct {
					Actions struct {
						Nameservers []string `json:"nameservers"`
					} `json:"actions"`
				} `json:"spec"`
			}
			if err := yaml.Unmarshal([]byte(doc), &p); err != nil {
				return nil, fmt.Errorf("%s: document %d: %w", file, i+1, err)
			}
			if len(p.Spec.Actions.Nameservers) > 0 {
				out[p.Metadata.Name] = p.Spec.Actions.Nameservers
			}
		}
	}
	return out, nil
}

// checkDNSAddress: a fixed dnsd Service address is inside the test API
// server's service range (so the dry run checks it), and every policy that
// sets nameservers names it or kubelet's cluster DNS; when it is the node
// profile's cluster DNS, dnsd is the cluster DNS (replace-coredns).
func checkDNSAddress(_ *testing.T, r *rendering, _ binaries) []string {
	svc, ok := find[service](r, dnsdNamespace(r), dnsdName)
	if !ok {
		return []string{"no dnsd Service"}
	}
	ns, err := policyNameservers(r)
	if err != nil {
		return []string{err.Error()}
	}
	ip := svc.Spec.ClusterIP
	if ip == "" {
		if len(ns) > 0 {
			return []string{fmt.Sprintf("policies %v set nameservers, but dnsd's Service has no fixed clusterIP to point them at", ns)}
		}
		return nil
	}
	var msgs []string
	_, cidr, _ := net.ParseCIDR(testenv.ServiceClusterIPRange)
	if a := net.ParseIP(ip); a == nil || !cidr.Contains(a) {
		msgs = append(msgs, fmt.Sprintf("dnsd clusterIP %s is outside %s (kubeadm's default service range)", ip, cidr))
	}
	d, c, cfg, err := webhookContainer(r)
	if err != nil {
		return append(msgs, err.Error())
	}
	profile, err := readNodeProfile(r, d, c, cfg.NodeProfile)
	if err != nil {
		return append(msgs, err.Error())
	}
	for name, servers := range ns {
		if !slices.Contains(servers, ip) {
			msgs = append(msgs, fmt.Sprintf("policy %s sets nameservers %v without dnsd's Service address %s", name, servers, ip))
		}
	}
	if len(ns) == 0 && !slices.Contains(profile.ClusterDNS, ip) {
		msgs = append(msgs, fmt.Sprintf("dnsd has the fixed address %s, but neither a policy nor the node profile's clusterDNS %v (kubelet --cluster-dns) points pods at it", ip, profile.ClusterDNS))
	}
	return msgs
}

// checkSecurity: every container runs non-root, read-only, without
// privilege escalation, with every capability dropped but
// NET_BIND_SERVICE, under RuntimeDefault seccomp, with resource requests;
// each Deployment in a request's path has 2+ replicas (or leaves them to an
// autoscaler, whose floor of 2 checkAutoscaling holds), a
// PodDisruptionBudget and pod anti-affinity. The autoscaler itself is in no
// request's path and runs one replica. The one exception is the node-local
// DaemonSet (checkNodeLocal): UID 0 with NET_ADMIN besides
// NET_BIND_SERVICE, nothing else.
func checkSecurity(_ *testing.T, r *rendering, _ binaries) []string {
	var msgs []string
	pdbs := map[string]bool{}
	for _, o := range r.objects {
		if o.u.GetKind() == "PodDisruptionBudget" {
			pdbs[o.u.GetName()] = true
		}
	}
	scaled := autoscaled(r)
	for _, d := range all[deployment](r) {
		ps := d.Spec.Template.Spec
		if !isAutoscaler(d) {
			if d.Spec.Replicas == nil && scaled[key(d.Namespace, d.Name)] == 0 {
				msgs = append(msgs, fmt.Sprintf("Deployment %s: replicas unset (1) and no autoscaler targets it", d.Name))
			} else if d.Spec.Replicas != nil && *d.Spec.Replicas < 2 {
				msgs = append(msgs, fmt.Sprintf("Deployment %s: fewer than 2 replicas", d.Name))
			}
			if !pdbs[d.Name] {
				msgs = append(msgs, fmt.Sprintf("Deployment %s: no PodDisruptionBudget of the same name", d.Name))
			}
			if ps.Affinity == nil || ps.Affinity.PodAntiAffinity == nil {
				msgs = append(msgs, fmt.Sprintf("Deployment %s: no pod anti-affinity", d.Name))
			}
		}
		if ps.SecurityContext == nil || ps.SecurityContext.SeccompProfile == nil || ps.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			msgs = append(msgs, fmt.Sprintf("Deployment %s: pod seccompProfile is not RuntimeDefault", d.Name))
		}
		for _, c := range ps.Containers {
			sc := c.SecurityContext
			bad := func(what string) {
				msgs = append(msgs, fmt.Sprintf("Deployment %s, container %s: %s", d.Name, c.Name, what))
			}
			if sc == nil {
				bad("no securityContext")
				continue
			}
			nonRoot := (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) || (ps.SecurityContext != nil && ps.SecurityContext.RunAsNonRoot != nil && *ps.SecurityContext.RunAsNonRoot)
			if !nonRoot {
				bad("runAsNonRoot is not true")
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				bad("readOnlyRootFilesystem is not true")
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				bad("allowPrivilegeEscalation is not false")
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
				bad("capabilities do not drop ALL")
			} else if added := slices.DeleteFunc(slices.Clone(sc.Capabilities.Add), func(c corev1.Capability) bool { return c == "NET_BIND_SERVICE" }); len(added) > 0 {
				bad(fmt.Sprintf("adds capabilities %v (only NET_BIND_SERVICE is allowed)", added))
			}
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
				bad("no cpu and memory requests and memory limit")
			}
		}
	}
	return msgs
}

// checkWebhookNetworkPolicy checks the webhook's NetworkPolicy in the
// networkpolicy overlay: it selects the webhook's pods, limits ingress only,
// and has exactly two rules: the webhook port from the overlay's CIDRs, the
// metrics port from its monitoring namespace, both ports named ports of the
// webhook container.
func checkWebhookNetworkPolicy(r *rendering, np *networkingv1.NetworkPolicy) []string {
	var msgs []string
	_, c, err := container(r, systemNamespace, webhookName, "webhook")
	if err != nil {
		return []string{err.Error()}
	}
	d, _ := find[*appsv1.Deployment](r, systemNamespace, webhookName)
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil || d == nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		msgs = append(msgs, fmt.Sprintf("podSelector %v does not select the webhook's pods (%v)", np.Spec.PodSelector, err))
	}
	if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
		msgs = append(msgs, fmt.Sprintf("policyTypes %v, want [Ingress] (the webhook calls the API server)", np.Spec.PolicyTypes))
	}
	if len(np.Spec.Ingress) != 2 {
		return append(msgs, fmt.Sprintf("%d ingress rules, want 2", len(np.Spec.Ingress)))
	}
	port := func(rule networkingv1.NetworkPolicyIngressRule, name string) {
		if len(rule.Ports) != 1 || rule.Ports[0].Port == nil || rule.Ports[0].Port.String() != name {
			msgs = append(msgs, fmt.Sprintf("rule ports %v, want the named port %s only", rule.Ports, name))
		}
		if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == name }) {
			msgs = append(msgs, fmt.Sprintf("the webhook container has no port named %s", name))
		}
	}
	port(np.Spec.Ingress[0], "webhook")
	var cidrs []string
	for _, f := range np.Spec.Ingress[0].From {
		if f.IPBlock == nil || f.PodSelector != nil || f.NamespaceSelector != nil {
			msgs = append(msgs, fmt.Sprintf("webhook port open to %+v, want ipBlocks only", f))
			continue
		}
		cidrs = append(cidrs, f.IPBlock.CIDR)
	}
	if want := []string{"10.0.0.0/24", "10.0.1.0/24"}; !slices.Equal(cidrs, want) {
		msgs = append(msgs, fmt.Sprintf("webhook port open to %v, want the overlay's %v", cidrs, want))
	}
	port(np.Spec.Ingress[1], "metrics")
	from := np.Spec.Ingress[1].From
	if len(from) != 1 || from[0].NamespaceSelector == nil || from[0].PodSelector != nil || from[0].IPBlock != nil ||
		!maps.Equal(from[0].NamespaceSelector.MatchLabels, map[string]string{"kubernetes.io/metadata.name": "observability"}) {
		msgs = append(msgs, fmt.Sprintf("metrics port open to %+v, want the namespace observability only", from))
	}
	return msgs
}
