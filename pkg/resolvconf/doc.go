// Package resolvconf computes the /etc/resolv.conf that kubelet and the
// container runtime will give a pod, exactly as kubelet v1.37 does it, and
// validates a pod's DNS fields exactly as the API server does.
//
// Everything else in poddns derives from this one computation: the webhook's
// previews and warnings, the offline CLI, and dnsd's server-side search
// completion, which needs each pod's real search list. The package is pure: it
// depends only on the standard library, k8s.io/api and k8s.io/apimachinery, it
// performs no I/O except reading a node's resolv.conf when asked to, and the
// same inputs always give the same output.
//
// The pipeline mirrors a cluster:
//
//   - [Default] applies the API server's defaulting (an empty dnsPolicy becomes
//     ClusterFirst) and [Validate] returns the API server's errors and warnings
//     for spec.dnsPolicy and spec.dnsConfig, with the same field paths and texts.
//   - [NewNodeProfile] captures a node's kubelet configuration: cluster domain,
//     cluster DNS IPs (kubelet's sloppy parsing; unparsable entries skipped),
//     node IPs, and the node's resolv.conf, parsed with [Parse].
//   - [Compute] is kubelet's GetPodDNS: the DNS configuration handed to the
//     runtime, kubelet's events as values, or the error that would make sandbox
//     creation fail.
//   - [Config.Render] is the file containerd writes from that configuration.
//
// # Option order
//
// kubelet keeps options in Go maps, so with two or more options the order in a
// real pod's file varies from pod to pod. poddns renders one deterministic order
// instead: options appear in the order their names were first seen — the node
// file's options in file order (a later token with the same name replaces the
// text but keeps the position), or kubelet's ndots:5 for cluster policies,
// followed by the names the pod's dnsConfig adds, in the pod's order. Compare the
// options line as a set when checking against a real kubelet.
package resolvconf
