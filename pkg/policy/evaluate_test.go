package policy_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/poddns/poddns/pkg/policy"
	"github.com/poddns/poddns/pkg/policy/policytest"
)

// newEngine is an engine over policies on policytest.StandardNode in mode.
func newEngine(t testing.TB, policies string, mode policy.GlobalMode) *policy.Engine {
	t.Helper()
	return policytest.Engine(t, policytest.Parse(t, policies), policy.EngineOptions{Profile: policytest.Profile(t, policytest.StandardNode), Mode: mode})
}

// doc returns a DNSPolicy document; spec is indented YAML under spec.
func doc(name, spec string) string {
	return "---\napiVersion: poddns.io/v1alpha1\nkind: DNSPolicy\nmetadata: {name: " + name + "}\nspec:\n" + spec + "\n"
}

func pod(t testing.TB, y string) *corev1.Pod {
	t.Helper()
	var p corev1.Pod
	if err := yaml.UnmarshalStrict([]byte(y), &p); err != nil {
		t.Fatalf("pod: %v", err)
	}
	if p.Namespace == "" {
		p.Namespace = "shop"
	}
	if p.Name == "" {
		p.Name = "p"
	}
	return &p
}

func dnsConfig(t testing.TB, y string) *corev1.PodDNSConfig {
	t.Helper()
	if y == "" {
		return nil
	}
	var dc corev1.PodDNSConfig
	if err := yaml.UnmarshalStrict([]byte(y), &dc); err != nil {
		t.Fatalf("dnsConfig: %v", err)
	}
	return &dc
}

const plainPod = "spec: {containers: [{name: c}]}"

type evalCase struct {
	name     string
	policies string
	mode     policy.GlobalMode
	pod      string
	nsLabels map[string]string

	wantPolicy   corev1.DNSPolicy
	wantConfig   string // YAML; "" is nil
	wantResolv   string // "" is not checked
	wantOutcomes map[string]policy.Outcome
	wantReasons  map[string]string   // substring of Result.Reason
	wantChanges  map[string][]string // policy -> "field: from -> to"
	wantKept     map[string][]string // policy -> "field: pod / policy"
	wantWarnings []string            // substrings, in order
}

func TestEvaluate(t *testing.T) {
	tests := []evalCase{
		// Selection.
		{
			name:         "namespaceSelector matches the namespace's labels",
			policies:     doc("ndots", "  match: {namespaceSelector: {matchLabels: {team: a}}}\n  actions: {ndots: 2}"),
			pod:          plainPod,
			nsLabels:     map[string]string{"team": "a"},
			wantPolicy:   "ClusterFirst",
			wantConfig:   "options: [{name: ndots, value: '2'}]",
			wantResolv:   "search shop.svc.cluster.local svc.cluster.local cluster.local ec2.internal\nnameserver 10.96.0.10\noptions ndots:2\n",
			wantOutcomes: map[string]policy.Outcome{"ndots": policy.OutcomeApplied},
			wantChanges:  map[string][]string{"ndots": {"spec.dnsConfig.options[ndots]: ndots:5 -> ndots:2"}},
		},
		{
			name:         "namespaceSelector does not match",
			policies:     doc("ndots", "  match: {namespaceSelector: {matchLabels: {team: a}}}\n  actions: {ndots: 2}"),
			pod:          plainPod,
			nsLabels:     map[string]string{"team": "b"},
			wantPolicy:   "ClusterFirst",
			wantOutcomes: map[string]policy.Outcome{"ndots": policy.OutcomeNotMatched},
			wantReasons:  map[string]string{"ndots": `namespaceSelector "team=a" does not match the namespace's labels`},
		},
		{
			name:         "kubernetes.io/metadata.name is added to the namespace labels",
			policies:     doc("by-name", "  match: {namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [shop]}]}}\n  actions: {ndots: 1}"),
			pod:          plainPod,
			wantPolicy:   "ClusterFirst",
			wantConfig:   "options: [{name: ndots, value: '1'}]",
			wantOutcomes: map[string]policy.Outcome{"by-name": policy.OutcomeApplied},
		},
		{
			name:         "podSelector",
			policies:     doc("web", "  match: {podSelector: {matchLabels: {app: web}}}\n  actions: {ndots: 2}") + doc("api", "  match: {podSelector: {matchLabels: {app: api}}}\n  actions: {ndots: 3}"),
			pod:          "metadata: {labels: {app: web}}\n" + plainPod,
			wantPolicy:   "ClusterFirst",
			wantConfig:   "options: [{name: ndots, value: '2'}]",
			wantOutcomes: map[string]policy.Outcome{"web": policy.OutcomeApplied, "api": policy.OutcomeNotMatched},
			wantReasons:  map[string]string{"api": `podSelector "app=api" does not match the pod's labels`},
		},
		{
			name:         "hostNetwork criterion",
			policies:     doc("hn", "  match: {hostNetwork: true}\n  actions: {ndots: 2}"),
			pod:          plainPod,
			wantPolicy:   "ClusterFirst",
			wantOutcomes: map[string]policy.Outcome{"hn": policy.OutcomeNotMatched},
			wantReasons:  map[string]string{"hn": "hostNetwork is false, the policy wants true"},
		},
		{
			name:         "dnsPolicies criterion sees the submitted policy, defaulted",
			policies:     doc("cf", "  match: {dnsPolicies: [ClusterFirst]}\n  actions: {ndots: 2}") + doc("def", "  match: {dnsPolicies: [Default]}\n  actions: {ndots: 3}"),
			pod:          plainPod,
			wantPolicy:   "ClusterFirst",
			wantConfig:   "options: [{name: ndots, value: '2'}]",
			wantOutcomes: map[string]policy.Outcome{"cf": policy.OutcomeApplied, "def": policy.OutcomeNotMatched},
			wantReasons:  map[string]string{"def": "dnsPolicy is ClusterFirst, the policy wants one of [Default]"},
		},
		{
			name:         "excluded namespace",
			policies:     doc("all", "  match: {excludedNamespaces: [kube-system, shop]}\n  actions: {ndots: 2}"),
			pod:          plainPod,
			wantPolicy:   "ClusterFirst",
			wantOutcomes: map[string]policy.Outcome{"all": policy.OutcomeNotMatched},
			wantReasons:  map[string]string{"all": `the namespace is in excludedNamespaces [kube-system shop]`},
		},

		// Precedence.
		{
			name:         "ascending priority: the highest priority wins a replaced field",
			policies:     doc("z-low", "  priority: -5\n  actions: {ndots: 1}") + doc("a-high", "  priority: 10\n  actions: {ndots: 3}") + doc("m-mid", "  actions: {ndots: 2}"),
			pod:          plainPod,
			wantPolicy:   "ClusterFirst",
			wantConfig:   "options: [{name: ndots, value: '3'}]",
			wantOutcomes: map[string]policy.Outcome{"z-low": policy.OutcomeApplied, "m-mid": policy.OutcomeApplied, "a-high": policy.OutcomeApplied},
			wantChanges: map[string][]string{
				"z-low":  {"spec.dnsConfig.options[ndots]: ndots:5 -> ndots:1"},
				"m-mid":  {"spec.dnsConfig.options[ndots]: ndots:1 -> ndots:2"},
				"a-high": {"spec.dnsConfig.options[ndots]: ndots:2 -> ndots:3"},
			},
		},
		{
			name:         "equal priority: name order, the later name wins",
			policies:     doc("yy", "  actions: {ndots: 4}") + doc("xx", "  actions: {ndots: 1}"),
			pod:          plainPod,
			wantPolicy:   "ClusterFirst",
			wantConfig:   "options: [{name: ndots, value: '4'}]",
			wantOutcomes: map[string]policy.Outcome{"xx": policy.OutcomeApplied, "yy": policy.OutcomeApplied},
		},
		{
			name:         "dnsPolicy: replace, last wins",
			policies:     doc("a", "  actions: {dnsPolicy: Default}") + doc("b", "  priority: 1\n  actions: {dnsPolicy: ClusterFirstWithHostNet}"),
			pod:          plainPod,
			wantPolicy:   "ClusterFirstWithHostNet",
			wantOutcomes: map[string]policy.Outcome{"a": policy.OutcomeApplied, "b": policy.OutcomeApplied},
			wantChanges:  map[string][]string{"a": {"spec.dnsPolicy: ClusterFirst -> Default"}, "b": {"spec.dnsPolicy: Default -> ClusterFirstWithHostNet"}},
		},

		// hostNetwork one-liner.
		{
			name:         "hostNetworkClusterDNS fixes a hostNetwork ClusterFirst pod",
			policies:     doc("hn", "  actions: {hostNetworkClusterDNS: true}"),
			pod:          "spec: {hostNetwork: true, containers: [{name: c}]}",
			wantPolicy:   "ClusterFirstWithHostNet",
			wantResolv:   "search shop.svc.cluster.local svc.cluster.local cluster.local ec2.internal\nnameserver 10.96.0.10\noptions ndots:5\n",
			wantOutcomes: map[string]policy.Outcome{"hn": policy.OutcomeApplied},
			wantChanges:  map[string][]string{"hn": {"spec.dnsPolicy: ClusterFirst -> ClusterFirstWithHostNet"}},
		},
		{
			name:         "hostNetworkClusterDNS leaves other pods alone",
			policies:     doc("hn", "  actions: {hostNetworkClusterDNS: true}"),
			pod:          plainPod,
			wantPolicy:   "ClusterFirst",
			wantOutcomes: map[string]policy.Outcome{"hn": policy.OutcomeUnchanged},
		},

		// Searches.
		{
			name: "searches.add: union keeping order, kubelet's entries not repeated",
			policies: doc("a", "  actions: {searches: {add: [a.example, b.example, ec2.internal]}}") +
				doc("b", "  priority: 1\n  actions: {searches: {add: [b.example, c.example]}}"),
			pod:          plainPod,
			wantPolicy:   "ClusterFirst",
			wantConfig:   "searches: [a.example, b.example, c.example]",
			wantResolv:   "search shop.svc.cluster.local svc.cluster.local cluster.local ec2.internal a.example b.example c.example\nnameserver 10.96.0.10\noptions ndots:5\n",
			wantOutcomes: map[string]policy.Outcome{"a": policy.OutcomeApplied, "b": policy.OutcomeApplied},
			wantChanges:  map[string][]string{"a": {"spec.dnsConfig.searches:  -> [a.example b.example]"}, "b": {"spec.dnsConfig.searches: [a.example b.example] -> [a.example b.example c.example]"}},
		},
		{
			name:         "searches.add: $(NAMESPACE) and $(CLUSTER_DOMAIN)",
			policies:     doc("corp", "  actions: {searches: {add: [$(NAMESPACE).corp.example, $(NAMESPACE).svc.$(CLUSTER_DOMAIN), corp.$(CLUSTER_DOMAIN)]}}"),
			pod:          plainPod,
			wantPolicy:   "ClusterFirst",
			wantConfig:   "searches: [shop.corp.example, corp.cluster.local]",
			wantOutcomes: map[string]policy.Outcome{"corp": policy.OutcomeApplied},
		},
		{
			name:         "searches.add keeps the pod's own searches first",
			policies:     doc("corp", "  actions: {searches: {add: [corp.example]}}"),
			pod:          "spec: {dnsConfig: {searches: [mine.example]}, containers: [{name: c}]}",
			wantPolicy:   "ClusterFirst",
			wantConfig:   "searches: [mine.example, corp.example]",
			wantOutcomes: map[string]policy.Outcome{"corp": policy.OutcomeApplied},
		},
		{
			name:         "searches.replace switches to None, with templating",
			policies:     doc("short", "  actions: {searches: {replace: [$(NAMESPACE).svc.$(CLUSTER_DOMAIN), svc.$(CLUSTER_DOMAIN)]}}"),
			pod:          plainPod,
			wantPolicy:   "None",
			wantConfig:   "nameservers: [10.96.0.10]\nsearches: [shop.svc.cluster.local, svc.cluster.local]\noptions: [{name: ndots, value: '5'}]",
			wantResolv:   "search shop.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n",
			wantOutcomes: map[string]policy.Outcome{"short": policy.OutcomeApplied},
			wantChanges: map[string][]string{"short": {
				"spec.dnsPolicy: ClusterFirst -> None",
				"spec.dnsConfig:  -> nameservers [10.96.0.10], searches [shop.svc.cluster.local svc.cluster.local cluster.local ec2.internal], options [ndots:5]",
				"spec.dnsConfig.searches: [shop.svc.cluster.local svc.cluster.local cluster.local ec2.internal] -> [shop.svc.cluster.local svc.cluster.local]",
			}},
		},

		// Options.
		{
			name:         "options.set: upsert by name, later policy wins, valueless option",
			policies:     doc("a", "  actions: {options: {set: [{name: timeout, value: '2'}, {name: single-request-reopen}]}}") + doc("b", "  priority: 1\n  actions: {options: {set: [{name: timeout, value: '3'}]}}"),
			pod:          plainPod,
			wantPolicy:   "ClusterFirst",
			wantConfig:   "options: [{name: timeout, value: '3'}, {name: single-request-reopen}]",
			wantResolv:   "search shop.svc.cluster.local svc.cluster.local cluster.local ec2.internal\nnameserver 10.96.0.10\noptions ndots:5 timeout:3 single-request-reopen\n",
			wantOutcomes: map[string]policy.Outcome{"a": policy.OutcomeApplied, "b": policy.OutcomeApplied},
			wantChanges:  map[string][]string{"a": {"spec.dnsConfig.options[timeout]:  -> timeout:2", "spec.dnsConfig.options[single-request-reopen]:  -> single-request-reopen"}, "b": {"spec.dnsConfig.options[timeout]: timeout:2 -> timeout:3"}},
		},
		{
			name:         "options.set: ndots equal to kubelet's is not a change",
			policies:     doc("five", "  actions: {ndots: 5}"),
			pod:          plainPod,
			wantPolicy:   "ClusterFirst",
			wantOutcomes: map[string]policy.Outcome{"five": policy.OutcomeUnchanged},
		},
		{
			name:         "options.remove: an option only in dnsConfig is removed there",
			policies:     doc("a", "  actions: {options: {set: [{name: rotate}]}}") + doc("b", "  priority: 1\n  actions: {options: {remove: [rotate]}}"),
			pod:          plainPod,
			wantPolicy:   "ClusterFirst",
			wantOutcomes: map[string]policy.Outcome{"a": policy.OutcomeApplied, "b": policy.OutcomeApplied},
			wantChanges:  map[string][]string{"b": {"spec.dnsConfig.options[rotate]: rotate -> "}},
		},
		{
			name:         "options.remove of a node option under Default switches to None",
			policies:     doc("no-edns", "  actions: {options: {remove: [edns0]}}"),
			pod:          "spec: {dnsPolicy: Default, containers: [{name: c}]}",
			wantPolicy:   "Default",
			wantOutcomes: map[string]policy.Outcome{"no-edns": policy.OutcomeUnchanged},
			wantKept:     map[string][]string{"no-edns": {"spec.dnsPolicy: Default / None (because option edns0 is removed)"}},
		},
		{
			name:         "options.remove of a node option with override: None synthesized from the node file",
			policies:     doc("no-edns", "  override: true\n  actions: {options: {remove: [edns0]}}"),
			pod:          "spec: {dnsPolicy: Default, containers: [{name: c}]}",
			wantPolicy:   "None",
			wantConfig:   "nameservers: [10.0.0.2]\nsearches: [ec2.internal]",
			wantResolv:   "search ec2.internal\nnameserver 10.0.0.2\n",
			wantOutcomes: map[string]policy.Outcome{"no-edns": policy.OutcomeApplied},
		},
		{
			name:         "options.remove of ndots under ClusterFirst switches to None",
			policies:     doc("no-ndots", "  actions: {options: {remove: [ndots]}}"),
			pod:          plainPod,
			wantPolicy:   "None",
			wantConfig:   "nameservers: [10.96.0.10]\nsearches: [shop.svc.cluster.local, svc.cluster.local, cluster.local, ec2.internal]",
			wantOutcomes: map[string]policy.Outcome{"no-ndots": policy.OutcomeApplied},
		},

		// None.
		{
			name:         "nameservers replaced: None with a complete config synthesized, then edited",
			policies:     doc("ndots", "  actions: {ndots: 2}") + doc("local", "  priority: 100\n  actions: {nameservers: [169.254.20.10]}"),
			pod:          "spec: {dnsConfig: {searches: [mine.example]}, containers: [{name: c}]}",
			wantPolicy:   "None",
			wantConfig:   "nameservers: [169.254.20.10]\nsearches: [shop.svc.cluster.local, svc.cluster.local, cluster.local, ec2.internal, mine.example]\noptions: [{name: ndots, value: '2'}]",
			wantResolv:   "search shop.svc.cluster.local svc.cluster.local cluster.local ec2.internal mine.example\nnameserver 169.254.20.10\noptions ndots:2\n",
			wantOutcomes: map[string]policy.Outcome{"ndots": policy.OutcomeApplied, "local": policy.OutcomeApplied},
			wantChanges: map[string][]string{"local": {
				"spec.dnsPolicy: ClusterFirst -> None",
				"spec.dnsConfig: searches [mine.example], options [ndots:2] -> nameservers [10.96.0.10], searches [shop.svc.cluster.local svc.cluster.local cluster.local ec2.internal mine.example], options [ndots:2]",
				"spec.dnsConfig.nameservers: [10.96.0.10] -> [169.254.20.10]",
			}},
		},
		{
			name: "dnsPolicy None with a complete config",
			policies: doc("node-local", `  actions:
    dnsPolicy: None
    nameservers: [169.254.20.10, 10.96.0.10]
    searches: {replace: [$(NAMESPACE).svc.cluster.local, svc.cluster.local, cluster.local]}
    ndots: 2
    options: {set: [{name: edns0}]}`),
			pod:          plainPod,
			wantPolicy:   "None",
			wantConfig:   "nameservers: [169.254.20.10, 10.96.0.10]\nsearches: [shop.svc.cluster.local, svc.cluster.local, cluster.local]\noptions: [{name: ndots, value: '2'}, {name: edns0}]",
			wantResolv:   "search shop.svc.cluster.local svc.cluster.local cluster.local\nnameserver 169.254.20.10\nnameserver 10.96.0.10\noptions ndots:2 edns0\n",
			wantOutcomes: map[string]policy.Outcome{"node-local": policy.OutcomeApplied},
		},
		{
			name:         "a None pod is edited in place",
			policies:     doc("local", "  override: true\n  actions: {nameservers: [169.254.20.10], searches: {add: [x.example]}}"),
			pod:          "spec: {dnsPolicy: None, dnsConfig: {nameservers: [10.0.0.53], searches: [a.example]}, containers: [{name: c}]}",
			wantPolicy:   "None",
			wantConfig:   "nameservers: [169.254.20.10]\nsearches: [a.example, x.example]",
			wantOutcomes: map[string]policy.Outcome{"local": policy.OutcomeApplied},
		},

		// A pod the API server rejects as submitted is left alone, whatever
		// the policies could make of it (issue 12, item 8).
		{
			name:         "invalid: a None pod without nameservers is not completed",
			policies:     doc("local", "  actions: {nameservers: [169.254.20.10], searches: {add: [x.example]}}"),
			pod:          "spec: {dnsPolicy: None, dnsConfig: {searches: [a.example]}, containers: [{name: c}]}",
			wantPolicy:   "None",
			wantConfig:   "searches: [a.example]",
			wantOutcomes: map[string]policy.Outcome{"local": policy.OutcomeSkipped},
			wantReasons:  map[string]string{"local": "the pod as submitted is rejected by the API server"},
			wantWarnings: []string{"poddns: the pod is left unchanged: the API server rejects its DNS settings: spec.dnsConfig.nameservers: Required value: must provide at least one DNS nameserver when `dnsPolicy` is None"},
		},
		{
			name:         "invalid: four nameservers are not replaced by kubelet's truncated list",
			policies:     doc("local", "  override: true\n  actions: {dnsPolicy: None, nameservers: [169.254.20.10]}"),
			pod:          "spec: {dnsConfig: {nameservers: [10.0.0.1, 10.0.0.2, 10.0.0.3, 10.0.0.4]}, containers: [{name: c}]}",
			wantPolicy:   "ClusterFirst",
			wantConfig:   "nameservers: [10.0.0.1, 10.0.0.2, 10.0.0.3, 10.0.0.4]",
			wantOutcomes: map[string]policy.Outcome{"local": policy.OutcomeSkipped},
			wantWarnings: []string{"poddns: the pod is left unchanged: the API server rejects its DNS settings: spec.dnsConfig.nameservers: Invalid value: "},
		},
		{
			name:         "invalid: 1000 searches are not replaced",
			policies:     doc("corp", "  override: true\n  actions: {searches: {replace: [corp.example]}}"),
			pod:          "spec: {dnsConfig: {searches: [" + searchList(1000) + "]}, containers: [{name: c}]}",
			wantPolicy:   "ClusterFirst",
			wantConfig:   "searches: [" + searchList(1000) + "]",
			wantOutcomes: map[string]policy.Outcome{"corp": policy.OutcomeSkipped},
			wantWarnings: []string{"must not have more than 32 search paths"},
		},
		{
			name:         "invalid: a 10k-character search domain is not dropped",
			policies:     doc("ndots", "  actions: {ndots: 2}") + doc("corp", "  override: true\n  actions: {searches: {replace: [corp.example]}}"),
			pod:          "spec: {dnsConfig: {searches: [" + strings.Repeat("a", 10000) + ".example]}, containers: [{name: c}]}",
			wantPolicy:   "ClusterFirst",
			wantConfig:   "searches: [" + strings.Repeat("a", 10000) + ".example]",
			wantOutcomes: map[string]policy.Outcome{"corp": policy.OutcomeSkipped, "ndots": policy.OutcomeSkipped},
			wantWarnings: []string{"poddns: the pod is left unchanged: the API server rejects its DNS settings: spec.dnsConfig.searches: Invalid value: "},
		},
		{
			name:         "invalid: no warning when no policy selects the pod",
			policies:     doc("corp", "  match: {namespaceSelector: {matchLabels: {team: a}}}\n  actions: {searches: {add: [corp.example]}}"),
			pod:          "spec: {dnsPolicy: None, containers: [{name: c}]}",
			wantPolicy:   "None",
			wantOutcomes: map[string]policy.Outcome{"corp": policy.OutcomeNotMatched},
		},

		// The pod's own settings and override.
		{
			name:         "the pod's explicit option wins without override",
			policies:     doc("ndots", "  actions: {ndots: 2, options: {set: [{name: rotate}]}}"),
			pod:          "spec: {dnsConfig: {options: [{name: ndots, value: '3'}]}, containers: [{name: c}]}",
			wantPolicy:   "ClusterFirst",
			wantConfig:   "options: [{name: ndots, value: '3'}, {name: rotate}]",
			wantOutcomes: map[string]policy.Outcome{"ndots": policy.OutcomeApplied},
			wantKept:     map[string][]string{"ndots": {"spec.dnsConfig.options[ndots]: ndots:3 / ndots:2"}},
		},
		{
			name:         "override: the policy wins over the pod's option",
			policies:     doc("ndots", "  override: true\n  actions: {ndots: 2}"),
			pod:          "spec: {dnsConfig: {options: [{name: ndots, value: '3'}]}, containers: [{name: c}]}",
			wantPolicy:   "ClusterFirst",
			wantConfig:   "options: [{name: ndots, value: '2'}]",
			wantOutcomes: map[string]policy.Outcome{"ndots": policy.OutcomeApplied},
		},
		{
			name:         "the pod's explicit dnsPolicy wins over a switch to None",
			policies:     doc("local", "  actions: {nameservers: [169.254.20.10], ndots: 2}"),
			pod:          "spec: {dnsPolicy: ClusterFirstWithHostNet, hostNetwork: true, containers: [{name: c}]}",
			wantPolicy:   "ClusterFirstWithHostNet",
			wantConfig:   "options: [{name: ndots, value: '2'}]",
			wantOutcomes: map[string]policy.Outcome{"local": policy.OutcomeApplied},
			wantKept:     map[string][]string{"local": {"spec.dnsPolicy: ClusterFirstWithHostNet / None (because nameservers are replaced)"}},
		},
		{
			name:         "the pod's explicit nameservers and searches win without override",
			policies:     doc("local", "  actions: {dnsPolicy: None, nameservers: [169.254.20.10], searches: {replace: [a.example]}}"),
			pod:          "spec: {dnsPolicy: None, dnsConfig: {nameservers: [1.1.1.1], searches: [b.example]}, containers: [{name: c}]}",
			wantPolicy:   "None",
			wantConfig:   "nameservers: [1.1.1.1]\nsearches: [b.example]",
			wantOutcomes: map[string]policy.Outcome{"local": policy.OutcomeUnchanged},
			wantKept:     map[string][]string{"local": {"spec.dnsConfig.nameservers: [1.1.1.1] / [169.254.20.10]", "spec.dnsConfig.searches: [b.example] / [a.example]"}},
		},
		{
			name:         "a policy value equal to the pod's is not a conflict",
			policies:     doc("ndots", "  actions: {ndots: 3}"),
			pod:          "spec: {dnsConfig: {options: [{name: ndots, value: '3'}]}, containers: [{name: c}]}",
			wantPolicy:   "ClusterFirst",
			wantConfig:   "options: [{name: ndots, value: '3'}]",
			wantOutcomes: map[string]policy.Outcome{"ndots": policy.OutcomeUnchanged},
		},

		// Modes.
		{
			name:         "audit policy changes nothing and says what it would change",
			policies:     doc("ndots", "  mode: audit\n  actions: {ndots: 2}") + doc("reopen", "  priority: 1\n  actions: {options: {set: [{name: single-request-reopen}]}}"),
			pod:          plainPod,
			wantPolicy:   "ClusterFirst",
			wantConfig:   "options: [{name: single-request-reopen}]",
			wantOutcomes: map[string]policy.Outcome{"ndots": policy.OutcomeAudit, "reopen": policy.OutcomeApplied},
			wantChanges:  map[string][]string{"ndots": {"spec.dnsConfig.options[ndots]: ndots:5 -> ndots:2"}},
			wantWarnings: []string{`poddns: policy "ndots" (audit) would change spec.dnsConfig.options[ndots] from ndots:5 to ndots:2`},
		},
		{
			name:         "global audit overrides enforce",
			policies:     doc("ndots", "  actions: {ndots: 2}"),
			mode:         policy.GlobalAudit,
			pod:          plainPod,
			wantPolicy:   "ClusterFirst",
			wantOutcomes: map[string]policy.Outcome{"ndots": policy.OutcomeAudit},
			wantWarnings: []string{`policy "ndots" (audit) would change`},
		},
		{
			name:         "global enforce overrides audit",
			policies:     doc("ndots", "  mode: audit\n  actions: {ndots: 2}"),
			mode:         policy.GlobalEnforce,
			pod:          plainPod,
			wantPolicy:   "ClusterFirst",
			wantConfig:   "options: [{name: ndots, value: '2'}]",
			wantOutcomes: map[string]policy.Outcome{"ndots": policy.OutcomeApplied},
		},

		// Skipping a policy whose result is invalid or truncated.
		{
			name:         "skipped: kubelet would truncate the searches; the other policy applies",
			policies:     doc("corp", "  actions: {searches: {add: [corp.example]}}") + doc("ndots", "  actions: {ndots: 2}"),
			pod:          "spec: {dnsConfig: {searches: [" + searchList(28) + "]}, containers: [{name: c}]}",
			wantPolicy:   "ClusterFirst",
			wantConfig:   "searches: [" + searchList(28) + "]\noptions: [{name: ndots, value: '2'}]",
			wantOutcomes: map[string]policy.Outcome{"corp": policy.OutcomeSkipped, "ndots": policy.OutcomeApplied},
			wantReasons:  map[string]string{"corp": "kubelet would truncate the result: Search Line limits were exceeded"},
			wantWarnings: []string{`poddns: policy "corp" not applied: kubelet would truncate the result: Search Line limits were exceeded, some search paths have been omitted`},
		},
		{
			name:         "skipped: the API server would reject the result (33 searches)",
			policies:     doc("corp", "  actions: {searches: {add: [corp.example]}}"),
			pod:          "spec: {dnsPolicy: None, dnsConfig: {nameservers: [1.1.1.1], searches: [" + searchList(32) + "]}, containers: [{name: c}]}",
			wantPolicy:   "None",
			wantOutcomes: map[string]policy.Outcome{"corp": policy.OutcomeSkipped},
			wantReasons:  map[string]string{"corp": "the API server would reject the result: spec.dnsConfig.searches: Invalid value: "},
			wantWarnings: []string{`poddns: policy "corp" not applied: the API server would reject the result: spec.dnsConfig.searches: Invalid value: ["sa.example",`},
		},
		{
			name:         "skipped: a templated search too long for this namespace",
			policies:     doc("long", "  actions: {searches: {add: [$(NAMESPACE)."+strings.Repeat("a", 63)+"."+strings.Repeat("b", 63)+"."+strings.Repeat("c", 63)+"]}}"),
			pod:          "metadata: {namespace: " + strings.Repeat("n", 63) + "}\n" + plainPod,
			wantPolicy:   "ClusterFirst",
			wantOutcomes: map[string]policy.Outcome{"long": policy.OutcomeSkipped},
			wantReasons:  map[string]string{"long": "the API server would reject the result: spec.dnsConfig.searches[0]: Invalid value: "},
			wantWarnings: []string{`must be no more than 253 characters`},
		},
		{
			name:         "skipped in audit mode is a warning too",
			policies:     doc("corp", "  mode: audit\n  actions: {searches: {add: [corp.example]}}"),
			pod:          "spec: {dnsConfig: {searches: [" + searchList(28) + "]}, containers: [{name: c}]}",
			wantPolicy:   "ClusterFirst",
			wantConfig:   "searches: [" + searchList(28) + "]",
			wantOutcomes: map[string]policy.Outcome{"corp": policy.OutcomeSkipped},
			wantWarnings: []string{`poddns: policy "corp" (audit) would not be applied: kubelet would truncate the result`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, tt.policies, tt.mode)
			p := pod(t, tt.pod)
			before := p.DeepCopy()
			d := e.Evaluate(p, tt.nsLabels)
			if !reflect.DeepEqual(p, before) {
				t.Errorf("Evaluate changed the pod")
			}
			checkDecision(t, &d, tt)

			// Idempotence: the mutated pod changes no more.
			d.SetDNSFields(p)
			again := e.Evaluate(p, tt.nsLabels)
			if again.Changed || again.DNSPolicy != d.DNSPolicy || !reflect.DeepEqual(again.DNSConfig, d.DNSConfig) {
				t.Errorf("Evaluate on the mutated pod changed it again: %s %s -> %s %s (%+v)",
					d.DNSPolicy, toYAML(t, d.DNSConfig), again.DNSPolicy, toYAML(t, again.DNSConfig), again.Results)
			}
			if !d.Changed && !reflect.DeepEqual(p.Spec.DNSConfig, before.Spec.DNSConfig) {
				t.Errorf("Changed = false but the dnsConfig differs")
			}
		})
	}
}

func checkDecision(t *testing.T, d *policy.Decision, tt evalCase) {
	t.Helper()
	if d.DNSPolicy != tt.wantPolicy {
		t.Errorf("DNSPolicy = %s, want %s", d.DNSPolicy, tt.wantPolicy)
	}
	if want := dnsConfig(t, tt.wantConfig); tt.wantConfig != "" || d.DNSConfig != nil {
		if !reflect.DeepEqual(d.DNSConfig, want) && !(tt.wantConfig == "" && d.DNSConfig != nil && reflect.DeepEqual(d.DNSConfig, pod(t, tt.pod).Spec.DNSConfig)) {
			t.Errorf("DNSConfig:\n got %s\nwant %s", toYAML(t, d.DNSConfig), toYAML(t, want))
		}
	}
	if tt.wantResolv != "" && d.ResolvConf != tt.wantResolv {
		t.Errorf("ResolvConf:\n got %q\nwant %q", d.ResolvConf, tt.wantResolv)
	}
	got := map[string]policy.Result{}
	for _, r := range d.Results {
		got[r.Policy] = r
	}
	for name, want := range tt.wantOutcomes {
		if got[name].Outcome != want {
			t.Errorf("Outcome of %s = %q (reason %q), want %q", name, got[name].Outcome, got[name].Reason, want)
		}
	}
	for name, want := range tt.wantReasons {
		if !strings.Contains(got[name].Reason, want) {
			t.Errorf("Reason of %s = %q, want it to contain %q", name, got[name].Reason, want)
		}
	}
	for name, want := range tt.wantChanges {
		var changes []string
		for _, c := range got[name].Changes {
			changes = append(changes, c.Field+": "+c.From+" -> "+c.To)
		}
		if !slices.Equal(changes, want) {
			t.Errorf("Changes of %s:\n got %q\nwant %q", name, changes, want)
		}
	}
	for name, want := range tt.wantKept {
		var kept []string
		for _, k := range got[name].Kept {
			kept = append(kept, k.Field+": "+k.Pod+" / "+k.Policy)
		}
		if !slices.Equal(kept, want) {
			t.Errorf("Kept of %s:\n got %q\nwant %q", name, kept, want)
		}
	}
	if len(d.Warnings) != len(tt.wantWarnings) {
		t.Errorf("Warnings = %q, want %d matching %q", d.Warnings, len(tt.wantWarnings), tt.wantWarnings)
	} else {
		for i, w := range tt.wantWarnings {
			if !strings.Contains(d.Warnings[i], w) {
				t.Errorf("Warning %d = %q, want it to contain %q", i, d.Warnings[i], w)
			}
		}
	}
}

// searchList is n distinct search domains, comma-separated for flow YAML.
func searchList(n int) string {
	s := make([]string, n)
	for i := range s {
		s[i] = "s" + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + ".example"
		if i >= 26 {
			s[i] = "t" + s[i]
		}
	}
	return strings.Join(s, ", ")
}

func toYAML(t testing.TB, v any) string {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
