// Command manifests renders the kustomize base and every overlay under
// deploy/ into one YAML file each (`make manifests`: bin/manifests/base.yaml,
// bin/manifests/<overlay>.yaml), with kustomize's Go API.
//
// It exists so that rendering needs neither kubectl nor a kustomize binary,
// only the Go toolchain, and renders exactly as test/deploy does when it
// validates the manifests against a real API server.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/poddns/poddns/internal/deployrender"
)

func main() {
	deploy := flag.String("deploy", "deploy", "the deploy/ directory: base/ and overlays/*")
	out := flag.String("o", "bin/manifests", "output directory")
	flag.Parse()
	if err := run(*deploy, *out); err != nil {
		fmt.Fprintln(os.Stderr, "manifests:", err)
		os.Exit(1)
	}
}

func run(deploy, out string) error {
	targets, err := kustomizations(deploy)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	for _, t := range targets {
		m, err := deployrender.Kustomize(t.dir)
		if err != nil {
			return err
		}
		y, err := m.AsYaml()
		if err != nil {
			return fmt.Errorf("kustomize %s: YAML: %w", t.dir, err)
		}
		path := filepath.Join(out, t.name+".yaml")
		header := fmt.Sprintf("# Rendered from %s by `make manifests` (hack/manifests); do not edit.\n", t.dir)
		if err := os.WriteFile(path, append([]byte(header), y...), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		fmt.Printf("%s: %d objects from %s\n", path, m.Size(), t.dir)
	}
	return nil
}

// target is a kustomization to render and the name of its output file.
type target struct{ name, dir string }

// kustomizations returns deploy/base and every directory of deploy/overlays
// that holds a kustomization, in name order.
func kustomizations(deploy string) ([]target, error) {
	base := filepath.Join(deploy, "base")
	if _, err := os.Stat(filepath.Join(base, "kustomization.yaml")); err != nil {
		return nil, fmt.Errorf("base: %w", err)
	}
	targets := []target{{"base", base}}
	entries, err := os.ReadDir(filepath.Join(deploy, "overlays"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("overlays: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			if _, err := os.Stat(filepath.Join(deploy, "overlays", e.Name(), "kustomization.yaml")); err == nil {
				names = append(names, e.Name())
			}
		}
	}
	sort.Strings(names)
	for _, n := range names {
		targets = append(targets, target{n, filepath.Join(deploy, "overlays", n)})
	}
	return targets, nil
}
