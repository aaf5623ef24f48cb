package policy_test

import (
	"fmt"
	"strings"
	"testing"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/poddns/poddns/pkg/nodepool"
	"github.com/poddns/poddns/pkg/policy"
	"github.com/poddns/poddns/pkg/policy/policytest"
	"github.com/poddns/poddns/pkg/resolvconf"
)

// poolEngine is an engine with one pool per profile; pool NAME selects the
// nodes labelled pool=NAME.
func poolEngine(t testing.TB, policies string, profiles map[string]resolvconf.NodeConfig, order ...string) *policy.Engine {
	t.Helper()
	var pools []nodepool.Pool
	for _, name := range order {
		pools = append(pools, nodepool.Pool{Name: name, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"pool": name}},
			Profile: policytest.Profile(t, profiles[name])})
	}
	ps, err := nodepool.NewSet(pools)
	if err != nil {
		t.Fatal(err)
	}
	return policytest.Engine(t, policytest.Parse(t, policies), policy.EngineOptions{Pools: ps})
}

// hostSearch is a node resolv.conf with n search domains.
func hostSearch(n int) resolvconf.NodeConfig {
	var domains []string
	for i := range n {
		domains = append(domains, fmt.Sprintf("d%d.example", i+1))
	}
	return resolvconf.NodeConfig{
		ClusterDomain:  "cluster.local",
		ClusterDNS:     []string{"10.96.0.10"},
		ResolvConf:     "/etc/resolv.conf",
		ResolvConfData: []byte("nameserver 10.0.0.2\nsearch " + strings.Join(domains, " ") + "\n"),
	}
}

func poolNames(d policy.Decision) string {
	var out []string
	for _, p := range d.Pools {
		out = append(out, p.Pool)
	}
	return strings.Join(out, ",")
}

// TestEvaluatePools: a pod is evaluated on every node pool it can land on.
// On pool long, 3 cluster search domains and 29 of the node's make 32, the
// most kubelet keeps: a policy adding one is truncated there, so it is
// skipped for every pod that can land on long, with a warning naming it,
// and applied to pods pinned to short.
func TestEvaluatePools(t *testing.T) {
	policies := doc("add-search", "  actions: {searches: {add: [corp.example]}}") + doc("ndots", "  priority: 1\n  actions: {ndots: 2}")
	e := poolEngine(t, policies, map[string]resolvconf.NodeConfig{"short": hostSearch(1), "long": hostSearch(29)}, "short", "long")
	const skipped = `poddns: policy "add-search" not applied: on node pool "long": kubelet would truncate the result: `
	const shortFile = "search shop.svc.cluster.local svc.cluster.local cluster.local d1.example corp.example\nnameserver 10.96.0.10\noptions ndots:2\n"
	tests := []struct {
		name        string
		pod         string
		wantPools   string
		wantApplied string
		wantWarning string // prefix of the one warning; "" none
		wantResolv  string // "" not checked
		wantNote    bool
	}{
		{name: "can land on both", pod: plainPod, wantPools: "short,long", wantApplied: "ndots", wantWarning: skipped},
		{name: "pinned to short by nodeSelector", pod: "spec: {nodeSelector: {pool: short}, containers: [{name: c}]}",
			wantPools: "short", wantApplied: "add-search,ndots", wantResolv: shortFile},
		{name: "pinned to long by node affinity", pod: "spec: {affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: pool, operator: In, values: [long]}]}]}}}, containers: [{name: c}]}",
			wantPools: "long", wantApplied: "ndots", wantWarning: skipped},
		{name: "kept off long by NotIn", pod: "spec: {affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: pool, operator: NotIn, values: [long]}]}]}}}, containers: [{name: c}]}",
			wantPools: "short", wantApplied: "add-search,ndots", wantResolv: shortFile},
		{name: "on no pool: checked on every pool", pod: "spec: {nodeSelector: {pool: gpu}, containers: [{name: c}]}",
			wantPools: "short,long", wantApplied: "ndots", wantWarning: skipped, wantNote: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pod(t, tt.pod)
			d := e.Evaluate(p, nil)
			if got := poolNames(d); got != tt.wantPools {
				t.Errorf("pools = %q, want %q", got, tt.wantPools)
			}
			if got := strings.Join(d.Applied(), ","); got != tt.wantApplied {
				t.Errorf("applied = %q, want %q", got, tt.wantApplied)
			}
			switch {
			case tt.wantWarning == "" && len(d.Warnings) > 0:
				t.Errorf("warnings = %q, want none", d.Warnings)
			case tt.wantWarning != "" && (len(d.Warnings) != 1 || !strings.HasPrefix(d.Warnings[0], tt.wantWarning)):
				t.Errorf("warnings = %q, want one starting %q", d.Warnings, tt.wantWarning)
			}
			if tt.wantResolv != "" && d.ResolvConf != tt.wantResolv {
				t.Errorf("resolv.conf =\n%s\nwant\n%s", d.ResolvConf, tt.wantResolv)
			}
			if (d.PoolsNote != "") != tt.wantNote {
				t.Errorf("PoolsNote = %q, want set %t", d.PoolsNote, tt.wantNote)
			}
			if !d.Mutate(p) {
				t.Fatal("Mutate: the pod did not change")
			}
			if got := p.Annotations[policy.AnnotationResolvConf]; got != d.ResolvConf {
				t.Errorf("annotation = %q, want the preview %q", got, d.ResolvConf)
			}
		})
	}

	// A pod that can land on both pools has a preview per pool; the
	// annotation shows both, each under its pool's name.
	d := e.Evaluate(pod(t, plainPod), nil)
	if len(d.Pools) != 2 || d.Pools[0].ResolvConf == d.Pools[1].ResolvConf {
		t.Fatalf("previews = %+v, want two that differ", d.Pools)
	}
	want := "# node pool short\n" + d.Pools[0].ResolvConf + "\n# node pool long\n" + d.Pools[1].ResolvConf
	if d.ResolvConf != want {
		t.Errorf("resolv.conf =\n%s\nwant\n%s", d.ResolvConf, want)
	}
	if !strings.Contains(d.Pools[1].ResolvConf, "d29.example") || strings.Contains(d.Pools[0].ResolvConf, "d2.example") {
		t.Errorf("previews are not the pools' own: %+v", d.Pools)
	}
}

// TestEvaluatePoolsSamePreview: pools whose kubelets give the pod the same
// file show it once, as with one profile.
func TestEvaluatePoolsSamePreview(t *testing.T) {
	e := poolEngine(t, doc("ndots", "  actions: {ndots: 2}"), map[string]resolvconf.NodeConfig{"a": hostSearch(2), "b": hostSearch(2)}, "a", "b")
	d := e.Evaluate(pod(t, plainPod), nil)
	if poolNames(d) != "a,b" || strings.Contains(d.ResolvConf, "# node pool") || d.ResolvConf != d.Pools[0].ResolvConf {
		t.Errorf("pools %q, resolv.conf %q", poolNames(d), d.ResolvConf)
	}
}

// TestEvaluatePoolsDivergent: a pod has one dnsConfig whatever the pool, so
// a policy whose result depends on the pool ($(CLUSTER_DOMAIN) here) is
// skipped for pods that can land on pools where it differs, and applied to
// a pod pinned to one.
func TestEvaluatePoolsDivergent(t *testing.T) {
	a, b := hostSearch(1), hostSearch(1)
	b.ClusterDomain = "corp.internal"
	e := poolEngine(t, doc("by-domain", "  actions: {searches: {add: [x.$(CLUSTER_DOMAIN)]}}")+doc("ndots", "  priority: 1\n  actions: {ndots: 3}"),
		map[string]resolvconf.NodeConfig{"a": a, "b": b}, "a", "b")
	d := e.Evaluate(pod(t, plainPod), nil)
	if got := strings.Join(d.Applied(), ","); got != "ndots" {
		t.Errorf("applied = %q, want ndots", got)
	}
	const want = `poddns: policy "by-domain" not applied: its result depends on the node pool (it differs between "a" and "b")`
	if len(d.Warnings) != 1 || !strings.HasPrefix(d.Warnings[0], want) {
		t.Errorf("warnings = %q, want one starting %q", d.Warnings, want)
	}
	d = e.Evaluate(pod(t, "spec: {nodeSelector: {pool: b}, containers: [{name: c}]}"), nil)
	if got := strings.Join(d.Applied(), ","); got != "by-domain,ndots" || d.DNSConfig == nil || d.DNSConfig.Searches[0] != "x.corp.internal" {
		t.Errorf("pinned to b: applied %q, dnsConfig %+v", got, d.DNSConfig)
	}
}

// TestEvaluatePoolsAudit: an audit policy's warning that only one pool
// gives names that pool.
func TestEvaluatePoolsAudit(t *testing.T) {
	e := poolEngine(t, doc("add-search", "  mode: audit\n  actions: {searches: {add: [corp.example]}}"),
		map[string]resolvconf.NodeConfig{"short": hostSearch(1), "long": hostSearch(29)}, "short", "long")
	d := e.Evaluate(pod(t, plainPod), nil)
	const want = `poddns: policy "add-search" (audit) would not be applied: on node pool "long": kubelet would truncate`
	if d.Changed || len(d.Warnings) != 1 || !strings.HasPrefix(d.Warnings[0], want) {
		t.Errorf("changed %t, warnings %q; want one starting %q", d.Changed, d.Warnings, want)
	}
}

// BenchmarkEvaluatePools is BenchmarkEvaluate on two node pools whose
// previews differ, for a pod that can land on both: about twice the work
// of one profile.
func BenchmarkEvaluatePools(b *testing.B) {
	e := poolEngine(b, policytest.Generated(200), map[string]resolvconf.NodeConfig{"pool-0": hostSearch(1), "pool-1": hostSearch(3)}, "pool-0", "pool-1")
	benchmarkEvaluate(b, e, "t3", func(d policy.Decision) string {
		if len(d.Matched()) != 20 || len(d.Pools) != 2 {
			return fmt.Sprintf("%d matched on %d pools, want 20 on 2", len(d.Matched()), len(d.Pools))
		}
		return ""
	})
}

// TestEvaluatePoolsAnnotationLimit: the annotation size rule holds for the
// preview of several pools: it is left out when it does not fit, and when
// not even poddns.io/applied fits the pod is left unchanged, previewed on
// every pool as submitted.
func TestEvaluatePoolsAnnotationLimit(t *testing.T) {
	e := poolEngine(t, doc("ndots", "  actions: {ndots: 2}"), map[string]resolvconf.NodeConfig{"a": hostSearch(1), "b": hostSearch(5)}, "a", "b")
	roomy := e.Evaluate(pod(t, plainPod), nil)
	if !roomy.Changed || !strings.Contains(roomy.ResolvConf, "# node pool b") {
		t.Fatalf("the policy does not change the plain pod on both pools: %+v", roomy)
	}
	const limit = apivalidation.TotalAnnotationSizeLimitB
	// poddns.io/applied and poddns.io/original-dns are written together.
	applied := len(policy.AnnotationApplied) + len("ndots") + len(policy.AnnotationOriginal) + len(policy.EncodeOriginal(pod(t, plainPod)))
	preview := len(policy.AnnotationResolvConf) + len(roomy.ResolvConf)
	for _, tt := range []struct {
		name                     string
		own                      int
		wantChanged, wantPreview bool
	}{
		{"both fit exactly", limit - applied - preview, true, true},
		{"the two-pool preview is one byte over", limit - applied - preview + 1, true, false},
		{"poddns.io/applied is one byte over", limit - applied + 1, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := pod(t, plainPod)
			p.Annotations = map[string]string{fillerKey: strings.Repeat("x", tt.own-len(fillerKey))}
			d := e.Evaluate(p, nil)
			if d.Changed != tt.wantChanged || d.PreviewOmitted == tt.wantPreview && tt.wantChanged {
				t.Errorf("changed %t, preview omitted %t; want changed %t, preview %t; warnings %q", d.Changed, d.PreviewOmitted, tt.wantChanged, tt.wantPreview, d.Warnings)
			}
			if !tt.wantChanged && (len(d.Pools) != 2 || strings.Contains(d.ResolvConf, "ndots:2") || !strings.Contains(d.ResolvConf, "# node pool b")) {
				t.Errorf("unchanged pod: previews %+v\n%s", d.Pools, d.ResolvConf)
			}
			d.Mutate(p)
			if _, ok := p.Annotations[policy.AnnotationResolvConf]; ok != tt.wantPreview {
				t.Errorf("annotation present %t, want %t", ok, tt.wantPreview)
			}
		})
	}
}
