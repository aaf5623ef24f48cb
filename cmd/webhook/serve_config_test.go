package main

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// parseServe parses args as `webhook serve` would and completes them.
func parseServe(t *testing.T, args ...string) (*serveOptions, error) {
	t.Helper()
	o := &serveOptions{}
	cmd := newServeCommandWith(streams{in: strings.NewReader(""), out: io.Discard, err: io.Discard}, o)
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return o, o.complete(cmd.Flags())
}

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "webhook.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const fullConfig = `apiVersion: poddns.io/v1alpha1
kind: WebhookConfig
policies: [policies, /abs/more.yaml]
mode: audit
nodeProfile: node.yaml
host: 127.0.0.1
port: 10443
certDir: /var/run/tls
healthProbeAddress: 127.0.0.1:18081
metricsAddress: "0"
excludedNamespaces: [poddns-system, cert-manager]
policyResync: 30s
enableHTTP2: true
`

func TestServeConfigPrecedence(t *testing.T) {
	cfg := writeConfig(t, fullConfig)
	dir := filepath.Dir(cfg)

	t.Run("defaults", func(t *testing.T) {
		o, err := parseServe(t, "-p", "p.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if o.cfg.Port != defaultPort || o.cfg.CertDir != defaultCertDir || o.cfg.Mode != "per-policy" || o.cfg.HealthProbeAddress != defaultHealthProbeAddress ||
			o.cfg.MetricsAddress != defaultMetricsAddress || o.cfg.PolicyResync.D() != defaultPolicyResync || len(o.cfg.ExcludedNamespaces) != 0 || o.cfg.Host != "" || o.cfg.EnableHTTP2 {
			t.Errorf("defaults: %+v", o)
		}
	})

	t.Run("config over defaults", func(t *testing.T) {
		o, err := parseServe(t, "--config", cfg)
		if err != nil {
			t.Fatal(err)
		}
		wantPolicies := []string{filepath.Join(dir, "policies"), "/abs/more.yaml"}
		if !slices.Equal(o.cfg.Policies, wantPolicies) {
			t.Errorf("policies = %q, want %q (relative to the config file)", o.cfg.Policies, wantPolicies)
		}
		if o.cfg.Mode != "audit" || o.cfg.Host != "127.0.0.1" || o.cfg.Port != 10443 || o.cfg.CertDir != "/var/run/tls" ||
			o.cfg.HealthProbeAddress != "127.0.0.1:18081" || o.cfg.MetricsAddress != "0" || o.cfg.PolicyResync.D() != 30*time.Second || !o.cfg.EnableHTTP2 {
			t.Errorf("config values not taken: %+v", o)
		}
		if !slices.Equal(o.cfg.ExcludedNamespaces, []string{"poddns-system", "cert-manager"}) {
			t.Errorf("excludedNamespaces = %q", o.cfg.ExcludedNamespaces)
		}
		// The profile path went into the --profile flag: NodeConfig reads
		// it (and fails: the file does not exist).
		if _, _, err := o.cfg.NodeConfig(); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "node.yaml")) {
			t.Errorf("node profile from the config: err = %v, want one naming %s", err, filepath.Join(dir, "node.yaml"))
		}
	})

	t.Run("flags over config", func(t *testing.T) {
		o, err := parseServe(t, "--config", cfg, "--port", "8443", "--mode", "enforce", "-p", "other", "--excluded-namespaces", "mine",
			"--cert-dir", "/certs", "--policy-resync", "0s", "--profile", "", "--enable-http2=false")
		if err != nil {
			t.Fatal(err)
		}
		if o.cfg.Port != 8443 || o.cfg.Mode != "enforce" || o.cfg.CertDir != "/certs" || o.cfg.PolicyResync != 0 || o.cfg.EnableHTTP2 {
			t.Errorf("flags lost to the config: %+v", o)
		}
		if !slices.Equal(o.cfg.Policies, []string{"other"}) || !slices.Equal(o.cfg.ExcludedNamespaces, []string{"mine"}) {
			t.Errorf("lists: policies %q excluded %q, want the flags' only", o.cfg.Policies, o.cfg.ExcludedNamespaces)
		}
		// What no flag set still comes from the config.
		if o.cfg.Host != "127.0.0.1" || o.cfg.HealthProbeAddress != "127.0.0.1:18081" {
			t.Errorf("config values not kept: %+v", o)
		}
		if _, _, err := o.cfg.NodeConfig(); err != nil {
			t.Errorf("--profile \"\" should override the config's nodeProfile: %v", err)
		}
	})
}

// TestServeConfigZeroValues: an empty or zero value in the file wins over
// the default, and one given as a flag wins over the file.
func TestServeConfigZeroValues(t *testing.T) {
	cfg := writeConfig(t, "apiVersion: poddns.io/v1alpha1\nkind: WebhookConfig\npolicies: [p]\nmetricsAddress: \"\"\npolicyResync: 0s\n"+
		"host: 127.0.0.1\nexcludedNamespaces: [a]\n")
	o, err := parseServe(t, "--config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if o.cfg.MetricsAddress != "" || o.cfg.PolicyResync != 0 {
		t.Errorf("the file's empty and zero values lost to the defaults: metricsAddress %q, policyResync %s", o.cfg.MetricsAddress, o.cfg.PolicyResync)
	}
	o, err = parseServe(t, "--config", cfg, "--host=", "--excluded-namespaces=", "--cert-dir=")
	if err != nil {
		t.Fatal(err)
	}
	if o.cfg.Host != "" || len(o.cfg.ExcludedNamespaces) != 0 || o.cfg.CertDir != "" {
		t.Errorf("empty flags lost to the file or defaults: host %q, excludedNamespaces %q, certDir %q", o.cfg.Host, o.cfg.ExcludedNamespaces, o.cfg.CertDir)
	}
}

func TestServeConfigErrors(t *testing.T) {
	tests := []struct {
		name, config string
		args         []string
		want         string
	}{
		{"unknown field", "apiVersion: poddns.io/v1alpha1\nkind: WebhookConfig\nport: 1\nprot: 2\n", nil, "line 4: prot: unknown field"},
		{"field case", "apiVersion: poddns.io/v1alpha1\nkind: WebhookConfig\nPort: 1\n", nil, "line 3: Port: unknown field (field names are case-sensitive)"},
		{"duplicate field", "apiVersion: poddns.io/v1alpha1\nkind: WebhookConfig\nport: 1\nport: 2\n", nil, "line 4: port: duplicate field (first at line 3)"},
		{"second document", "apiVersion: poddns.io/v1alpha1\nkind: WebhookConfig\npolicies: [p]\n---\napiVersion: poddns.io/v1alpha1\nkind: WebhookConfig\n", nil, "document 2, line 5: 2 documents: expected one WebhookConfig"},
		{"wrong kind", "apiVersion: poddns.io/v1alpha1\nkind: DNSDConfig\npolicies: [p]\n", nil, `line 2: kind: unsupported value "DNSDConfig": want "WebhookConfig"`},
		{"wrong type", "apiVersion: poddns.io/v1alpha1\nkind: WebhookConfig\nport: high\n", nil, "line 3: port: cannot unmarshal"},
		{"bad mode", "apiVersion: poddns.io/v1alpha1\nkind: WebhookConfig\npolicies: [p]\nmode: dry-run\n", nil, `mode: unknown mode "dry-run"`},
		{"bad duration", "apiVersion: poddns.io/v1alpha1\nkind: WebhookConfig\npolicies: [p]\npolicyResync: soon\n", nil, `line 4: policyResync: invalid duration "soon"`},
		{"no policies", "apiVersion: poddns.io/v1alpha1\nkind: WebhookConfig\n", nil, "no policies"},
		{"bad port", "apiVersion: poddns.io/v1alpha1\nkind: WebhookConfig\npolicies: [p]\nport: 70000\n", nil, "port 70000"},
		{"bad port flag", "apiVersion: poddns.io/v1alpha1\nkind: WebhookConfig\npolicies: [p]\n", []string{"--port", "-1"}, "port -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseServe(t, append([]string{"--config", writeConfig(t, tt.config)}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
	if _, err := parseServe(t, "--config", filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("a missing config file is not an error")
	}
}

// TestServeDeployConfig checks that the configuration shipped in
// deploy/base/webhook parses and says what the MutatingWebhookConfiguration
// next to it expects.
func TestServeDeployConfig(t *testing.T) {
	o, err := parseServe(t, "--config", "../../deploy/base/webhook/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if o.cfg.CertDir != "/tls" || o.cfg.Port != 9443 || !slices.Equal(o.cfg.ExcludedNamespaces, []string{"poddns-system"}) ||
		!slices.Equal(o.cfg.Policies, []string{"/etc/poddns/policies"}) || o.cfg.Mode != "per-policy" {
		t.Errorf("deploy config: %+v", o)
	}
}
