package resolvconf

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultResolvConf is kubelet's default --resolv-conf.
const DefaultResolvConf = "/etc/resolv.conf"

// NodeConfig is the part of a kubelet's configuration that decides pod DNS.
// Its fields mirror kubelet's flags so that operators can copy them.
type NodeConfig struct {
	// ClusterDomain is --cluster-domain, used verbatim ("" is allowed).
	ClusterDomain string
	// ClusterDNS is --cluster-dns: entries that do not parse as IP addresses
	// are skipped, as kubelet skips them; the rest are normalised.
	ClusterDNS []string
	// NodeIPs is --node-ip; each entry may itself be a comma-separated list,
	// as the flag is. It matters only when ResolvConf is "".
	NodeIPs []string
	// ResolvConf is --resolv-conf, the path of the node's resolver file. The
	// empty string is kubelet's --resolv-conf="": no file is read.
	ResolvConf string
	// ResolvConfData, when not nil, is used as the content of ResolvConf
	// instead of reading the file (embedded defaults, tests, profiles that
	// carry the node's file inline).
	ResolvConfData []byte
}

// NodeProfile is a node's kubelet DNS configuration, parsed once, against which
// pods are computed. A profile is read-only after NewNodeProfile and safe for
// concurrent use.
type NodeProfile struct {
	config     NodeConfig
	clusterDNS []string
	// noFileNameservers are what host-DNS pods get when ResolvConf is "".
	noFileNameservers []string
	host              *File
	hostErr           error // what GetPodDNS fails with
	checkErr          error // what the start-up check reports
	logs              []string
}

// NewNodeProfile parses cfg as kubelet does when it starts. Its error is for a
// configuration kubelet would refuse to start with (a bad --node-ip). A node
// resolv.conf that cannot be opened or parsed is not an error here: kubelet
// starts, then fails every pod, so Compute returns that error for every pod
// and HostError reports it.
func NewNodeProfile(cfg NodeConfig) (*NodeProfile, error) {
	p := &NodeProfile{config: cfg}
	// kubelet parses --node-ip (RunKubelet) before --cluster-dns (NewMainKubelet).
	ips, invalid, err := parseNodeIPs(cfg.NodeIPs)
	if err != nil {
		return nil, err
	}
	if len(invalid) > 0 {
		p.logs = append(p.logs, fmt.Sprintf("Could not parse some node IP(s), ignoring them %q", invalid))
	}
	for _, entry := range cfg.ClusterDNS {
		ip := parseIPSloppy(entry)
		if ip == nil {
			p.logs = append(p.logs, fmt.Sprintf("Invalid clusterDNS IP %q", entry))
			continue
		}
		p.clusterDNS = append(p.clusterDNS, ip.String())
	}
	// With --resolv-conf="", host-DNS pods get one loopback address per node
	// IP, by family, or 127.0.0.1 when there is none.
	for _, ip := range ips {
		if isIPv6(ip) {
			p.noFileNameservers = append(p.noFileNameservers, "::1")
		} else {
			p.noFileNameservers = append(p.noFileNameservers, "127.0.0.1")
		}
	}
	if len(p.noFileNameservers) == 0 {
		p.noFileNameservers = []string{"127.0.0.1"}
	}
	if cfg.ResolvConf != "" {
		p.readHost()
	}
	return p, nil
}

// readHost reads the node's resolv.conf as kubelet does for every pod. An open
// error is kept as it is; a parse error is kept bare for the start-up check and
// wrapped as GetPodDNS wraps it for pods.
func (p *NodeProfile) readHost() {
	var (
		f   *File
		err error
	)
	if p.config.ResolvConfData != nil {
		f, err = Parse(bytes.NewReader(p.config.ResolvConfData))
	} else {
		fh, openErr := os.Open(p.config.ResolvConf)
		if openErr != nil {
			p.hostErr, p.checkErr = openErr, openErr
			return
		}
		defer fh.Close()
		f, err = Parse(fh)
	}
	if err != nil {
		p.hostErr, p.checkErr = wrapParseError(err), err
		return
	}
	p.host = f
}

// parseNodeIPs follows kubelet's --node-ip handling: comma-separated entries,
// white space trimmed, unparsable entries ignored, at most one address per
// family.
func parseNodeIPs(entries []string) (ips []net.IP, invalid []string, err error) {
	joined := strings.Join(entries, ",")
	if joined == "" {
		return nil, nil, nil
	}
	for s := range strings.SplitSeq(joined, ",") {
		s = strings.TrimSpace(s)
		if ip := parseIPSloppy(s); ip != nil {
			ips = append(ips, ip)
		} else {
			invalid = append(invalid, s)
		}
	}
	switch {
	case len(ips) > 2 || (len(ips) == 2 && isIPv6(ips[0]) == isIPv6(ips[1])):
		return nil, invalid, fmt.Errorf("bad --node-ip %q: must contain either a single IP or a dual-stack pair of IPs", joined)
	case len(ips) == 2 && (ips[0].IsUnspecified() || ips[1].IsUnspecified()):
		return nil, invalid, fmt.Errorf("bad --node-ip %q: dual-stack node IP cannot include '0.0.0.0' or '::'", joined)
	}
	return ips, invalid, nil
}

func isIPv6(ip net.IP) bool { return ip != nil && ip.To4() == nil }

// Config returns the configuration the profile was made from.
func (p *NodeProfile) Config() NodeConfig { return p.config }

// ClusterDNS returns the cluster DNS addresses kubelet kept, normalised.
func (p *NodeProfile) ClusterDNS() []string { return append([]string(nil), p.clusterDNS...) }

// Host returns the parsed node resolv.conf, or nil when none is read or it could
// not be parsed.
func (p *NodeProfile) Host() *File { return p.host }

// HostError is the error kubelet meets reading the node's resolv.conf; when it
// is not nil, every pod on the node fails sandbox creation with it.
func (p *NodeProfile) HostError() error { return p.hostErr }

// Logs returns what kubelet logs about this configuration when it starts
// (for example "Invalid clusterDNS IP").
func (p *NodeProfile) Logs() []string { return append([]string(nil), p.logs...) }

// CheckLimits is kubelet's one-off check of the node's resolv.conf at start-up
// (CheckLimitsForResolvConf): the Node warning event it records, or nil. The
// first problem found wins. Nothing is checked when ResolvConf is "".
func (p *NodeProfile) CheckLimits() *Event {
	path := p.config.ResolvConf
	if path == "" {
		return nil
	}
	event := func(msg string) *Event {
		return &Event{Object: ObjectNode, Type: EventTypeWarning, Reason: ReasonCheckLimitsForResolvConf, Message: msg}
	}
	if p.checkErr != nil {
		return event(p.checkErr.Error())
	}
	limit := MaxSearchPaths
	if p.config.ClusterDomain != "" {
		limit -= 3
	}
	searches := p.host.Searches
	if len(searches) > limit {
		return event(fmt.Sprintf("Resolv.conf file '%s' contains search line consisting of more than %d domains!", path, limit))
	}
	for _, s := range searches {
		if len(s) > validation.DNS1123SubdomainMaxLength {
			return event(fmt.Sprintf("Resolv.conf file %q contains a search path which length is more than allowed %d chars!", path, validation.DNS1123SubdomainMaxLength))
		}
	}
	if joinedLen(searches) > MaxSearchListChars {
		return event(fmt.Sprintf("Resolv.conf file '%s' contains search line which length is more than allowed %d chars!", path, MaxSearchListChars))
	}
	return nil
}
