package store

import (
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ServiceKind is how a Service is answered.
type ServiceKind uint8

const (
	// ClusterIP services answer with their virtual IPs.
	ClusterIP ServiceKind = iota
	// Headless services (clusterIP None) answer with their ready endpoints.
	Headless
	// ExternalName services answer with a CNAME.
	ExternalName
)

// TolerateUnreadyAnnotation is the legacy Service annotation that makes
// every endpoint count as ready (Kubernetes DNS specification, §2.1).
const TolerateUnreadyAnnotation = "service.alpha.kubernetes.io/tolerate-unready-endpoints"

// Service is the part of a Service DNS needs.
type Service struct {
	Namespace, Name string
	Kind            ServiceKind
	// ClusterIPs are the virtual IPs of a ClusterIP service, both families.
	ClusterIPs []netip.Addr
	// ExternalName is the lower-cased CNAME target, fully qualified.
	ExternalName string
	Ports        []Port
	// TolerateUnready is set by TolerateUnreadyAnnotation.
	TolerateUnready bool
}

// Port is a named or unnamed port of a Service or EndpointSlice.
type Port struct {
	Name     string // "" when unnamed (no SRV record)
	Protocol string // lower case: "tcp", "udp", "sctp"
	Port     int32
}

// EndpointSlice is the part of a discovery.k8s.io/v1 EndpointSlice DNS
// needs.
type EndpointSlice struct {
	Namespace, Name string
	// Service is the kubernetes.io/service-name label: the Service the
	// slice belongs to ("" for a slice that belongs to none).
	Service   string
	Ports     []Port
	Endpoints []Endpoint
}

// Endpoint is one endpoint of a slice.
type Endpoint struct {
	Addresses []netip.Addr
	// Hostname is the endpoint's hostname field, lower-cased ("" if unset).
	Hostname string
	// Ready is conditions.ready, with unknown (nil) counting as ready.
	Ready bool
}

// Pod is the part of a Pod DNS needs.
type Pod struct {
	Namespace, Name string
	IPs             []netip.Addr
	HostNetwork     bool
	// UID, Phase and the DNS fields are what search completion needs to
	// derive the pod's resolv.conf and to tell a live pod from a finished
	// one whose IP may be reused.
	UID       types.UID
	Phase     corev1.PodPhase
	DNSPolicy corev1.DNSPolicy
	DNSConfig *corev1.PodDNSConfig // a copy; nil if unset
}

// Namespace is a namespace's name.
type Namespace struct {
	Name string
}

// ToService converts s; it reports false for an object DNS cannot use (no
// name).
func ToService(s *corev1.Service) (*Service, bool) {
	if s.Name == "" {
		return nil, false
	}
	out := &Service{
		Namespace:       namespaceOf(s.Namespace),
		Name:            strings.ToLower(s.Name),
		TolerateUnready: s.Annotations[TolerateUnreadyAnnotation] == "true",
	}
	switch {
	case s.Spec.Type == corev1.ServiceTypeExternalName:
		out.Kind = ExternalName
		out.ExternalName = fqdn(strings.ToLower(s.Spec.ExternalName))
	case s.Spec.ClusterIP == corev1.ClusterIPNone:
		out.Kind = Headless
	default:
		out.Kind = ClusterIP
		ips := s.Spec.ClusterIPs
		if len(ips) == 0 && s.Spec.ClusterIP != "" {
			ips = []string{s.Spec.ClusterIP}
		}
		for _, ip := range ips {
			if a, err := netip.ParseAddr(ip); err == nil {
				out.ClusterIPs = append(out.ClusterIPs, a.Unmap())
			}
		}
	}
	for _, p := range s.Spec.Ports {
		out.Ports = append(out.Ports, Port{Name: strings.ToLower(p.Name), Protocol: protocol(p.Protocol), Port: p.Port})
	}
	return out, true
}

// ToEndpointSlice converts s; it reports false for a slice DNS cannot use
// (no name, or an address type other than IPv4 and IPv6).
func ToEndpointSlice(s *discoveryv1.EndpointSlice) (*EndpointSlice, bool) {
	if s.Name == "" || (s.AddressType != discoveryv1.AddressTypeIPv4 && s.AddressType != discoveryv1.AddressTypeIPv6) {
		return nil, false
	}
	out := &EndpointSlice{
		Namespace: namespaceOf(s.Namespace),
		Name:      s.Name,
		Service:   strings.ToLower(s.Labels[discoveryv1.LabelServiceName]),
	}
	for _, p := range s.Ports {
		if p.Port == nil {
			continue // no number: no SRV record
		}
		var name string
		if p.Name != nil {
			name = strings.ToLower(*p.Name)
		}
		var proto corev1.Protocol
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		out.Ports = append(out.Ports, Port{Name: name, Protocol: protocol(proto), Port: *p.Port})
	}
	for _, e := range s.Endpoints {
		ep := Endpoint{Ready: e.Conditions.Ready == nil || *e.Conditions.Ready}
		if e.Hostname != nil {
			ep.Hostname = strings.ToLower(*e.Hostname)
		}
		for _, a := range e.Addresses {
			if ip, err := netip.ParseAddr(a); err == nil {
				ep.Addresses = append(ep.Addresses, ip.Unmap())
			}
		}
		if len(ep.Addresses) > 0 {
			out.Endpoints = append(out.Endpoints, ep)
		}
	}
	return out, true
}

// ToPod converts p; it reports false for a pod DNS does not answer for: no
// name, no IP yet, or being deleted (its IP may already be reused).
func ToPod(p *corev1.Pod) (*Pod, bool) {
	if p.Name == "" || p.DeletionTimestamp != nil {
		return nil, false
	}
	out := &Pod{Namespace: namespaceOf(p.Namespace), Name: p.Name, HostNetwork: p.Spec.HostNetwork,
		UID: p.UID, Phase: internPhase(p.Status.Phase), DNSPolicy: internDNSPolicy(p.Spec.DNSPolicy)}
	if p.Spec.DNSConfig != nil {
		out.DNSConfig = p.Spec.DNSConfig.DeepCopy()
	}
	ips := make([]string, 0, 2)
	for _, ip := range p.Status.PodIPs {
		ips = append(ips, ip.IP)
	}
	if len(ips) == 0 && p.Status.PodIP != "" {
		ips = append(ips, p.Status.PodIP)
	}
	for _, ip := range ips {
		if a, err := netip.ParseAddr(ip); err == nil && !slices.Contains(out.IPs, a.Unmap()) {
			out.IPs = append(out.IPs, a.Unmap())
		}
	}
	if len(out.IPs) == 0 {
		return nil, false
	}
	return out, true
}

// ToNamespace converts n.
func ToNamespace(n *corev1.Namespace) (*Namespace, bool) {
	if n.Name == "" {
		return nil, false
	}
	return &Namespace{Name: strings.ToLower(n.Name)}, true
}

// namespaceOf is the namespace kubectl would use for an object without one.
func namespaceOf(ns string) string {
	if ns == "" {
		return corev1.NamespaceDefault
	}
	return strings.ToLower(ns)
}

func protocol(p corev1.Protocol) string {
	if p == "" {
		return "tcp"
	}
	return strings.ToLower(string(p))
}

func fqdn(s string) string {
	if s == "" || strings.HasSuffix(s, ".") {
		return s
	}
	return s + "."
}

// EndpointLabel is the DNS label of an endpoint address: its hostname, or
// else the address with dashes (10-1-2-3; for IPv6 the colons of the short
// form become dashes, with a 0 appended after a trailing dash), as CoreDNS
// names endpoints without a hostname.
func EndpointLabel(hostname string, addr netip.Addr) string {
	if hostname != "" {
		return hostname
	}
	return DashedIP(addr)
}

// DashedIP writes addr with dashes for dots or colons; see EndpointLabel.
func DashedIP(addr netip.Addr) string {
	if addr.Is4() {
		return strings.ReplaceAll(addr.String(), ".", "-")
	}
	s := strings.ReplaceAll(addr.String(), ":", "-")
	if strings.HasSuffix(s, "-") {
		s += "0"
	}
	return s
}

// internPhase returns the constant equal to ph: a decoded pod's phase is a
// string of its own, and a record keeps it for as long as the pod lives.
func internPhase(ph corev1.PodPhase) corev1.PodPhase {
	for _, c := range [...]corev1.PodPhase{corev1.PodRunning, corev1.PodPending, corev1.PodSucceeded, corev1.PodFailed, corev1.PodUnknown} {
		if ph == c {
			return c
		}
	}
	return ph
}

// internDNSPolicy is internPhase for dnsPolicy.
func internDNSPolicy(p corev1.DNSPolicy) corev1.DNSPolicy {
	for _, c := range [...]corev1.DNSPolicy{corev1.DNSClusterFirst, corev1.DNSClusterFirstWithHostNet, corev1.DNSDefault, corev1.DNSNone} {
		if p == c {
			return c
		}
	}
	return p
}
