// Package report finds the running pods whose DNS differs from what the
// current policies would give them if they were created now, and says how to
// fix each: `webhook report` (offline against manifests, or live) and the
// background scan of `webhook serve`, which keeps policy reports
// (wgpolicyk8s.io PolicyReports or openreports.io Reports) per namespace.
//
// It exists because the webhook acts on CREATE only: after a policy is
// added or changed, or a namespace opts in, existing pods keep their old DNS
// until they are recreated, and nothing else says which ones.
//
// A pod is compared with what it would be created as, never with itself:
// the pod template of its owning workload when it is known (ReplicaSet to
// Deployment, Job to CronJob, through ownerReferences), else the pod with
// the changes of its applied policies reverted from the annotation
// poddns.io/original-dns the webhook writes (policy.AnnotationOriginal).
// That pod goes through the policy engine as the webhook would admit it; the
// result is compared field by field with the running pod (policy.DiffDNS).
// Taking the mutated pod's values as its own would make them "win" over
// every policy and every pod look compliant, and a pod mutated by an old
// version of a policy would never be found. A pod changed by a webhook that
// did not record its original fields, and with no known owner template,
// cannot be judged: it is reported as such.
//
// The package is pure apart from the io.Writer it writes to: it reads no
// cluster (the caller lists pods and owners, package report/scan does it
// for the live scan), and it never changes a pod.
package report
