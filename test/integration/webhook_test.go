package integration

// Acceptance suite of the admission webhook (issue 3): the production
// MutatingWebhookConfiguration from deploy/base/webhook is installed into a real
// kube-apiserver through envtest's WebhookInstallOptions (envtest rewrites
// only clientConfig: the URL of the local server and its CA), the real
// handler serves it from a controller-runtime manager, and pods are created
// through the API with the example policies of testdata/policies.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	"sigs.k8s.io/yaml"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/nodeprofile"
	"github.com/poddns/poddns/pkg/policy"
	padmission "github.com/poddns/poddns/pkg/policy/admission"
)

// webhookEnv is a control plane with the production webhook configuration
// installed and the real handler serving it.
type webhookEnv struct {
	env      *testenv.Env
	pods     kubernetes.Interface // records warnings in warnings
	warnings *testenv.WarningRecorder
	metrics  *padmission.Metrics
	// engine is the handler's: Swap changes the policies it admits with.
	engine *policy.Engine
}

// startWebhook starts the control plane, installs
// deploy/base/webhook/mutatingwebhookconfiguration.yaml and serves it with the
// handler over the policies at policyPaths, with serveEngineOptions.
func startWebhook(t *testing.T, policyPaths ...string) *webhookEnv {
	t.Helper()
	return startWebhookEngine(t, serveEngineOptions(t), policyPaths...)
}

// serveEngineOptions are the engine options of `webhook serve` given no node
// flags: the default node profile.
func serveEngineOptions(t *testing.T) policy.EngineOptions {
	t.Helper()
	profile, _, err := (&nodeprofile.Options{}).NodeProfile()
	if err != nil {
		t.Fatal(err)
	}
	return policy.EngineOptions{Profile: profile}
}

// loadEngine is the engine over the policies at policyPaths with opts.
func loadEngine(t *testing.T, opts policy.EngineOptions, policyPaths ...string) *policy.Engine {
	t.Helper()
	set, err := policy.Load(policyPaths...)
	if err != nil {
		t.Fatal(err)
	}
	engine, err := policy.NewEngine(set, opts)
	if err != nil {
		t.Fatal(err)
	}
	return engine
}

// startWithWebhookConfig starts the control plane with
// deploy/base/webhook/mutatingwebhookconfiguration.yaml installed, pointing
// at a webhook to be served on 127.0.0.1 (envtest's WebhookInstallOptions).
func startWithWebhookConfig(t *testing.T) *testenv.Env {
	t.Helper()
	root := testenv.Root(t)
	return testenv.Start(t, func(e *envtest.Environment) {
		e.WebhookInstallOptions = envtest.WebhookInstallOptions{
			Paths:            []string{filepath.Join(root, "deploy", "base", "webhook", "mutatingwebhookconfiguration.yaml")},
			LocalServingHost: "127.0.0.1",
		}
	})
}

// startWebhookEngine is startWebhook with the engine's options (the node
// profile or node pools) given.
func startWebhookEngine(t *testing.T, opts policy.EngineOptions, policyPaths ...string) *webhookEnv {
	t.Helper()
	env := startWithWebhookConfig(t)
	wio := &env.Environment.WebhookInstallOptions
	if len(wio.MutatingWebhooks) != 1 || wio.MutatingWebhooks[0].Name != "poddns" {
		t.Fatalf("installed webhook configurations: %d, want the one named poddns", len(wio.MutatingWebhooks))
	}

	engine := loadEngine(t, opts, policyPaths...)
	mgr, err := ctrl.NewManager(env.Config, manager.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		WebhookServer: webhook.NewServer(webhook.Options{
			Host:    wio.LocalServingHost,
			Port:    wio.LocalServingPort,
			CertDir: wio.LocalServingCertDir,
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	// A private registry: several tests in this package build handlers.
	m, err := padmission.NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	h := padmission.NewHandler(engine, mgr.GetCache(), mgr.GetAPIReader())
	h.ExcludedNamespaces = []string{"poddns-system"}
	h.Metrics = m
	mgr.GetWebhookServer().Register(padmission.Path, &admission.Webhook{Handler: h})

	ctx, cancel := context.WithCancel(context.Background())
	// Watch namespaces from the start, as serve does.
	if _, err := mgr.GetCache().GetInformer(ctx, &corev1.Namespace{}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	addr := net.JoinHostPort(wio.LocalServingHost, strconv.Itoa(wio.LocalServingPort))
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // test: reachability only
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook server on %s not up: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	warnings := &testenv.WarningRecorder{}
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandler = warnings
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &webhookEnv{env: env, pods: cs, warnings: warnings, metrics: m, engine: engine}
}

func (w *webhookEnv) namespace(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if _, err := w.pods.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// create creates pod and returns it as stored, with the warnings the client
// saw.
func (w *webhookEnv) create(t *testing.T, pod *corev1.Pod) (*corev1.Pod, []string) {
	t.Helper()
	w.warnings.Take()
	got, err := w.pods.CoreV1().Pods(pod.Namespace).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
	return got, w.warnings.Take()
}

func newPod(ns, name string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": name}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/c:1"}}},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func hostNetwork(p *corev1.Pod) { p.Spec.HostNetwork = true }

func podOption(p *corev1.Pod, name string) (string, bool) {
	if p.Spec.DNSConfig == nil {
		return "", false
	}
	for _, o := range p.Spec.DNSConfig.Options {
		if o.Name == name {
			if o.Value == nil {
				return "", true
			}
			return *o.Value, true
		}
	}
	return "", false
}

// calls is how many admission requests the handler has answered: the API
// server calls it only for what the configuration's namespaceSelector and
// matchConditions select.
func (w *webhookEnv) calls() float64 {
	var n float64
	for _, r := range []string{padmission.ResultPatched, padmission.ResultUnchanged, padmission.ResultExempt, padmission.ResultExcluded,
		padmission.ResultIgnored, padmission.ResultNoLabels, padmission.ResultError} {
		n += testutil.ToFloat64(w.metrics.Admissions.WithLabelValues(r))
	}
	return n
}

// notCalled runs f and checks that the webhook was not called meanwhile.
func (w *webhookEnv) notCalled(t *testing.T, f func()) {
	t.Helper()
	before := w.calls()
	f()
	if after := w.calls(); after != before {
		t.Errorf("the webhook was called %v times; the configuration should not send these requests", after-before)
	}
}

// enabled is the webhook's opt-in label plus extra labels.
func enabled(extra ...string) map[string]string {
	l := map[string]string{"poddns.io/enabled": "true"}
	for i := 0; i+1 < len(extra); i += 2 {
		l[extra[i]] = extra[i+1]
	}
	return l
}

// untouched compares a pod with a control pod created where no webhook is
// called: DNS fields, annotations and the whole spec must be identical.
func untouched(t *testing.T, got, control *corev1.Pod) {
	t.Helper()
	g, _ := json.Marshal(got.Spec)
	c, _ := json.Marshal(control.Spec)
	if string(g) != string(c) {
		t.Errorf("spec differs from the control pod's:\n got %s\nwant %s", g, c)
	}
	if !mapsEqual(got.Annotations, control.Annotations) {
		t.Errorf("annotations = %v, want %v", got.Annotations, control.Annotations)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func TestWebhookAcceptance(t *testing.T) {
	root := testenv.Root(t)
	w := startWebhook(t, filepath.Join(root, "testdata", "policies"))
	ctx := context.Background()

	w.namespace(t, "tuned", enabled("poddns.io/ndots", "2"))
	w.namespace(t, "local", enabled("poddns.io/node-local-dns", "true"))
	w.namespace(t, "trial", enabled("poddns.io/timeout-trial", "true"))
	w.namespace(t, "corp", enabled("poddns.io/corp-search", "true", "poddns.io/ndots", "2"))
	// Every policy label but not the opt-in: the webhook is never called.
	w.namespace(t, "unlabelled", map[string]string{"poddns.io/ndots": "2", "poddns.io/node-local-dns": "true", "poddns.io/timeout-trial": "true"})

	// kube-system opted in with every label is still excluded by the
	// configuration's namespaceSelector.
	ks, err := w.pods.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range enabled("poddns.io/ndots", "2", "poddns.io/node-local-dns", "true") {
		if ks.Labels == nil {
			ks.Labels = map[string]string{}
		}
		ks.Labels[k] = v
	}
	if _, err := w.pods.CoreV1().Namespaces().Update(ctx, ks, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("ndots tuned", func(t *testing.T) {
		got, warns := w.create(t, newPod("tuned", "web"))
		if v, _ := podOption(got, "ndots"); v != "2" {
			t.Errorf("ndots = %q, want 2; dnsConfig %+v", v, got.Spec.DNSConfig)
		}
		if got.Spec.DNSPolicy != corev1.DNSClusterFirst {
			t.Errorf("dnsPolicy = %q, want ClusterFirst", got.Spec.DNSPolicy)
		}
		if got.Annotations[policy.AnnotationApplied] != "ndots-2" {
			t.Errorf("%s = %q, want ndots-2", policy.AnnotationApplied, got.Annotations[policy.AnnotationApplied])
		}
		wantConf := "search tuned.svc.cluster.local svc.cluster.local cluster.local"
		if rc := got.Annotations[policy.AnnotationResolvConf]; !strings.Contains(rc, wantConf) || !strings.Contains(rc, "options ndots:2") {
			t.Errorf("%s = %q, want %q and options ndots:2", policy.AnnotationResolvConf, rc, wantConf)
		}
		if len(warns) != 0 {
			t.Errorf("warnings = %q, want none", warns)
		}
	})

	t.Run("hostNetwork gets ClusterFirstWithHostNet", func(t *testing.T) {
		got, _ := w.create(t, newPod("tuned", "agent", hostNetwork))
		if got.Spec.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
			t.Errorf("dnsPolicy = %q, want ClusterFirstWithHostNet", got.Spec.DNSPolicy)
		}
		if a := got.Annotations[policy.AnnotationApplied]; a != "hostnetwork-cluster-dns,ndots-2" {
			t.Errorf("%s = %q, want hostnetwork-cluster-dns,ndots-2", policy.AnnotationApplied, a)
		}
	})

	t.Run("None override with the node-local cache and namespace templating", func(t *testing.T) {
		got, _ := w.create(t, newPod("local", "web"))
		if got.Spec.DNSPolicy != corev1.DNSNone {
			t.Fatalf("dnsPolicy = %q, want None", got.Spec.DNSPolicy)
		}
		dc := got.Spec.DNSConfig
		if dc == nil || !slices.Equal(dc.Nameservers, []string{"169.254.20.10"}) {
			t.Errorf("nameservers = %+v, want [169.254.20.10]", dc)
		}
		wantSearches := []string{"local.svc.cluster.local", "svc.cluster.local", "cluster.local"}
		if dc == nil || !slices.Equal(dc.Searches, wantSearches) {
			t.Errorf("searches = %+v, want %v", dc, wantSearches)
		}
		if v, _ := podOption(got, "ndots"); v != "2" {
			t.Errorf("ndots = %q, want 2", v)
		}
		if rc := got.Annotations[policy.AnnotationResolvConf]; !strings.Contains(rc, "nameserver 169.254.20.10") {
			t.Errorf("%s = %q, want nameserver 169.254.20.10", policy.AnnotationResolvConf, rc)
		}
	})

	t.Run("pods with generateName", func(t *testing.T) {
		p := newPod("tuned", "")
		p.GenerateName = "gen-"
		got, _ := w.create(t, p)
		if !strings.HasPrefix(got.Name, "gen-") {
			t.Errorf("name = %q, want gen-*", got.Name)
		}
		if v, _ := podOption(got, "ndots"); v != "2" {
			t.Errorf("ndots = %q, want 2", v)
		}
	})

	t.Run("namespace created in the same second", func(t *testing.T) {
		for i := range 5 {
			name := fmt.Sprintf("fresh-%d", i)
			w.namespace(t, name, enabled("poddns.io/ndots", "2"))
			got, _ := w.create(t, newPod(name, "web"))
			if v, _ := podOption(got, "ndots"); v != "2" {
				t.Errorf("%s: ndots = %q, want 2 (namespace labels read live)", name, v)
			}
		}
	})

	// Control pods: created where the webhook is never called.
	var control, controlHost *corev1.Pod
	w.notCalled(t, func() {
		control, _ = w.create(t, newPod("unlabelled", "web"))
		controlHost, _ = w.create(t, newPod("unlabelled", "agent", hostNetwork))
	})

	t.Run("unlabelled namespace untouched", func(t *testing.T) {
		if control.Spec.DNSPolicy != corev1.DNSClusterFirst || control.Spec.DNSConfig != nil || len(control.Annotations) != 0 {
			t.Errorf("pod in a namespace without the opt-in label changed: dnsPolicy %q dnsConfig %+v annotations %v",
				control.Spec.DNSPolicy, control.Spec.DNSConfig, control.Annotations)
		}
		if controlHost.Spec.DNSPolicy != corev1.DNSClusterFirst {
			t.Errorf("hostNetwork pod in a namespace without the opt-in label: dnsPolicy %q", controlHost.Spec.DNSPolicy)
		}
	})

	t.Run("kube-system untouched", func(t *testing.T) {
		var got *corev1.Pod
		var warns []string
		w.notCalled(t, func() { got, warns = w.create(t, newPod("kube-system", "agent", hostNetwork)) })
		untouched(t, got, controlHost)
		if len(warns) != 0 {
			t.Errorf("warnings = %q", warns)
		}
	})

	t.Run("opt-out annotation", func(t *testing.T) {
		skip := func(p *corev1.Pod) { p.Annotations = map[string]string{policy.AnnotationSkip: "true"} }
		var got *corev1.Pod
		w.notCalled(t, func() { got, _ = w.create(t, newPod("tuned", "skipped", hostNetwork, skip)) })
		ctl, _ := w.create(t, newPod("unlabelled", "skipped", hostNetwork, skip))
		untouched(t, got, ctl)
	})

	t.Run("Windows and mirror pods untouched", func(t *testing.T) {
		windows := func(p *corev1.Pod) { p.Spec.OS = &corev1.PodOS{Name: corev1.Windows} }
		var got *corev1.Pod
		w.notCalled(t, func() { got, _ = w.create(t, newPod("tuned", "win", windows)) })
		ctl, _ := w.create(t, newPod("unlabelled", "win", windows))
		untouched(t, got, ctl)

		// A mirror pod is bound to its node from the start.
		mirror := func(p *corev1.Pod) {
			p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "d41d8cd98f00b204e9800998ecf8427e"}
			p.Spec.NodeName = "node-1"
		}
		w.notCalled(t, func() { got, _ = w.create(t, newPod("tuned", "static", mirror)) })
		ctl, _ = w.create(t, newPod("unlabelled", "static", mirror))
		untouched(t, got, ctl)
	})

	t.Run("audit leaves the pod unchanged and warns", func(t *testing.T) {
		got, warns := w.create(t, newPod("trial", "web"))
		untouched(t, got, control)
		want := `poddns: policy "timeout-audit" (audit) would change spec.dnsConfig.options[timeout] from (unset) to timeout:2`
		if !slices.ContainsFunc(warns, func(s string) bool { return strings.HasPrefix(s, want) }) {
			t.Errorf("warnings seen by the client = %q, want one starting with %q", warns, want)
		}
	})

	t.Run("invalid or truncated result: policy skipped, pod created, client warned", func(t *testing.T) {
		searches := make([]string, 28)
		for i := range searches {
			searches[i] = fmt.Sprintf("s%d.example", i)
		}
		got, warns := w.create(t, newPod("corp", "many", func(p *corev1.Pod) {
			p.Spec.DNSConfig = &corev1.PodDNSConfig{Searches: searches}
		}))
		if slices.Contains(got.Spec.DNSConfig.Searches, "corp.example.com") {
			t.Errorf("corp-search applied although kubelet would truncate: %v", got.Spec.DNSConfig.Searches)
		}
		if v, _ := podOption(got, "ndots"); v != "2" {
			t.Errorf("ndots = %q, want 2 (the other policy still applies)", v)
		}
		if a := got.Annotations[policy.AnnotationApplied]; a != "ndots-2" {
			t.Errorf("%s = %q, want ndots-2", policy.AnnotationApplied, a)
		}
		want := `poddns: policy "corp-search" not applied: kubelet would truncate the result`
		if !slices.ContainsFunc(warns, func(s string) bool { return strings.HasPrefix(s, want) }) {
			t.Errorf("warnings seen by the client = %q, want one starting with %q", warns, want)
		}
	})

	t.Run("UPDATE is not mutated", func(t *testing.T) {
		p, err := w.pods.CoreV1().Pods("tuned").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Labels["touched"] = "yes"
		if _, err := w.pods.CoreV1().Pods("tuned").Update(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Errorf("update of a mutated pod: %v", err)
		}
	})
}

// readWebhookManifest decodes the webhook's manifest
// deploy/base/webhook/name into obj, strictly (an unknown field fails).
func readWebhookManifest(t *testing.T, name string, obj any) {
	t.Helper()
	root := testenv.Root(t)
	data, err := os.ReadFile(filepath.Join(root, "deploy", "base", "webhook", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, obj); err != nil {
		t.Fatalf("%s: strict decode: %v", name, err)
	}
}

// TestWebhookConfigurationFile holds the production configuration to the
// decisions of DESIGN.md that no pod in the acceptance suite can show
// (failure policy, timeout, reinvocation, CA injection).
func TestWebhookConfigurationFile(t *testing.T) {
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	readWebhookManifest(t, "mutatingwebhookconfiguration.yaml", &mwc)
	if mwc.APIVersion != "admissionregistration.k8s.io/v1" || mwc.Kind != "MutatingWebhookConfiguration" || mwc.Name != "poddns" {
		t.Errorf("identity %s %s %s", mwc.APIVersion, mwc.Kind, mwc.Name)
	}
	if a := mwc.Annotations["cert-manager.io/inject-ca-from"]; a != "poddns-system/poddns-webhook" {
		t.Errorf("inject-ca-from = %q", a)
	}
	if len(mwc.Webhooks) != 1 {
		t.Fatalf("%d webhooks, want 1", len(mwc.Webhooks))
	}
	wh := mwc.Webhooks[0]
	svc := wh.ClientConfig.Service
	switch {
	case wh.Name != "pods.poddns.io":
		t.Errorf("name %q", wh.Name)
	case wh.FailurePolicy == nil || *wh.FailurePolicy != admissionregistrationv1.Ignore:
		t.Errorf("failurePolicy %v, want Ignore", wh.FailurePolicy)
	case wh.SideEffects == nil || *wh.SideEffects != admissionregistrationv1.SideEffectClassNone:
		t.Errorf("sideEffects %v, want None", wh.SideEffects)
	case wh.TimeoutSeconds == nil || *wh.TimeoutSeconds != 3:
		t.Errorf("timeoutSeconds %v, want 3", wh.TimeoutSeconds)
	case wh.ReinvocationPolicy == nil || *wh.ReinvocationPolicy != admissionregistrationv1.IfNeededReinvocationPolicy:
		t.Errorf("reinvocationPolicy %v, want IfNeeded", wh.ReinvocationPolicy)
	case !slices.Equal(wh.AdmissionReviewVersions, []string{"v1"}):
		t.Errorf("admissionReviewVersions %v", wh.AdmissionReviewVersions)
	case svc == nil || svc.Name != "poddns-webhook" || svc.Namespace != "poddns-system" || svc.Path == nil || *svc.Path != padmission.Path:
		t.Errorf("service %+v, want poddns-system/poddns-webhook %s", svc, padmission.Path)
	case len(wh.ClientConfig.CABundle) != 0:
		t.Error("caBundle set: cainjector fills it")
	case len(wh.Rules) != 1 || !slices.Equal(wh.Rules[0].Operations, []admissionregistrationv1.OperationType{admissionregistrationv1.Create}) ||
		!slices.Equal(wh.Rules[0].Resources, []string{"pods"}):
		t.Errorf("rules %+v, want CREATE of pods only", wh.Rules)
	}
}
