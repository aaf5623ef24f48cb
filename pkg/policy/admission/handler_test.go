package admission_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/poddns/poddns/pkg/policy"
	padmission "github.com/poddns/poddns/pkg/policy/admission"
	"github.com/poddns/poddns/pkg/policy/policytest"
)

const testPolicies = `
apiVersion: poddns.io/v1alpha1
kind: DNSPolicy
metadata: {name: hostnetwork}
spec:
  match: {hostNetwork: true, dnsPolicies: [ClusterFirst]}
  actions: {hostNetworkClusterDNS: true}
---
apiVersion: poddns.io/v1alpha1
kind: DNSPolicy
metadata: {name: ndots}
spec:
  priority: 10
  match: {namespaceSelector: {matchLabels: {ndots: "2"}}}
  actions: {ndots: 2}
---
apiVersion: poddns.io/v1alpha1
kind: DNSPolicy
metadata: {name: trial}
spec:
  mode: audit
  match: {namespaceSelector: {matchLabels: {trial: "true"}}}
  actions: {options: {set: [{name: timeout, value: "2"}]}}
---
apiVersion: poddns.io/v1alpha1
kind: DNSPolicy
metadata: {name: corp}
spec:
  priority: 30
  match: {namespaceSelector: {matchLabels: {corp: "true"}}}
  actions: {searches: {add: [corp.example.com]}}
---
apiVersion: poddns.io/v1alpha1
kind: DNSPolicy
metadata: {name: templated}
spec:
  match: {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: team-a}}}
  actions: {searches: {add: [$(NAMESPACE).corp.example]}}
`

// nsReader is a client.Reader over a fixed set of namespaces; a nil map
// fails every read.
type nsReader struct {
	ns    map[string]map[string]string
	reads int
}

func (r *nsReader) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	r.reads++
	if r.ns == nil {
		return fmt.Errorf("connection refused")
	}
	l, ok := r.ns[key.Name]
	if !ok {
		return apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, key.Name)
	}
	obj.(*corev1.Namespace).Name = key.Name
	obj.(*corev1.Namespace).Labels = l
	return nil
}

func (r *nsReader) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return fmt.Errorf("not implemented")
}

type fixture struct {
	h       *padmission.Handler
	cache   *nsReader
	live    *nsReader
	metrics *padmission.Metrics
	reg     *prometheus.Registry
}

func newFixture(t testing.TB, mode policy.GlobalMode) *fixture {
	t.Helper()
	e := policytest.Engine(t, policytest.Parse(t, testPolicies), policy.EngineOptions{Profile: policytest.Profile(t, policytest.StandardNode), Mode: mode})
	reg := prometheus.NewRegistry()
	m, err := padmission.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{
		cache: &nsReader{ns: map[string]map[string]string{
			"plain": {}, "tuned": {"ndots": "2"}, "trial": {"trial": "true"}, "corp": {"corp": "true", "ndots": "2"}, "team-a": {},
		}},
		live:    &nsReader{ns: map[string]map[string]string{"fresh": {"ndots": "2"}}},
		metrics: m,
		reg:     reg,
	}
	f.h = padmission.NewHandler(e, f.cache, f.live)
	f.h.ExcludedNamespaces = []string{"poddns-system"}
	f.h.Metrics = m
	return f
}

// review builds the JSON of an AdmissionReview the way the API server sends
// it: the pod without kind (some clients) and, for generated names, no name.
func review(op, namespace, name, podJSON string) string {
	return fmt.Sprintf(`{
  "apiVersion": "admission.k8s.io/v1",
  "kind": "AdmissionReview",
  "request": {
    "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
    "kind": {"group": "", "version": "v1", "kind": "Pod"},
    "resource": {"group": "", "version": "v1", "resource": "pods"},
    "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
    "requestResource": {"group": "", "version": "v1", "resource": "pods"},
    "namespace": %q,
    "name": %q,
    "operation": %q,
    "userInfo": {"username": "admin", "groups": ["system:masters"]},
    "object": %s,
    "dryRun": false,
    "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
  }
}`, namespace, name, op, podJSON)
}

// serve posts body to the handler through controller-runtime's webhook (the
// HTTP path the API server uses) and returns the decoded response.
func (f *fixture) serve(t *testing.T, body string) admissionv1.AdmissionResponse {
	t.Helper()
	wh := &admission.Webhook{Handler: f.h}
	req := httptest.NewRequest(http.MethodPost, padmission.Path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	wh.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("HTTP status %d: %s", rec.Code, rec.Body)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("decode response %s: %v", rec.Body, err)
	}
	if out.Response == nil {
		t.Fatalf("no response in %s", rec.Body)
	}
	return *out.Response
}

// patched applies the response's patch to podJSON.
func patched(t *testing.T, podJSON string, r admissionv1.AdmissionResponse) (*corev1.Pod, []byte) {
	t.Helper()
	out := []byte(podJSON)
	if len(r.Patch) > 0 {
		p, err := jsonpatch.DecodePatch(r.Patch)
		if err != nil {
			t.Fatalf("decode patch %s: %v", r.Patch, err)
		}
		if out, err = p.Apply(out); err != nil {
			t.Fatalf("apply patch %s: %v", r.Patch, err)
		}
	}
	var pod corev1.Pod
	if err := json.Unmarshal(out, &pod); err != nil {
		t.Fatal(err)
	}
	return &pod, out
}

const (
	plainPod       = `{"metadata":{"name":"web","namespace":"%s"},"spec":{"containers":[{"name":"c","image":"nginx"}]}}`
	hostNetPod     = `{"metadata":{"name":"agent"},"spec":{"hostNetwork":true,"containers":[{"name":"c","image":"agent"}]}}`
	generatedPod   = `{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"web-","labels":{"app":"web"}},"spec":{"containers":[{"name":"c","image":"nginx"}]}}`
	windowsPod     = `{"metadata":{"name":"win"},"spec":{"os":{"name":"windows"},"containers":[{"name":"c","image":"iis"}]}}`
	mirrorPod      = `{"metadata":{"name":"static","annotations":{"kubernetes.io/config.mirror":"abc"}},"spec":{"containers":[{"name":"c","image":"etcd"}]}}`
	skipPod        = `{"metadata":{"name":"skip","annotations":{"poddns.io/skip":"true"}},"spec":{"containers":[{"name":"c","image":"x"}]}}`
	ownNdotsPod    = `{"metadata":{"name":"own"},"spec":{"dnsConfig":{"options":[{"name":"ndots","value":"3"}]},"containers":[{"name":"c","image":"x"}]}}`
	unknownTypePod = `{"metadata":{"name":"bad"},"spec":{"hostNetwork":"yes","containers":[]}}`
)

func ndotsOf(p *corev1.Pod) string {
	if p.Spec.DNSConfig == nil {
		return ""
	}
	for _, o := range p.Spec.DNSConfig.Options {
		if o.Name == "ndots" && o.Value != nil {
			return *o.Value
		}
	}
	return ""
}

func TestHandlerMutates(t *testing.T) {
	f := newFixture(t, "")
	pod := fmt.Sprintf(plainPod, "tuned")
	r := f.serve(t, review("CREATE", "tuned", "web", pod))
	if !r.Allowed {
		t.Fatalf("not allowed: %+v", r.Result)
	}
	if r.PatchType == nil || *r.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("patch type = %v, want JSONPatch", r.PatchType)
	}
	got, _ := patched(t, pod, r)
	if ndotsOf(got) != "2" {
		t.Errorf("ndots = %q, want 2; patch %s", ndotsOf(got), r.Patch)
	}
	if got.Annotations[policy.AnnotationApplied] != "ndots" {
		t.Errorf("applied annotation = %q, want ndots", got.Annotations[policy.AnnotationApplied])
	}
	if !strings.Contains(got.Annotations[policy.AnnotationResolvConf], "options ndots:2") {
		t.Errorf("resolv-conf annotation = %q, want options ndots:2", got.Annotations[policy.AnnotationResolvConf])
	}
	// Only the fields poddns owns are patched: no namespace, no
	// creationTimestamp, no resources: {} from the typed round trip.
	var ops []struct{ Op, Path string }
	if err := json.Unmarshal(r.Patch, &ops); err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		if !strings.HasPrefix(op.Path, "/spec/dnsConfig") && !strings.HasPrefix(op.Path, "/spec/dnsPolicy") && !strings.HasPrefix(op.Path, "/metadata/annotations") {
			t.Errorf("patch touches %s %s", op.Op, op.Path)
		}
	}
	if n := testutil.ToFloat64(f.metrics.Admissions.WithLabelValues(padmission.ResultPatched)); n != 1 {
		t.Errorf("admissions{patched} = %v, want 1", n)
	}
	if n := testutil.ToFloat64(f.metrics.Matches.WithLabelValues("ndots", "applied")); n != 1 {
		t.Errorf("policy_matches{ndots,applied} = %v, want 1", n)
	}
	if n := testutil.CollectAndCount(f.metrics.Duration); n != 1 {
		t.Errorf("duration histogram series = %d, want 1", n)
	}
}

// TestHandlerPatchesOwnedAnnotationsOnly: on a pod with annotations, the
// patch sets poddns's keys one by one (a stale preview replaced, a key with
// "/" and "~" escaped) and leaves the others; with an annotations object of
// null, the whole map is added.
func TestHandlerPatchesOwnedAnnotationsOnly(t *testing.T) {
	f := newFixture(t, "")
	for _, tc := range []struct{ name, annotations string }{
		{"other annotations and a stale preview", `{"team":"a","x.io/a~b":"c","poddns.io/resolv-conf":"stale"}`},
		{"null", `null`},
		{"empty", `{}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := `{"metadata":{"name":"web","annotations":` + tc.annotations + `},"spec":{"containers":[{"name":"c","image":"nginx"}]}}`
			r := f.serve(t, review("CREATE", "tuned", "web", pod))
			got, _ := patched(t, pod, r)
			if got.Annotations[policy.AnnotationApplied] != "ndots" || !strings.Contains(got.Annotations[policy.AnnotationResolvConf], "options ndots:2") {
				t.Errorf("annotations %v; patch %s", got.Annotations, r.Patch)
			}
			var want map[string]string
			_ = json.Unmarshal([]byte(tc.annotations), &want)
			for k, v := range want {
				if k != policy.AnnotationResolvConf && got.Annotations[k] != v {
					t.Errorf("annotation %s = %q, want %q kept; patch %s", k, got.Annotations[k], v, r.Patch)
				}
			}
			if len(got.Annotations) != len(want)+3-btoi(want[policy.AnnotationResolvConf] != "") {
				t.Errorf("annotations %v; patch %s", got.Annotations, r.Patch)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestHandlerHostNetworkNamespaceFromRequest(t *testing.T) {
	f := newFixture(t, "")
	// The pod has no namespace and no dnsPolicy; the request names the
	// namespace.
	r := f.serve(t, review("CREATE", "plain", "agent", hostNetPod))
	got, raw := patched(t, hostNetPod, r)
	if got.Spec.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		t.Errorf("dnsPolicy = %q, want ClusterFirstWithHostNet; patch %s", got.Spec.DNSPolicy, r.Patch)
	}
	if got.Namespace != "" {
		t.Errorf("the patch set metadata.namespace = %q: %s", got.Namespace, raw)
	}
}

// TestHandlerTemplatesRequestNamespace: a pod sent without a namespace is
// evaluated in the request's, for selection and $(NAMESPACE) alike.
func TestHandlerTemplatesRequestNamespace(t *testing.T) {
	f := newFixture(t, "")
	pod := `{"metadata":{"generateName":"job-"},"spec":{"containers":[{"name":"c","image":"x"}]}}`
	r := f.serve(t, review("CREATE", "team-a", "", pod))
	got, _ := patched(t, pod, r)
	if got.Spec.DNSConfig == nil || !slices.Equal(got.Spec.DNSConfig.Searches, []string{"team-a.corp.example"}) {
		t.Errorf("dnsConfig = %+v, want searches [team-a.corp.example]; patch %s", got.Spec.DNSConfig, r.Patch)
	}
}

func TestHandlerGenerateName(t *testing.T) {
	f := newFixture(t, "")
	r := f.serve(t, review("CREATE", "tuned", "", generatedPod))
	got, _ := patched(t, generatedPod, r)
	if ndotsOf(got) != "2" || got.Name != "" || got.GenerateName != "web-" {
		t.Errorf("ndots %q name %q generateName %q; patch %s", ndotsOf(got), got.Name, got.GenerateName, r.Patch)
	}
}

func TestHandlerCacheMissReadsLive(t *testing.T) {
	f := newFixture(t, "")
	pod := fmt.Sprintf(plainPod, "fresh")
	r := f.serve(t, review("CREATE", "fresh", "web", pod))
	got, _ := patched(t, pod, r)
	if ndotsOf(got) != "2" {
		t.Errorf("ndots = %q, want 2 (labels read live); patch %s", ndotsOf(got), r.Patch)
	}
	if f.live.reads != 1 {
		t.Errorf("live reads = %d, want 1", f.live.reads)
	}
	// A cache hit does not read live.
	f.serve(t, review("CREATE", "tuned", "web", fmt.Sprintf(plainPod, "tuned")))
	if f.live.reads != 1 {
		t.Errorf("live reads after a cache hit = %d, want 1", f.live.reads)
	}
}

func TestHandlerNamespaceUnavailable(t *testing.T) {
	f := newFixture(t, "")
	f.cache.ns, f.live.ns = nil, nil
	r := f.serve(t, review("CREATE", "tuned", "web", fmt.Sprintf(plainPod, "tuned")))
	if !r.Allowed || len(r.Patch) != 0 {
		t.Fatalf("allowed %v patch %s, want allowed without a patch", r.Allowed, r.Patch)
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], `cannot read namespace "tuned"`) {
		t.Errorf("warnings = %q", r.Warnings)
	}
}

func TestHandlerLeavesAlone(t *testing.T) {
	tests := []struct {
		name, op, ns, pod, result string
	}{
		{"UPDATE", "UPDATE", "tuned", fmt.Sprintf(plainPod, "tuned"), padmission.ResultIgnored},
		{"DELETE", "DELETE", "tuned", fmt.Sprintf(plainPod, "tuned"), padmission.ResultIgnored},
		{"kube-system", "CREATE", "kube-system", hostNetPod, padmission.ResultExcluded},
		{"own namespace", "CREATE", "poddns-system", hostNetPod, padmission.ResultExcluded},
		{"windows", "CREATE", "tuned", windowsPod, padmission.ResultExempt},
		{"mirror", "CREATE", "tuned", mirrorPod, padmission.ResultExempt},
		{"opt-out annotation", "CREATE", "tuned", skipPod, padmission.ResultExempt},
		{"no policy matches", "CREATE", "plain", fmt.Sprintf(plainPod, "plain"), padmission.ResultUnchanged},
		{"pod's own ndots wins", "CREATE", "tuned", ownNdotsPod, padmission.ResultUnchanged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "")
			r := f.serve(t, review(tt.op, tt.ns, "x", tt.pod))
			if !r.Allowed || len(r.Patch) != 0 || r.PatchType != nil {
				t.Errorf("allowed %v patchType %v patch %s, want allowed, no patch", r.Allowed, r.PatchType, r.Patch)
			}
			if n := testutil.ToFloat64(f.metrics.Admissions.WithLabelValues(tt.result)); n != 1 {
				t.Errorf("admissions{%s} = %v, want 1", tt.result, n)
			}
		})
	}
}

func TestHandlerAuditChangesNothing(t *testing.T) {
	f := newFixture(t, "")
	pod := fmt.Sprintf(plainPod, "trial")
	r := f.serve(t, review("CREATE", "trial", "web", pod))
	if !r.Allowed || len(r.Patch) != 0 || r.PatchType != nil {
		t.Fatalf("allowed %v patch %s, want no patch at all", r.Allowed, r.Patch)
	}
	want := `poddns: policy "trial" (audit) would change spec.dnsConfig.options[timeout] from (unset) to timeout:2`
	if !slices.Contains(r.Warnings, want) {
		t.Errorf("warnings = %q, want %q", r.Warnings, want)
	}
	if n := testutil.ToFloat64(f.metrics.AuditChanges.WithLabelValues("trial")); n != 1 {
		t.Errorf("audit_would_change{trial} = %v, want 1", n)
	}
}

func TestHandlerGlobalAudit(t *testing.T) {
	f := newFixture(t, policy.GlobalAudit)
	r := f.serve(t, review("CREATE", "plain", "agent", hostNetPod))
	if len(r.Patch) != 0 {
		t.Fatalf("patch %s in global audit mode", r.Patch)
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], `policy "hostnetwork" (audit) would change spec.dnsPolicy`) {
		t.Errorf("warnings = %q", r.Warnings)
	}
}

func searchList(n int) string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf(`"s%d.example"`, i)
	}
	return strings.Join(s, ",")
}

func TestHandlerSkippedPolicyStillAdmits(t *testing.T) {
	f := newFixture(t, "")
	// 28 searches of its own: adding corp.example.com makes kubelet
	// truncate the list, so corp is skipped; ndots still applies.
	pod := `{"metadata":{"name":"many"},"spec":{"dnsConfig":{"searches":[` + searchList(28) + `]},"containers":[{"name":"c","image":"x"}]}}`
	r := f.serve(t, review("CREATE", "corp", "many", pod))
	if !r.Allowed {
		t.Fatalf("denied: %+v", r.Result)
	}
	got, _ := patched(t, pod, r)
	if ndotsOf(got) != "2" || slices.Contains(got.Spec.DNSConfig.Searches, "corp.example.com") {
		t.Errorf("ndots %q searches %q: want ndots 2 and no corp search", ndotsOf(got), got.Spec.DNSConfig.Searches)
	}
	if len(r.Warnings) != 1 || !strings.HasPrefix(r.Warnings[0], `poddns: policy "corp" not applied: kubelet would truncate the result`) {
		t.Errorf("warnings = %q", r.Warnings)
	}
	if n := testutil.ToFloat64(f.metrics.Skipped.WithLabelValues("corp")); n != 1 {
		t.Errorf("policy_skipped{corp} = %v, want 1", n)
	}
}

// TestHandlerIdempotent feeds the mutated pod back (reinvocation): nothing
// more changes.
func TestHandlerIdempotent(t *testing.T) {
	f := newFixture(t, "")
	pod := `{"metadata":{"name":"agent"},"spec":{"hostNetwork":true,"containers":[{"name":"c","image":"agent"}]}}`
	r := f.serve(t, review("CREATE", "corp", "agent", pod))
	_, once := patched(t, pod, r)
	if len(r.Patch) == 0 {
		t.Fatal("first pass did not patch")
	}
	r2 := f.serve(t, review("CREATE", "corp", "agent", string(once)))
	if len(r2.Patch) != 0 {
		t.Errorf("second pass patched again: %s", r2.Patch)
	}
}

func TestHandlerMalformed(t *testing.T) {
	f := newFixture(t, "")
	tests := []struct {
		name, body string
		wantCode   int32
	}{
		{"pod of the wrong type", review("CREATE", "tuned", "bad", unknownTypePod), http.StatusBadRequest},
		{"pod that is not an object", review("CREATE", "tuned", "bad", `"a string"`), http.StatusBadRequest},
		{"no object", review("CREATE", "tuned", "bad", `null`), http.StatusBadRequest},
		{"review not JSON", `{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {`, http.StatusBadRequest},
		{"review without request", `{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.serve(t, tt.body)
			if r.Allowed || r.Result == nil || r.Result.Code != tt.wantCode {
				t.Errorf("response %+v, want an error with code %d", r, tt.wantCode)
			}
		})
	}
}

// TestHandlerEmptyBody checks the HTTP layer: an empty body is answered, not
// a crash.
func TestHandlerEmptyBody(t *testing.T) {
	f := newFixture(t, "")
	wh := &admission.Webhook{Handler: f.h}
	rec := httptest.NewRecorder()
	wh.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, padmission.Path, bytes.NewReader(nil)))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code == http.StatusOK && !bytes.Contains(body, []byte(`"allowed":false`)) {
		t.Errorf("empty body answered %d %s", rec.Code, body)
	}
}

func TestMetricsRegisterTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	m1, err := padmission.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := padmission.NewMetrics(reg)
	if err != nil {
		t.Fatalf("second registration: %v", err)
	}
	m1.ObserveReload(fmt.Errorf("bad"), 3)
	if n := testutil.ToFloat64(m2.ReloadFailures); n != 1 {
		t.Errorf("reload failures via the second Metrics = %v, want 1 (shared collectors)", n)
	}
	if n := testutil.ToFloat64(m2.Policies); n != 3 {
		t.Errorf("policies = %v, want 3", n)
	}
}

// FuzzAdmissionReview feeds arbitrary request bodies through the HTTP path:
// the handler must answer every one (never panic), and a patch it returns
// must apply to the pod it was computed from.
func FuzzAdmissionReview(f *testing.F) {
	for _, seed := range []string{
		review("CREATE", "tuned", "web", fmt.Sprintf(plainPod, "tuned")),
		review("CREATE", "plain", "agent", hostNetPod),
		review("CREATE", "corp", "", generatedPod),
		review("CREATE", "trial", "web", ownNdotsPod),
		review("UPDATE", "tuned", "web", windowsPod),
		review("CREATE", "tuned", "bad", unknownTypePod),
		`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{`,
		`{}`,
	} {
		f.Add([]byte(seed))
	}
	fx := newFixture(f, "")
	wh := &admission.Webhook{Handler: fx.h}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, padmission.Path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		wh.ServeHTTP(rec, req)
		var out admissionv1.AdmissionReview
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
			t.Fatalf("answer %d %q is not an AdmissionReview: %v", rec.Code, rec.Body, err)
		}
		if len(out.Response.Patch) == 0 {
			return
		}
		// controller-runtime's decoder is more lenient than encoding/json
		// (it reads a JSON value after leading garbage): check the patch
		// only against bodies both read alike.
		var in admissionv1.AdmissionReview
		if err := json.Unmarshal(body, &in); err != nil || in.Request == nil {
			return
		}
		p, err := jsonpatch.DecodePatch(out.Response.Patch)
		if err != nil {
			t.Fatalf("patch %s: %v", out.Response.Patch, err)
		}
		if _, err := p.Apply(in.Request.Object.Raw); err != nil {
			t.Fatalf("patch %s does not apply to %s: %v", out.Response.Patch, in.Request.Object.Raw, err)
		}
	})
}

// TestMetricsLint runs promlint over the webhook's metrics.
func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := padmission.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.Admissions.WithLabelValues(padmission.ResultPatched).Inc()
	m.Matches.WithLabelValues("p", "applied").Inc()
	m.AuditChanges.WithLabelValues("p").Inc()
	m.Skipped.WithLabelValues("p").Inc()
	problems, err := testutil.GatherAndLint(reg)
	if err != nil || len(problems) > 0 {
		t.Errorf("promlint: %v %v", problems, err)
	}
}
