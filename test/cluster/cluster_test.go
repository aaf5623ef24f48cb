//go:build e2ecluster

package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/go-logr/logr"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/poddns/poddns/internal/certstandin"
	"github.com/poddns/poddns/internal/deployrender"
	"github.com/poddns/poddns/internal/rig"
	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/resolvconf"
)

// The images `make images` writes (hack/images), by archive name, and what
// the pods name them. webhook and dnsd carry deploy/'s own names.
const (
	glibcImage = "ghcr.io/poddns/client-glibc:v0.1.0"
	muslImage  = "ghcr.io/poddns/client-musl:v0.1.0"
	// cpaImage is deploy/'s cluster-proportional-autoscaler: no image of it
	// can be built here (the module proxy refuses its module), so its
	// Deployment is applied with imagePullPolicy Never and never runs.
	cpaImage = "registry.k8s.io/cpa/cluster-proportional-autoscaler"
)

var archives = []string{"webhook", "dnsd", "client-glibc", "client-musl", "coredns"}

// images is the image map of the render: every image deploy/ names, to
// itself (the archives carry those names), so that its pods take the
// imported image (imagePullPolicy Never) and never pull.
var images = map[string]string{
	"ghcr.io/poddns/webhook": "ghcr.io/poddns/webhook:v0.1.0",
	"ghcr.io/poddns/dnsd":    "ghcr.io/poddns/dnsd:v0.1.0",
	cpaImage:                 cpaImage + ":v1.9.0",
}

// Annotations the webhook writes.
const (
	annApplied    = "poddns.io/applied"
	annResolvConf = "poddns.io/resolv-conf"
)

// env is one rig with deploy/ installed, shared by the scenarios.
type env struct {
	t    *testing.T
	c    *rig.Cluster
	root string
	// cl applies objects (cert-manager's types known).
	cl client.Client
	// cs creates pods; warn records the admission warnings it gets.
	cs   kubernetes.Interface
	warn *testenv.WarningRecorder
	// web reaches pods inside the rig; token reads the webhook's metrics.
	web   *http.Client
	token string
	// objs is the installed render.
	objs []*unstructured.Unstructured
	// kubeDNS is CoreDNS's Service as it was before the takeover (README's
	// kube-dns-backup.yaml), for the way back.
	kubeDNS *corev1.Service
}

// start starts a rig with the images imported and cert-manager's CRDs
// installed.
func start(t *testing.T) *env {
	t.Helper()
	root := testenv.Root(t)
	var paths []string
	for _, a := range archives {
		p := filepath.Join(root, "bin", "images", a+".tar")
		_, err := os.Stat(p)
		testenv.RequireOrSkip(t, fmt.Sprintf("the image %s (%v); run `make images`", p, err), err == nil)
		paths = append(paths, p)
	}
	// controller-runtime's client logs nothing this test reads.
	ctrllog.SetLogger(logr.Discard())
	begin := time.Now()
	c := rig.Start(t, rig.Options{Images: paths})
	t.Logf("rig up with the images in %s", time.Since(begin).Round(time.Millisecond))
	e := &env{t: t, c: c, root: root, warn: &testenv.WarningRecorder{}}
	cfg := c.RESTConfig()
	var err error
	if e.cl, err = client.New(cfg, client.Options{Scheme: certstandin.Scheme}); err != nil {
		t.Fatal(err)
	}
	wcfg := rest.CopyConfig(cfg)
	wcfg.WarningHandler = e.warn
	if e.cs, err = kubernetes.NewForConfig(wcfg); err != nil {
		t.Fatal(err)
	}
	e.web = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: c.DialContext,
		// The webhook's metrics certificate is self-signed (no
		// metricsCertDir in deploy/).
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
	e.installCRDs()
	return e
}

// installCRDs creates cert-manager's CRDs from its module (what its Helm
// chart installs) and waits until Certificates can be listed.
func (e *env) installCRDs() {
	ctx := context.Background()
	dir, err := certstandin.CRDDir(ctx, goCmd(), e.root)
	if err != nil {
		e.t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "cert-manager.io_*.yaml"))
	if err != nil || len(files) == 0 {
		e.t.Fatalf("cert-manager CRDs in %s: %v", dir, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			e.t.Fatal(err)
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(b, &u.Object); err != nil {
			e.t.Fatalf("%s: %v", f, err)
		}
		if err := e.cl.Create(ctx, u); err != nil {
			e.t.Fatalf("%s: %v", f, err)
		}
	}
	if err := e.poll("cert-manager's CRDs served", time.Minute, func(ctx context.Context) (bool, error) {
		if err := e.cl.List(ctx, &cmapi.IssuerList{}); err != nil {
			return false, err
		}
		return true, e.cl.List(ctx, &cmapi.CertificateList{})
	}); err != nil {
		e.t.Fatal(err)
	}
}

func goCmd() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return "go"
}

// render renders a kustomization of deploy/ with the image map.
func (e *env) render(kustomization string) []*unstructured.Unstructured {
	e.t.Helper()
	objs, err := deployrender.Render(filepath.Join(e.root, "deploy", kustomization), images)
	if err != nil {
		e.t.Fatal(err)
	}
	return objs
}

// apply applies objects with server-side apply, as `kubectl apply
// --server-side` does, in order.
func (e *env) apply(objs []*unstructured.Unstructured) {
	e.t.Helper()
	for k, err := range e.applyAll(objs) {
		e.t.Fatalf("apply %s: %v", k, err)
	}
}

// applyAll applies objects in order as `kubectl apply` does, going on past
// an object the API server refuses, and returns the refusals by "Kind
// namespace/name".
func (e *env) applyAll(objs []*unstructured.Unstructured) map[string]error {
	refused := map[string]error{}
	for _, u := range objs {
		err := e.cl.Apply(context.Background(), client.ApplyConfigurationFromUnstructured(u.DeepCopy()), client.FieldOwner("poddns-cluster-test"), client.ForceOwnership)
		if err != nil {
			refused[u.GetKind()+" "+u.GetNamespace()+"/"+u.GetName()] = err
		}
	}
	return refused
}

// install applies a kustomization of deploy/, then settles it.
func (e *env) install(kustomization string) {
	e.t.Helper()
	begin := time.Now()
	e.objs = e.render(kustomization)
	e.apply(e.objs)
	e.settle(kustomization, begin)
}

// settle issues what cert-manager would for the applied render and waits
// for every Deployment but the autoscaler's to be Available.
func (e *env) settle(kustomization string, begin time.Time) {
	e.t.Helper()
	var res *certstandin.Result
	err := e.poll("cert-manager's objects issued", 30*time.Second, func(ctx context.Context) (bool, error) {
		var err error
		res, err = certstandin.Issue(ctx, e.c.RESTConfig())
		return err == nil, err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Logf("certstandin: Secrets %q, caBundle injected into %q", res.Secrets, res.Injected)
	for _, d := range e.deployments() {
		e.waitRollout(d.GetNamespace(), d.GetName())
	}
	e.t.Logf("%s installed, every Deployment Available, in %s", kustomization, time.Since(begin).Round(time.Millisecond))
}

// deployments are the render's Deployments that can run (all but the
// autoscaler's).
func (e *env) deployments() []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, u := range e.objs {
		if u.GetKind() != "Deployment" {
			continue
		}
		cs, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
		if slices.ContainsFunc(cs, func(c any) bool {
			img, _ := c.(map[string]any)["image"].(string)
			return strings.HasPrefix(img, cpaImage+":")
		}) {
			continue
		}
		out = append(out, u)
	}
	return out
}

// poll calls ok every 250 ms until it returns true, for at most limit.
func (e *env) poll(what string, limit time.Duration, ok func(ctx context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var last error
	for {
		done, err := ok(ctx)
		if done && err == nil {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not after %s (last error: %v)", what, limit, last)
		case <-time.After(250 * time.Millisecond): // polling the cluster
		}
	}
}

// waitRollout waits until the Deployment's current revision is rolled out
// and Available, and no pod of an older one is left.
func (e *env) waitRollout(ns, name string) {
	e.t.Helper()
	var d *appsv1.Deployment
	err := e.poll("Deployment "+ns+"/"+name+" rolled out and Available", 3*time.Minute, func(ctx context.Context) (bool, error) {
		var err error
		if d, err = e.c.Client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			return false, err
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		s := d.Status
		available := slices.ContainsFunc(s.Conditions, func(c appsv1.DeploymentCondition) bool {
			return c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue
		})
		if !available || s.ObservedGeneration != d.Generation || s.UpdatedReplicas != want ||
			s.Replicas != want || s.AvailableReplicas != want {
			return false, nil
		}
		// No pod of an older revision left, terminating or not. The
		// selector may match other pods too (CoreDNS's k8s-app: kube-dns
		// is dnsd's too in replace-coredns): only the pods of this
		// Deployment's ReplicaSets (<name>-<hash>) count.
		l, err := e.c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(d.Spec.Selector)})
		if err != nil {
			return false, err
		}
		own := 0
		for _, p := range l.Items {
			if o := metav1.GetControllerOf(&p); o != nil && o.Kind == "ReplicaSet" && strings.HasPrefix(o.Name, name+"-") &&
				!strings.Contains(strings.TrimPrefix(o.Name, name+"-"), "-") {
				own++
			}
		}
		return own == int(want), nil
	})
	if err != nil {
		e.t.Fatalf("%v; status %+v", err, d.Status)
	}
}

// pods lists the running pods of a label selector.
func (e *env) pods(ns, selector string) []corev1.Pod {
	e.t.Helper()
	l, err := e.c.Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range l.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

// namespace creates a namespace with labels.
func (e *env) namespace(name string, labels map[string]string) {
	e.t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if _, err := e.c.Client.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	// Pods need the namespace's default ServiceAccount.
	if err := e.poll("ServiceAccount "+name+"/default", time.Minute, func(ctx context.Context) (bool, error) {
		_, err := e.c.Client.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		e.t.Fatal(err)
	}
}

// container is one container of a test pod: a client image and its argv.
type container struct {
	image string
	argv  []string
}

func glibc(argv ...string) container { return container{glibcImage, argv} }
func musl(argv ...string) container  { return container{muslImage, argv} }

// podSpec is a pod running the containers once, side by side.
func podSpec(cs ...container) corev1.PodSpec {
	grace := int64(1)
	spec := corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, TerminationGracePeriodSeconds: &grace}
	for i, c := range cs {
		spec.Containers = append(spec.Containers, corev1.Container{
			Name: fmt.Sprintf("c%d", i), Image: c.image, Command: c.argv, ImagePullPolicy: corev1.PullNever,
		})
	}
	return spec
}

// ran is a test pod as the API server returned it at creation (mutated),
// the admission warnings of its creation, and each container's output.
type ran struct {
	pod      *corev1.Pod
	warnings []string
	out      []string
}

// create creates a pod and returns it as the API server returned it, and
// the admission warnings.
func (e *env) create(pod *corev1.Pod) (*corev1.Pod, []string) {
	e.t.Helper()
	e.warn.Take()
	got, err := e.cs.CoreV1().Pods(pod.Namespace).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
	return got, e.warn.Take()
}

// run creates a pod, waits for it to finish (limit) and reads its
// containers' output.
func (e *env) run(pod *corev1.Pod, limit time.Duration) ran {
	e.t.Helper()
	r := ran{}
	r.pod, r.warnings = e.create(pod)
	var phase corev1.PodPhase
	err := e.poll("pod "+pod.Namespace+"/"+pod.Name+" finished", limit, func(ctx context.Context) (bool, error) {
		p, err := e.c.Client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		phase = p.Status.Phase
		return phase == corev1.PodSucceeded || phase == corev1.PodFailed, nil
	})
	for _, c := range r.pod.Spec.Containers {
		r.out = append(r.out, e.logs(pod.Namespace, pod.Name, c.Name))
	}
	if err != nil || phase != corev1.PodSucceeded {
		e.t.Fatalf("pod %s/%s: %v, phase %s; output %q", pod.Namespace, pod.Name, err, phase, r.out)
	}
	return r
}

// logs returns a container's output (kubelet's log, through the API
// server).
func (e *env) logs(ns, pod, c string) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := e.c.Client.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: c}).DoRaw(ctx)
	if err != nil {
		e.t.Fatalf("logs of %s/%s %s: %v", ns, pod, c, err)
	}
	return string(b)
}

// sameResolvConf compares the file kubelet wrote with the webhook's
// preview: nameservers and search domains in order, options as a set.
func sameResolvConf(t *testing.T, what, got, want string) {
	t.Helper()
	g, err := resolvconf.Parse(strings.NewReader(got))
	if err != nil {
		t.Errorf("%s: kubelet's resolv.conf %q: %v", what, got, err)
		return
	}
	w, err := resolvconf.Parse(strings.NewReader(want))
	if err != nil {
		t.Errorf("%s: the annotation %q: %v", what, want, err)
		return
	}
	gOpts, wOpts := slices.Sorted(slices.Values(g.Options)), slices.Sorted(slices.Values(w.Options))
	if !slices.Equal(g.Nameservers, w.Nameservers) || !slices.Equal(g.Searches, w.Searches) || !slices.Equal(gOpts, wOpts) {
		t.Errorf("%s: kubelet wrote\n%s\nthe webhook's %s predicts\n%s", what, got, annResolvConf, want)
	}
}

// metricsReader makes a ServiceAccount bound to deploy/'s ClusterRole
// poddns-metrics-reader and keeps a token of it, as docs/install.md tells
// Prometheus to scrape the webhook.
func (e *env) metricsReader() {
	e.t.Helper()
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "metrics-reader"}}
	if _, err := e.c.Client.CoreV1().ServiceAccounts("default").Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		e.t.Fatal(err)
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "cluster-test-metrics-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "poddns-metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: "default", Name: "metrics-reader"}},
	}
	if _, err := e.c.Client.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		e.t.Fatal(err)
	}
	tr, err := e.c.Client.CoreV1().ServiceAccounts("default").CreateToken(ctx, "metrics-reader", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.token = tr.Status.Token
}

// metric sums the series of a metric whose labels include match, over the
// pods of a selector, from url(pod) (their /metrics).
func (e *env) metric(ns, selector, name string, match map[string]string, url func(corev1.Pod) string) float64 {
	e.t.Helper()
	pods := e.pods(ns, selector)
	if len(pods) == 0 {
		e.t.Fatalf("no running pod %s in %s for %s", selector, ns, name)
	}
	var sum float64
	for _, p := range pods {
		req, err := http.NewRequest(http.MethodGet, url(p), nil)
		if err != nil {
			e.t.Fatal(err)
		}
		if strings.HasPrefix(req.URL.Scheme, "https") {
			req.Header.Set("Authorization", "Bearer "+e.token)
		}
		sum += e.scrape(req, name, match)
	}
	return sum
}

// scrape reads one /metrics and sums name's series matching match. A pod
// just made Ready may not serve its metrics yet: connection errors are
// retried for 30 s.
func (e *env) scrape(req *http.Request, name string, match map[string]string) float64 {
	e.t.Helper()
	var body bytes.Buffer
	err := e.poll("metrics "+req.URL.String(), 30*time.Second, func(context.Context) (bool, error) {
		resp, err := e.web.Do(req)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		body.Reset()
		if _, err := body.ReadFrom(resp.Body); err != nil || resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("%s %v: %.300s", resp.Status, err, body.String())
		}
		return true, nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return e.sum(body.Bytes(), name, match)
}

// sum parses a /metrics text and sums name's counter or gauge series whose
// labels include match.
func (e *env) sum(text []byte, name string, match map[string]string) float64 {
	e.t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		e.t.Fatalf("metrics: %v", err)
	}
	var sum float64
next:
	for _, m := range families[name].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range match {
			if labels[k] != v {
				continue next
			}
		}
		sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return sum
}

// webhookMetric sums a poddns_webhook_* series over the webhook's pods.
func (e *env) webhookMetric(name string, match map[string]string) float64 {
	return e.metric("poddns-system", "app.kubernetes.io/name=poddns-webhook", name, match, func(p corev1.Pod) string {
		return "https://" + p.Status.PodIP + ":8443/metrics"
	})
}

// dnsdMetric sums a dnsd series over dnsd's pods in ns.
func (e *env) dnsdMetric(ns, name string, match map[string]string) float64 {
	return e.metric(ns, "app.kubernetes.io/name=poddns-dnsd", name, match, func(p corev1.Pod) string {
		return "http://" + p.Status.PodIP + ":9153/metrics"
	})
}

// apiServerMetric reads one of the API server's own metrics.
func (e *env) apiServerMetric(name string, match map[string]string) float64 {
	e.t.Helper()
	b, err := e.c.Client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return e.sum(b, name, match)
}

// The rig's cluster DNS address (deploy/base/node-profile: kubelet's
// clusterDNS), which replace-coredns gives dnsd's Service.
const clusterDNS = "10.96.0.10"

// Namespaces of the scenarios.
const (
	nsWeb  = "rp-web"  // opted in, with single-request-reopen
	nsDNS  = "rp-dns"  // opted in: the Services and the resolving clients
	nsNone = "rp-none" // opted in, switched to None by a policy added later
)

// TestDeploy starts one rig with CoreDNS as kubeadm installs it, takes it
// over with deploy/overlays/replace-coredns as a user would (dnsd at the
// cluster DNS address, so every pod resolves through it) and runs the
// scenarios in order; each leaves the cluster as the next expects. The
// last ones go back to CoreDNS and take poddns away, then install it again
// beside CoreDNS.
func TestDeploy(t *testing.T) {
	e := start(t)
	e.coreDNS()
	e.metricsReader()
	e.namespace(nsWeb, map[string]string{"poddns.io/enabled": "true", "poddns.io/single-request-reopen": "true"})
	e.namespace(nsDNS, map[string]string{"poddns.io/enabled": "true"})
	e.namespace(nsNone, map[string]string{"poddns.io/enabled": "true", "rp.poddns.io/none": "true"})
	e.services()

	steps := []struct {
		name string
		run  func(*testing.T, *env)
	}{
		{"Takeover", testTakeover},
		{"Mutation", testMutation},
		{"Resolution", testResolution},
		{"Completion", testCompletion},
		{"PolicyReload", testPolicyReload},
		{"DNSRollout", testDNSRollout},
		{"Audit", testAudit},
		{"FailOpen", testFailOpen},
		{"Uninstall", testUninstall},
		{"BesideCoreDNS", testBesideCoreDNS},
	}
	for _, s := range steps {
		begin := time.Now()
		ok := t.Run(s.name, func(t *testing.T) {
			e.t = t
			s.run(t, e)
		})
		e.t = t
		t.Logf("%s: %s", s.name, time.Since(begin).Round(time.Millisecond))
		if !ok {
			return // the next scenario starts from this one's state
		}
	}
}

// services creates, in nsDNS, a Deployment "web" of one pod, a Service and
// a headless Service for it.
func (e *env) services() {
	e.t.Helper()
	ctx := context.Background()
	labels := map[string]string{"app": "web"}
	spec := podSpec(glibc("sleep", "3600"))
	spec.RestartPolicy = corev1.RestartPolicyAlways
	one := int32(1)
	dep := deployment(nsDNS, "web", labels, one, spec)
	if _, err := e.c.Client.AppsV1().Deployments(nsDNS).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	for _, s := range []struct {
		name, clusterIP string
	}{{"web", ""}, {"web-h", corev1.ClusterIPNone}} {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: nsDNS, Name: s.name},
			Spec: corev1.ServiceSpec{Selector: labels, ClusterIP: s.clusterIP,
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(80)}}},
		}
		if _, err := e.c.Client.CoreV1().Services(nsDNS).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			e.t.Fatal(err)
		}
	}
	e.waitRollout(nsDNS, "web")
}

// testMutation: pods covering every policy of deploy/policies, a hostNetwork
// pod that then resolves a Service, a pod whose policy the webhook must skip
// with a warning, a dnsPolicy Default pod (the node's own resolv.conf, as
// deploy/base/node-profile describes it) and a Deployment's pod are mutated
// by the webhook that the API server calls over its Service; kubelet writes
// exactly the resolv.conf each annotation predicts.
func testMutation(t *testing.T, e *env) {
	patched := map[string]string{"result": "patched"}
	before := e.webhookMetric("poddns_webhook_admissions_total", patched)
	var searches []string
	for i := 1; i <= 29; i++ {
		searches = append(searches, fmt.Sprintf("s%d.test", i))
	}
	cat := glibc("cat", "/etc/resolv.conf")
	tests := []struct {
		name        string
		spec        func(corev1.PodSpec) corev1.PodSpec
		more        []container
		wantApplied []string
		wantPolicy  corev1.DNSPolicy
		wantWarning string
		wantOut     []string // a regular expression per extra container
	}{
		{name: "plain", wantApplied: []string{"single-request-reopen"}, wantPolicy: corev1.DNSClusterFirst},
		{
			name: "hostnet", spec: func(s corev1.PodSpec) corev1.PodSpec { s.HostNetwork = true; return s },
			more:        []container{glibc("/gai", "kubernetes.default"), musl("/gai", "web."+nsDNS)},
			wantApplied: []string{"hostnetwork-cluster-dns", "single-request-reopen"}, wantPolicy: corev1.DNSClusterFirstWithHostNet,
			wantOut: []string{`(?m)^addr ` + regexp.QuoteMeta(rig.KubernetesServiceIP) + `$`, `(?m)^addr 10\.`},
		},
		{
			name: "truncating", spec: func(s corev1.PodSpec) corev1.PodSpec {
				s.HostNetwork = true
				s.DNSConfig = &corev1.PodDNSConfig{Searches: searches}
				return s
			},
			wantApplied: []string{"single-request-reopen"}, wantPolicy: corev1.DNSClusterFirst,
			wantWarning: `poddns: policy "hostnetwork-cluster-dns" not applied: kubelet would truncate`,
		},
		{
			name: "default", spec: func(s corev1.PodSpec) corev1.PodSpec { s.DNSPolicy = corev1.DNSDefault; return s },
			wantApplied: []string{"single-request-reopen"}, wantPolicy: corev1.DNSDefault,
		},
	}
	created := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := podSpec(append([]container{cat}, tt.more...)...)
			if tt.spec != nil {
				spec = tt.spec(spec)
			}
			r := e.run(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: nsWeb, Name: tt.name}, Spec: spec}, 90*time.Second)
			created++
			checkMutated(t, r.pod, r.out[0], tt.wantApplied, tt.wantPolicy)
			if tt.wantWarning != "" && !slices.ContainsFunc(r.warnings, func(w string) bool { return strings.Contains(w, tt.wantWarning) }) {
				t.Errorf("warnings %q, want one containing %q", r.warnings, tt.wantWarning)
			}
			for i, re := range tt.wantOut {
				if !regexp.MustCompile(re).MatchString(r.out[1+i]) {
					t.Errorf("%q printed %q, want a match of %s", tt.more[i].argv, r.out[1+i], re)
				}
			}
			if tt.name == "default" {
				checkNodeProfile(t, e, r.out[0])
			}
		})
	}

	t.Run("deployment", func(t *testing.T) {
		spec := podSpec(glibc("sh", "-c", "cat /etc/resolv.conf; exec sleep 3600"))
		spec.RestartPolicy = corev1.RestartPolicyAlways
		labels := map[string]string{"app": "mutated"}
		if _, err := e.c.Client.AppsV1().Deployments(nsWeb).Create(context.Background(), deployment(nsWeb, "mutated", labels, 1, spec), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		e.waitRollout(nsWeb, "mutated")
		created++
		pods := e.pods(nsWeb, "app=mutated")
		if len(pods) != 1 {
			t.Fatalf("%d pods of the Deployment", len(pods))
		}
		var out string
		if err := e.poll("the Deployment's pod's output", 30*time.Second, func(context.Context) (bool, error) {
			out = e.logs(nsWeb, pods[0].Name, "c0")
			return strings.Contains(out, "nameserver"), nil
		}); err != nil {
			t.Fatal(err)
		}
		checkMutated(t, &pods[0], out, []string{"single-request-reopen"}, corev1.DNSClusterFirst)
	})

	// Nothing but the API server calls the webhook: its counters moved by
	// the pods just created.
	if got := e.webhookMetric("poddns_webhook_admissions_total", patched) - before; got < float64(created) {
		t.Errorf("poddns_webhook_admissions_total{result=patched} rose by %v for %d pods created", got, created)
	}
}

// checkMutated: the pod carries the applied policies and the dnsPolicy
// wanted, and kubelet's resolv.conf (out) equals its annotation.
func checkMutated(t *testing.T, pod *corev1.Pod, out string, applied []string, policy corev1.DNSPolicy) {
	t.Helper()
	got := strings.Split(pod.Annotations[annApplied], ",")
	slices.Sort(got)
	if !slices.Equal(got, applied) {
		t.Errorf("%s: %s %q, want %q", pod.Name, annApplied, pod.Annotations[annApplied], applied)
	}
	if pod.Spec.DNSPolicy != policy {
		t.Errorf("%s: dnsPolicy %s, want %s", pod.Name, pod.Spec.DNSPolicy, policy)
	}
	preview, ok := pod.Annotations[annResolvConf]
	if !ok {
		t.Errorf("%s: no %s annotation", pod.Name, annResolvConf)
		return
	}
	sameResolvConf(t, pod.Name, out, preview)
}

// checkNodeProfile: a dnsPolicy Default pod gets the node's resolver file,
// which is the node profile's (its nameserver the rig's upstream).
func checkNodeProfile(t *testing.T, e *env, out string) {
	t.Helper()
	got, err := resolvconf.Parse(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	want, err := resolvconf.Parse(strings.NewReader(e.c.Profile.ResolvConf))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Nameservers, want.Nameservers) || !slices.Equal(got.Searches, want.Searches) {
		t.Errorf("a Default pod's resolv.conf\n%s\ndiffers from the node profile's\n%s", out, e.c.Profile.ResolvConf)
	}
	if !slices.Equal(e.c.Profile.ClusterDNS, []string{clusterDNS}) {
		t.Errorf("node profile clusterDNS %q, want %s", e.c.Profile.ClusterDNS, clusterDNS)
	}
}

// deployment is a Deployment of replicas pods with labels and spec.
func deployment(ns, name string, labels map[string]string, replicas int32, spec corev1.PodSpec) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
		},
	}
}

// What the gai client prints.
var (
	gaiAddr  = regexp.MustCompile(`(?m)^addr (\S+)$`)
	gaiCanon = regexp.MustCompile(`(?m)^canon (\S+)$`)
)

// testResolution: glibc and musl pods resolve a Service (short name through
// the search list), a headless Service's name and an external name through
// dnsd running as pods behind the cluster DNS ClusterIP, their only
// nameserver.
func testResolution(t *testing.T, e *env) {
	ctx := context.Background()
	svc, err := e.c.Client.CoreV1().Services(nsDNS).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	web := e.pods(nsDNS, "app=web")
	if len(web) != 1 {
		t.Fatalf("%d web pods", len(web))
	}
	dnsSvc, err := e.c.Client.CoreV1().Services("kube-system").Get(ctx, "poddns-dnsd", metav1.GetOptions{})
	if err != nil || dnsSvc.Spec.ClusterIP != clusterDNS {
		t.Fatalf("dnsd's Service: %v, ClusterIP %v; want %s", err, dnsSvc.Spec.ClusterIP, clusterDNS)
	}
	// The rig's upstream answers every A query, the node's search domain
	// appended included: the external name is absolute, and each answer's
	// canonical name says which name of the search walk answered.
	names := []struct{ name, canon, want string }{
		{"web", "web." + nsDNS + ".svc.cluster.local", svc.Spec.ClusterIP},
		{"web-h." + nsDNS, "web-h." + nsDNS + ".svc.cluster.local", web[0].Status.PodIP},
		{"external.example.org.", "external.example.org", rig.UpstreamAnswer},
	}
	before := e.dnsdMetric("kube-system", "poddns_dns_requests_total", nil)
	for _, lc := range []struct {
		name  string
		image func(...string) container
	}{{"glibc", glibc}, {"musl", musl}} {
		t.Run(lc.name, func(t *testing.T) {
			var cs []container
			for _, n := range names {
				cs = append(cs, lc.image("/gai", n.name))
			}
			if lc.name == "glibc" {
				cs = append(cs, glibc("cat", "/etc/resolv.conf"))
			}
			r := e.run(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: nsDNS, Name: "resolve-" + lc.name}, Spec: podSpec(cs...)}, 90*time.Second)
			for i, n := range names {
				m := gaiAddr.FindAllStringSubmatch(r.out[i], -1)
				canon := gaiCanon.FindStringSubmatch(r.out[i])
				if len(m) == 0 || !slices.ContainsFunc(m, func(a []string) bool { return a[1] == n.want }) ||
					canon == nil || strings.TrimSuffix(canon[1], ".") != n.canon {
					t.Errorf("%s: %s resolved to %q, want %s as %s", lc.name, n.name, r.out[i], n.want, n.canon)
				}
			}
			if lc.name == "glibc" {
				rc, err := resolvconf.Parse(strings.NewReader(r.out[len(names)]))
				if err != nil || !slices.Equal(rc.Nameservers, []string{clusterDNS}) {
					t.Errorf("the pod's nameservers: %v %v, want only dnsd's ClusterIP %s", err, rc, clusterDNS)
				}
			}
		})
	}
	if got := e.dnsdMetric("kube-system", "poddns_dns_requests_total", nil) - before; got < float64(2*len(names)) {
		t.Errorf("dnsd's pods received %v queries for %d lookups by 2 clients", got, len(names))
	}
}

// testCompletion: a glibc ClusterFirst pod's external lookup costs 8 wire
// queries or more without completion (a name per search domain until one
// answers, each A and AAAA); after turning completion on through dnsd's
// ConfigMap (applied in place, no restart), 2.
func testCompletion(t *testing.T, e *env) {
	lookup := func(name string) float64 {
		before := e.dnsdMetric("kube-system", "poddns_dns_requests_total", nil)
		// The pause lets dnsd's pod watch see the pod's IP first.
		r := e.run(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: nsDNS, Name: "lookup-" + strings.ReplaceAll(name, ".", "-")},
			Spec: podSpec(glibc("sh", "-c", "sleep 2; exec /gai "+name))}, 90*time.Second)
		if !strings.Contains(r.out[0], "addr "+rig.UpstreamAnswer) {
			t.Errorf("%s: %q, want addr %s", name, r.out[0], rig.UpstreamAnswer)
		}
		return e.dnsdMetric("kube-system", "poddns_dns_requests_total", nil) - before
	}
	// The rig's upstream answers every A query, so the walk ends at the
	// node's search domain: 4 names, A and AAAA each.
	if got := lookup("off.example.org"); got < 8 {
		t.Errorf("without completion: %v wire queries, want 8 or more", got)
	}
	ctx := context.Background()
	var cm corev1.ConfigMap
	if err := e.cl.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "poddns-dnsd-config"}, &cm); err != nil {
		t.Fatal(err)
	}
	const off = "completion:\n  enabled: false"
	if !strings.Contains(cm.Data["config.yaml"], off) {
		t.Fatalf("dnsd's config.yaml no longer contains %q", off)
	}
	cm.Data["config.yaml"] = strings.Replace(cm.Data["config.yaml"], off, "completion:\n  enabled: true", 1)
	if err := e.cl.Update(ctx, &cm); err != nil {
		t.Fatal(err)
	}
	// dnsd refuses to turn completion on in a reload (it starts the pod
	// watch): the documented way is a rollout restart.
	e.restart("kube-system", "poddns-dnsd")
	if got := lookup("on.example.org"); got != 2 {
		t.Errorf("with completion: %v wire queries, want 2", got)
	}
}

// nonePolicy is a DNSPolicy added to the policies ConfigMap while the
// webhook runs: namespaces labelled rp.poddns.io/none switch to None.
const nonePolicy = `apiVersion: poddns.io/v1alpha1
kind: DNSPolicy
metadata:
  name: rp-none
spec:
  match:
    namespaceSelector:
      matchLabels:
        rp.poddns.io/none: "true"
    hostNetwork: false
    dnsPolicies: [ClusterFirst]
  actions:
    dnsPolicy: None
    nameservers: [` + clusterDNS + `]
    searches:
      replace: [$(NAMESPACE).svc.$(CLUSTER_DOMAIN), svc.$(CLUSTER_DOMAIN)]
    ndots: 2
`

// testPolicyReload: a policy added through the ConfigMap reaches the
// running webhook (its pods keep their UIDs and restart counts); a new
// pod is switched to None, and kubelet writes what the annotation says.
func testPolicyReload(t *testing.T, e *env) {
	ctx := context.Background()
	const sel = "app.kubernetes.io/name=poddns-webhook"
	type incarnation struct {
		uid      types.UID
		restarts int32
	}
	seen := func() map[string]incarnation {
		m := map[string]incarnation{}
		for _, p := range e.pods("poddns-system", sel) {
			var r int32
			for _, s := range p.Status.ContainerStatuses {
				r += s.RestartCount
			}
			m[p.Name] = incarnation{p.UID, r}
		}
		return m
	}
	was := seen()
	var cm corev1.ConfigMap
	if err := e.cl.Get(ctx, client.ObjectKey{Namespace: "poddns-system", Name: "poddns-policies"}, &cm); err != nil {
		t.Fatal(err)
	}
	cm.Data["rp-none.yaml"] = nonePolicy
	if err := e.cl.Update(ctx, &cm); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	probe := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: nsNone, Name: "none"}, Spec: podSpec(glibc("cat", "/etc/resolv.conf"), glibc("/gai", "web."+nsDNS))}
	// Server-side dry runs: the webhook has no side effects.
	if err := e.poll("the webhook applying the new policy", 3*time.Minute, func(ctx context.Context) (bool, error) {
		p, err := e.cs.CoreV1().Pods(nsNone).Create(ctx, probe.DeepCopy(), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err == nil && p.Spec.DNSPolicy == corev1.DNSNone, err
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("the new policy applied %s after the ConfigMap update", time.Since(begin).Round(time.Millisecond))
	r := e.run(probe, 90*time.Second)
	checkMutated(t, r.pod, r.out[0], []string{"rp-none"}, corev1.DNSNone)
	if !strings.Contains(r.out[1], "addr ") {
		t.Errorf("web.%s from a None pod: %q", nsDNS, r.out[1])
	}
	if now := seen(); !maps.Equal(was, now) {
		t.Errorf("the webhook's pods changed: %v, now %v", was, now)
	}
}

// Load clients: a glibc and a musl pod each looking the web Service's name
// up every loadIntervalMS through their nameserver, the cluster DNS address
// (test/e2e/testdata/gailoop.c).
const loadIntervalMS = 20 // 50 lookups/s per client

// load is a running pair of load clients (startLoad).
type load struct {
	e      *env
	prefix string
	secs   int
}

var loadClients = []struct {
	name  string
	image func(...string) container
}{{"glibc", glibc}, {"musl", musl}}

// startLoad starts the load clients, named prefix-glibc and prefix-musl in
// nsDNS, for secs seconds, and returns once both run.
func (e *env) startLoad(prefix string, secs int) *load {
	e.t.Helper()
	name := "web." + nsDNS + ".svc.cluster.local."
	for _, lc := range loadClients {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: nsDNS, Name: prefix + "-" + lc.name},
			Spec: podSpec(lc.image("/gailoop", name, strconv.Itoa(secs), strconv.Itoa(loadIntervalMS)))}
		e.create(p)
	}
	if err := e.poll("the load clients running", time.Minute, func(ctx context.Context) (bool, error) {
		for _, lc := range loadClients {
			p, err := e.c.Client.CoreV1().Pods(nsDNS).Get(ctx, prefix+"-"+lc.name, metav1.GetOptions{})
			if err != nil || p.Status.Phase != corev1.PodRunning {
				return false, err
			}
		}
		return true, nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return &load{e: e, prefix: prefix, secs: secs}
}

var loadSummary = regexp.MustCompile(`lookups (\d+) failed (\d+) slow (\d+) max_ms (\d+)`)

// check waits for the clients to finish and fails the test if any lookup
// failed or fewer than 90% of the lookups due were made. It logs each
// client's summary: "slow" counts the lookups that took 900 ms or more,
// which with resolv.conf's default timeout (5 s; musl resends after 2.5 s)
// are the ones the resolver had to send again.
func (l *load) check(t *testing.T, during string) {
	t.Helper()
	e := l.e
	for _, lc := range loadClients {
		pod := l.prefix + "-" + lc.name
		if err := e.poll(pod+" finished", time.Duration(l.secs+60)*time.Second, func(ctx context.Context) (bool, error) {
			p, err := e.c.Client.CoreV1().Pods(nsDNS).Get(ctx, pod, metav1.GetOptions{})
			return err == nil && p.Status.Phase == corev1.PodSucceeded, err
		}); err != nil {
			t.Fatal(err)
		}
		out := e.logs(nsDNS, pod, "c0")
		m := loadSummary.FindStringSubmatch(out)
		if m == nil {
			t.Errorf("%s: no summary in %q", lc.name, out)
			continue
		}
		lookups, _ := strconv.Atoi(m[1])
		t.Logf("%s: %s", lc.name, strings.TrimSpace(out))
		if m[2] != "0" {
			t.Errorf("%s: %s of %s lookups failed during %s: %s", lc.name, m[2], m[1], during, out)
		}
		if want := l.secs * 1000 / loadIntervalMS * 9 / 10; lookups < want {
			t.Errorf("%s: %d lookups in %d s, want at least %d (50/s)", lc.name, lookups, l.secs, want)
		}
	}
}

// testDNSRollout: a glibc and a musl client each look a Service's name up
// 50 times a second while dnsd's Deployment rolls (`kubectl rollout
// restart`); no lookup fails.
func testDNSRollout(t *testing.T, e *env) {
	const secs = 45
	l := e.startLoad("load", secs)
	time.Sleep(3 * time.Second) // the load under way
	begin := time.Now()
	e.restart("kube-system", "poddns-dnsd")
	rolled := time.Since(begin)
	t.Logf("dnsd rolled in %s", rolled.Round(time.Millisecond))
	if rolled > (secs-5)*time.Second {
		t.Errorf("the rollout took %s, longer than the load window", rolled)
	}
	l.check(t, "dnsd's rollout")
}

// restart restarts a Deployment as `kubectl rollout restart` does and waits
// until the new pods are Available and the old ones gone.
func (e *env) restart(ns, name string) {
	e.t.Helper()
	ctx := context.Background()
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":%q}}}}}`, time.Now().Format(time.RFC3339Nano))
	if _, err := e.c.Client.AppsV1().Deployments(ns).Patch(ctx, name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		e.t.Fatal(err)
	}
	e.waitRollout(ns, name)
}

// testAudit applies what deploy/overlays/audit changes in deploy/base (the
// webhook's Deployment, with --mode=audit) over the running install: a new
// pod is left as it was, with the webhook's audit warning and counter to
// show it was called.
func testAudit(t *testing.T, e *env) {
	base, audit := e.render("base"), e.render("overlays/audit")
	var changed []*unstructured.Unstructured
	for _, u := range audit {
		i := slices.IndexFunc(base, func(o *unstructured.Unstructured) bool {
			return o.GetKind() == u.GetKind() && o.GetNamespace() == u.GetNamespace() && o.GetName() == u.GetName()
		})
		if i < 0 || !reflect.DeepEqual(base[i].Object, u.Object) {
			changed = append(changed, u)
		}
	}
	if len(changed) != 1 || changed[0].GetKind() != "Deployment" || changed[0].GetName() != "poddns-webhook" {
		t.Fatalf("the audit overlay changes %d objects of deploy/base, want the webhook's Deployment", len(changed))
	}
	e.apply(changed)
	e.waitRollout("poddns-system", "poddns-webhook")
	before := e.webhookMetric("poddns_webhook_audit_would_change_total", nil)
	r := e.run(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: nsWeb, Name: "audited"}, Spec: podSpec(glibc("cat", "/etc/resolv.conf"))}, 90*time.Second)
	for k := range r.pod.Annotations {
		if strings.HasPrefix(k, "poddns.io/") {
			t.Errorf("audit mode annotated the pod: %s", k)
		}
	}
	if r.pod.Spec.DNSPolicy != corev1.DNSClusterFirst || r.pod.Spec.DNSConfig != nil {
		t.Errorf("audit mode changed the pod: %s %+v", r.pod.Spec.DNSPolicy, r.pod.Spec.DNSConfig)
	}
	if !slices.ContainsFunc(r.warnings, func(w string) bool {
		return strings.Contains(w, `policy "single-request-reopen" (audit) would change`)
	}) {
		t.Errorf("warnings %q, want the audit warning of single-request-reopen", r.warnings)
	}
	if got := e.webhookMetric("poddns_webhook_audit_would_change_total", nil) - before; got < 1 {
		t.Errorf("poddns_webhook_audit_would_change_total rose by %v", got)
	}
}

// testFailOpen: with the webhook scaled to 0, pods of opted-in namespaces
// are still created (failurePolicy Ignore), unchanged, and the API server
// counts the failed call.
func testFailOpen(t *testing.T, e *env) {
	ctx := context.Background()
	sc, err := e.c.Client.AppsV1().Deployments("poddns-system").GetScale(ctx, "poddns-webhook", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sc.Spec.Replicas = 0
	if _, err := e.c.Client.AppsV1().Deployments("poddns-system").UpdateScale(ctx, "poddns-webhook", sc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.poll("no webhook pod left", 2*time.Minute, func(ctx context.Context) (bool, error) {
		l, err := e.c.Client.CoreV1().Pods("poddns-system").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=poddns-webhook"})
		return err == nil && len(l.Items) == 0, err
	}); err != nil {
		t.Fatal(err)
	}
	failOpen := map[string]string{"name": "pods.poddns.io"}
	before := e.apiServerMetric("apiserver_admission_webhook_fail_open_count", failOpen)
	r := e.run(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: nsWeb, Name: "fail-open"}, Spec: podSpec(glibc("cat", "/etc/resolv.conf"))}, 90*time.Second)
	if _, ok := r.pod.Annotations[annApplied]; ok || r.pod.Spec.DNSConfig != nil {
		t.Errorf("a pod created without the webhook was changed: %v %+v", r.pod.Annotations, r.pod.Spec.DNSConfig)
	}
	if got := e.apiServerMetric("apiserver_admission_webhook_fail_open_count", failOpen) - before; got < 1 {
		t.Errorf("apiserver_admission_webhook_fail_open_count{name=pods.poddns.io} rose by %v", got)
	}
}

// testUninstall follows docs/install.md: the MutatingWebhookConfiguration
// first, then back to CoreDNS as README ("Taking over from CoreDNS") says,
// then everything else; pods are created afterwards as before.
func testUninstall(t *testing.T, e *env) {
	ctx := context.Background()
	var webhookConfig *unstructured.Unstructured
	for _, u := range e.objs {
		if u.GetKind() == "MutatingWebhookConfiguration" {
			webhookConfig = u
		}
	}
	if webhookConfig == nil {
		t.Fatal("no MutatingWebhookConfiguration in the install")
	}
	if err := e.cl.Delete(ctx, webhookConfig.DeepCopy()); err != nil {
		t.Fatal(err)
	}
	e.backToCoreDNS()
	for i := len(e.objs) - 1; i >= 0; i-- {
		if err := client.IgnoreNotFound(e.cl.Delete(ctx, e.objs[i].DeepCopy())); err != nil {
			t.Errorf("delete %s %s: %v", e.objs[i].GetKind(), e.objs[i].GetName(), err)
		}
	}
	if err := e.poll("namespace poddns-system gone", 3*time.Minute, func(ctx context.Context) (bool, error) {
		_, err := e.c.Client.CoreV1().Namespaces().Get(ctx, "poddns-system", metav1.GetOptions{})
		return err != nil && client.IgnoreNotFound(err) == nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	r := e.run(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: nsWeb, Name: "after-uninstall"}, Spec: podSpec(glibc("cat", "/etc/resolv.conf"))}, 90*time.Second)
	if len(r.warnings) != 0 || r.pod.Annotations[annApplied] != "" {
		t.Errorf("after uninstalling: warnings %q, annotations %v", r.warnings, r.pod.Annotations)
	}
}

// CoreDNS's pods, as kubeadm labels them (the Service kube-dns selects
// k8s-app: kube-dns, which replace-coredns gives dnsd's pods too).
const corednsPods = "k8s-app=kube-dns,app.kubernetes.io/name!=poddns-dnsd"

// corednsObjects is a cluster's own CoreDNS as kubeadm installs it
// (Deployment coredns of 2, Service kube-dns at the cluster DNS address,
// k8s-app: kube-dns, kubeadm's Corefile), from bin/coredns packaged by
// `make images`. It runs as root: the image's user cannot bind port 53
// (kubeadm's NET_BIND_SERVICE is not raised for a non-root process).
func corednsObjects() []client.Object {
	labels := map[string]string{"k8s-app": "kube-dns"}
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: "kube-system", Name: name, Labels: labels}
	}
	root := int64(0)
	spec := corev1.PodSpec{
		ServiceAccountName: "coredns",
		PriorityClassName:  "system-cluster-critical",
		DNSPolicy:          corev1.DNSDefault,
		SecurityContext:    &corev1.PodSecurityContext{RunAsUser: &root},
		Containers: []corev1.Container{{
			Name: "coredns", Image: "ghcr.io/poddns/coredns:v0.1.0", ImagePullPolicy: corev1.PullNever,
			Args:         []string{"-conf", "/etc/coredns/Corefile"},
			VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: "/etc/coredns", ReadOnly: true}},
			Ports: []corev1.ContainerPort{{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
				{Name: "dns-tcp", ContainerPort: 53, Protocol: corev1.ProtocolTCP}, {Name: "metrics", ContainerPort: 9153, Protocol: corev1.ProtocolTCP}},
			// kubeadm's probes: readiness every 10 s (the default).
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(8181)}}},
			LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/health", Port: intstr.FromInt32(8080)}},
				InitialDelaySeconds: 60, TimeoutSeconds: 5, FailureThreshold: 5},
		}},
		Volumes: []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "coredns"}}}}},
	}
	dep := deployment("kube-system", "coredns", labels, 2, spec)
	one := intstr.FromInt32(1)
	dep.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &one}}
	return []client.Object{
		&corev1.ServiceAccount{ObjectMeta: meta("coredns")},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "system:coredns"}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"endpoints", "services", "pods", "namespaces"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
		}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "system:coredns"},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:coredns"},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: "kube-system", Name: "coredns"}}},
		&corev1.ConfigMap{ObjectMeta: meta("coredns"), Data: map[string]string{"Corefile": `.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30 {
       disable success cluster.local
       disable denial cluster.local
    }
    loop
    reload
    loadbalance
}
`}},
		dep,
		&corev1.Service{ObjectMeta: meta("kube-dns"), Spec: corev1.ServiceSpec{
			ClusterIP: clusterDNS, Selector: labels,
			Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)},
				{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(53)},
				{Name: "metrics", Port: 9153, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(9153)},
			}}},
	}
}

// coreDNS installs CoreDNS as kubeadm does, the cluster's DNS before
// poddns, and keeps its Service as README's kube-dns-backup.yaml.
func (e *env) coreDNS() {
	e.t.Helper()
	ctx := context.Background()
	for _, o := range corednsObjects() {
		if err := e.cl.Create(ctx, o); err != nil {
			e.t.Fatalf("CoreDNS: %T %s: %v", o, o.GetName(), err)
		}
	}
	e.waitRollout("kube-system", "coredns")
	var err error
	if e.kubeDNS, err = e.c.Client.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// scale sets a Deployment's replicas, as `kubectl scale` does.
func (e *env) scale(ns, name string, replicas int32) {
	e.t.Helper()
	ctx := context.Background()
	sc, err := e.c.Client.AppsV1().Deployments(ns).GetScale(ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	sc.Spec.Replicas = replicas
	if _, err := e.c.Client.AppsV1().Deployments(ns).UpdateScale(ctx, name, sc, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// podIPs are the IPs of the running pods of a selector in kube-system.
func (e *env) podIPs(selector string) []string {
	var ips []string
	for _, p := range e.pods("kube-system", selector) {
		ips = append(ips, p.Status.PodIP)
	}
	slices.Sort(ips)
	return ips
}

// waitEndpoints waits until the ready endpoints of a Service in kube-system
// are exactly ips.
func (e *env) waitEndpoints(svc string, ips []string) {
	e.t.Helper()
	var got []string
	err := e.poll("Service kube-system/"+svc+"'s ready endpoints "+strings.Join(ips, ","), time.Minute, func(ctx context.Context) (bool, error) {
		l, err := e.c.Client.DiscoveryV1().EndpointSlices("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + svc})
		if err != nil {
			return false, err
		}
		got = nil
		for _, sl := range l.Items {
			for _, ep := range sl.Endpoints {
				if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
					got = append(got, ep.Addresses...)
				}
			}
		}
		slices.Sort(got)
		return slices.Equal(got, ips), nil
	})
	if err != nil {
		e.t.Fatalf("%v; ready endpoints %v", err, got)
	}
}

// testTakeover switches the cluster from CoreDNS to dnsd as README ("Taking
// over from CoreDNS") and docs/install.md tell a user to, while a glibc and
// a musl client each look a Service's name up 50 times a second through
// the cluster DNS address:
//
//  1. kubectl apply -k deploy/overlays/replace-coredns: everything applies
//     but dnsd's Service, refused while kube-dns holds 10.96.0.10;
//  2. dnsd's pods, once ready, are endpoints of kube-dns beside CoreDNS's;
//  3. kube-dns's selector narrowed to dnsd's pods: CoreDNS's leave it while
//     they still answer (kube-proxy deletes their conntrack entries at once);
//  4. CoreDNS scaled to 0;
//  5. kube-dns deleted and the overlay applied again: dnsd's own Service
//     holds the address.
//
// No lookup fails, dnsd's query counter rises after each step, and
// CoreDNS's Deployment (at 0) and ConfigMap are left for the way back.
func testTakeover(t *testing.T, e *env) {
	ctx := context.Background()
	const secs = 30
	const kustomization = "overlays/replace-coredns"
	l := e.startLoad("takeover", secs)
	begin := time.Now()
	step := func(what string) { t.Logf("%s at %s", what, time.Since(begin).Round(time.Millisecond)) }

	e.objs = e.render(kustomization)
	refused := e.applyAll(e.objs)
	const dnsdSvc = "Service kube-system/poddns-dnsd"
	if err := refused[dnsdSvc]; len(refused) != 1 || err == nil || !strings.Contains(err.Error(), "already allocated") {
		t.Fatalf("applying %s beside CoreDNS: refused %v, want only %s (the address is kube-dns's)", kustomization, refused, dnsdSvc)
	}
	e.settle(kustomization, begin)
	step("1. applied (dnsd's Service refused), every Deployment Available")

	dnsd, coredns := e.podIPs("app.kubernetes.io/name=poddns-dnsd"), e.podIPs(corednsPods)
	if len(dnsd) == 0 || len(coredns) != 2 {
		t.Fatalf("dnsd's pods %v, CoreDNS's %v", dnsd, coredns)
	}
	e.waitEndpoints("kube-dns", slices.Sorted(slices.Values(append(slices.Clone(dnsd), coredns...))))
	step("2. dnsd's pods endpoints of kube-dns beside CoreDNS's")

	patch := []byte(`{"spec":{"selector":{"app.kubernetes.io/name":"poddns-dnsd"}}}`)
	if _, err := e.c.Client.CoreV1().Services("kube-system").Patch(ctx, "kube-dns", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitEndpoints("kube-dns", dnsd)
	step("3. kube-dns's selector narrowed to dnsd's pods: CoreDNS's left it, still running")
	queries := func() float64 { return e.dnsdMetric("kube-system", "poddns_dns_requests_total", nil) }
	alone := queries()

	e.scale("kube-system", "coredns", 0)
	if err := e.poll("no CoreDNS pod left", 2*time.Minute, func(ctx context.Context) (bool, error) {
		l, err := e.c.Client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: corednsPods})
		return err == nil && len(l.Items) == 0, err
	}); err != nil {
		t.Fatal(err)
	}
	step("4. CoreDNS scaled to 0")
	// dnsd alone behind kube-dns for the seconds CoreDNS took to stop.
	if got := queries() - alone; got <= 0 {
		t.Errorf("dnsd's queries did not rise while it alone served kube-dns: %v more", got)
	}

	if err := e.c.Client.CoreV1().Services("kube-system").Delete(ctx, "kube-dns", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if refused := e.applyAll(e.objs); len(refused) != 0 {
		t.Fatalf("applying %s again once kube-dns is deleted: refused %v", kustomization, refused)
	}
	svc, err := e.c.Client.CoreV1().Services("kube-system").Get(ctx, "poddns-dnsd", metav1.GetOptions{})
	if err != nil || svc.Spec.ClusterIP != clusterDNS {
		t.Fatalf("dnsd's Service: %v, ClusterIP %v; want %s", err, svc.Spec.ClusterIP, clusterDNS)
	}
	e.waitEndpoints("poddns-dnsd", dnsd)
	step("5. kube-dns deleted, the overlay applied again: dnsd's Service at " + clusterDNS)
	atHandOver := queries()
	if took := time.Since(begin); took > (secs-5)*time.Second {
		t.Errorf("the takeover took %s, longer than the load window", took.Round(time.Millisecond))
	}
	l.check(t, "the takeover")
	// The clients looked up for at least 5 s more through dnsd's Service:
	// 2 clients x 50 lookups/s x A and AAAA.
	if got := queries() - atHandOver; got < 5*2*50*2*9/10 {
		t.Errorf("dnsd's Service at %s: dnsd received %v queries in the load's last 5 s or more", clusterDNS, got)
	}
	var dep appsv1.Deployment
	if err := e.cl.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "coredns"}, &dep); err != nil || dep.Spec.Replicas == nil || *dep.Spec.Replicas != 0 {
		t.Errorf("CoreDNS's Deployment after the takeover: %v, replicas %v; want kept at 0", err, dep.Spec.Replicas)
	}
	if err := e.cl.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "coredns"}, &corev1.ConfigMap{}); err != nil {
		t.Errorf("CoreDNS's ConfigMap after the takeover: %v", err)
	}
}

// backToCoreDNS goes back from replace-coredns to CoreDNS as README
// ("Taking over from CoreDNS") says: CoreDNS scaled up, dnsd's Service
// deleted, kube-dns restored from its backup, CoreDNS rolled out.
func (e *env) backToCoreDNS() {
	e.t.Helper()
	ctx := context.Background()
	e.scale("kube-system", "coredns", 2)
	if err := e.c.Client.CoreV1().Services("kube-system").Delete(ctx, "poddns-dnsd", metav1.DeleteOptions{}); err != nil {
		e.t.Fatal(err)
	}
	backup := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: e.kubeDNS.Namespace, Name: e.kubeDNS.Name,
		Labels: e.kubeDNS.Labels, Annotations: e.kubeDNS.Annotations}, Spec: e.kubeDNS.Spec}
	if _, err := e.c.Client.CoreV1().Services("kube-system").Create(ctx, backup, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("kube-dns from its backup: %v", err)
	}
	e.waitRollout("kube-system", "coredns")
}

// testBesideCoreDNS starts over on the uninstalled cluster, back on
// CoreDNS (testUninstall), installs deploy/overlays/beside-coredns and
// moves one namespace to dnsd: its new pods get dnsPolicy None with dnsd's
// fixed address, resolv.conf as annotated, and resolve through dnsd; a pod
// of a namespace left alone resolves through CoreDNS.
func testBesideCoreDNS(t *testing.T, e *env) {
	ctx := context.Background()
	e.install("overlays/beside-coredns")
	const besideDNS = "10.96.0.53"
	e.namespace("rp-beside", map[string]string{"poddns.io/enabled": "true", "poddns.io/dns-server": "dnsd"})
	e.namespace("rp-coredns", nil)
	svc, err := e.c.Client.CoreV1().Services(nsDNS).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The reinstalled webhook's Deployment is Available before the API
	// server can reach it through its Service (kube-proxy's rules, the
	// new serving Secret): until then pods are created unmutated (fail
	// open), which failed a CI run. Wait, bounded, until a server-side
	// dry run of a pod in the moved namespace comes back mutated.
	if err := e.poll("the reinstalled webhook called by the API server", time.Minute, func(ctx context.Context) (bool, error) {
		probe := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "rp-beside", Name: "probe"}, Spec: podSpec(glibc("true"))}
		got, err := e.c.Client.CoreV1().Pods("rp-beside").Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return false, err
		}
		return got.Annotations["poddns.io/applied"] != "", nil
	}); err != nil {
		t.Fatal(err)
	}
	before := e.dnsdMetric("poddns-system", "poddns_dns_requests_total", nil)
	r := e.run(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "rp-beside", Name: "beside"},
		Spec: podSpec(glibc("cat", "/etc/resolv.conf"), glibc("/gai", "web."+nsDNS), musl("/gai", "web."+nsDNS))}, 90*time.Second)
	checkMutated(t, r.pod, r.out[0], []string{"use-dnsd"}, corev1.DNSNone)
	if rc, err := resolvconf.Parse(strings.NewReader(r.out[0])); err != nil || !slices.Equal(rc.Nameservers, []string{besideDNS}) {
		t.Errorf("the moved pod's nameservers: %v %v, want dnsd's %s", err, rc, besideDNS)
	}
	for i, lc := range []string{"glibc", "musl"} {
		if !strings.Contains(r.out[1+i], "addr "+svc.Spec.ClusterIP) {
			t.Errorf("%s through dnsd: web.%s resolved to %q, want %s", lc, nsDNS, r.out[1+i], svc.Spec.ClusterIP)
		}
	}
	if got := e.dnsdMetric("poddns-system", "poddns_dns_requests_total", nil) - before; got < 2 {
		t.Errorf("dnsd received %v queries from the moved namespace's pod", got)
	}
	r = e.run(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "rp-coredns", Name: "coredns"},
		Spec: podSpec(glibc("cat", "/etc/resolv.conf"), musl("/gai", "web."+nsDNS))}, 90*time.Second)
	if rc, err := resolvconf.Parse(strings.NewReader(r.out[0])); err != nil || !slices.Equal(rc.Nameservers, []string{clusterDNS}) || r.pod.Annotations[annApplied] != "" {
		t.Errorf("a pod of a namespace left alone: nameservers %v %v, annotations %v; want CoreDNS's %s, unchanged", err, rc, r.pod.Annotations, clusterDNS)
	}
	if !strings.Contains(r.out[1], "addr "+svc.Spec.ClusterIP) {
		t.Errorf("musl through CoreDNS: web.%s resolved to %q, want %s", nsDNS, r.out[1], svc.Spec.ClusterIP)
	}
}
