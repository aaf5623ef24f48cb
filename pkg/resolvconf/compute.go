package resolvconf

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Limits shared by the API server's validation and kubelet's truncation.
const (
	MaxNameservers     = 3
	MaxSearchPaths     = 32
	MaxSearchListChars = 2048
)

// Event object kinds, types and reasons, as kubelet records them.
const (
	ObjectPod  = "Pod"
	ObjectNode = "Node"

	EventTypeWarning = corev1.EventTypeWarning

	ReasonMissingClusterDNS        = "MissingClusterDNS"
	ReasonDNSConfigForming         = "DNSConfigForming"
	ReasonCheckLimitsForResolvConf = "CheckLimitsForResolvConf"
)

// Event is an event kubelet records while forming a pod's DNS configuration.
type Event struct {
	// Object is the kind of object the event is recorded on: ObjectPod or ObjectNode.
	Object string `json:"object"`
	// Type is the event type (kubelet only records warnings here).
	Type    string `json:"type"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// Config is the DNS configuration kubelet hands the container runtime (CRI
// DNSConfig): the content of the pod's resolv.conf.
type Config struct {
	Nameservers []string `json:"nameservers,omitempty"`
	Searches    []string `json:"searches,omitempty"`
	Options     []string `json:"options,omitempty"`
}

// Result is the outcome of Compute.
type Result struct {
	Config Config
	// Events are the events kubelet records for this pod, in kubelet's order.
	Events []Event
	// Logs are the error lines kubelet logs for this pod without recording an
	// event (an invalid dnsPolicy, limits exceeded).
	Logs []string
}

// Render returns the resolv.conf containerd writes for c: a search line, one
// nameserver line per server, an options line, each only when its list is not
// empty. Nothing is escaped or checked, as in containerd; an empty Config
// renders as an empty file.
func (c Config) Render() string {
	var b strings.Builder
	if len(c.Searches) > 0 {
		b.WriteString("search ")
		writeJoined(&b, c.Searches)
		b.WriteByte('\n')
	}
	for _, ns := range c.Nameservers {
		b.WriteString("nameserver ")
		b.WriteString(ns)
		b.WriteByte('\n')
	}
	if len(c.Options) > 0 {
		b.WriteString("options ")
		writeJoined(&b, c.Options)
		b.WriteByte('\n')
	}
	return b.String()
}

func writeJoined(b *strings.Builder, items []string) {
	for i, s := range items {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
}

// dnsType is kubelet's internal classification of a pod's DNS policy.
type dnsType int

const (
	dnsCluster dnsType = iota
	dnsHost
	dnsNone
)

// podDNSType maps dnsPolicy and hostNetwork to kubelet's type; an unknown
// policy falls back to cluster, hostNetwork or not.
func podDNSType(pod *corev1.Pod) (dnsType, bool) {
	switch pod.Spec.DNSPolicy {
	case corev1.DNSNone:
		return dnsNone, true
	case corev1.DNSClusterFirstWithHostNet:
		return dnsCluster, true
	case corev1.DNSClusterFirst:
		if !pod.Spec.HostNetwork {
			return dnsCluster, true
		}
		return dnsHost, true
	case corev1.DNSDefault:
		return dnsHost, true
	}
	return dnsCluster, false
}

// missingClusterDNS is kubelet's text when a cluster policy meets a node
// without cluster DNS; it names ClusterFirst whatever the pod's policy.
var missingClusterDNS = fmt.Sprintf("kubelet does not have ClusterDNS IP configured and cannot create Pod using %q policy. Falling back to %q policy.", corev1.DNSClusterFirst, corev1.DNSDefault)

// Compute is kubelet's GetPodDNS for pod on a node with profile p: the DNS
// configuration handed to the runtime and the events kubelet records, or the
// error that makes kubelet fail sandbox creation. pod is not modified, and
// neither is p.
func Compute(pod *corev1.Pod, p *NodeProfile) (Result, error) {
	if p.hostErr != nil {
		return Result{}, p.hostErr
	}
	var res Result
	// cfg may share storage with the profile until the end of this function,
	// where every list is made the result's own before limits cut it in place.
	cfg := &res.Config
	if p.host != nil {
		*cfg = Config{Nameservers: p.host.Nameservers, Searches: p.host.Searches, Options: p.host.Options}
	}

	typ, known := podDNSType(pod)
	if !known {
		res.Logs = append(res.Logs, fmt.Sprintf("Failed to get DNS type for pod. Falling back to DNSClusterFirst policy. err=\"invalid DNSPolicy=%s\"", pod.Spec.DNSPolicy))
	}
	switch typ {
	case dnsNone:
		*cfg = Config{}
	case dnsCluster:
		if len(p.clusterDNS) > 0 {
			cfg.Nameservers = p.clusterDNS
			cfg.Searches = clusterSearches(cfg.Searches, pod.Namespace, p.config.ClusterDomain)
			cfg.Options = clusterOptions
			break
		}
		res.Events = append(res.Events,
			Event{Object: ObjectNode, Type: EventTypeWarning, Reason: ReasonMissingClusterDNS, Message: missingClusterDNS},
			Event{Object: ObjectPod, Type: EventTypeWarning, Reason: ReasonMissingClusterDNS,
				Message: fmt.Sprintf("pod: %q. %s", pod.Name+"_"+pod.Namespace+"("+string(pod.UID)+")", missingClusterDNS)},
		)
		fallthrough
	case dnsHost:
		if p.config.ResolvConf == "" {
			cfg.Nameservers = p.noFileNameservers
			cfg.Searches = noFileSearches
		}
	}

	if dc := pod.Spec.DNSConfig; dc != nil {
		// These build new lists.
		cfg.Nameservers = appendUnique(cfg.Nameservers, dc.Nameservers)
		cfg.Searches = appendUnique(cfg.Searches, dc.Searches)
		cfg.Options = mergeOptions(cfg.Options, dc.Options)
	} else {
		cfg.Nameservers = cloneStrings(cfg.Nameservers)
		cfg.Searches = cloneStrings(cfg.Searches)
		cfg.Options = cloneStrings(cfg.Options)
	}
	fitLimits(&res)
	return res, nil
}

// Shared read-only lists; Compute copies them before handing them out.
var (
	clusterOptions = []string{"ndots:5"}
	noFileSearches = []string{"."}
)

// clusterSearches puts the cluster's own domains before the node's search
// list, without duplicates (first occurrence wins). Without a cluster domain
// the node's list is used as it is, duplicates included.
func clusterSearches(host []string, namespace, domain string) []string {
	if domain == "" {
		return host
	}
	out := make([]string, 0, 3+len(host))
	out = append(out, namespace+".svc."+domain, "svc."+domain, domain)
	return appendUnique(out, host)
}

// appendUnique returns base followed by extra with every repeated string
// dropped, base's own repeats included (kubelet's omitDuplicates). It may
// reuse base's storage.
func appendUnique(base, extra []string) []string {
	n := len(base) + len(extra)
	if n == 0 {
		return nil
	}
	out := base[:0:0]
	if n <= 8 {
		// Small lists, the common case: a linear scan beats a map.
		out = make([]string, 0, n)
		for _, list := range [2][]string{base, extra} {
			for _, s := range list {
				if !containsString(out, s) {
					out = append(out, s)
				}
			}
		}
		return out
	}
	seen := make(map[string]struct{}, n)
	for _, list := range [2][]string{base, extra} {
		for _, s := range list {
			if _, ok := seen[s]; !ok {
				seen[s] = struct{}{}
				out = append(out, s)
			}
		}
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// mergeOptions is kubelet's mergeDNSOptions: existing options are split at the
// first ':' into name and value, then every pod option sets its name's value
// (no value is the empty value), later ones winning; each option is rebuilt as
// "name" when its value is empty and "name:value" otherwise. Names keep the
// order they were first seen in (see the package doc).
func mergeOptions(existing []string, pod []corev1.PodDNSConfigOption) []string {
	type option struct{ name, value string }
	n := len(existing) + len(pod)
	merged := make([]option, 0, n)
	var index map[string]int // only for long lists; a scan is faster for short ones
	if n > 16 {
		index = make(map[string]int, n)
	}
	set := func(name, value string) {
		if index != nil {
			if i, ok := index[name]; ok {
				merged[i].value = value
				return
			}
			index[name] = len(merged)
		} else {
			for i := range merged {
				if merged[i].name == name {
					merged[i].value = value
					return
				}
			}
		}
		merged = append(merged, option{name, value})
	}
	for _, o := range existing {
		name, value, _ := strings.Cut(o, ":")
		set(name, value)
	}
	for _, o := range pod {
		value := ""
		if o.Value != nil {
			value = *o.Value
		}
		set(o.Name, value)
	}
	out := make([]string, len(merged))
	for i, o := range merged {
		if o.value == "" {
			out[i] = o.name
		} else {
			out[i] = o.name + ":" + o.value
		}
	}
	return out
}

// fitLimits applies kubelet's limits, nameservers first, then searches (count,
// then over-long entries, then total length), recording one event for each
// list that was cut.
func fitLimits(res *Result) {
	cfg := &res.Config
	if len(cfg.Nameservers) > MaxNameservers {
		cfg.Nameservers = cfg.Nameservers[:MaxNameservers]
		msg := "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: " + strings.Join(cfg.Nameservers, " ")
		res.Events = append(res.Events, Event{Object: ObjectPod, Type: EventTypeWarning, Reason: ReasonDNSConfigForming, Message: msg})
		res.Logs = append(res.Logs, "Nameserver limits exceeded: "+msg)
	}

	searches, cut := fitSearches(cfg.Searches)
	if cut {
		cfg.Searches = searches
		msg := "Search Line limits were exceeded, some search paths have been omitted, the applied search line is: " + strings.Join(searches, " ")
		res.Events = append(res.Events, Event{Object: ObjectPod, Type: EventTypeWarning, Reason: ReasonDNSConfigForming, Message: msg})
		res.Logs = append(res.Logs, "Search Line limits exceeded: "+msg)
	}
}

// fitSearches cuts a search list to kubelet's limits: the first 32 entries,
// then without entries over 253 characters, then entries removed from the end
// until the joined line is at most 2048 characters.
func fitSearches(searches []string) ([]string, bool) {
	cut := false
	if len(searches) > MaxSearchPaths {
		searches = searches[:MaxSearchPaths]
		cut = true
	}
	kept := searches[:0]
	for _, s := range searches {
		if len(s) > validation.DNS1123SubdomainMaxLength {
			cut = true
			continue
		}
		kept = append(kept, s)
	}
	searches = kept
	if total := joinedLen(searches); total > MaxSearchListChars {
		cut = true
		for total > MaxSearchListChars && len(searches) > 0 {
			total -= len(searches[len(searches)-1]) + 1
			searches = searches[:len(searches)-1]
		}
	}
	return searches, cut
}

// joinedLen is len(strings.Join(list, " ")) without building the string.
func joinedLen(list []string) int {
	if len(list) == 0 {
		return 0
	}
	n := len(list) - 1
	for _, s := range list {
		n += len(s)
	}
	return n
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append(make([]string, 0, len(s)), s...)
}
