package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	sigsjson "sigs.k8s.io/json"

	"github.com/poddns/poddns/pkg/policy"
)

// Path is where the webhook server serves the handler, as the
// MutatingWebhookConfiguration in deploy/base/webhook names it.
const Path = "/mutate-v1-pod"

// AlwaysExcluded are the namespaces never mutated, whatever the
// configuration says: the cluster's own DNS and control plane live there.
var AlwaysExcluded = []string{"kube-system"}

// Handler mutates Pods on CREATE with the policy engine's decision. Engine
// and Namespaces are required; the others are optional.
type Handler struct {
	// Engine decides; reloads swap its policies while the handler runs.
	Engine *policy.Engine
	// Namespaces reads Namespace objects, usually the manager's cache.
	Namespaces client.Reader
	// APIReader reads a Namespace live when Namespaces does not have it yet
	// (nil: no second read).
	APIReader client.Reader
	// ExcludedNamespaces are left alone, in addition to AlwaysExcluded (the
	// webhook's own namespace belongs here).
	ExcludedNamespaces []string
	// Metrics are updated when set.
	Metrics *Metrics
	// Log is used when set; else the logger controller-runtime puts in the
	// request's context.
	Log *logr.Logger
}

var _ admission.Handler = (*Handler)(nil)

// NewHandler returns a handler reading namespaces from namespaces, and live
// from apiReader on a miss (nil: no second read).
func NewHandler(engine *policy.Engine, namespaces, apiReader client.Reader) *Handler {
	return &Handler{Engine: engine, Namespaces: namespaces, APIReader: apiReader}
}

// Handle answers one admission request. It never denies.
func (h *Handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := time.Now()
	resp, result := h.handle(ctx, req)
	if h.Metrics != nil {
		h.Metrics.Admissions.WithLabelValues(result).Inc()
		h.Metrics.Duration.Observe(time.Since(start).Seconds())
	}
	return resp
}

func (h *Handler) logger(ctx context.Context) logr.Logger {
	if h.Log != nil {
		return *h.Log
	}
	return logf.FromContext(ctx)
}

// requestLogger is the logger of one request. name is the pod's name, or its
// generateName prefix followed by "*".
func (h *Handler) requestLogger(ctx context.Context, req admission.Request, name string) logr.Logger {
	return h.logger(ctx).WithValues("namespace", req.Namespace, "name", name, "uid", req.UID, "operation", req.Operation)
}

// podName is the pod's name, or its generateName prefix followed by "*",
// for log lines: from the request, else from meta (the decoded pod's, or
// what could be read of a pod that did not decode).
func podName(req admission.Request, meta metav1.ObjectMeta) string {
	switch {
	case req.Name != "":
		return req.Name
	case meta.Name != "":
		return meta.Name
	case meta.GenerateName != "":
		return meta.GenerateName + "*"
	}
	return ""
}

// rawMeta is what can be read of the metadata of an object that did not
// decode as a pod.
func rawMeta(raw []byte) metav1.ObjectMeta {
	var obj struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	_ = json.Unmarshal(raw, &obj) // best effort: names are for the log
	return obj.Metadata
}

func (h *Handler) handle(ctx context.Context, req admission.Request) (admission.Response, string) {
	if req.Operation == "" {
		return admission.Errored(http.StatusBadRequest, errors.New("poddns: the AdmissionReview holds no request")), ResultError
	}
	if req.Operation != admissionv1.Create {
		return admission.Allowed("poddns mutates pods on CREATE only"), ResultIgnored
	}
	if req.Kind.Kind != "" && (req.Kind.Group != "" || req.Kind.Kind != "Pod") || req.SubResource != "" {
		return admission.Allowed("poddns mutates pods only"), ResultIgnored
	}
	var pod corev1.Pod
	if err := decodePod(req.Object.Raw, &pod); errors.Is(err, errIncompletePod) {
		// The API server always sends both; a pod without them is not one
		// it would accept, so it is left for the API server to refuse.
		h.requestLogger(ctx, req, podName(req, rawMeta(req.Object.Raw))).Info("pod left unchanged", "reason", err.Error())
		return admission.Allowed("incomplete pod").WithWarnings("poddns: " + err.Error() + "; the pod is left unchanged"), ResultUnchanged
	} else if err != nil {
		h.requestLogger(ctx, req, podName(req, rawMeta(req.Object.Raw))).Info("cannot decode the pod", "error", err.Error())
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("poddns: decode pod: %w", err)), ResultError
	}
	// The pod's name comes from the decoded pod: decoding the object again
	// for it would cost as much as the pod's decoding.
	log := h.requestLogger(ctx, req, podName(req, pod.ObjectMeta))
	ns := req.Namespace
	if ns == "" {
		ns = pod.Namespace
	}
	if ns == "" {
		log.Info("pod without a namespace")
		return admission.Allowed("no namespace").WithWarnings("poddns: the request names no namespace; the pod is left unchanged"), ResultNoLabels
	}
	if slices.Contains(AlwaysExcluded, ns) || slices.Contains(h.ExcludedNamespaces, ns) {
		return admission.Allowed("namespace excluded from poddns"), ResultExcluded
	}

	nsLabels, err := h.namespaceLabels(ctx, ns)
	if err != nil {
		log.Error(err, "cannot read the namespace's labels; pod left unchanged")
		return admission.Allowed("namespace unavailable").WithWarnings(
			fmt.Sprintf("poddns: cannot read namespace %q, the pod is left unchanged: %v", ns, err)), ResultNoLabels
	}

	// Evaluate a copy that carries the request's namespace; patch the pod
	// as sent, so the patch never adds metadata.namespace. A shallow copy
	// does: Evaluate does not modify the pod, and its Decision shares
	// nothing with it.
	evalPod := pod
	evalPod.Namespace = ns
	d := h.Engine.Evaluate(&evalPod, nsLabels)
	h.record(log, &d)

	if d.Exempt != "" {
		log.V(1).Info("pod exempt", "reason", d.Exempt)
		return admission.Allowed("exempt: " + d.Exempt), ResultExempt
	}
	hadAnnotations, prev := pod.Annotations != nil, ownedAnnotations(pod.Annotations)
	before, err := dnsJSON(&pod)
	if err == nil && !d.Mutate(&pod) {
		return admission.Allowed("no change").WithWarnings(d.Warnings...), ResultUnchanged
	}
	var ops []jsonpatch.JsonPatchOperation
	if err == nil {
		var after []byte
		if after, err = dnsJSON(&pod); err == nil {
			ops, err = jsonpatch.CreatePatch(before, after)
		}
		ops = append(ops, annotationOps(hadAnnotations, prev, pod.Annotations)...)
	}
	if err != nil {
		// Never deny for our own fault: admit unchanged, say so.
		log.Error(err, "cannot compute the patch; pod left unchanged")
		return admission.Allowed("internal error").WithWarnings(
			append(d.Warnings, "poddns: internal error, the pod is left unchanged: "+err.Error())...), ResultError
	}
	if len(ops) == 0 {
		return admission.Allowed("no change").WithWarnings(d.Warnings...), ResultUnchanged
	}
	log.Info("pod mutated", "policies", strings.Join(d.Applied(), ","), "dnsPolicy", string(d.DNSPolicy))
	return admission.Patched("", ops...).WithWarnings(d.Warnings...), ResultPatched
}

// slimPod is what the handler reads of a pod: its metadata and the fields
// the engine looks at. The rest of the object (containers, volumes, ...),
// which can make a pod megabytes long, is skipped while decoding.
type slimPod struct {
	Metadata *metav1.ObjectMeta `json:"metadata"`
	Spec     *struct {
		DNSPolicy   corev1.DNSPolicy     `json:"dnsPolicy,omitempty"`
		DNSConfig   *corev1.PodDNSConfig `json:"dnsConfig,omitempty"`
		HostNetwork bool                 `json:"hostNetwork,omitempty"`
		OS          *corev1.PodOS        `json:"os,omitempty"`
		// What decides the node pools a pod can land on (policy.Engine
		// with node pools); of the affinity, only the node affinity.
		NodeName     string            `json:"nodeName,omitempty"`
		NodeSelector map[string]string `json:"nodeSelector,omitempty"`
		Affinity     *struct {
			NodeAffinity *corev1.NodeAffinity `json:"nodeAffinity,omitempty"`
		} `json:"affinity,omitempty"`
	} `json:"spec"`
}

// errIncompletePod: the object has no metadata or no spec object, so a
// patch could not add fields under them (found by FuzzAdmissionReview).
var errIncompletePod = errors.New("the pod has no metadata or no spec")

// decodePod reads the fields of slimPod from the request's object, with the
// API server's JSON rules (case-sensitive field names).
func decodePod(raw []byte, pod *corev1.Pod) error {
	if t := bytes.TrimSpace(raw); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return errors.New("the request holds no object")
	}
	var s slimPod
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(raw, &s); err != nil {
		return err
	}
	if s.Metadata == nil || s.Spec == nil {
		return errIncompletePod
	}
	pod.ObjectMeta = *s.Metadata
	pod.Spec.DNSPolicy, pod.Spec.DNSConfig = s.Spec.DNSPolicy, s.Spec.DNSConfig
	pod.Spec.HostNetwork, pod.Spec.OS = s.Spec.HostNetwork, s.Spec.OS
	pod.Spec.NodeName, pod.Spec.NodeSelector = s.Spec.NodeName, s.Spec.NodeSelector
	if s.Spec.Affinity != nil && s.Spec.Affinity.NodeAffinity != nil {
		pod.Spec.Affinity = &corev1.Affinity{NodeAffinity: s.Spec.Affinity.NodeAffinity}
	}
	return nil
}

// dnsJSON is the JSON of the pod's DNS fields at their places in a pod: the
// patch of spec is the difference of two of them, so it touches nothing else
// and costs nothing for the rest of a large pod.
func dnsJSON(pod *corev1.Pod) ([]byte, error) {
	var o struct {
		Spec struct {
			DNSPolicy corev1.DNSPolicy     `json:"dnsPolicy,omitempty"`
			DNSConfig *corev1.PodDNSConfig `json:"dnsConfig,omitempty"`
		} `json:"spec"`
	}
	o.Spec.DNSPolicy, o.Spec.DNSConfig = pod.Spec.DNSPolicy, pod.Spec.DNSConfig
	return json.Marshal(&o)
}

// ownedKeys are the annotations Decision.Mutate writes or removes.
var ownedKeys = []string{policy.AnnotationApplied, policy.AnnotationOriginal, policy.AnnotationResolvConf}

// ownedAnnotations copies the owned keys of annotations.
func ownedAnnotations(annotations map[string]string) map[string]string {
	out := map[string]string{}
	for _, k := range ownedKeys {
		if v, ok := annotations[k]; ok {
			out[k] = v
		}
	}
	return out
}

// annotationOps patches the owned keys from prev to now, key by key (the
// pod's other annotations, up to 256 KiB of them, are never copied); a pod
// that had no annotations gets the whole map.
func annotationOps(had bool, prev, now map[string]string) []jsonpatch.JsonPatchOperation {
	if !had {
		if len(now) == 0 {
			return nil
		}
		return []jsonpatch.JsonPatchOperation{{Operation: "add", Path: "/metadata/annotations", Value: now}}
	}
	var ops []jsonpatch.JsonPatchOperation
	for _, k := range ownedKeys {
		path := "/metadata/annotations/" + strings.NewReplacer("~", "~0", "/", "~1").Replace(k)
		old, hadKey := prev[k]
		v, has := now[k]
		switch {
		case has && (!hadKey || old != v):
			ops = append(ops, jsonpatch.JsonPatchOperation{Operation: "add", Path: path, Value: v})
		case !has && hadKey:
			ops = append(ops, jsonpatch.JsonPatchOperation{Operation: "remove", Path: path})
		}
	}
	return ops
}

// namespaceLabels reads the namespace from the cache, then live on a miss.
func (h *Handler) namespaceLabels(ctx context.Context, name string) (map[string]string, error) {
	var ns corev1.Namespace
	err := h.Namespaces.Get(ctx, client.ObjectKey{Name: name}, &ns)
	if apierrors.IsNotFound(err) && h.APIReader != nil {
		err = h.APIReader.Get(ctx, client.ObjectKey{Name: name}, &ns)
	}
	if err != nil {
		return nil, err
	}
	return ns.Labels, nil
}

// record logs and counts what every matched policy did.
func (h *Handler) record(log logr.Logger, d *policy.Decision) {
	for i := range d.Results {
		r := &d.Results[i]
		if r.Outcome == policy.OutcomeNotMatched {
			continue
		}
		if h.Metrics != nil {
			h.Metrics.Matches.WithLabelValues(r.Policy, string(r.Outcome)).Inc()
		}
		switch {
		case r.Outcome == policy.OutcomeSkipped:
			if h.Metrics != nil {
				h.Metrics.Skipped.WithLabelValues(r.Policy).Inc()
			}
			log.Info("policy skipped for the pod", "policy", r.Policy, "mode", string(r.Mode), "reason", r.Reason)
		case r.Outcome == policy.OutcomeAudit && len(r.Changes) > 0:
			if h.Metrics != nil {
				h.Metrics.AuditChanges.WithLabelValues(r.Policy).Inc()
			}
			log.Info("audit policy would change the pod", "policy", r.Policy, "changes", r.Changes)
		}
	}
}
