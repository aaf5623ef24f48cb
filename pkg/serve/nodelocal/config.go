// Package nodelocal is dnsd's node-local mode: the nodeLocal block of
// DNSDConfig, and what follows from it — the listen addresses on the node
// (set up by pkg/nodesetup), the node whose pods are watched, the node
// profile read from that node's own kubelet configuration, and where names
// outside the cluster go.
//
// It exists because a node-local dnsd (DESIGN.md, "dnsd's two
// deployments") differs from the central one in where its facts come from,
// not in how it answers: it serves on addresses of its own on the node, holds
// only its node's pods (a field selector on spec.nodeName; the offline
// source is filtered the same way), and derives every pod's search list from
// the kubelet that wrote it, so search completion is exact and on by
// default. Upstreams are the node's resolv.conf unless the central server is
// named. With verified pod records, the names of other nodes' pods are
// asked of the central server (PodsServer).
package nodelocal

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"

	"github.com/poddns/poddns/pkg/nodeprofile"
	"github.com/poddns/poddns/pkg/nodesetup"
	"github.com/poddns/poddns/pkg/resolvconf"
)

// NodeNameEnv is the environment variable the node name defaults to (set
// from spec.nodeName with the downward API).
const NodeNameEnv = "NODE_NAME"

// DefaultUpstreamResolvConf is where names outside the cluster go by
// default when no kubelet configuration names the node's resolver file: a
// hostNetwork pod with dnsPolicy Default sees the node's here.
const DefaultUpstreamResolvConf = "/etc/resolv.conf"

// UpstreamResolvConf is the node's resolver file, whose nameservers get
// the names outside the cluster by default: the resolvConf override when
// set, else DefaultUpstreamResolvConf — in a hostNetwork pod with dnsPolicy
// Default, the copy of the very file the kubelet configuration names. (No
// file is read here: the kubelet configuration is read when the completion
// handler is built.)
func (c Config) UpstreamResolvConf() string {
	if c.ResolvConf != nil && *c.ResolvConf != "" {
		return *c.ResolvConf
	}
	return DefaultUpstreamResolvConf
}

// Config is the nodeLocal block of DNSDConfig. Its presence turns
// node-local mode on.
type Config struct {
	// The node setup: ips, interface, setupInterface, setupRules,
	// skipTeardown, syncInterval, lockFile, table.
	nodesetup.Config `json:",inline"`
	// NodeName is the node whose pods are served (default $NODE_NAME).
	NodeName string `json:"nodeName,omitempty"`
	// KubeletConfig is the node's kubelet configuration file
	// (KubeletConfiguration, e.g. /var/lib/kubelet/config.yaml mounted
	// read-only); the node profile of search completion is read from it and
	// the resolv.conf it names. With it completion is on unless
	// completion.enabled is false.
	KubeletConfig string `json:"kubeletConfig,omitempty"`
	// ClusterDomain, ClusterDNS and ResolvConf override the kubelet
	// configuration as kubelet's flags do (--cluster-domain,
	// --cluster-dns, --resolv-conf).
	ClusterDomain *string  `json:"clusterDomain,omitempty"`
	ClusterDNS    []string `json:"clusterDNS,omitempty"`
	ResolvConf    *string  `json:"resolvConf,omitempty"`
	// Central is the central dnsd (IP or IP:port, e.g. a
	// kube-dns-upstream-style Service) that names outside the cluster are
	// forwarded to instead of the node's resolv.conf, for clusters that
	// want one egress cache; with pods: verified, the pod names of other
	// nodes' pods are asked of it (PodsServer).
	Central string `json:"central,omitempty"`
}

// WithDefaults returns c with the setup's defaults and the node name from
// $NODE_NAME when unset.
func (c Config) WithDefaults() Config {
	c.Config = c.Config.WithDefaults()
	if c.NodeName == "" {
		c.NodeName = os.Getenv(NodeNameEnv)
	}
	return c
}

// Paths are the files c names, relative to the config file's directory
// when relative.
func (c *Config) Paths() []*string { return []*string{&c.KubeletConfig, c.ResolvConf} }

// Validate checks c (after WithDefaults) without touching the node or
// reading anything: the kubelet configuration is read by NodeProfile, when
// dnsd builds its completion handler.
func (c Config) Validate() error {
	var errs []error
	if err := c.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.NodeName == "" {
		errs = append(errs, fmt.Errorf("nodeLocal: nodeName is required (or $%s, from spec.nodeName)", NodeNameEnv))
	}
	if c.Central != "" {
		if _, err := CentralAddr(c.Central); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CentralAddr parses "IP" or "IP:port" (port 53 by default).
func CentralAddr(s string) (string, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return net.JoinHostPort(a.String(), "53"), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 {
		return "", fmt.Errorf("nodeLocal: central %q: want IP or IP:port", s)
	}
	return net.JoinHostPort(ap.Addr().String(), strconv.Itoa(int(ap.Port()))), nil
}

// PodsServer is where pod names of other nodes' pods are asked (pods:
// verified, whose store holds only this node's pods): the central server
// when named, else the first cluster DNS IP of the node profile (kubelet's
// clusterDNS, or the clusterDNS override) that is not one of the listen IPs
// — in transparent mode the cluster DNS IP is this server's own, and
// through it a query would come back here; in link-local mode it reaches
// the central server through kube-proxy. It reads the kubelet
// configuration when no clusterDNS override is given.
func (c Config) PodsServer() (string, error) {
	if c.Central != "" {
		return CentralAddr(c.Central)
	}
	dnsIPs := c.ClusterDNS
	if dnsIPs == nil {
		if c.KubeletConfig == "" {
			return "", errNoPodsServer
		}
		nc, _, err := c.NodeConfig()
		if err != nil {
			return "", err
		}
		dnsIPs = nc.ClusterDNS
	}
	own, err := c.Config.Addrs()
	if err != nil {
		return "", err
	}
	for _, s := range dnsIPs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return "", fmt.Errorf("nodeLocal: cluster DNS IP %q: %w", s, err)
		}
		if !slices.Contains(own, a.Unmap()) {
			return net.JoinHostPort(a.String(), "53"), nil
		}
	}
	return "", fmt.Errorf("%w (the cluster DNS IPs %v are all listen IPs of this server)", errNoPodsServer, dnsIPs)
}

// ValidatePodsServer checks, without reading a file, that pods: verified
// has a PodsServer: the central server, or cluster DNS IPs of the
// overrides that are not all listen IPs. The kubelet configuration's are
// checked when it is read (the chain is built).
func (c Config) ValidatePodsServer() error {
	if c.Central == "" && c.ClusterDNS == nil && c.KubeletConfig != "" {
		return nil
	}
	_, err := c.PodsServer()
	return err
}

// errNoPodsServer: pods: verified in node-local mode with nowhere to ask
// for the pods of other nodes.
var errNoPodsServer = errors.New("nodeLocal: pods: verified needs a server for the pods of other nodes: central, or a cluster DNS IP (kubeletConfig or clusterDNS) that is not one of the ips")

// Listens are the DNS listen addresses: each IP on port 53.
func (c Config) Listens() ([]string, error) {
	addrs, err := c.Config.Addrs()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = net.JoinHostPort(a.String(), strconv.Itoa(nodesetup.DNSPort))
	}
	return out, nil
}

// Completion reports whether the node gives a node profile (a kubelet
// configuration is named), so that completion is on by default.
func (c Config) Completion() bool { return c.KubeletConfig != "" }

// NodeConfig is the node profile read from the kubelet configuration as
// the webhook reads it (pkg/nodeprofile), with the kubelet-flag overrides
// on top. The warnings are kubelet's (lenient decoding).
func (c Config) NodeConfig() (resolvconf.NodeConfig, []string, error) {
	kc, warnings, err := nodeprofile.ReadKubeletConfig(c.KubeletConfig)
	if err != nil {
		return resolvconf.NodeConfig{}, nil, fmt.Errorf("nodeLocal: %w", err)
	}
	nc := nodeprofile.KubeletNodeConfig(kc)
	if c.ClusterDomain != nil {
		nc.ClusterDomain = *c.ClusterDomain
	}
	if c.ClusterDNS != nil {
		nc.ClusterDNS = append([]string{}, c.ClusterDNS...)
	}
	if c.ResolvConf != nil {
		nc.ResolvConf, nc.ResolvConfData = *c.ResolvConf, nil
	}
	return nc, warnings, nil
}

// NodeProfile is NodeConfig as a resolvconf profile. A node resolv.conf
// that cannot be read is an error: every pod's search list would be
// unknown.
func (c Config) NodeProfile() (*resolvconf.NodeProfile, error) {
	nc, _, err := c.NodeConfig()
	if err != nil {
		return nil, err
	}
	p, err := resolvconf.NewNodeProfile(nc)
	if err != nil {
		return nil, fmt.Errorf("nodeLocal: kubelet config %s: %w", c.KubeletConfig, err)
	}
	if err := p.HostError(); err != nil {
		return nil, fmt.Errorf("nodeLocal: kubelet config %s: %w", c.KubeletConfig, err)
	}
	return p, nil
}
