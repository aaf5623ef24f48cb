package integration

import (
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/nodeprofile"
	"github.com/poddns/poddns/pkg/policy"
)

// TestWebhookPools: the webhook on node pools (testdata/pools: general's
// nodes have 1 host search domain, legacy's 29), through a real API server.
// corp-search, truncated on legacy, is skipped with an admission warning
// naming the pool for a pod that can land there, and applied to a pod
// pinned to general; the annotation shows the file of each pool the pod can
// land on (issue 16, item 2).
func TestWebhookPools(t *testing.T) {
	root := testenv.Root(t)
	dir := filepath.Join(root, "testdata", "pools")
	o := nodeprofile.Options{Profile: filepath.Join(dir, "profiles.yaml")}
	_, pools, _, err := o.Profiles()
	if err != nil || pools == nil {
		t.Fatalf("profiles.yaml: pools %v, %v", pools, err)
	}
	w := startWebhookEngine(t, policy.EngineOptions{Pools: pools}, filepath.Join(dir, "policies.yaml"))
	w.namespace(t, "shop", enabled())

	got, warns := w.create(t, newPod("shop", "anywhere"))
	if a := got.Annotations[policy.AnnotationApplied]; a != "ndots-2" {
		t.Errorf("anywhere: %s = %q, want ndots-2", policy.AnnotationApplied, a)
	}
	const skipped = `poddns: policy "corp-search" not applied: on node pool "legacy": kubelet would truncate the result`
	if len(warns) != 1 || !strings.HasPrefix(warns[0], skipped) {
		t.Errorf("anywhere: warnings %q, want one starting %q", warns, skipped)
	}
	rc := got.Annotations[policy.AnnotationResolvConf]
	if !strings.HasPrefix(rc, "# node pool general\nsearch shop.svc.cluster.local svc.cluster.local cluster.local ec2.internal\n") ||
		!strings.Contains(rc, "\n# node pool legacy\nsearch shop.svc.cluster.local svc.cluster.local cluster.local l01.corp") {
		t.Errorf("anywhere: %s =\n%s\nwant general's and legacy's files", policy.AnnotationResolvConf, rc)
	}

	got, warns = w.create(t, newPod("shop", "on-general", func(p *corev1.Pod) {
		p.Spec.NodeSelector = map[string]string{"poddns.io/pool": "general"}
	}))
	if a := got.Annotations[policy.AnnotationApplied]; a != "corp-search,ndots-2" {
		t.Errorf("on-general: %s = %q, want corp-search,ndots-2", policy.AnnotationApplied, a)
	}
	if len(warns) != 0 {
		t.Errorf("on-general: warnings %q, want none", warns)
	}
	const want = "search shop.svc.cluster.local svc.cluster.local cluster.local ec2.internal corp.example.com\nnameserver 10.96.0.10\noptions ndots:2\n"
	if rc := got.Annotations[policy.AnnotationResolvConf]; rc != want {
		t.Errorf("on-general: %s = %q, want %q", policy.AnnotationResolvConf, rc, want)
	}
	if got.Spec.DNSConfig == nil || strings.Join(got.Spec.DNSConfig.Searches, ",") != "corp.example.com" {
		t.Errorf("on-general: dnsConfig %+v, want searches [corp.example.com]", got.Spec.DNSConfig)
	}
}
