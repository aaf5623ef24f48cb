package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/poddns/poddns/pkg/policy"
)

// Path is where the webhook server serves the handler, as the
// MutatingWebhookConfiguration in deploy/base/webhook names it.
const Path = "/mutate-v1-pod"

// AlwaysExcluded are the namespaces never mutated, whatever the
// configuration says: the cluster's own DNS and control plane live there.
var AlwaysExcluded = []string{"kube-system"}

// ownedPaths are the JSON pointers poddns patches; the patch is restricted to
// them so that a round trip through the typed Pod never touches other fields.
var ownedPaths = []string{"/spec/dnsPolicy", "/spec/dnsConfig", "/metadata/annotations"}

// Handler mutates Pods on CREATE with the policy engine's decision. Engine,
// Decoder and Namespaces are required; the others are optional.
type Handler struct {
	// Engine decides; reloads swap its policies while the handler runs.
	Engine *policy.Engine
	// Decoder decodes the pod (admission.NewDecoder(scheme)).
	Decoder admission.Decoder
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

// NewHandler returns a handler with a decoder for the built-in types.
func NewHandler(engine *policy.Engine, scheme *runtime.Scheme, namespaces, apiReader client.Reader) *Handler {
	return &Handler{Engine: engine, Decoder: admission.NewDecoder(scheme), Namespaces: namespaces, APIReader: apiReader}
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

// decodedPodName is podName for a pod already decoded from the request,
// without decoding the object again.
func decodedPodName(req admission.Request, pod *corev1.Pod) string {
	switch {
	case req.Name != "":
		return req.Name
	case pod.Name != "":
		return pod.Name
	case pod.GenerateName != "":
		return pod.GenerateName + "*"
	}
	return ""
}

// podName is the pod's name, or its generateName prefix, for log lines.
func podName(req admission.Request) string {
	if req.Name != "" {
		return req.Name
	}
	var meta struct {
		Metadata struct {
			Name         string `json:"name"`
			GenerateName string `json:"generateName"`
		} `json:"metadata"`
	}
	if json.Unmarshal(req.Object.Raw, &meta) == nil {
		if meta.Metadata.Name != "" {
			return meta.Metadata.Name
		}
		if meta.Metadata.GenerateName != "" {
			return meta.Metadata.GenerateName + "*"
		}
	}
	return ""
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
	if err := h.Decoder.Decode(req, &pod); err != nil {
		h.requestLogger(ctx, req, podName(req)).Info("cannot decode the pod", "error", err.Error())
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("poddns: decode pod: %w", err)), ResultError
	}
	// The pod's name comes from the decoded pod: decoding the object again
	// for it would cost as much as the pod's decoding.
	log := h.requestLogger(ctx, req, decodedPodName(req, &pod))
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
	if !d.Patch(&pod) {
		return admission.Allowed("no change").WithWarnings(d.Warnings...), ResultUnchanged
	}
	current, err := json.Marshal(&pod)
	if err != nil {
		// Never deny for our own fault: admit unchanged, say so.
		log.Error(err, "cannot marshal the patched pod; pod left unchanged")
		return admission.Allowed("internal error").WithWarnings(
			append(d.Warnings, "poddns: internal error, the pod is left unchanged: "+err.Error())...), ResultError
	}
	resp := admission.PatchResponseFromRaw(req.Object.Raw, current)
	if !resp.Allowed {
		log.Error(errors.New(resp.Result.Message), "cannot compute the patch; pod left unchanged")
		return admission.Allowed("internal error").WithWarnings(
			append(d.Warnings, "poddns: internal error, the pod is left unchanged")...), ResultError
	}
	kept := resp.Patches[:0]
	for _, op := range resp.Patches {
		if owned(op.Path) {
			kept = append(kept, op)
		}
	}
	resp.Patches = kept
	if len(resp.Patches) == 0 {
		resp.PatchType = nil
		return resp.WithWarnings(d.Warnings...), ResultUnchanged
	}
	log.Info("pod mutated", "policies", strings.Join(d.Applied(), ","), "dnsPolicy", string(d.DNSPolicy))
	return resp.WithWarnings(d.Warnings...), ResultPatched
}

// owned reports whether a JSON pointer is a field poddns may change.
func owned(path string) bool {
	for _, p := range ownedPaths {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
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
