// Package policy is poddns's pod DNS policy engine: the DNSPolicy file format,
// its strict loader and validator, and the evaluation that decides, for one
// pod, which policies apply and what the pod's dnsPolicy and dnsConfig become.
//
// It exists so that the admission webhook and the offline CLI (render,
// explain, test) make exactly the same decision: both call
// [Engine.Evaluate], which is pure (no I/O, no clock, no globals) and needs
// only the pod and its namespace's labels. The package never imports
// controller-runtime; the admission adapter lives in policy/admission. It
// uses [resolvconf] for everything kubelet and the API server decide: the
// resolv.conf preview, the None synthesis, API validation and kubelet's
// truncation.
//
// # File format
//
// A policy file holds one or more YAML (or JSON) documents separated by ---:
//
//	apiVersion: poddns.io/v1alpha1
//	kind: DNSPolicy
//	metadata:
//	  name: node-local-cache          # DNS-1123 subdomain, unique in the Set
//	spec:
//	  priority: 100                   # default 0
//	  mode: enforce                   # enforce (default) | audit
//	  override: false                 # true: win over the pod's own settings
//	  match:                          # every criterion given must hold
//	    namespaceSelector: {matchLabels: {poddns.io/node-local-dns: "true"}}
//	    podSelector: {matchExpressions: [{key: app, operator: NotIn, values: [coredns]}]}
//	    hostNetwork: false            # true | false; omitted: any
//	    dnsPolicies: [ClusterFirst]   # the pod's dnsPolicy as submitted
//	    excludedNamespaces: [kube-system]
//	  actions:                        # at least one
//	    hostNetworkClusterDNS: true   # hostNetwork + ClusterFirst -> ClusterFirstWithHostNet
//	    dnsPolicy: None               # ClusterFirst | ClusterFirstWithHostNet | Default | None
//	    nameservers: [169.254.20.10]  # replace (1 to 3)
//	    searches:
//	      add: [corp.example.com]     # or replace: [...]; $(NAMESPACE), $(CLUSTER_DOMAIN)
//	    ndots: 2                      # 0 to 15
//	    options:
//	      set: [{name: single-request-reopen}, {name: timeout, value: "2"}]
//	      remove: [edns0]
//
// Decoding is strict and case-sensitive, with the YAML rules kubectl applies
// to manifests (sigs.k8s.io/yaml, then sigs.k8s.io/json): an unknown field
// (including a field in the wrong case), a duplicate field, a value of the
// wrong type, a wrong apiVersion or kind are errors. Every error is a *[LoadError] naming the
// file, the document (counted from 1), the line and the field path, e.g.
//
//	policies/ndots.yaml: document 2, line 14: spec.actions.ndots: Invalid value: 20: must be between 0 and 15
//
// Validation also compiles the selectors (the API server's label selector
// rules) and rejects what can never give a valid pod: dnsPolicy None without
// nameservers, more than 3 nameservers, an invalid or duplicate nameserver IP,
// a search domain the API server would refuse (checked after substituting
// sample values for the variables), an unknown $(VARIABLE), more than 32
// searches or 2048 characters, ndots outside 0..15, an empty, duplicate or
// malformed option name, an option both set and removed, add and replace
// together, an action that takes something away combined with a dnsPolicy
// other than None, a policy without actions, an unknown mode or dnsPolicy, an
// invalid excluded namespace name, a missing, invalid or duplicate policy
// name. Loading is all or nothing ([Load], [Parse]).
//
// A directory contributes its .yaml, .yml and .json files in name order (not
// its subdirectories, even through a link: package inputdir, whose rule
// `webhook render -f DIR` shares); entries whose name starts with ".." are
// ignored and symbolic links are followed, which is exactly a ConfigMap volume: its keys
// are links into ..data, a link to a timestamped directory that kubelet swaps
// atomically. [Engine.Reload] loads again and swaps the new Set in with an
// atomic pointer; a bad reload keeps the Set in use, returns the error and is
// counted ([Engine.ReloadFailures]).
//
// # Selection
//
// A policy selects a pod when every criterion it gives holds. Selection sees
// the pod as submitted — an empty dnsPolicy counts as ClusterFirst, as the API
// server defaults it — not as earlier policies left it, so the order of
// policies never changes which ones match. Namespace labels are those of the
// Namespace object, plus kubernetes.io/metadata.name, which the API server
// adds to every namespace; Evaluate adds it when the caller's labels lack it
// (offline, a namespace without a Namespace document has only that label).
//
// # Precedence
//
// Matched policies apply one after another in ascending priority, ties broken
// by name (byte order) — a total, deterministic order. Each policy sees the
// result of the ones before it, so for a field that is replaced the last
// policy to set it (the highest priority) wins.
//
// # Merge rules
//
// Field by field, for a pod that several policies match:
//
//	dnsPolicy                 replace (last policy wins)
//	hostNetworkClusterDNS     replace dnsPolicy ClusterFirst by ClusterFirstWithHostNet, hostNetwork pods only
//	nameservers               replace the whole list
//	searches.add              union keeping order: entries not yet in the pod's
//	                          resolv.conf search list are appended
//	searches.replace          replace the whole list
//	ndots, options.set        upsert by option name (value replaced in place, else appended)
//	options.remove            delete by option name
//
// Setting a dnsPolicy other than None keeps the pod's dnsConfig, which kubelet
// then adds to its own settings (a pod leaving None this way usually ends up
// with too many nameservers and the policy is skipped for it).
//
// Against the pod's own settings: the pod's explicit setting wins unless the
// policy says override: true. Explicit means: a dnsPolicy other than
// ClusterFirst (the default, which cannot be told from an omitted one at
// admission), nameservers or searches listed in the pod's dnsConfig, and each
// option the pod's dnsConfig names. A policy's value equal to the pod's is
// not a conflict. What the pod keeps is reported per field ([Kept]); the
// policy's other actions still apply.
//
// # What ClusterFirst can express, and the switch to None
//
// Under ClusterFirst, ClusterFirstWithHostNet and Default, kubelet builds the
// resolv.conf itself and a pod's dnsConfig can only add to it: nameservers and
// searches are appended, options are merged by name. Adding searches and
// setting options (ndots included) are therefore written into dnsConfig and
// the pod keeps its dnsPolicy. Actions that take something away — replacing
// the nameservers or the searches by a list that differs from kubelet's,
// removing an option kubelet generates (ndots:5, the node's options) — cannot
// be expressed that way, so the pod switches to dnsPolicy None with a
// complete dnsConfig synthesized from kubelet's result for the pod on the
// engine's node profile (resolvconf.Compute), which the action then edits.
// The switch shows in the Decision as changes of spec.dnsPolicy and
// spec.dnsConfig with the reason. A pod that chose another dnsPolicy itself
// is not switched unless the policy says override: true.
//
// # Modes
//
// A policy enforces (changes the pod) or audits (changes nothing; the
// Decision lists what it would change, and a warning says it). The engine's
// global mode (per-policy, enforce, audit) overrides every policy's mode.
// Audit results are computed against the state the enforced policies before
// them left, and are never seen by the policies after them.
//
// # Skipping a policy for one pod
//
// After each policy the result is checked with the API server's validation
// (resolvconf.ValidatePodSpec) and kubelet's limits (DNSConfigForming events
// from resolvconf.Compute). A policy that adds an API error or a truncation
// for this pod is not applied to it: it is reported as skipped with the
// reason and a warning, and the other policies still apply. A pod is never
// refused for a policy's fault.
//
// # Pods left unchanged
//
// The webhook never denies a pod and never silently alters one the API
// server would reject. Two cases leave the whole pod unchanged, with one
// warning, and every policy that selects it reported as skipped:
//
//   - The pod as submitted fails the API server's validation of its DNS
//     fields (resolvconf.ValidatePodSpec: four nameservers, 33 searches, an
//     invalid search domain, None without nameservers, ...). No policy
//     "repairs" it: the API server rejects it with its own message, so the
//     author learns that the manifest is wrong ([Decision.Invalid]).
//   - The annotations poddns.io/applied and poddns.io/original-dns (the
//     DNS fields as submitted, [AnnotationOriginal]) do not fit: the API
//     server limits a pod's annotations to 262144 bytes in total (keys and
//     values, apimachinery's ValidateAnnotationsSize). A change that cannot
//     be recorded is not made, since tooling that reverts applied policies
//     (`webhook report`) reads those annotations. When only the preview poddns.io/resolv-conf
//     does not fit, the pod is changed and annotated without it
//     ([Decision.PreviewOmitted]), with a warning; a preview the pod brought
//     itself is removed rather than left stale.
//
// # Node pools
//
// An engine built with node pools (EngineOptions.Pools, from a
// NodeProfileSet) evaluates a pod on each pool it can land on: its
// candidates (package nodepool: its nodeSelector and required node affinity
// against the pools' node selectors), or every pool when it matches none
// (Decision.PoolsNote). The pod gets one dnsPolicy and dnsConfig whatever
// its node, so:
//
//   - a policy skipped on some candidate for that pool's reason — kubelet
//     would truncate or fail there, or it is skipped on some pools only — is
//     skipped on every candidate, with a reason and warning naming the
//     pools ("on node pool "long": kubelet would truncate the result: ...");
//   - a policy whose result differs from pool to pool (a None switch copies
//     the node's search list, $(CLUSTER_DOMAIN) is the pool's) is skipped
//     with a reason that says so;
//
// and the evaluation is run again without them until no more is skipped.
// The previews are per pool (Decision.Pools); when they differ, ResolvConf
// and the annotation poddns.io/resolv-conf hold each pool's file under a
// comment "# node pool NAME", within the annotation size rule below. A
// warning that only some pools give names them.
//
// # Idempotence
//
// Evaluating the mutated pod again changes nothing more: values equal to the
// policy's are not changes, added searches and options are only added when
// missing, and a pod already switched to None keeps its synthesized list.
package policy
