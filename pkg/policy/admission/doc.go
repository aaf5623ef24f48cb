// Package admission adapts the policy engine to the Kubernetes admission
// webhook protocol: a controller-runtime [admission.Handler] for Pods that
// mutates pods on CREATE with what [policy.Engine.Evaluate] decides.
//
// It exists so that the webhook server (cmd/webhook serve) stays a thin main:
// everything between an AdmissionReview and a JSON patch with warnings is
// here, testable without a server, and [Serve] runs the whole server (a
// controller-runtime manager) from resolved options.
//
// What the handler does, in order:
//
//   - only CREATE is mutated; every other operation is allowed untouched;
//   - the pod's metadata and the spec fields the engine reads are decoded,
//     the rest of the object is skipped (a malformed object is answered
//     with an error, code 400: the request is wrong, not a policy);
//   - its namespace is the request's (pods of controllers may come without
//     one); kube-system and the configured excluded namespaces (the
//     webhook's own) are left alone;
//   - the namespace's labels come from the manager's cache, or are read live
//     from the API server when the cache misses (a namespace created a moment
//     ago); when they cannot be read at all the pod is admitted untouched with
//     a warning;
//   - the engine decides; exempt pods (poddns.io/skip: "true", mirror pods,
//     Windows pods) and pods nothing changes (audit only, reinvocation) are
//     admitted exactly as sent, with the decision's warnings (what audit
//     policies would change, which policies were skipped and why);
//   - otherwise the pod is patched by [policy.Decision.Mutate] and the answer is
//     a JSON patch computed (gomodules.xyz/jsonpatch) from the fields poddns
//     owns (spec.dnsPolicy, spec.dnsConfig, metadata.annotations) before and
//     after, never from the whole pod, plus the warnings.
//
// [Server] is the HTTPS server the manager runs it in: HTTP/1.1 unless
// HTTP/2 is enabled, read and write timeouts, a limit on the request body
// and on the bodies handled at once (requests over it are answered at once
// with 413 or 429, which the API server's failurePolicy: Ignore turns into an
// unmodified pod), and a stop within the grace period.
//
// The handler never denies a pod: a policy whose result would be invalid or
// truncated is skipped by the engine for that pod and reported as a warning.
//
// Metrics ([Metrics]) are Prometheus collectors in namespace poddns,
// subsystem webhook; log lines have constant messages and key/value details.
package admission
