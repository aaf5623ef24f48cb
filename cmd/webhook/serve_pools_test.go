package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeNodeProfileSet: serve takes a NodeProfileSet as its node profile
// (--profile, nodeProfile:) and builds its pools before it reaches for the
// API server; a bad set stops it with the set's error.
func TestServeNodeProfileSet(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: poddns.io/v1alpha1\nkind: NodeProfileSet\nprofiles: [{name: a}, {name: a}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noKubeconfig := filepath.Join(dir, "no-kubeconfig")
	for _, tt := range []struct {
		name, profile, want string
	}{
		{"the pools load, then the kubeconfig is read", filepath.Join("..", "..", "testdata", "pools", "profiles.yaml"), "kubeconfig: stat " + noKubeconfig},
		{"a bad set", bad, `pool 1: name "a": duplicate`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseServe(t, "--policies", filepath.Join("..", "..", "testdata", "pools", "policies.yaml"), "--profile", tt.profile, "--kubeconfig", noKubeconfig)
			if err != nil {
				t.Fatal(err)
			}
			err = o.run(context.Background(), streams{in: strings.NewReader(""), out: io.Discard, err: io.Discard})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("serve: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
