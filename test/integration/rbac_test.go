package integration

// RBAC of deploy/base (issue 6): the two rbac.yaml files are applied to a
// real kube-apiserver (envtest, which authorizes with RBAC), then each
// binary runs as its ServiceAccount through impersonation (a kubeconfig with
// `as:`) through a real workload — the webhook admits and mutates pods, dnsd
// answers Services and a Pod-based feature — which proves the rules are
// sufficient; SubjectAccessReviews then prove a sample of what neither needs
// is denied. Before the rules are applied, the impersonated identity is
// refused, so impersonation does not bypass authorization.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/poddns/poddns/internal/syncbuf"
	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/policy"
	"github.com/poddns/poddns/pkg/serve/dnstest"
)

const (
	rbacNamespace = "poddns-system"
	rbacWebhookSA = "poddns-webhook"
	rbacDnsdSA    = "poddns-dnsd"
)

// rbacUser is the user name of a ServiceAccount of poddns-system.
func rbacUser(sa string) string { return "system:serviceaccount:" + rbacNamespace + ":" + sa }

// rbacGroups are the groups a ServiceAccount token of poddns-system
// authenticates with.
var rbacGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + rbacNamespace, "system:authenticated"}

// rbacObjects decodes the RBAC manifest at path (relative to the repository
// root) strictly into typed objects. Only ServiceAccounts and RBAC kinds are
// accepted, each labelled as part of poddns, and no rule may use a wildcard.
func rbacObjects(t *testing.T, path string) []client.Object {
	t.Helper()
	root := testenv.Root(t)
	data, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	dec := serializer.NewCodecFactory(clientgoscheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []client.Object
	for n := 1; ; n++ {
		doc, err := r.Read()
		if err != nil {
			break // io.EOF; a malformed document fails the strict decode below
		}
		j, err := yaml.YAMLToJSONStrict(doc)
		if err != nil {
			t.Fatalf("%s document %d: %v", path, n, err)
		}
		if s := strings.TrimSpace(string(j)); s == "null" || s == "" {
			continue
		}
		obj, _, err := dec.Decode(j, nil, nil)
		if err != nil {
			t.Fatalf("%s document %d: %v", path, n, err)
		}
		co, ok := obj.(client.Object)
		if !ok {
			t.Fatalf("%s document %d: %T is not an object", path, n, obj)
		}
		var rules []rbacv1.PolicyRule
		switch o := co.(type) {
		case *corev1.ServiceAccount:
			if o.Namespace != rbacNamespace {
				t.Errorf("%s: ServiceAccount %s in namespace %q, want %s", path, o.Name, o.Namespace, rbacNamespace)
			}
		case *rbacv1.ClusterRole:
			rules = o.Rules
		case *rbacv1.Role:
			rules = o.Rules
		case *rbacv1.ClusterRoleBinding, *rbacv1.RoleBinding:
		default:
			t.Fatalf("%s document %d: %T, want only ServiceAccounts and RBAC objects", path, n, obj)
		}
		for _, rule := range rules {
			if slices.Contains(rule.Verbs, "*") || slices.Contains(rule.Resources, "*") || slices.Contains(rule.APIGroups, "*") {
				t.Errorf("%s: %T %s has a wildcard rule %+v", path, co, co.GetName(), rule)
			}
		}
		if l := co.GetLabels(); l["app.kubernetes.io/part-of"] != "poddns" || l["app.kubernetes.io/name"] == "" {
			t.Errorf("%s: %T %s labels %v, want app.kubernetes.io/name and app.kubernetes.io/part-of: poddns", path, co, co.GetName(), l)
		}
		objs = append(objs, co)
	}
	if len(objs) == 0 {
		t.Fatalf("%s: no objects", path)
	}
	return objs
}

// rbacProbe is an access a ServiceAccount is granted.
type rbacProbe struct {
	sa string
	a  rbacAccess
}

// rbacWiring checks that the objects of one RBAC file are the
// ServiceAccount sa in poddns-system, a ClusterRole named sa, and a
// ClusterRoleBinding of exactly that role to exactly that ServiceAccount
// (no namespaced Role: neither binary uses leader election or Events). It
// returns the first access the role grants.
func rbacWiring(t *testing.T, path, sa string, objs []client.Object) rbacProbe {
	t.Helper()
	var haveSA, haveBinding bool
	var role *rbacv1.ClusterRole
	for _, o := range objs {
		switch o := o.(type) {
		case *corev1.ServiceAccount:
			haveSA = haveSA || o.Name == sa
		case *rbacv1.ClusterRole:
			switch o.Name {
			case sa:
				role = o
			case "poddns-metrics-reader":
				// For the scraper to bind: get on /metrics, nothing else.
				want := []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}
				if !equality.Semantic.DeepEqual(o.Rules, want) {
					t.Errorf("%s: ClusterRole %s rules %+v, want %+v", path, o.Name, o.Rules, want)
				}
			default:
				t.Errorf("%s: unexpected ClusterRole %s", path, o.Name)
			}
		case *rbacv1.ClusterRoleBinding:
			want := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: rbacNamespace}
			if o.RoleRef != (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: sa}) || len(o.Subjects) != 1 || o.Subjects[0] != want {
				t.Errorf("%s: ClusterRoleBinding %s binds %+v to %+v, want ClusterRole %s to %+v only", path, o.Name, o.RoleRef, o.Subjects, sa, want)
				continue
			}
			haveBinding = true
		default:
			t.Errorf("%s: unexpected %T %s", path, o, o.GetName())
		}
	}
	if !haveSA || role == nil || !haveBinding {
		t.Fatalf("%s: ServiceAccount %v, ClusterRole %v, binding %v: want all three for %s", path, haveSA, role != nil, haveBinding, sa)
	}
	if len(role.Rules) == 0 || len(role.Rules[0].Verbs) == 0 || len(role.Rules[0].APIGroups) == 0 || len(role.Rules[0].Resources) == 0 {
		t.Fatalf("%s: ClusterRole %s has no complete first rule", path, sa)
	}
	// Exactly the grants each binary uses, no more: resource (with its
	// group) -> verbs, from every rule of the role.
	want := map[string][]string{
		rbacWebhookSA: {"namespaces=get,list,watch", "subjectaccessreviews.authorization.k8s.io=create", "tokenreviews.authentication.k8s.io=create"},
		rbacDnsdSA: {"endpointslices.discovery.k8s.io=list,watch", "namespaces=list,watch", "pods=list,watch",
			"services=list,watch"},
	}[sa]
	grants := map[string][]string{}
	for _, r := range role.Rules {
		if len(r.ResourceNames) != 0 || len(r.NonResourceURLs) != 0 {
			t.Errorf("%s: ClusterRole %s rule %+v: resourceNames or nonResourceURLs unexpected", path, sa, r)
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				key := res
				if g != "" {
					key += "." + g
				}
				grants[key] = append(grants[key], r.Verbs...)
			}
		}
	}
	var got []string
	for key, verbs := range grants {
		slices.Sort(verbs)
		got = append(got, key+"="+strings.Join(slices.Compact(verbs), ","))
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("%s: ClusterRole %s grants %q, want exactly %q", path, sa, got, want)
	}
	r := role.Rules[0]
	return rbacProbe{sa: sa, a: rbacAccess{verb: r.Verbs[0], group: r.APIGroups[0], resource: r.Resources[0]}}
}

// rbacImpersonating returns a copy of the admin config acting as the
// ServiceAccount sa.
func rbacImpersonating(admin *rest.Config, sa string) *rest.Config {
	cfg := rest.CopyConfig(admin)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: rbacUser(sa), Groups: rbacGroups}
	return cfg
}

// rbacKubeconfig writes a kubeconfig of an admin user of env's API server
// (env.AdminKubeconfig) that acts as the ServiceAccount sa (`as:` and
// `as-groups:`), for the binaries' --kubeconfig.
func rbacKubeconfig(t *testing.T, env *testenv.Env, sa string) string {
	t.Helper()
	p := env.AdminKubeconfig(t, "rbac-impersonator-"+sa)
	kc, err := clientcmd.LoadFromFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(kc.AuthInfos) == 0 {
		t.Fatal("envtest kubeconfig without users")
	}
	for _, ai := range kc.AuthInfos {
		ai.Impersonate = rbacUser(sa)
		ai.ImpersonateGroups = rbacGroups
	}
	if err := clientcmd.WriteToFile(*kc, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// rbacBuild builds ./cmd/<name> into a temporary directory.
func rbacBuild(t *testing.T, name string) string {
	t.Helper()
	root := testenv.Root(t)
	bin := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/"+name)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/%s: %v\n%s", name, err, out)
	}
	return bin
}

// rbacOutput is the combined output of a process started by startProcess.
func rbacOutput(cmd *exec.Cmd) string {
	if b, ok := cmd.Stdout.(*syncbuf.Buffer); ok {
		return b.String()
	}
	return ""
}

// rbacNoForbidden fails the test if the process output shows a request the
// API server refused.
func rbacNoForbidden(t *testing.T, name, out string) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(strings.ToLower(line), "forbidden") {
			t.Errorf("%s logged a refused API request: %s", name, line)
		}
	}
}

// rbacAccess is one SubjectAccessReview case.
type rbacAccess struct {
	verb, group, resource, subresource, namespace string
	allowed                                       bool
}

func (a rbacAccess) String() string {
	r := a.resource
	if a.group != "" {
		r += "." + a.group
	}
	if a.subresource != "" {
		r += "/" + a.subresource
	}
	where := "cluster-wide"
	if a.namespace != "" {
		where = "in " + a.namespace
	}
	return fmt.Sprintf("%s %s %s", a.verb, r, where)
}

// rbacForbiddenAs reports whether err is the API server refusing the
// ServiceAccount sa itself (not the impersonating admin, whose refusal to
// impersonate would be forbidden too).
func rbacForbiddenAs(err error, sa string) bool {
	return apierrors.IsForbidden(err) && strings.Contains(err.Error(), `User "`+rbacUser(sa)+`" cannot`)
}

// rbacReview asks the API server whether the ServiceAccount sa may do a.
func rbacReview(ctx context.Context, cs kubernetes.Interface, sa string, a rbacAccess) (*authorizationv1.SubjectAccessReviewStatus, error) {
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   rbacUser(sa),
		Groups: rbacGroups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: a.namespace, Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.subresource,
		},
	}}
	got, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	return &got.Status, nil
}

// TestRBAC is issue 6's RBAC acceptance: sufficient (each binary works as
// its ServiceAccount) and minimal (a sample of what it does not need is
// denied).
func TestRBAC(t *testing.T) {
	env := startWithWebhookConfig(t)
	admin, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	clientAs := func(sa string) kubernetes.Interface {
		cs, err := kubernetes.NewForConfig(rbacImpersonating(env.Config, sa))
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	webhookAs, dnsdAs := clientAs(rbacWebhookSA), clientAs(rbacDnsdSA)

	// Build both binaries while nothing else runs.
	webhookBin, dnsdBin := rbacBuild(t, "webhook"), rbacBuild(t, "dnsd")

	// Without the RBAC objects the impersonated identities are refused:
	// the API server authorizes with RBAC (envtest's default
	// --authorization-mode) and impersonation is authorized as the
	// ServiceAccount, not as the admin behind it.
	for sa, cs := range map[string]kubernetes.Interface{rbacWebhookSA: webhookAs, rbacDnsdSA: dnsdAs} {
		if _, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); !rbacForbiddenAs(err, sa) {
			t.Fatalf("%s without RBAC: list namespaces: %v, want forbidden for %s", sa, err, rbacUser(sa))
		}
	}

	// Apply the two files for real, in the namespace created for real.
	testenv.Create(t, env.Client, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: rbacNamespace}})
	var probes []rbacProbe
	for _, f := range []struct{ path, sa string }{
		{"deploy/base/webhook/rbac.yaml", rbacWebhookSA},
		{"deploy/base/dnsd/rbac.yaml", rbacDnsdSA},
	} {
		objs := rbacObjects(t, f.path)
		probes = append(probes, rbacWiring(t, f.path, f.sa, objs))
		testenv.Create(t, env.Client, objs...)
		t.Logf("applied %s: %d objects", f.path, len(objs))
	}
	// The authorizer sees new bindings through its informers: wait until
	// both bindings are in effect (each probed with the first rule of its
	// own ClusterRole).
	deadline := time.Now().Add(30 * time.Second)
	for _, probe := range probes {
		for {
			st, err := rbacReview(ctx, admin, probe.sa, probe.a)
			if err != nil {
				t.Fatal(err)
			}
			if st.Allowed {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s still denied 30s after the bindings were created (%s)", probe.sa, probe.a, st.Reason)
			}
			time.Sleep(50 * time.Millisecond) // waiting for the authorizer's informers, bounded above
		}
	}

	t.Run("webhook as its ServiceAccount mutates pods", func(t *testing.T) {
		rbacWebhook(t, env, webhookBin)
	})
	t.Run("dnsd as its ServiceAccount answers", func(t *testing.T) {
		rbacDnsd(t, env, dnsdBin)
	})
	t.Run("impersonated requests outside the rules are forbidden", func(t *testing.T) {
		for _, tc := range []struct {
			name, sa string
			do       func() error
		}{
			{"webhook gets a secret", rbacWebhookSA, func() error {
				_, err := webhookAs.CoreV1().Secrets(rbacNamespace).Get(ctx, "poddns-webhook-tls", metav1.GetOptions{})
				return err
			}},
			{"webhook creates a pod", rbacWebhookSA, func() error {
				_, err := webhookAs.CoreV1().Pods("default").Create(ctx, testPod("rbac-denied", "default"), metav1.CreateOptions{})
				return err
			}},
			{"webhook lists pods", rbacWebhookSA, func() error {
				_, err := webhookAs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
				return err
			}},
			{"dnsd gets a service", rbacDnsdSA, func() error {
				_, err := dnsdAs.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
				return err
			}},
			{"dnsd deletes a pod", rbacDnsdSA, func() error {
				return dnsdAs.CoreV1().Pods("default").Delete(ctx, "none", metav1.DeleteOptions{})
			}},
			{"dnsd lists secrets", rbacDnsdSA, func() error {
				_, err := dnsdAs.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
				return err
			}},
		} {
			if err := tc.do(); !rbacForbiddenAs(err, tc.sa) {
				t.Errorf("%s: %v, want forbidden for %s", tc.name, err, rbacUser(tc.sa))
			}
		}
		// And what the rules grant is allowed to the same clients.
		if _, err := webhookAs.CoreV1().Namespaces().Get(ctx, rbacNamespace, metav1.GetOptions{}); err != nil {
			t.Errorf("webhook gets a namespace: %v", err)
		}
		if _, err := dnsdAs.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("dnsd lists endpointslices: %v", err)
		}
	})
	t.Run("minimal: SubjectAccessReviews", func(t *testing.T) {
		rbacMinimal(t, admin)
	})
}

// rbacWebhook runs `webhook serve` as poddns-webhook behind the production
// MutatingWebhookConfiguration and checks that pods in opted-in namespaces
// come back mutated by the policies.
func rbacWebhook(t *testing.T, env *testenv.Env, bin string) {
	root := testenv.Root(t)
	wio := &env.Environment.WebhookInstallOptions
	health, metrics := loopback(testenv.FreeTCPPort(t)), loopback(testenv.FreeTCPPort(t))
	proc := startProcess(t, "webhook", bin, "serve",
		"--kubeconfig", rbacKubeconfig(t, env, rbacWebhookSA),
		"-p", filepath.Join(root, "testdata", "policies"),
		"--host", wio.LocalServingHost, "--port", fmt.Sprint(wio.LocalServingPort), "--cert-dir", wio.LocalServingCertDir,
		"--health-probe-bind-address", health, "--metrics-bind-address", metrics,
		"--excluded-namespaces", rbacNamespace, "--policy-resync", "0")
	waitHTTP(t, "http://"+health+"/readyz", 60*time.Second)

	c := env.Client
	testenv.Create(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "rbac-tuned", Labels: enabled("poddns.io/ndots", "2")}})

	// /readyz says the TLS server is up; the namespace informer may still
	// be listing, and an admission that times out is ignored
	// (failurePolicy Ignore). So the first pod is retried a bounded number
	// of times; with the namespace rules missing none is ever mutated.
	var got *corev1.Pod
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		p := newPod("rbac-tuned", fmt.Sprintf("web-%d", i))
		if err := c.Create(t.Context(), p); err != nil {
			t.Fatal(err)
		}
		if p.Annotations[policy.AnnotationApplied] != "" {
			got = p
			if i > 0 {
				t.Logf("first mutated pod after %d unmutated ones (webhook warming up)", i)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pod mutated after %d tries in 30s (the webhook's output follows)", i+1)
		}
		time.Sleep(200 * time.Millisecond) // waiting for the webhook's cache, bounded above
	}
	if v, _ := podOption(got, "ndots"); v != "2" || got.Annotations[policy.AnnotationApplied] != "ndots-2" {
		t.Errorf("pod %s: ndots %q, %s %q; want 2 and ndots-2", got.Name, v, policy.AnnotationApplied, got.Annotations[policy.AnnotationApplied])
	}

	// A hostNetwork pod: two policies.
	host := newPod("rbac-tuned", "agent", hostNetwork)
	testenv.Create(t, c, host)
	if host.Spec.DNSPolicy != corev1.DNSClusterFirstWithHostNet || host.Annotations[policy.AnnotationApplied] != "hostnetwork-cluster-dns,ndots-2" {
		t.Errorf("hostNetwork pod: dnsPolicy %q, %s %q; want ClusterFirstWithHostNet and hostnetwork-cluster-dns,ndots-2",
			host.Spec.DNSPolicy, policy.AnnotationApplied, host.Annotations[policy.AnnotationApplied])
	}

	// Namespaces created right before their first pod: labels read from
	// the cache or, when it has not seen the namespace yet, live (get).
	for i := range 5 {
		ns := fmt.Sprintf("rbac-fresh-%d", i)
		testenv.Create(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: enabled("poddns.io/ndots", "2")}})
		p := newPod(ns, "web")
		testenv.Create(t, c, p)
		if v, _ := podOption(p, "ndots"); v != "2" {
			t.Errorf("%s: ndots %q, want 2 (namespace labels read as %s)", ns, v, rbacWebhookSA)
		}
	}

	// A namespace that has not opted in: untouched.
	testenv.Create(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "rbac-plain", Labels: map[string]string{"poddns.io/ndots": "2"}}})
	plain := newPod("rbac-plain", "web")
	testenv.Create(t, c, plain)
	if plain.Spec.DNSConfig != nil || len(plain.Annotations) != 0 {
		t.Errorf("pod in a namespace without the opt-in label changed: %+v %v", plain.Spec.DNSConfig, plain.Annotations)
	}

	rbacMetrics(t, env, "https://"+metrics+"/metrics")

	out := rbacOutput(proc)
	rbacNoForbidden(t, "webhook", out)
	if !strings.Contains(out, `"msg":"serving"`) {
		t.Errorf("webhook output has no serving line:\n%s", out)
	}
}

// rbacMetrics scrapes the webhook's /metrics, served over HTTPS to clients
// the API server authenticates and authorizes (the webhook's TokenReviews
// and SubjectAccessReviews, made as its ServiceAccount): a ServiceAccount
// bound to poddns-metrics-reader gets the metrics, one without the binding
// 403, a client without a token 401.
func rbacMetrics(t *testing.T, env *testenv.Env, url string) {
	ctx := t.Context()
	admin, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	token := func(sa string) string {
		if _, err := admin.CoreV1().ServiceAccounts(rbacNamespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		tr, err := admin.CoreV1().ServiceAccounts(rbacNamespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("token of %s: %v", sa, err)
		}
		return tr.Status.Token
	}
	scraper, stranger := token("rbac-prometheus"), token("rbac-stranger")
	testenv.Create(t, env.Client, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "rbac-prometheus-metrics"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "poddns-metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "rbac-prometheus", Namespace: rbacNamespace}},
	})
	httpc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the metrics server's self-signed certificate
	get := func(token string) (int, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := httpc.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// The metrics server listens once its self-signed certificate is made
	// (after /readyz), and the binding may take a moment to reach the
	// authorizer's cache.
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := get(scraper)
		if code == http.StatusOK {
			if !strings.Contains(body, "poddns_webhook_admissions_total") {
				t.Errorf("/metrics without poddns_webhook_admissions_total:\n%.500s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics as a ServiceAccount bound to poddns-metrics-reader: %d %.200s", code, body)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if code, body := get(stranger); code != http.StatusForbidden {
		t.Errorf("/metrics as a ServiceAccount without the binding: %d %.200s, want 403", code, body)
	}
	if code, body := get(""); code != http.StatusUnauthorized {
		t.Errorf("/metrics without a token: %d %.200s, want 401", code, body)
	}
}

// rbacDnsd runs dnsd as poddns-dnsd with verified pod records and search
// completion (both need the Pod watch) and checks Service, EndpointSlice,
// Namespace and Pod based answers, for objects listed at start and for
// objects only a watch can see.
func rbacDnsd(t *testing.T, env *testenv.Env, bin string) {
	c := env.Client
	ready := true
	hostname := "db-0"
	testenv.Create(t, c,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "rbac-dns"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "rbac-other"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "rbac-other"},
			Spec: corev1.ServiceSpec{ClusterIP: "10.96.30.10", Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "rbac-dns"},
			Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "pg", Port: 5432}}}},
		&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "db-1", Namespace: "rbac-dns", Labels: map[string]string{discoveryv1.LabelServiceName: "db"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.30.1"}, Hostname: &hostname, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}}},
		testPod("client", "rbac-dns"),
	)
	// The client pod's IP is a loopback address the test sends from.
	const clientIP = "127.0.0.31"
	setPodIP(t, c, "rbac-dns", "client", clientIP)

	dir := t.TempDir()
	profile := filepath.Join(dir, "profile.yaml")
	if err := os.WriteFile(profile, []byte("apiVersion: poddns.io/v1alpha1\nkind: NodeProfile\nclusterDomain: cluster.local\nclusterDNS: [10.96.0.10]\n"+
		"resolvConfContent: |\n  nameserver 192.0.2.53\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "dnsd.yaml")
	if err := os.WriteFile(cfg, []byte("apiVersion: poddns.io/v1alpha1\nkind: DNSDConfig\npods: verified\ncompletion:\n  nodeProfile: "+profile+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, health := loopback(testenv.FreeDNSPort(t)), loopback(testenv.FreeTCPPort(t))
	proc := startProcess(t, "dnsd", bin, "--config", cfg, "--kubeconfig", rbacKubeconfig(t, env, rbacDnsdSA),
		"--listen", addr, "--udp-sockets", "1", "--health-listen", health, "--metrics-listen", health, "--lameduck", "0s")
	// Ready means every informer (Pods included) has its initial list.
	waitHTTP(t, "http://"+health+"/ready", 60*time.Second)

	const (
		web    = "web.rbac-other.svc.cluster.local."
		db     = "db.rbac-dns.svc.cluster.local."
		podRec = "127-0-0-31.rbac-dns.pod.cluster.local."
	)
	answers := func(want ...string) func(*dns.Msg) bool {
		return func(m *dns.Msg) bool {
			return m.Rcode == dns.RcodeSuccess && dnstest.Diff(m.Answer, dnstest.RRs(want...)) == ""
		}
	}
	// Listed at start: a Service, a headless Service's EndpointSlice, a
	// verified pod record, a namespace.
	pollAnswer(t, addr, dnstest.Query(web, dns.TypeA, 0), answers(web+" 30 IN A 10.96.30.10"))
	pollAnswer(t, addr, dnstest.Query(db, dns.TypeA, 0), answers(db+" 30 IN A 10.244.30.1"))
	pollAnswer(t, addr, dnstest.Query(podRec, dns.TypeA, 0), answers(podRec+" 30 IN A 127.0.0.31"))
	pollAnswer(t, addr, dnstest.Query("rbac-dns.svc.cluster.local.", dns.TypeA, 0), nodataReply)

	// Search completion from the client pod's address: its walk for
	// "web.rbac-other" starts in its own namespace and stops at the
	// Service one name later; dnsd answers that in one query.
	completed := "web.rbac-other.rbac-dns.svc.cluster.local."
	dc := &dns.Client{Net: "udp", Timeout: dnstest.Timeout,
		Dialer: &net.Dialer{Timeout: dnstest.Timeout, LocalAddr: &net.UDPAddr{IP: net.ParseIP(clientIP)}}}
	r, _, err := dc.Exchange(dnstest.Query(completed, dns.TypeA, 0), addr)
	if err != nil {
		t.Fatal(err)
	}
	if diff := dnstest.Diff(r.Answer, dnstest.RRs(completed+" 30 IN CNAME "+web, web+" 30 IN A 10.96.30.10")); r.Rcode != dns.RcodeSuccess || diff != "" {
		t.Errorf("completion for the pod at %s: %s, answer:\n%s", clientIP, dns.RcodeToString[r.Rcode], diff)
	}
	// The same query from an address that is no pod's is not completed.
	if r, err := exchange(addr, "udp", dnstest.Query(completed, dns.TypeA, 0)); err != nil || r.Rcode != dns.RcodeNameError {
		t.Errorf("%s from 127.0.0.1 (no pod): %v %v, want NXDOMAIN", completed, r, err)
	}

	// Created after the initial lists: only the watches can show them.
	testenv.Create(t, c,
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "late", Namespace: "rbac-other"},
			Spec: corev1.ServiceSpec{ClusterIP: "10.96.30.11", Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}},
		&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "db-2", Namespace: "rbac-dns", Labels: map[string]string{discoveryv1.LabelServiceName: "db"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.30.2"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "rbac-late"}},
		testPod("late", "rbac-dns"),
	)
	setPodIP(t, c, "rbac-dns", "late", "10.244.30.9")
	late := "late.rbac-other.svc.cluster.local."
	latePod := "10-244-30-9.rbac-dns.pod.cluster.local."
	pollAnswer(t, addr, dnstest.Query(late, dns.TypeA, 0), answers(late+" 30 IN A 10.96.30.11"))
	pollAnswer(t, addr, dnstest.Query(db, dns.TypeA, 0), answers(db+" 30 IN A 10.244.30.1", db+" 30 IN A 10.244.30.2"))
	pollAnswer(t, addr, dnstest.Query("rbac-late.svc.cluster.local.", dns.TypeA, 0), nodataReply)
	pollAnswer(t, addr, dnstest.Query(latePod, dns.TypeA, 0), answers(latePod+" 30 IN A 10.244.30.9"))

	rbacNoForbidden(t, "dnsd", rbacOutput(proc))
}

// rbacMinimal checks with SubjectAccessReviews that each ServiceAccount may
// do what its binary does and not a sample of what it does not.
func rbacMinimal(t *testing.T, admin kubernetes.Interface) {
	const ns = rbacNamespace
	cases := map[string][]rbacAccess{
		rbacWebhookSA: {
			// Needed: the Namespace cache and the live read.
			{verb: "get", resource: "namespaces", allowed: true},
			// Needed: /metrics's authentication and authorization.
			{verb: "create", group: "authentication.k8s.io", resource: "tokenreviews", allowed: true},
			{verb: "create", group: "authorization.k8s.io", resource: "subjectaccessreviews", allowed: true},
			{verb: "list", resource: "namespaces", allowed: true},
			{verb: "watch", resource: "namespaces", allowed: true},
			// Not needed: the pod comes in the AdmissionReview.
			{verb: "get", resource: "pods", namespace: "default"},
			{verb: "list", resource: "pods"},
			{verb: "create", resource: "pods", namespace: "default"},
			{verb: "patch", resource: "pods", namespace: "default"},
			{verb: "delete", resource: "pods", namespace: "default"},
			{verb: "create", resource: "pods", subresource: "exec", namespace: "default"},
			// Namespaces are only read.
			{verb: "update", resource: "namespaces"},
			{verb: "patch", resource: "namespaces"},
			{verb: "create", resource: "namespaces"},
			{verb: "delete", resource: "namespaces"},
			// Certificates and policies are mounted files.
			{verb: "get", resource: "secrets", namespace: ns},
			{verb: "list", resource: "secrets"},
			{verb: "get", resource: "configmaps", namespace: ns},
			{verb: "list", resource: "configmaps"},
			// cert-manager's cainjector writes the caBundle, not the webhook.
			{verb: "update", group: "admissionregistration.k8s.io", resource: "mutatingwebhookconfigurations"},
			{verb: "patch", group: "admissionregistration.k8s.io", resource: "mutatingwebhookconfigurations"},
			// No leader election, no Events.
			{verb: "create", group: "coordination.k8s.io", resource: "leases", namespace: ns},
			{verb: "create", resource: "events", namespace: ns},
			{verb: "create", group: "events.k8s.io", resource: "events", namespace: ns},
			// Nothing dnsd reads.
			{verb: "list", resource: "services"},
			{verb: "list", group: "discovery.k8s.io", resource: "endpointslices"},
			// Nothing else of a control plane.
			{verb: "list", resource: "nodes"},
			{verb: "create", resource: "serviceaccounts", subresource: "token", namespace: ns},
			{verb: "impersonate", resource: "users"},
			{verb: "escalate", group: "rbac.authorization.k8s.io", resource: "clusterroles"},
		},
		rbacDnsdSA: {
			// Needed: the informers (list, then watch), cluster-wide.
			{verb: "list", resource: "services", allowed: true},
			{verb: "watch", resource: "services", allowed: true},
			{verb: "list", group: "discovery.k8s.io", resource: "endpointslices", allowed: true},
			{verb: "watch", group: "discovery.k8s.io", resource: "endpointslices", allowed: true},
			{verb: "list", resource: "namespaces", allowed: true},
			{verb: "watch", resource: "namespaces", allowed: true},
			{verb: "list", resource: "pods", allowed: true},
			{verb: "watch", resource: "pods", allowed: true},
			// Informers never get single objects.
			{verb: "get", resource: "services", namespace: "default"},
			{verb: "get", resource: "pods", namespace: "default"},
			{verb: "get", resource: "namespaces"},
			// dnsd never writes.
			{verb: "update", resource: "services", namespace: "default"},
			{verb: "create", resource: "services", namespace: "default"},
			{verb: "delete", resource: "services", namespace: "default"},
			{verb: "create", resource: "pods", namespace: "default"},
			{verb: "delete", resource: "pods", namespace: "default"},
			{verb: "update", resource: "pods", subresource: "status", namespace: "default"},
			{verb: "create", resource: "pods", subresource: "exec", namespace: "default"},
			{verb: "update", resource: "namespaces"},
			{verb: "create", group: "discovery.k8s.io", resource: "endpointslices", namespace: "default"},
			{verb: "update", group: "discovery.k8s.io", resource: "endpointslices", namespace: "default"},
			// The legacy Endpoints are not read: EndpointSlices are.
			{verb: "list", resource: "endpoints"},
			// No Secrets or ConfigMaps: its configuration is a mounted file.
			{verb: "get", resource: "secrets", namespace: ns},
			{verb: "list", resource: "secrets"},
			{verb: "list", resource: "configmaps"},
			{verb: "get", resource: "configmaps", namespace: ns},
			// No leader election, no Events.
			{verb: "create", group: "coordination.k8s.io", resource: "leases", namespace: ns},
			{verb: "create", resource: "events", namespace: ns},
			// Nothing else.
			{verb: "list", resource: "nodes"},
			{verb: "list", group: "apps", resource: "deployments"},
			{verb: "create", resource: "serviceaccounts", subresource: "token", namespace: ns},
			{verb: "impersonate", resource: "users"},
		},
	}
	for _, sa := range []string{rbacWebhookSA, rbacDnsdSA} {
		t.Run(sa, func(t *testing.T) {
			var allowed, denied int
			for _, a := range cases[sa] {
				st, err := rbacReview(t.Context(), admin, sa, a)
				if err != nil {
					t.Fatalf("%s: %v", a, err)
				}
				if st.Allowed != a.allowed {
					t.Errorf("%s: allowed=%v (reason %q, denied=%v), want allowed=%v", a, st.Allowed, st.Reason, st.Denied, a.allowed)
				}
				if st.Allowed {
					allowed++
				} else {
					denied++
				}
			}
			t.Logf("%s: %d SubjectAccessReviews, %d allowed, %d denied", sa, allowed+denied, allowed, denied)
		})
	}
}
