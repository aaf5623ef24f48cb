// Package manifest reads the pods in Kubernetes manifests: the YAML (several
// documents separated by ---) or JSON that people keep in git, pipe from
// kubectl, or pass to an offline check.
//
// It exists because the offline CLI and the tests must see each pod exactly as
// the API server would: a workload's pod is its template, validated under the
// template's field path (spec.template.spec for a Deployment), in the
// workload's namespace, or "default" when the manifest names none, as kubectl
// applies it. For every pod-bearing object — a Pod, and the pod templates of
// Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job,
// CronJob and PodTemplate, also inside v1 List and typed *List objects — [Read]
// and [Decode] return an [Item]: where it came from (file, document, list
// position), its kind, name and namespace, the field path of its pod spec, and
// a *corev1.Pod built from it. Namespace documents are kept too, because
// policies select namespaces by their labels.
//
// Decoding is typed, with the client-go scheme, and strict as kubectl's
// default validation is: an unknown or duplicate field makes a document an
// error. Malformed documents are errors naming the file, the document and the
// decoder's message; the other documents are still returned. Kinds that carry
// no pod (a Service, a custom resource) are skipped with a [Note]. The package
// never modifies what it reads and applies no defaulting; that is the
// caller's choice (see resolvconf.DefaultPodSpec).
//
// [Read] and [Decode] return everything at once; [ReadEach] and [Stream] hand
// over each document's objects before reading the next, so that a large
// input costs the memory of one document (at most [MaxDocumentSize]).
package manifest
