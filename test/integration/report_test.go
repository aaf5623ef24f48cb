package integration

// The report of running pods against the current policies (issue 16, item
// 1): pods created through the webhook before and after a policy change,
// compared by the background scan, which keeps PolicyReports per namespace.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/policy"
	"github.com/poddns/poddns/pkg/report"
	"github.com/poddns/poddns/pkg/report/scan"
)

// reportPolicy writes a policy file setting ndots and returns its path.
func reportPolicy(t *testing.T, ndots int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ndots.yaml")
	doc := fmt.Sprintf("apiVersion: poddns.io/v1alpha1\nkind: DNSPolicy\nmetadata: {name: ndots}\nspec:\n  actions: {ndots: %d}\n", ndots)
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// installPolicyReportCRD installs deploy/'s PolicyReport CRD.
func installPolicyReportCRD(t *testing.T, cfg *rest.Config) {
	t.Helper()
	root := testenv.Root(t)
	if _, err := envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{
		Paths:              []string{filepath.Join(root, "deploy", "components", "policyreport-crd", "wgpolicyk8s.io_policyreports.yaml")},
		ErrorIfPathMissing: true,
	}); err != nil {
		t.Fatal(err)
	}
}

// request is one API request of the scan.
type request struct {
	at           time.Time
	method, path string
}

// countingTransport records every request that goes through it.
type countingTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	reqs []request
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.reqs = append(c.reqs, request{at: time.Now(), method: r.Method, path: r.URL.Path})
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

func (c *countingTransport) take() []request {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.reqs
	c.reqs = nil
	return out
}

// maxPerSecond is the largest number of requests in any one-second window.
func maxPerSecond(reqs []request) int {
	best := 0
	for i := range reqs {
		n := 0
		for j := i; j < len(reqs) && reqs[j].at.Sub(reqs[i].at) < time.Second; j++ {
			n++
		}
		best = max(best, n)
	}
	return best
}

// scanClients are the scan's clients on cfg, every request counted.
func scanClients(t *testing.T, cfg *rest.Config) (*scan.Clients, *countingTransport) {
	t.Helper()
	ct := &countingTransport{}
	c := rest.CopyConfig(cfg)
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper { ct.next = rt; return ct })
	clients, err := scan.NewClients(c, scan.DefaultQPS)
	if err != nil {
		t.Fatal(err)
	}
	return clients, ct
}

// noPodWrites fails for any request of the scan that is not a read, or a
// write to a policy report or to the scan's Lease.
func noPodWrites(t *testing.T, reqs []request) {
	t.Helper()
	for _, r := range reqs {
		if r.method != http.MethodGet && !strings.Contains(r.path, "/policyreports/") && !strings.HasSuffix(r.path, "/leases/poddns-webhook-report") && !strings.HasSuffix(r.path, "/leases") {
			t.Errorf("the scan made %s %s", r.method, r.path)
		}
	}
}

var policyReports = schema.GroupVersionResource{Group: "wgpolicyk8s.io", Version: "v1alpha2", Resource: "policyreports"}

// reportResults reads namespace's poddns reports: the report names, and
// every result as "pod policy result", sorted.
func reportResults(t *testing.T, clients *scan.Clients, namespace string) (names, results []string) {
	t.Helper()
	list, err := clients.Dynamic.Resource(policyReports).Namespace(namespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range list.Items {
		names = append(names, it.GetName())
		rs, _, _ := unstructured.NestedSlice(it.Object, "results")
		for _, r := range rs {
			m := r.(map[string]any)
			res := m["resources"].([]any)[0].(map[string]any)
			results = append(results, fmt.Sprintf("%s %s %s %s", res["name"], m["policy"], m["result"], m["message"]))
		}
	}
	sort.Strings(names)
	sort.Strings(results)
	return names, results
}

// waitResults waits until namespace's reports are want (names and results).
func waitResults(t *testing.T, clients *scan.Clients, namespace string, wantNames, want []string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		names, got := reportResults(t, clients, namespace)
		if strings.Join(names, ",") == strings.Join(wantNames, ",") && strings.Join(got, "\n") == strings.Join(want, "\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("reports %v with results\n%s\nwant %v with\n%s", names, strings.Join(got, "\n"), wantNames, strings.Join(want, "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitGauge waits until get returns want.
func waitGauge(t *testing.T, what string, get func() float64, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for get() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", what, get(), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReportScan: pods are created through the webhook with ndots:2, the
// policy changes to ndots:3, more pods are created. The scan reports
// exactly the pods made under the old version as failing (a Deployment's
// pod compared with its template, a bare pod reverted from
// poddns.io/original-dns) and the others as passing, in PolicyReports split
// at 3 results; a second policy change turns every result over; pods that go
// leave their reports, and the last one the reports themselves. The scan
// only reads, besides writing reports; a second replica with the same Lease
// never scans.
func TestReportScan(t *testing.T) {
	w := startWebhook(t, reportPolicy(t, 2))
	installPolicyReportCRD(t, w.env.Config)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v2path := reportPolicy(t, 3)
	v2, err := policy.Load(v2path)
	if err != nil {
		t.Fatal(err)
	}
	v1 := w.engine.Set()

	w.namespace(t, "shop", enabled())
	yes := true
	dep, err := w.pods.AppsV1().Deployments("shop").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}}, Spec: newPod("", "web").Spec},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// No controller-manager in envtest: the ReplicaSet and its pods are
	// made as it would make them.
	replicas := int32(2)
	rs, err := w.pods.AppsV1().ReplicaSets("shop").Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "apps/v1", Kind: "Deployment", Name: dep.Name, UID: dep.UID, Controller: &yes}}},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", "pod-template-hash": "1"}}, Spec: newPod("", "web").Spec},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	owned := func(name string) *corev1.Pod {
		return newPod("shop", name, func(p *corev1.Pod) {
			p.Labels = map[string]string{"app": "web", "pod-template-hash": "1"}
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: &yes}}
		})
	}
	ndotsOf := func(p *corev1.Pod) string {
		v, _ := podOption(p, "ndots")
		return v
	}
	made := map[string]*corev1.Pod{}
	for _, p := range []*corev1.Pod{newPod("shop", "bare-old"), owned("web-1-old")} {
		made[p.Name], _ = w.create(t, p)
	}
	w.engine.Swap(v2)
	for _, p := range []*corev1.Pod{newPod("shop", "bare-new"), owned("web-1-new")} {
		made[p.Name], _ = w.create(t, p)
	}
	for name, want := range map[string]string{"bare-old": "2", "web-1-old": "2", "bare-new": "3", "web-1-new": "3"} {
		if got := ndotsOf(made[name]); got != want {
			t.Fatalf("%s was created with ndots %q, want %q", name, got, want)
		}
	}

	clients, ct := scanClients(t, w.env.Config)
	checker := &report.Checker{
		Engine: w.engine, NamespaceSelector: labels.SelectorFromSet(enabled()),
		ExcludedNamespaces: []string{"kube-system", "poddns-system"},
	}

	// `webhook report --kubeconfig`: exactly the two old pods, by
	// workload, each compared with what it would be created as.
	rep, err := scan.Report(ctx, &scan.Lister{Client: clients.Kube}, &report.Checker{Engine: w.engine, NamespaceSelector: checker.NamespaceSelector})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, wl := range rep.Workloads {
		for _, p := range wl.Pods {
			got = append(got, fmt.Sprintf("%s: %s (%s) %s [%s]", wl.Workload, p.Pod.Name, p.Basis, report.FormatChanges(p.Changes), wl.Action))
		}
	}
	want := []string{
		"Deployment shop/web: web-1-old (template) spec.dnsConfig.options[ndots]: ndots:2 -> ndots:3 [kubectl rollout restart deployment/web -n shop]",
		"Pod shop/bare-old: bare-old (reverted) spec.dnsConfig.options[ndots]: ndots:2 -> ndots:3 [recreate the pod from its manifest (kubectl replace --force with the live object would keep the DNS fields the webhook gave it)]",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") || rep.Checked != 4 || rep.Differ != 2 || len(rep.Unknown) != 0 {
		t.Errorf("report: %d checked, %d differ, %d unknown:\n%s\nwant 4, 2, 0:\n%s", rep.Checked, rep.Differ, len(rep.Unknown), strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// The same through the command line, as JSON: exit status 1.
	t.Run("webhook report --kubeconfig", func(t *testing.T) {
		bin := rbacBuild(t, "webhook")
		cmd := exec.Command(bin, "report", "-p", v2path, "--kubeconfig", w.env.AdminKubeconfig(t, "reader"), "-o", "json")
		out, err := cmd.Output()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("webhook report: %v, want exit status 1\n%s", err, out)
		}
		var got report.Report
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("webhook report -o json: %v\n%s", err, out)
		}
		var pods []string
		for _, wl := range got.Workloads {
			for _, p := range wl.Pods {
				pods = append(pods, wl.Workload.Kind+"/"+wl.Workload.Name+": "+p.Pod.Name)
			}
		}
		if got.Checked != 4 || got.Differ != 2 || strings.Join(pods, ", ") != "Deployment/web: web-1-old, Pod/bare-old: bare-old" {
			t.Errorf("webhook report: %d checked, %d differ: %q", got.Checked, got.Differ, pods)
		}
	})

	m, err := scan.NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Two replicas, one Lease: the first one scans, the second waits.
	lease := func(id string) *scan.Lease {
		return &scan.Lease{Name: "poddns-webhook-report", Namespace: "default", Identity: id,
			Duration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 200 * time.Millisecond}
	}
	s, err := scan.New(scan.Options{
		Clients: clients, Checker: checker, Interval: 500 * time.Millisecond, PolicyPoll: 100 * time.Millisecond,
		MaxResults: 3, Metrics: m, Log: logr.Discard(), Lease: lease("first"),
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	go func() { done <- s.Start(ctx) }()
	defer func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(m.Scans.WithLabelValues(scan.ScanSuccess)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the first replica never scanned")
		}
		time.Sleep(50 * time.Millisecond)
	}
	m2, err := scan.NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	second, err := scan.New(scan.Options{
		Clients: clients, Checker: &report.Checker{Engine: w.engine}, Interval: 100 * time.Millisecond,
		Metrics: m2, Log: logr.Discard(), Lease: lease("second"),
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- second.Start(ctx) }()

	const (
		pass    = "ndots pass the pod's DNS is as the policy makes it"
		fail23  = "ndots fail the pod differs from what the policy gives it at creation: spec.dnsConfig.options[ndots]: ndots:2 -> ndots:3"
		fail32  = "ndots fail the pod differs from what the policy gives it at creation: spec.dnsConfig.options[ndots]: ndots:3 -> ndots:2"
		reports = "poddns-0,poddns-1"
	)
	waitResults(t, clients, "shop", strings.Split(reports, ","), []string{
		"bare-new " + pass, "bare-old " + fail23, "web-1-new " + pass, "web-1-old " + fail23,
	})
	// The metric is set when the scan ends, after the reports are written.
	waitGauge(t, "pods_out_of_policy{ndots}", func() float64 { return testutil.ToFloat64(m.OutOfPolicy.WithLabelValues("ndots")) }, 2)

	// The policy changes back: every result turns over.
	w.engine.Swap(v1)
	waitResults(t, clients, "shop", strings.Split(reports, ","), []string{
		"bare-new " + fail32, "bare-old " + pass, "web-1-new " + fail32, "web-1-old " + pass,
	})

	// Pods go: their results go, and the second report with them.
	for _, name := range []string{"bare-old", "bare-new"} {
		if err := w.pods.CoreV1().Pods("shop").Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
			t.Fatal(err)
		}
	}
	waitResults(t, clients, "shop", []string{"poddns-0"}, []string{"web-1-new " + fail32, "web-1-old " + pass})
	for _, name := range []string{"web-1-old", "web-1-new"} {
		if err := w.pods.CoreV1().Pods("shop").Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
			t.Fatal(err)
		}
	}
	waitResults(t, clients, "shop", nil, nil)
	waitGauge(t, "pods_out_of_policy{ndots} after the pods went", func() float64 { return testutil.ToFloat64(m.OutOfPolicy.WithLabelValues("ndots")) }, 0)
	if n := testutil.ToFloat64(m2.Scans.WithLabelValues(scan.ScanSuccess)) + testutil.ToFloat64(m2.Scans.WithLabelValues(scan.ScanError)); n != 0 {
		t.Errorf("the second replica scanned %v times while the first held the Lease", n)
	}
	l, err := w.pods.CoordinationV1().Leases("default").Get(ctx, "poddns-webhook-report", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != "first" {
		t.Errorf("Lease: %v, %v; want held by first", l, err)
	}
	reqs := ct.take()
	noPodWrites(t, reqs)
	if n := maxPerSecond(reqs); n > scan.DefaultQPS {
		t.Errorf("%d requests in one second, want at most %d", n, scan.DefaultQPS)
	}
}
