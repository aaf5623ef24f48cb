package nodeprofile

import (
	"errors"
	"fmt"

	"github.com/poddns/poddns/pkg/configfile"
	"github.com/poddns/poddns/pkg/resolvconf"
)

// The apiVersion and kind of a node profile file.
const (
	APIVersion = "poddns.io/v1alpha1"
	Kind       = "NodeProfile"
)

// File is a node profile file: one YAML or JSON document such as
//
//	apiVersion: poddns.io/v1alpha1
//	kind: NodeProfile
//	clusterDomain: cluster.local
//	clusterDNS: [10.96.0.10]
//	resolvConf: /etc/resolv.conf
//	resolvConfContent: |
//	  nameserver 10.0.0.2
//	  search ec2.internal
//
// Every field but apiVersion and kind is optional; a field left out keeps the
// value of the layer below (the built-in defaults). Pointer and slice fields
// tell "left out" (nil) from an explicit empty value: `clusterDNS: []` is a
// node without cluster DNS, `resolvConf: ""` is kubelet's --resolv-conf="".
type File struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Settings   `json:",inline"`
}

// Settings are the kubelet settings of a node profile, shared by a
// NodeProfile file and every profile of a NodeProfileSet. Pointer and slice
// fields tell "left out" (nil) from an explicit empty value.
type Settings struct {
	// ClusterDomain is kubelet's --cluster-domain ("" is allowed).
	ClusterDomain *string `json:"clusterDomain,omitempty"`
	// ClusterDNS is kubelet's --cluster-dns.
	ClusterDNS []string `json:"clusterDNS,omitempty"`
	// NodeIPs is kubelet's --node-ip; it matters only when ResolvConf is "".
	NodeIPs []string `json:"nodeIPs,omitempty"`
	// ResolvConf is kubelet's --resolv-conf: the path of the node's resolver
	// file, read from disk unless ResolvConfContent is given. A relative path
	// is taken relative to the profile file's directory, as kubelet does for
	// its configuration file. "" means no file.
	ResolvConf *string `json:"resolvConf,omitempty"`
	// ResolvConfContent is the text of the node's resolver file, used instead
	// of reading ResolvConf; the path (by default /etc/resolv.conf) is still
	// the one named in kubelet's messages.
	ResolvConfContent *string `json:"resolvConfContent,omitempty"`
}

// Identity is the apiVersion and kind of a node profile file.
var Identity = configfile.Identity{APIVersion: APIVersion, Kind: Kind}

// Parse decodes a node profile, the content of a file named name in
// errors, strictly (package configfile): unknown or duplicate fields, a
// wrong apiVersion or kind, and more than one document are errors with
// their line and field.
func Parse(data []byte, name string) (*File, error) {
	var f File
	if err := configfile.Decode(data, name, Identity, &f); err != nil {
		return nil, err
	}
	return &f, f.validate(name)
}

func (f *File) validate(name string) error {
	if err := f.Settings.validate(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func (s *Settings) validate() error {
	if s.ResolvConf != nil && *s.ResolvConf == "" && s.ResolvConfContent != nil {
		return errors.New(`resolvConfContent is set but resolvConf is "" (kubelet reads no file)`)
	}
	return nil
}

// Paths are the files s names: resolvConf, when set.
func (s *Settings) Paths() []*string { return []*string{s.ResolvConf} }

// ReadFile reads and parses the node profile at path. A relative resolvConf is
// resolved against the file's directory, as kubelet does for its
// configuration file.
func ReadFile(path string) (*File, error) {
	var f File
	if err := configfile.DecodeFile(path, Identity, &f); err != nil {
		return nil, fmt.Errorf("node profile: %w", err)
	}
	return &f, f.validate(path)
}

// Apply sets in cfg every field s sets. A resolvConf path without content
// means the file is read from disk; content without a path keeps cfg's path.
func (s *Settings) Apply(cfg *resolvconf.NodeConfig) {
	f := s
	if f.ClusterDomain != nil {
		cfg.ClusterDomain = *f.ClusterDomain
	}
	if f.ClusterDNS != nil {
		cfg.ClusterDNS = append([]string{}, f.ClusterDNS...)
	}
	if f.NodeIPs != nil {
		cfg.NodeIPs = append([]string{}, f.NodeIPs...)
	}
	if f.ResolvConf != nil {
		cfg.ResolvConf = *f.ResolvConf
		cfg.ResolvConfData = nil
	}
	if f.ResolvConfContent != nil {
		if cfg.ResolvConf == "" {
			cfg.ResolvConf = resolvconf.DefaultResolvConf
		}
		cfg.ResolvConfData = []byte(*f.ResolvConfContent)
	}
}
