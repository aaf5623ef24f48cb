package report

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Ref names an object.
type Ref struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Namespace  string    `json:"namespace,omitempty"`
	Name       string    `json:"name"`
	UID        types.UID `json:"uid,omitempty"`
}

// String is "Kind namespace/name".
func (r Ref) String() string { return r.Kind + " " + r.Namespace + "/" + r.Name }

// Owner is an object that can own pods (a workload): its own
// ownerReferences and the pod it would create.
type Owner struct {
	Ref
	// Owners are the object's ownerReferences.
	Owners []metav1.OwnerReference
	// Template is the pod the object creates (SlimPod of its template,
	// with the object's namespace); nil when it has none.
	Template *corev1.Pod
}

// Owners indexes workloads by UID and by namespace, kind and name (manifests
// often carry no UIDs). The zero value is not usable: use NewOwners.
type Owners struct {
	byUID  map[types.UID]*Owner
	byName map[string]*Owner
}

// NewOwners returns an empty index.
func NewOwners() *Owners {
	return &Owners{byUID: map[types.UID]*Owner{}, byName: map[string]*Owner{}}
}

func nameKey(namespace, kind, name string) string { return namespace + "/" + kind + "/" + name }

// Add indexes o; a later object of the same kind and name wins.
func (x *Owners) Add(o Owner) {
	p := &o
	if o.UID != "" {
		x.byUID[o.UID] = p
	}
	x.byName[nameKey(o.Namespace, o.Kind, o.Name)] = p
}

// Len is the number of objects indexed by name.
func (x *Owners) Len() int { return len(x.byName) }

func (x *Owners) find(namespace string, ref metav1.OwnerReference) *Owner {
	if ref.UID != "" {
		if o := x.byUID[ref.UID]; o != nil {
			return o
		}
	}
	o := x.byName[nameKey(namespace, ref.Kind, ref.Name)]
	if o != nil && ref.UID != "" && o.UID != "" && o.UID != ref.UID {
		// Same name, another object (deleted and recreated).
		return nil
	}
	return o
}

// controllerOf is the reference to the managing controller: the one marked
// controller, else the only one.
func controllerOf(refs []metav1.OwnerReference) (metav1.OwnerReference, bool) {
	for _, r := range refs {
		if r.Controller != nil && *r.Controller {
			return r, true
		}
	}
	if len(refs) == 1 {
		return refs[0], true
	}
	return metav1.OwnerReference{}, false
}

// maxOwnerDepth bounds the walk up ownerReferences (a cycle in hostile or
// broken data must not loop).
const maxOwnerDepth = 8

// Resolve follows the controller ownerReferences of an object in namespace
// up to the top workload. It returns the workload (the pod's own Ref when it
// has no controller: a bare pod) and the pod template that the workload
// creates pods from: the topmost known owner's that has one (a Deployment's
// rather than its ReplicaSet's, since a restart of the Deployment makes the
// new pods), or nil when no owner is known.
func (x *Owners) Resolve(pod Ref, refs []metav1.OwnerReference) (workload Ref, template *Owner) {
	workload = pod
	for range maxOwnerDepth {
		ref, ok := controllerOf(refs)
		if !ok {
			break
		}
		workload = Ref{APIVersion: ref.APIVersion, Kind: ref.Kind, Namespace: pod.Namespace, Name: ref.Name, UID: ref.UID}
		o := x.find(pod.Namespace, ref)
		if o == nil {
			break
		}
		if o.Template != nil {
			template = o
		}
		refs = o.Owners
	}
	return workload, template
}

// SlimPod is what the report keeps of a pod or a template: the metadata and
// the fields the policy engine reads (with node pools, the nodeSelector and
// node affinity that decide where the pod can land), nothing of containers
// or volumes. Not spec.nodeName: the scheduler sets it after the pod is
// created, and a pod created again may land elsewhere.
func SlimPod(p *corev1.Pod) *corev1.Pod {
	s := &corev1.Pod{}
	s.Name, s.Namespace, s.UID = p.Name, p.Namespace, p.UID
	s.Labels, s.Annotations = p.Labels, p.Annotations
	s.Spec.DNSPolicy = p.Spec.DNSPolicy
	s.Spec.DNSConfig = p.Spec.DNSConfig
	s.Spec.HostNetwork = p.Spec.HostNetwork
	s.Spec.OS = p.Spec.OS
	s.Spec.NodeSelector = p.Spec.NodeSelector
	if a := p.Spec.Affinity; a != nil && a.NodeAffinity != nil {
		s.Spec.Affinity = &corev1.Affinity{NodeAffinity: a.NodeAffinity}
	}
	return s
}

// Action is what makes a workload's pods get the DNS the policies give now.
func Action(w Ref, pod Ref) string {
	kind := strings.ToLower(w.Kind)
	switch w.Kind {
	case "Deployment", "StatefulSet", "DaemonSet":
		return "kubectl rollout restart " + kind + "/" + w.Name + " -n " + w.Namespace
	case "ReplicaSet", "ReplicationController":
		return "delete the pods (kubectl delete pod POD -n " + w.Namespace + "): the " + kind + " recreates them"
	case "CronJob":
		return "the next scheduled job gets the new DNS; to run one now: kubectl create job --from=cronjob/" + w.Name + " " + w.Name + "-dns -n " + w.Namespace
	case "Job":
		return "recreate the job from its manifest (a job's pods are not replaced while it runs)"
	case "Pod":
		if w.Name == pod.Name && w.UID == pod.UID {
			return "recreate the pod from its manifest (kubectl replace --force with the live object would keep the DNS fields the webhook gave it)"
		}
	}
	return "restart " + w.Kind + " " + w.Name + " as its controller allows (deleting a pod lets the controller recreate it)"
}
