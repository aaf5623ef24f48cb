package nodeprofile

import (
	"bytes"
	_ "embed"

	"github.com/poddns/poddns/pkg/resolvconf"
)

// Built-in defaults, used for whatever no file or flag sets.
const (
	// DefaultClusterDomain is the cluster domain of kubeadm and most clusters.
	DefaultClusterDomain = "cluster.local"
	// DefaultClusterDNS is the kube-dns Service address of kubeadm's default
	// service network (10.96.0.0/12).
	DefaultClusterDNS = "10.96.0.10"
)

// defaultResolvConf is a typical cloud node's resolv.conf, presented under
// kubelet's default path /etc/resolv.conf.
//
//go:embed resolv.conf
var defaultResolvConf []byte

// Defaults returns the built-in node configuration: cluster domain
// cluster.local, cluster DNS 10.96.0.10, no node IPs, and the embedded node
// resolv.conf as the content of /etc/resolv.conf (see [DefaultResolvConf]).
func Defaults() resolvconf.NodeConfig {
	return resolvconf.NodeConfig{
		ClusterDomain:  DefaultClusterDomain,
		ClusterDNS:     []string{DefaultClusterDNS},
		ResolvConf:     resolvconf.DefaultResolvConf,
		ResolvConfData: DefaultResolvConf(),
	}
}

// DefaultResolvConf returns the embedded node resolv.conf used when no path is
// given: nameserver 10.0.0.2, search ec2.internal, options edns0 trust-ad.
func DefaultResolvConf() []byte { return bytes.Clone(defaultResolvConf) }
