package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/serve/daemon"
)

// TestMigrateExitCodes runs `dnsd migrate` on complete, partial and
// unreadable inputs: 0 and a loadable config; 1, a loadable config and the
// untranslated directive on stderr; 2 and a clear error with file and line.
func TestMigrateExitCodes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string { return testenv.WriteFile(t, dir, name, content) }
	complete := write("complete", ".:53 {\n    errors\n    kubernetes cluster.local in-addr.arpa ip6.arpa {\n        pods insecure\n        fallthrough in-addr.arpa ip6.arpa\n    }\n    forward . 192.0.2.1\n    cache 30\n}\n")
	partial := write("partial", ".:53 {\n    kubernetes cluster.local\n    autopath @kubernetes\n    forward . 192.0.2.1\n}\n")
	write("node.yaml", "apiVersion: poddns.io/v1alpha1\nkind: NodeProfile\n")
	badProfile := write("bad-node.yaml", "apiVersion: poddns.io/v1alpha1\nkind: NodeProfile\nnope: 1\n")
	malformed := write("malformed", ".:53 {\n    kubernetes cluster.local {\n        pods insecure\n    \n    forward . 192.0.2.1\n}\n")
	for _, tt := range []struct {
		name       string
		args       []string
		code       int
		wantConfig bool
		stderr     []string // substrings
	}{
		{"complete", []string{"--corefile", complete}, 0, true, nil},
		{"partial", []string{"--corefile", partial}, 1, true, []string{"not translated: " + partial + ":3: autopath @kubernetes: ", "--node-profile", "1 directive(s) not translated"}},
		{"partial, completed by a node profile", []string{"--corefile", partial, "--node-profile", filepath.Join(dir, "node.yaml")}, 0, true, nil},
		{"unreadable node profile", []string{"--corefile", partial, "--node-profile", badProfile}, 2, false, []string{badProfile, "nope"}},
		{"malformed", []string{"--corefile", malformed}, 2, false, []string{malformed + ":1: block opened here is not closed"}},
		{"missing", []string{"--corefile", filepath.Join(dir, "nope")}, 2, false, []string{"no such file"}},
		{"no corefile", nil, 2, false, []string{"want --corefile FILE"}},
		{"extra argument", []string{"--corefile", complete, "x"}, 2, false, []string{"want --corefile FILE"}},
		{"bad flag", []string{"--nope"}, 2, false, []string{"unknown flag"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := runMigrate(tt.args, &out, &errb)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, errb.String())
			}
			for _, s := range tt.stderr {
				if !strings.Contains(errb.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, errb.String())
				}
			}
			if !tt.wantConfig {
				if out.Len() > 0 {
					t.Errorf("a config printed for unreadable input:\n%s", out.String())
				}
				return
			}
			cfg, err := daemon.ParseConfig(out.Bytes(), "stdout")
			if err != nil {
				t.Fatalf("stdout does not load: %v\n%s", err, out.String())
			}
			if err := cfg.Validate(); err != nil {
				t.Errorf("stdout does not validate: %v", err)
			}
			if len(cfg.Forward.Upstreams) != 1 || cfg.Forward.Upstreams[0] != "192.0.2.1" {
				t.Errorf("upstreams %v, want [192.0.2.1]", cfg.Forward.Upstreams)
			}
		})
	}
}
