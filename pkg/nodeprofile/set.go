package nodeprofile

import (
	"errors"
	"fmt"
	"os"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/poddns/poddns/pkg/configfile"
	"github.com/poddns/poddns/pkg/nodepool"
	"github.com/poddns/poddns/pkg/resolvconf"
)

// SetKind is the kind of a node profile set file.
const SetKind = "NodeProfileSet"

// SetIdentity is the apiVersion and kind of a node profile set file.
var SetIdentity = configfile.Identity{APIVersion: APIVersion, Kind: SetKind}

// SetFile is a node profile set: the kubelet settings of several node pools,
// each selected by node labels, for clusters whose node pools' kubelets
// differ (host search domains, cluster DNS, Windows or GPU pools):
//
//	apiVersion: poddns.io/v1alpha1
//	kind: NodeProfileSet
//	defaults:                       # optional: settings every profile starts from
//	  clusterDNS: [10.96.0.10]
//	profiles:                       # a node belongs to the first that selects it
//	- name: general
//	  nodeSelector:                 # a label selector (matchLabels, matchExpressions)
//	    matchLabels: {poddns.io/pool: general}
//	  resolvConfContent: |
//	    nameserver 10.0.0.2
//	    search ec2.internal
//	- name: other                   # no nodeSelector: every node not selected before
//
// A profile has the fields of a NodeProfile (clusterDomain, clusterDNS,
// nodeIPs, resolvConf, resolvConfContent) layered over the built-in
// defaults, then defaults, then its own, field by field. Names are unique
// (letters, digits, '-', '_', '.'); they name the pool in warnings and
// annotations. Decoding is strict, as for every poddns file.
type SetFile struct {
	APIVersion string       `json:"apiVersion"`
	Kind       string       `json:"kind"`
	Defaults   *Settings    `json:"defaults,omitempty"`
	Profiles   []SetProfile `json:"profiles"`
}

// SetProfile is one profile of a set: a node pool and its kubelet settings.
type SetProfile struct {
	// Name names the pool.
	Name string `json:"name"`
	// NodeSelector selects the pool's nodes by label; omitted: every node.
	NodeSelector *metav1.LabelSelector `json:"nodeSelector,omitempty"`
	Settings     `json:",inline"`
}

// Paths are the files the set names: every resolvConf.
func (f *SetFile) Paths() []*string {
	var paths []*string
	if f.Defaults != nil {
		paths = f.Defaults.Paths()
	}
	for i := range f.Profiles {
		paths = append(paths, f.Profiles[i].Paths()...)
	}
	return paths
}

// ParseSet decodes a node profile set, the content of a file named name in
// errors, strictly (package configfile).
func ParseSet(data []byte, name string) (*SetFile, error) {
	var f SetFile
	if err := configfile.Decode(data, name, SetIdentity, &f); err != nil {
		return nil, err
	}
	return &f, f.validate(name)
}

// ReadSetFile reads and parses the node profile set at path; relative
// resolvConf paths are resolved against the file's directory.
func ReadSetFile(path string) (*SetFile, error) {
	var f SetFile
	if err := configfile.DecodeFile(path, SetIdentity, &f); err != nil {
		return nil, fmt.Errorf("node profile set: %w", err)
	}
	return &f, f.validate(path)
}

func (f *SetFile) validate(name string) error {
	var errs []error
	if f.Defaults != nil {
		if err := f.Defaults.validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: defaults: %w", name, err))
		}
	}
	if len(f.Profiles) == 0 {
		errs = append(errs, fmt.Errorf("%s: profiles: at least one profile is required", name))
	}
	for i := range f.Profiles {
		if err := f.Profiles[i].validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: profiles[%d]: %w", name, i, err))
		}
	}
	return errors.Join(errs...)
}

// NodeConfigs layers, for each profile, the built-in defaults, the set's
// defaults and the profile's settings, then apply (nil: nothing), which
// the kubelet-style flags use to win over every profile.
func (f *SetFile) NodeConfigs(apply func(*resolvconf.NodeConfig)) []resolvconf.NodeConfig {
	out := make([]resolvconf.NodeConfig, len(f.Profiles))
	for i := range f.Profiles {
		cfg := Defaults()
		if f.Defaults != nil {
			f.Defaults.Apply(&cfg)
		}
		f.Profiles[i].Apply(&cfg)
		if apply != nil {
			apply(&cfg)
		}
		if cfg.ResolvConf == "" {
			cfg.ResolvConfData = nil
		}
		out[i] = cfg
	}
	return out
}

// Pools builds the node pools of the set (NodeConfigs, then
// resolvconf.NewNodeProfile and nodepool.NewSet).
func (f *SetFile) Pools(apply func(*resolvconf.NodeConfig)) (*nodepool.Set, error) {
	cfgs := f.NodeConfigs(apply)
	pools := make([]nodepool.Pool, len(cfgs))
	for i, cfg := range cfgs {
		p, err := resolvconf.NewNodeProfile(cfg)
		if err != nil {
			return nil, fmt.Errorf("node profile %q: %w", f.Profiles[i].Name, err)
		}
		pools[i] = nodepool.Pool{Name: f.Profiles[i].Name, Selector: f.Profiles[i].NodeSelector, Profile: p}
	}
	set, err := nodepool.NewSet(pools)
	if err != nil {
		return nil, fmt.Errorf("node profile set: %w", err)
	}
	return set, nil
}

// FileKind returns the kind of the first document of the file at path (a
// NodeProfile or a NodeProfileSet, for a flag that takes either); "" when
// the file has none. It reads the file; errors name it.
func FileKind(path string) (string, error) {
	data, err := configfile.ReadFile(path)
	if err != nil {
		return "", err
	}
	docs, errs := configfile.Split(data, path)
	if len(docs) == 0 {
		if len(errs) > 0 {
			return "", errs[0]
		}
		return "", nil
	}
	return docs[0].Kind(), nil
}

// readProfileOrSet reads the file at path as a NodeProfile or, when its kind
// says so, a NodeProfileSet: exactly one of the results is set.
func readProfileOrSet(path string) (*File, *SetFile, error) {
	kind, err := FileKind(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, nil, fmt.Errorf("node profile: %w", err)
	}
	if kind == SetKind {
		s, err := ReadSetFile(path)
		return nil, s, err
	}
	f, err := ReadFile(path)
	return f, nil, err
}
