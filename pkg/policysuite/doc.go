// Package policysuite runs policy test suites: a poddns-test.yaml file that
// names policy files, manifests (pods, workloads and the Namespace documents
// whose labels the policies select on) and, per pod, the expected outcome —
// dnsPolicy, dnsConfig, resolv.conf, the policies applied, skipped and
// audited, and the admission warnings.
//
// It exists so that teams that keep DNS policies in git can gate merges on
// them, as `kyverno test` does for Kyverno policies: `webhook test DIR` runs
// a suite and fails with a readable diff when a policy change alters what a
// pod gets. A suite exercises exactly the code the webhook runs
// (policy.Engine through render.PodWithPolicies), offline.
//
// The file format:
//
//	apiVersion: poddns.io/v1alpha1
//	kind: PolicyTest
//	metadata:
//	  name: example-policies
//	policies: [..]                  # files or directories, relative to this file
//	resources: [pods.yaml]          # manifests, relative to this file
//	mode: per-policy                # optional: enforce | audit | per-policy
//	profile: node.yaml              # optional NodeProfile or NodeProfileSet file; else the built-in profile
//	results:
//	- pod: shop/checkout            # namespace/name of a pod or workload
//	  kind: Deployment              # optional, when several objects share the name
//	  applied: [ndots-2]            # each key is optional; a given key is compared exactly
//	  skipped: []
//	  audit: [timeout-audit]
//	  exempt: ""                    # why no policy was evaluated (opt-out annotation, ...)
//	  dnsPolicy: ClusterFirst
//	  dnsConfig: {options: [{name: ndots, value: "2"}]}
//	  resolvConf: |
//	    search shop.svc.cluster.local svc.cluster.local cluster.local
//	    nameserver 10.96.0.10
//	    options ndots:2
//	  warnings: []
//	  nodePools: [general, gpu]     # with a NodeProfileSet: the pools the pod can land on
//
// Decoding is strict (unknown and duplicate fields are errors). Lists of
// policies are compared in order. Pods in the resources without an entry in
// results are reported as not checked; an entry naming no pod is a failure.
package policysuite
