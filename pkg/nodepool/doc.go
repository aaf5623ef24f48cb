// Package nodepool decides which node pools a pod can land on, from the
// pod's spec and the pools' node label selectors, without the node list.
//
// It exists because a pod's /etc/resolv.conf depends on the kubelet of its
// node (host search domains, cluster DNS, cluster domain), and clusters mix
// node pools whose kubelets differ. The webhook previews and checks a pod's
// DNS on every pool the pod may be scheduled to (its candidates): a policy
// that fits one pool can be truncated on another. The package is pure (no
// I/O) and imports only the Kubernetes API types and apimachinery.
//
// # Pools
//
// A [Set] is an ordered list of pools, each a name and a node label selector
// (metav1.LabelSelector: matchLabels and matchExpressions with In, NotIn,
// Exists, DoesNotExist). A node belongs to the first pool whose selector
// matches its labels, so a pool with an empty selector at the end is the
// default for every other node. Nodes that match no pool are not described
// by the set.
//
// # Candidates
//
// Pool i is a candidate for a pod when some set of node labels satisfies at
// once the pod's requirements, pool i's selector and the negation of every
// earlier pool's selector (the node would otherwise belong to the earlier
// pool). The pod's requirements are the scheduler's hard ones that are about
// labels:
//
//   - spec.nodeSelector: every key equals its value;
//   - spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution:
//     one of the nodeSelectorTerms holds, a term being the conjunction of its
//     matchExpressions (In, NotIn, Exists, DoesNotExist, Gt, Lt, with the
//     scheduler's meaning: NotIn and DoesNotExist hold for a node without the
//     label, Gt and Lt need a label whose value parses as an integer); an
//     empty term matches no node, as in the scheduler;
//   - spec.nodeName, when the node's labels are known ([Set.Candidates] with
//     nodeLabels): the pod is bound, its pool is the node's.
//
// Labels are independent of each other, so a conjunction of requirements is
// satisfiable when, key by key, some value (or the absence of the key)
// satisfies every requirement on that key; this test is exact. A term's
// matchFields (metadata.name) and a spec.nodeName whose node is not known
// cannot be decided from labels: they are taken to allow any node, which
// gives more candidates, never fewer. What the test cannot see, and so
// over-approximates: whether a node with such labels exists at all, taints
// and tolerations, preferred (soft) affinity, pod (anti-)affinity and
// topology spread. Values of Gt and Lt compare as integers, and a label value
// is taken in its canonical decimal form when the candidates are counted
// against NotIn (a node label "007" is not looked for). The search over the
// earlier pools' negations is bounded ([maxSteps]); past the bound the pool
// is counted as a candidate.
//
// A pod that matches no pool (it can only land on nodes the set does not
// describe) has no candidates; the caller decides what to preview it on.
package nodepool
