package policy

import (
	corev1 "k8s.io/api/core/v1"
)

// LabelMetadataName is the label the API server puts on every Namespace,
// holding its name. Offline Namespace documents often lack it, so
// NamespaceLabels and Evaluate add it.
const LabelMetadataName = corev1.LabelMetadataName

// NamespaceLabels returns the labels a namespace has in a cluster: its own,
// plus kubernetes.io/metadata.name set to its name, as the API server sets it
// on every Namespace. ns is not modified.
func NamespaceLabels(ns *corev1.Namespace) map[string]string {
	out := make(map[string]string, len(ns.Labels)+1)
	for k, v := range ns.Labels {
		out[k] = v
	}
	out[LabelMetadataName] = ns.Name
	return out
}

// withMetadataName returns labels with kubernetes.io/metadata.name set to
// namespace when it is missing, copying only if needed.
func withMetadataName(labels map[string]string, namespace string) map[string]string {
	if _, ok := labels[LabelMetadataName]; ok {
		return labels
	}
	out := make(map[string]string, len(labels)+1)
	for k, v := range labels {
		out[k] = v
	}
	out[LabelMetadataName] = namespace
	return out
}
