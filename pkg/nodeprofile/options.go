package nodeprofile

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/poddns/poddns/pkg/nodepool"
	"github.com/poddns/poddns/pkg/resolvconf"
)

// Options are the node-profile settings of a command: the profile file or
// kubelet configuration file (fields of a configuration file too, such as
// the webhook's nodeProfile and kubeletConfig), and the kubelet-style flags
// that override them. Bind them with AddFlags, parse the flag set, then
// call NodeConfig or NodeProfile.
type Options struct {
	// Profile is a NodeProfile file (--profile).
	Profile string `json:"nodeProfile,omitempty"`
	// KubeletConfig is a KubeletConfiguration file (--kubelet-config).
	KubeletConfig string `json:"kubeletConfig,omitempty"`
	clusterDNS    listFlag
	nodeIPs       listFlag
	clusterDomain stringFlag
	resolvConf    stringFlag
}

// AddFlags binds the node-profile flags to fs. The kubelet flags keep kubelet's
// names and syntax so that a node's command line can be pasted:
//
//	--cluster-dns IP[,IP]   repeatable; an explicit empty value means none
//	--cluster-domain NAME
//	--resolv-conf PATH      read from disk; --resolv-conf="" means no file
//	--node-ip IP[,IP]       repeatable
//	--profile FILE          a NodeProfile file
//	--kubelet-config FILE   a KubeletConfiguration file
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Profile, "profile", o.Profile, "node profile file (apiVersion: "+APIVersion+", kind: "+Kind+", or "+SetKind+" for several node pools where the command takes one); flags override it")
	fs.StringVar(&o.KubeletConfig, "kubelet-config", o.KubeletConfig, "kubelet configuration file (KubeletConfiguration) to take the node profile from; flags override it")
	fs.Var(&o.clusterDNS, "cluster-dns", "kubelet --cluster-dns: cluster DNS server IPs, comma-separated or repeated; an empty value means none (default "+DefaultClusterDNS+")")
	fs.Var(&o.clusterDomain, "cluster-domain", "kubelet --cluster-domain (default "+DefaultClusterDomain+")")
	fs.Var(&o.resolvConf, "resolv-conf", `kubelet --resolv-conf: the node's resolver file, read from disk; --resolv-conf="" means none (default: a built-in typical node file shown as `+resolvconf.DefaultResolvConf+")")
	fs.Var(&o.nodeIPs, "node-ip", "kubelet --node-ip: the node's IPs, comma-separated or repeated; used only with --resolv-conf=\"\"")
}

// Paths are the files o names.
func (o *Options) Paths() []*string { return []*string{&o.Profile, &o.KubeletConfig} }

// NodeConfig layers the built-in defaults, the --profile or --kubelet-config
// file and the flags, later ones winning field by field. It returns the
// warnings met on the way (a kubelet config decoded leniently). A --profile
// that is a NodeProfileSet is an error here: use Profiles.
func (o *Options) NodeConfig() (resolvconf.NodeConfig, []string, error) {
	var warnings []string
	cfg := Defaults()
	switch {
	case o.Profile != "" && o.KubeletConfig != "":
		return cfg, nil, errors.New("--profile and --kubelet-config are mutually exclusive")
	case o.Profile != "":
		f, set, err := readProfileOrSet(o.Profile)
		if err != nil {
			return cfg, nil, err
		}
		if set != nil {
			return cfg, nil, fmt.Errorf("%s: a %s describes several node pools; one node profile is needed here", o.Profile, SetKind)
		}
		f.Apply(&cfg)
	case o.KubeletConfig != "":
		kc, w, err := ReadKubeletConfig(o.KubeletConfig)
		if err != nil {
			return cfg, nil, err
		}
		warnings = w
		cfg = KubeletNodeConfig(kc)
	}
	o.applyFlags(&cfg)
	return cfg, warnings, nil
}

// applyFlags sets in cfg every kubelet-style flag given.
func (o *Options) applyFlags(cfg *resolvconf.NodeConfig) {
	if o.clusterDomain.set {
		cfg.ClusterDomain = o.clusterDomain.value
	}
	if o.clusterDNS.set {
		cfg.ClusterDNS = append([]string{}, o.clusterDNS.values...)
	}
	if o.nodeIPs.set {
		cfg.NodeIPs = append([]string{}, o.nodeIPs.values...)
	}
	if o.resolvConf.set {
		cfg.ResolvConf = o.resolvConf.value
		cfg.ResolvConfData = nil
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConfData = nil
	}
}

// Profiles is NodeProfile for commands that also take a NodeProfileSet as
// --profile: exactly one of the profile and the pools is returned. The
// kubelet-style flags win over every profile of a set.
func (o *Options) Profiles() (*resolvconf.NodeProfile, *nodepool.Set, []string, error) {
	if o.Profile != "" && o.KubeletConfig == "" {
		_, set, err := readProfileOrSet(o.Profile)
		if err != nil {
			return nil, nil, nil, err
		}
		if set != nil {
			pools, err := set.Pools(o.applyFlags)
			if err != nil {
				return nil, nil, nil, err
			}
			return nil, pools, nil, nil
		}
	}
	p, warnings, err := o.NodeProfile()
	return p, nil, warnings, err
}

// NodeProfile is NodeConfig followed by resolvconf.NewNodeProfile.
func (o *Options) NodeProfile() (*resolvconf.NodeProfile, []string, error) {
	cfg, warnings, err := o.NodeConfig()
	if err != nil {
		return nil, nil, err
	}
	p, err := resolvconf.NewNodeProfile(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("node profile: %w", err)
	}
	return p, warnings, nil
}

// stringFlag is a string flag that remembers whether it was given, so that an
// explicit empty value (--resolv-conf="") differs from an absent flag.
type stringFlag struct {
	value string
	set   bool
}

func (f *stringFlag) Set(s string) error {
	f.value, f.set = s, true
	return nil
}

func (f *stringFlag) String() string { return f.value }
func (f *stringFlag) Type() string   { return "string" }

// listFlag is a repeatable flag whose every value is a comma-separated list,
// like kubelet's StringSlice flags: --cluster-dns a,b --cluster-dns c gives
// [a b c], and an empty value (--cluster-dns="") gives an explicit empty list.
type listFlag struct {
	values []string
	set    bool
}

func (f *listFlag) Set(s string) error {
	f.set = true
	if s == "" {
		return nil
	}
	for item := range strings.SplitSeq(s, ",") {
		f.values = append(f.values, strings.TrimSpace(item))
	}
	return nil
}

func (f *listFlag) String() string { return strings.Join(f.values, ",") }
func (f *listFlag) Type() string   { return "strings" }
