package nodeprofile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

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

// Parse decodes a node profile strictly: unknown or duplicate fields, a wrong
// apiVersion or kind, and more than one document are errors.
func Parse(data []byte) (*File, error) {
	docs, err := documents(data)
	if err != nil {
		return nil, err
	}
	switch len(docs) {
	case 0:
		return nil, errors.New("no document: expected one NodeProfile")
	case 1:
	default:
		return nil, fmt.Errorf("%d documents: expected one NodeProfile", len(docs))
	}
	var f File
	if err := unmarshalStrict(docs[0], &f); err != nil {
		return nil, err
	}
	if f.APIVersion != APIVersion || f.Kind != Kind {
		return nil, fmt.Errorf("apiVersion %q, kind %q: expected apiVersion %q, kind %q", f.APIVersion, f.Kind, APIVersion, Kind)
	}
	if f.ResolvConf != nil && *f.ResolvConf == "" && f.ResolvConfContent != nil {
		return nil, errors.New(`resolvConfContent is set but resolvConf is "" (kubelet reads no file)`)
	}
	return &f, nil
}

// unmarshalStrict decodes a YAML or JSON document into v as the API server's
// strict field validation does: field names match case-sensitively, and
// unknown or duplicate fields are errors.
func unmarshalStrict(doc []byte, v any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strictErrs, err := sigsjson.UnmarshalStrict(j, v)
	if err != nil {
		return err
	}
	if len(strictErrs) == 0 {
		return nil
	}
	return strictError(strictErrs)
}

// strictError lists every unknown or duplicate field on one line.
type strictError []error

func (e strictError) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e strictError) Unwrap() []error { return e }

// documents splits a YAML stream into its non-empty documents.
func documents(data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		j, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, err
		}
		if string(j) != "null" {
			docs = append(docs, doc)
		}
	}
}

// ReadFile reads and parses the node profile at path. A relative resolvConf is
// resolved against the file's directory.
func ReadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read node profile: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("node profile %s: %w", path, err)
	}
	if f.ResolvConf != nil {
		resolved := resolvePath(*f.ResolvConf, filepath.Dir(path))
		f.ResolvConf = &resolved
	}
	return f, nil
}

// resolvePath makes a relative, non-empty path relative to dir (kubelet's
// resolveRelativePaths).
func resolvePath(path, dir string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}

// Apply sets in cfg every field f sets. A resolvConf path without content
// means the file is read from disk; content without a path keeps cfg's path.
func (f *File) Apply(cfg *resolvconf.NodeConfig) {
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
