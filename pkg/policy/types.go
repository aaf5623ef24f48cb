package policy

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The apiVersion and kind of a policy document.
const (
	APIVersion = "poddns.io/v1alpha1"
	Kind       = "DNSPolicy"
)

// Template variables that searches may use.
const (
	// VarNamespace is replaced by the pod's namespace.
	VarNamespace = "$(NAMESPACE)"
	// VarClusterDomain is replaced by the node profile's cluster domain.
	VarClusterDomain = "$(CLUSTER_DOMAIN)"
)

// Mode is how a policy acts on the pods it matches.
type Mode string

const (
	// ModeEnforce mutates the pod (the default).
	ModeEnforce Mode = "enforce"
	// ModeAudit changes nothing and reports what the policy would change.
	ModeAudit Mode = "audit"
)

// Policy is one DNSPolicy document.
type Policy struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   ObjectMeta `json:"metadata"`
	Spec       Spec       `json:"spec"`
}

// ObjectMeta is the part of Kubernetes object metadata a policy has.
type ObjectMeta struct {
	// Name identifies the policy in annotations, warnings and metrics. It
	// must be a DNS-1123 subdomain and unique in the Set.
	Name string `json:"name"`
	// Annotations are free-form notes for people; poddns ignores them.
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Spec is what a policy selects and does.
type Spec struct {
	// Priority orders policies: they apply in ascending priority, then by
	// name, each seeing the result of the ones before it, so for a field
	// that is replaced the highest priority wins. Default 0.
	Priority int32 `json:"priority,omitempty"`
	// Mode is enforce (default) or audit.
	Mode Mode `json:"mode,omitempty"`
	// Override lets this policy's values win over the settings the pod made
	// itself (its own dnsPolicy other than ClusterFirst, its dnsConfig
	// nameservers, searches and options).
	Override bool `json:"override,omitempty"`
	// Match selects pods; an empty match selects every pod.
	Match Match `json:"match,omitempty"`
	// Actions are what the policy does to a matched pod; at least one.
	Actions Actions `json:"actions"`
}

// Match selects pods. Every given criterion must hold.
type Match struct {
	// NamespaceSelector selects by the labels of the pod's Namespace (which
	// always carry kubernetes.io/metadata.name). Nil selects every namespace.
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	// PodSelector selects by the pod's labels. Nil selects every pod.
	PodSelector *metav1.LabelSelector `json:"podSelector,omitempty"`
	// HostNetwork selects hostNetwork pods (true) or the others (false);
	// omitted selects both.
	HostNetwork *bool `json:"hostNetwork,omitempty"`
	// DNSPolicies selects pods whose dnsPolicy, as submitted (an empty one is
	// ClusterFirst, as the API server defaults it), is in the list. Omitted
	// selects every dnsPolicy.
	DNSPolicies []string `json:"dnsPolicies,omitempty"`
	// ExcludedNamespaces are namespaces the policy never touches.
	ExcludedNamespaces []string `json:"excludedNamespaces,omitempty"`
}

// Actions change a pod's DNS settings. See the package documentation for
// how each merges with the pod and with other policies.
type Actions struct {
	// HostNetworkClusterDNS, when true, gives a hostNetwork pod whose
	// dnsPolicy is ClusterFirst the policy ClusterFirstWithHostNet, so it
	// uses the cluster DNS instead of silently falling back to the node's.
	HostNetworkClusterDNS bool `json:"hostNetworkClusterDNS,omitempty"`
	// DNSPolicy sets spec.dnsPolicy. None needs Nameservers.
	DNSPolicy string `json:"dnsPolicy,omitempty"`
	// Nameservers replaces the pod's nameserver list (at most 3).
	Nameservers []string `json:"nameservers,omitempty"`
	// Searches adds to or replaces the search list.
	Searches *SearchActions `json:"searches,omitempty"`
	// Ndots sets the ndots option (0 to 15).
	Ndots *int32 `json:"ndots,omitempty"`
	// Options adds, overrides or removes resolver options by name.
	Options *OptionActions `json:"options,omitempty"`
}

// SearchActions change the search list. Entries may use $(NAMESPACE) and
// $(CLUSTER_DOMAIN).
type SearchActions struct {
	// Add appends the entries the list does not have yet, in order.
	Add []string `json:"add,omitempty"`
	// Replace makes the list exactly these entries.
	Replace []string `json:"replace,omitempty"`
}

// OptionActions change resolver options, by name.
type OptionActions struct {
	// Set adds each option, or overrides the value of an option of the same
	// name.
	Set []Option `json:"set,omitempty"`
	// Remove removes the options of these names.
	Remove []string `json:"remove,omitempty"`
}

// Option is a resolver option: "name" or "name:value" in resolv.conf.
type Option struct {
	Name  string  `json:"name"`
	Value *string `json:"value,omitempty"`
}
