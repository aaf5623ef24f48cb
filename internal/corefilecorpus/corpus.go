// Package corefilecorpus reads the corpus of real-world CoreDNS
// configurations in testdata/corefiles (cases.yaml), shared by the golden
// test of `dnsd migrate`'s translation and the differential test that runs
// CoreDNS and dnsd on each.
//
// This package is test support: only _test.go files may import it.
package corefilecorpus

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/migrate"
)

// Case is one configuration of the corpus; paths are relative to Dir.
type Case struct {
	Name             string `json:"name"`
	Corefile         string `json:"corefile"`
	KubeDNSConfigMap string `json:"kubeDNSConfigMap,omitempty"`
	Custom           string `json:"custom,omitempty"`
	NodeProfile      string `json:"nodeProfile,omitempty"`
	// CoreDNSCorefile is the Corefile CoreDNS runs (default Corefile).
	CoreDNSCorefile string `json:"corednsCorefile,omitempty"`
	// Etc are the files and directories mounted under /etc/coredns by
	// name; a ConfigMap file is mounted as the directory of its keys.
	Etc map[string]string `json:"etc,omitempty"`
}

// Input is the case's migrate input, paths relative to Dir.
func (c Case) Input() migrate.Input {
	return migrate.Input{Corefile: c.Corefile, KubeDNSConfigMap: c.KubeDNSConfigMap, Custom: c.Custom, NodeProfile: c.NodeProfile,
		Getenv: func(string) string { return "" }}
}

// Dir is the corpus directory below the repository's root
// (testenv.RepoRoot).
func Dir(root string) string { return filepath.Join(root, "testdata", "corefiles") }

// Load returns the corpus directory of the repository the test runs in and
// its cases; an error ends the test.
func Load(tb testing.TB) (dir string, cases []Case) {
	tb.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	dir = Dir(root)
	cases, err = Cases(dir)
	if err != nil {
		tb.Fatal(err)
	}
	return dir, cases
}

// Cases reads dir's cases.yaml.
func Cases(dir string) ([]Case, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cases.yaml"))
	if err != nil {
		return nil, err
	}
	var cs []Case
	if err := yaml.UnmarshalStrict(b, &cs); err != nil {
		return nil, fmt.Errorf("cases.yaml: %w", err)
	}
	return cs, nil
}

// Upstreams reads dir's upstreams.yaml: upstream name -> addresses.
func Upstreams(dir string) (map[string][]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "upstreams.yaml"))
	if err != nil {
		return nil, err
	}
	var m map[string][]string
	if err := yaml.UnmarshalStrict(b, &m); err != nil {
		return nil, fmt.Errorf("upstreams.yaml: %w", err)
	}
	return m, nil
}
