package impact

import (
	"slices"
	"strings"
	"testing"

	"github.com/poddns/poddns/pkg/manifest"
	"github.com/poddns/poddns/pkg/policy"
	"github.com/poddns/poddns/pkg/policy/policytest"
	"github.com/poddns/poddns/pkg/render"
	"github.com/poddns/poddns/pkg/resolvconf"
)

const ndots2Policy = `apiVersion: poddns.io/v1alpha1
kind: DNSPolicy
metadata: {name: ndots-2}
spec:
  match: {namespaceSelector: {matchLabels: {poddns.io/ndots: "2"}}}
  actions: {ndots: 2}
`

const unrelatedPolicy = `apiVersion: poddns.io/v1alpha1
kind: DNSPolicy
metadata: {name: host-network}
spec:
  match: {hostNetwork: true}
  actions: {hostNetworkClusterDNS: true}
`

func engine(t *testing.T, yaml string) *policy.Engine {
	t.Helper()
	profile := policytest.Profile(t, resolvconf.NodeConfig{
		ClusterDomain: "cluster.local", ClusterDNS: []string{"10.96.0.10"},
		ResolvConf: resolvconf.DefaultResolvConf, ResolvConfData: []byte("nameserver 10.0.0.2\nsearch corp.example\n"),
	})
	return policytest.Engine(t, policytest.Parse(t, yaml), policy.EngineOptions{Profile: profile})
}

const shopManifests = `apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {poddns.io/ndots: "2"}}
---
apiVersion: v1
kind: Pod
metadata:
  name: api-7d4f9c8b6-abcde
  namespace: shop
  labels: {app: api, pod-template-hash: 7d4f9c8b6}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: api-7d4f9c8b6, uid: rs, controller: true}]
spec: {containers: [{name: app, image: app}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: cart, namespace: shop}
spec:
  selector: {matchLabels: {app: cart}}
  template:
    metadata: {labels: {app: cart}}
    spec: {containers: [{name: app, image: app}], dnsConfig: {options: [{name: ndots, value: "3"}]}}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web-5c8f7d
  namespace: shop
  ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: web, uid: web, controller: true}]
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: app, image: app}], dnsPolicy: Default}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-5c8f7d-xyz12
  namespace: shop
  labels: {app: web, pod-template-hash: 5c8f7d}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-5c8f7d, uid: rs2, controller: true}]
spec: {containers: [{name: app, image: app}]}
`

func ndotsOf(c resolvconf.Config) string {
	for _, o := range c.Options {
		if strings.HasPrefix(o, "ndots:") {
			return o
		}
	}
	return "-"
}

func TestManifestPods(t *testing.T) {
	set, err := manifest.Decode(strings.NewReader(shopManifests), "shop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	nsLabels := render.NamespaceLabels(set.Namespaces)
	ndots2, unrelated := engine(t, ndots2Policy), engine(t, unrelatedPolicy)

	// A pod the current ndots:2 policy changed, as the API server holds it.
	var mutated manifest.Item
	for _, it := range set.Pods {
		if it.Name == "api-7d4f9c8b6-abcde" {
			r := render.PodWithPolicies(it, ndots2, nsLabels["shop"])
			mutated = it
			mutated.Name = "api-7d4f9c8b6-mut01"
			mutated.Pod = r.PatchedPod
			mutated.Pod.Name = mutated.Name
		}
	}
	if mutated.Pod.Annotations[policy.AnnotationApplied] != "ndots-2" {
		t.Fatalf("the mutated pod's annotations: %v", mutated.Pod.Annotations)
	}
	items := append(slices.Clone(set.Pods), mutated)

	cases := []struct {
		name              string
		pod               string
		p                 Policies
		workload          string
		current, proposed string
		proposedErr       string
	}{
		{"a pod as created, ndots:2 proposed", "api-7d4f9c8b6-abcde", Policies{Proposed: ndots2}, "Deployment shop/api", "ndots:5", "ndots:2", ""},
		{"a pod as created, ndots:2 now, nothing proposed", "api-7d4f9c8b6-abcde", Policies{Current: ndots2, Proposed: unrelated}, "Deployment shop/api", "ndots:2", "ndots:5", ""},
		// The webhook's change is reverted: the pod's own ndots:2 does
		// not win over the proposed policies.
		{"a pod the webhook changed, the policy dropped", "api-7d4f9c8b6-mut01", Policies{Proposed: unrelated}, "Deployment shop/api", "ndots:2", "ndots:5", ""},
		{"a pod the webhook changed, the policy kept", "api-7d4f9c8b6-mut01", Policies{Proposed: ndots2}, "Deployment shop/api", "ndots:2", "ndots:2", ""},
		// A pod of a workload given only as its Deployment.
		{"a Deployment's pod by name", "cart-6f5d4c3b2-q8w7e", Policies{Proposed: ndots2}, "Deployment shop/cart", "ndots:3", "ndots:3", ""},
		// The ReplicaSet known: its template is how the pod would be
		// created (dnsPolicy Default: the node's file, with ndots:2).
		{"a pod compared with its owner's template", "web-5c8f7d-xyz12", Policies{Proposed: ndots2}, "Deployment shop/web", "ndots:5", "ndots:2", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pods := ManifestPods(items, nsLabels, tc.p)
			got, ok := pods("shop", tc.pod)
			if !ok {
				t.Fatal("not found")
			}
			if strings.HasPrefix(tc.pod, "web-") && !slices.Equal(got.Proposed.Searches, []string{"corp.example"}) {
				t.Errorf("proposed searches %q, want the node's (the template's dnsPolicy Default)", got.Proposed.Searches)
			}
			if got.Workload.String() != tc.workload || ndotsOf(got.Current) != tc.current || ndotsOf(got.Proposed) != tc.proposed || got.ProposedError != tc.proposedErr {
				t.Errorf("got %s, current %s, proposed %s (%q); want %s, %s, %s (%q)", got.Workload, ndotsOf(got.Current), ndotsOf(got.Proposed), got.ProposedError,
					tc.workload, tc.current, tc.proposed, tc.proposedErr)
			}
		})
	}
	pods := ManifestPods(items, nsLabels, Policies{Proposed: ndots2})
	for _, miss := range [][2]string{{"shop", "nothing-1"}, {"other", "api-7d4f9c8b6-abcde"}} {
		if _, ok := pods(miss[0], miss[1]); ok {
			t.Errorf("pods(%s, %s) found", miss[0], miss[1])
		}
	}
}
