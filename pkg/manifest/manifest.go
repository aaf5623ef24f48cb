package manifest

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// DefaultNamespace is the namespace of an object whose manifest names none,
// as kubectl applies it with no --namespace and the default context.
const DefaultNamespace = metav1.NamespaceDefault

// Location is where an object was read: a file, the position of its document
// in the file, and, for an object inside a List, its path in the list.
type Location struct {
	// File is the path as given, or "<stdin>".
	File string
	// Document counts the documents of File from 1: YAML documents separated
	// by --- (empty and comment-only ones are not counted), or the values of
	// a JSON stream.
	Document int
	// Path is the object's position inside a List, e.g. "items[2]"; empty for
	// a top-level object.
	Path string
}

// String returns "file: document N" or "file: document N: items[i]".
func (l Location) String() string {
	if l.Path == "" {
		return fmt.Sprintf("%s: document %d", l.File, l.Document)
	}
	return fmt.Sprintf("%s: document %d: %s", l.File, l.Document, l.Path)
}

// Item is one pod found in a manifest: a Pod, or a workload's pod template.
type Item struct {
	Location
	// APIVersion and Kind are those of the object holding the pod
	// (apps/v1 Deployment for a Deployment's template).
	APIVersion string
	Kind       string
	// Name and Namespace are the object's; Namespace is DefaultNamespace when
	// the manifest names none.
	Name      string
	Namespace string
	// SpecPath is the field path of the pod spec in the object, as the API
	// server reports it in errors: spec for a Pod, spec.template.spec for a
	// Deployment, spec.jobTemplate.spec.template.spec for a CronJob,
	// template.spec for a PodTemplate.
	SpecPath *field.Path
	// Pod is the pod the object describes. For a template: the template's
	// labels, annotations and spec, with the workload's name, namespace and
	// UID. It is a copy: changing it changes nothing else.
	Pod *corev1.Pod
	// Owners are the object's ownerReferences (a Pod's are also in Pod), so
	// that a pod's owning workload can be found among the manifests
	// (ReplicaSet to Deployment, Job to CronJob).
	Owners []metav1.OwnerReference
}

// Namespace is a Namespace object read from a manifest.
type Namespace struct {
	Location
	Namespace *corev1.Namespace
}

// Note is something a reader should know about a skipped object: a kind that
// carries no pod, a workload without a pod template.
type Note struct {
	Location
	Message string
}

// String returns the note with its location.
func (n Note) String() string { return fmt.Sprintf("%s: %s", n.Location, n.Message) }

// DocumentError is a document that could not be decoded.
type DocumentError struct {
	Location
	Err error
}

func (e *DocumentError) Error() string { return fmt.Sprintf("%s: %v", e.Location, e.Err) }
func (e *DocumentError) Unwrap() error { return e.Err }

// Set is what was read from one or more manifests, in input order.
type Set struct {
	Pods       []Item
	Namespaces []Namespace
	Notes      []Note
}

func (s *Set) append(other *Set) {
	s.Pods = append(s.Pods, other.Pods...)
	s.Namespaces = append(s.Namespaces, other.Namespaces...)
	s.Notes = append(s.Notes, other.Notes...)
}
