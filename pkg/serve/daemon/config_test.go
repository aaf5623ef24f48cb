package daemon_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/poddns/poddns/pkg/serve/daemon"
	"github.com/poddns/poddns/pkg/serve/dnstest"
)

const header = "apiVersion: poddns.io/v1alpha1\nkind: DNSDConfig\n"

// flags binds a few flags onto the configuration's fields, as cmd/dnsd
// does, and parses args.
func flags(args ...string) func(*daemon.Config) error {
	return func(c *daemon.Config) error {
		fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
		fs.IntVar(&c.UDPSockets, "udp-sockets", c.UDPSockets, "")
		fs.StringVar(&c.PprofListen, "pprof-listen", c.PprofListen, "")
		fs.Uint32Var(&c.TTL, "ttl", c.TTL, "")
		fs.StringVar(&c.Listen, "listen", c.Listen, "")
		return fs.Parse(args)
	}
}

// TestLoadPrecedence: defaults < file < flags, field by field; a flag given
// wins with a zero or empty value too, and a file's zero or empty value
// wins over a default.
func TestLoadPrecedence(t *testing.T) {
	file := dnstest.WriteFile(t, "dnsd.yaml", header+`
udpSockets: 4
pprofListen: 127.0.0.1:6060
ttl: 0
cache: {minTTL: 0s, servfailTTL: 0s, capacity: 2048}
forward: {maxConcurrent: 0, maxFails: 0}
loadBalance: false
source: {file: objects.yaml}
`)
	cfg, err := daemon.Load(file, flags("--udp-sockets=0", "--pprof-listen=", "--listen", "127.0.0.1:5353"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.UDPSockets != 0 || cfg.PprofListen != "" {
		t.Errorf("flags --udp-sockets=0 --pprof-listen= lost to the file: udpSockets %d, pprofListen %q", cfg.UDPSockets, cfg.PprofListen)
	}
	if cfg.Listen != "127.0.0.1:5353" {
		t.Errorf("listen %q, want the flag's", cfg.Listen)
	}
	if cfg.TTL != 0 || cfg.Cache.MinTTL != 0 || cfg.Cache.ServfailTTL != 0 || cfg.Forward.MaxConcurrent != 0 || cfg.Forward.MaxFails != 0 || cfg.LoadBalance {
		t.Errorf("the file's zero values lost to the defaults: %+v", cfg)
	}
	if cfg.Cache.Capacity != 2048 || cfg.Cache.SuccessTTL.D() != time.Hour || cfg.HealthListen != daemon.DefaultHealthListen {
		t.Errorf("file or default values lost: %+v", cfg)
	}
	if want := filepath.Join(filepath.Dir(file), "objects.yaml"); cfg.Source.File != want {
		t.Errorf("source.file %q, want %q (relative to the config file)", cfg.Source.File, want)
	}
	// The flags win over the defaults too; without a file, zero is zero.
	cfg, err = daemon.Load("", flags("--ttl=0"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TTL != 0 {
		t.Errorf("--ttl=0: ttl %d", cfg.TTL)
	}
}

// TestLoadStrict: case-sensitive fields, unknown and duplicate fields,
// extra documents, wrong types and identities are errors naming the file,
// the line and the field; invalid values are errors of the validation
// that follows.
func TestLoadStrict(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"field case", header + "LISTEN: 127.0.0.1:53\n", "line 3: LISTEN: unknown field"},
		{"unknown field", header + "forward:\n  upstreams: [127.0.0.1]\n  polcy: random\n", "line 5: forward.polcy: unknown field"},
		{"duplicate field", header + "ttl: 5\nttl: 6\n", "line 4: ttl: duplicate field (first at line 3)"},
		{"nested duplicate", header + "cache:\n  capacity: 2048\n  capacity: 4096\n", "line 5: cache.capacity: duplicate field"},
		{"second document", header + "---\n" + header, "document 2, line 4: 2 documents: expected one DNSDConfig"},
		{"wrong type", header + "ttl: thirty\n", "line 3: ttl: cannot unmarshal string into uint32"},
		{"bad duration", header + "lameduck: 5 seconds\n", `line 3: lameduck: invalid duration "5 seconds"`},
		{"duration not a string", header + "cache:\n  minTTL: 5\n", "line 4: cache.minTTL: want a duration"},
		{"wrong kind", "apiVersion: poddns.io/v1alpha1\nkind: WebhookConfig\n", `line 2: kind: unsupported value "WebhookConfig": want "DNSDConfig"`},
		{"empty", "# nothing\n", "no document: expected one DNSDConfig"},
		{"blank", "\n", "no document: expected one DNSDConfig"},
		{"not a mapping", "- a\n", "not a mapping"},
		{"invalid value", header + "cache: {capacity: 10}\n", "invalid configuration: cache: capacity 10 is below 1024"},
		{"both sources", header + "source: {file: a, kubeconfig: b}\n", "invalid configuration: source: set file or kubeconfig, not both"},
		{"query log class", header + "queryLog: {classes: [denials]}\n", "invalid configuration: queryLog: class"},
		{"query log sample", header + "queryLog: {sample: 0}\n", "invalid configuration: queryLog: sample"},
		{"query log field", header + "queryLog: {enabld: true}\n", "line 3: queryLog.enabld: unknown field"},
		{"errors pattern", header + "errors: {patterns: ['(']}\n", "invalid configuration: errors: pattern"},
		{"tls field case", header + "forward:\n  upstreams: [tls://127.0.0.1]\n  tlsServername: dns.example\n", "line 5: forward.tlsServername: unknown field"},
		{"stub tls field", header + "forward:\n  stubs:\n  - zone: a.example\n    upstreams: [tls://127.0.0.1]\n    tlsCa: ca.pem\n", "line 7: forward.stubs[0].tlsCa: unknown field"},
		{"tls field type", header + "forward:\n  upstreams: [tls://127.0.0.1]\n  tlsServerName: [a]\n", "line 5: forward.tlsServerName: cannot unmarshal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := dnstest.WriteFile(t, "dnsd.yaml", tc.body)
			_, err := daemon.Load(file, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), file) && !strings.HasPrefix(tc.want, "invalid configuration: ") {
				t.Errorf("error %v, want one naming %s and containing %q", err, file, tc.want)
			}
		})
	}
}

// TestDefaultsValid: the defaults are a valid configuration, and the
// handlers' defaults are the daemon's.
func TestDefaultsValid(t *testing.T) {
	if err := daemon.Defaults().Validate(); err != nil {
		t.Fatal(err)
	}
	cfg, err := daemon.ParseConfig([]byte(header), "x")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cache.Capacity != 9984 || cfg.TTL != 30 || cfg.Forward.MaxConcurrent != 1000 || len(cfg.Forward.ClientNetworks) != 6 || !cfg.LoadBalance {
		t.Errorf("defaults: %+v", cfg)
	}
}

// exampleCluster is the quick start's objects file.
const exampleCluster = "../../../testdata/cluster.yaml"

// TestLoadForwardTLS: the forward block's TLS fields (the shape dnsd
// migrate writes for CoreDNS's tls:// upstreams), the CA paths relative to
// the config file.
func TestLoadForwardTLS(t *testing.T) {
	file := dnstest.WriteFile(t, "dnsd.yaml", header+`
forward:
  upstreams: [tls://192.0.2.1, tls://192.0.2.2:8853]
  tlsServerName: dns.example.net
  tlsCA: certs/ca.pem
  stubs:
  - zone: corp.example
    upstreams: [tls://10.0.0.53]
    tlsServerName: ns.corp.example
    tlsCA: /etc/corp-ca.pem
`)
	cfg, err := daemon.Load(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	fo := cfg.Forward
	if fo.TLSServerName != "dns.example.net" || fo.TLSCA != filepath.Join(filepath.Dir(file), "certs/ca.pem") {
		t.Errorf("forward TLS fields %q %q", fo.TLSServerName, fo.TLSCA)
	}
	if s := fo.Stubs[0]; s.TLSServerName != "ns.corp.example" || s.TLSCA != "/etc/corp-ca.pem" {
		t.Errorf("stub TLS fields %+v", s)
	}
}
