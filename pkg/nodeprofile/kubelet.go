package nodeprofile

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"

	"github.com/poddns/poddns/pkg/configfile"
	"github.com/poddns/poddns/pkg/resolvconf"
)

// kubeletDecoder decodes kubelet.config.k8s.io/v1beta1 strictly; strict errors
// come back together with the decoded object.
func kubeletDecoder() (runtime.Decoder, error) {
	scheme := runtime.NewScheme()
	if err := kubeletv1beta1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("register kubelet config types: %w", err)
	}
	return serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer(), nil
}

// ParseKubeletConfig decodes a KubeletConfiguration (kubelet.config.k8s.io/v1beta1)
// as kubelet does: strictly first and, when only strictness fails (an unknown
// or duplicate field), leniently with a warning, which is returned. Anything
// else that is not a KubeletConfiguration is an error. No defaults are
// applied: an absent resolvConf stays nil.
func ParseKubeletConfig(data []byte) (*kubeletv1beta1.KubeletConfiguration, []string, error) {
	decoder, err := kubeletDecoder()
	if err != nil {
		return nil, nil, err
	}
	obj, gvk, err := decoder.Decode(data, nil, nil)
	var warnings []string
	if err != nil {
		if !runtime.IsStrictDecodingError(err) || obj == nil {
			return nil, nil, fmt.Errorf("failed to decode: %w", err)
		}
		warnings = append(warnings, fmt.Sprintf("Using lenient decoding as strict decoding failed: %v", err))
	}
	kc, ok := obj.(*kubeletv1beta1.KubeletConfiguration)
	if !ok {
		return nil, nil, fmt.Errorf("failed to decode: unexpected kind %v, expected KubeletConfiguration", gvk)
	}
	return kc, warnings, nil
}

// ReadKubeletConfig reads and decodes the kubelet configuration file at path.
// A relative resolvConf is resolved against the file's directory, as kubelet
// resolves it. The warnings name the file.
func ReadKubeletConfig(path string) (*kubeletv1beta1.KubeletConfiguration, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read kubelet config: %w", err)
	}
	kc, warnings, err := ParseKubeletConfig(data)
	if err != nil {
		return nil, nil, fmt.Errorf("kubelet config %s: %w", path, err)
	}
	for i, w := range warnings {
		warnings[i] = fmt.Sprintf("kubelet config %s: %s", path, w)
	}
	configfile.ResolvePaths(filepath.Dir(path), kc.ResolverConfig)
	return kc, warnings, nil
}

// KubeletNodeConfig is the node configuration of a kubelet running with kc.
// Fields kc leaves out take kubelet's defaults, not poddns's: no cluster DNS,
// an empty cluster domain and resolvConf /etc/resolv.conf. As no node's file is
// at hand for that default path, the embedded typical file stands in for it;
// a resolvConf that kc names is read from disk.
func KubeletNodeConfig(kc *kubeletv1beta1.KubeletConfiguration) resolvconf.NodeConfig {
	cfg := resolvconf.NodeConfig{
		ClusterDomain:  kc.ClusterDomain,
		ClusterDNS:     append([]string{}, kc.ClusterDNS...),
		ResolvConf:     resolvconf.DefaultResolvConf,
		ResolvConfData: DefaultResolvConf(),
	}
	if kc.ResolverConfig != nil {
		cfg.ResolvConf = *kc.ResolverConfig
		cfg.ResolvConfData = nil
	}
	return cfg
}
