package forward_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/poddns/poddns/pkg/configfile"
	"github.com/poddns/poddns/pkg/serve/forward"
)

func TestParseUpstream(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"192.0.2.1", "192.0.2.1:53", ""},
		{"192.0.2.1:5353", "192.0.2.1:5353", ""},
		{"dns://192.0.2.1", "192.0.2.1:53", ""},
		{"2001:db8::1", "[2001:db8::1]:53", ""},
		{"[2001:db8::1]:54", "[2001:db8::1]:54", ""},
		{"tls://192.0.2.1", "tls://192.0.2.1:853", ""},
		{"TLS://192.0.2.1:8853", "tls://192.0.2.1:8853", ""},
		{"tls://2001:db8::1", "tls://[2001:db8::1]:853", ""},
		{"tls://[2001:db8::1]:8853", "tls://[2001:db8::1]:8853", ""},
		{" tls://::ffff:192.0.2.1 ", "tls://192.0.2.1:853", ""},
		{"tls://dns.example.net", "", "want IP or IP:port"},
		{"tls://192.0.2.1:0", "", "port 0"},
		{"https://192.0.2.1", "", "scheme https: want dns:// or tls://"},
		{"tls://", "", "want IP"},
	} {
		got, err := forward.ParseUpstream(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("ParseUpstream(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseUpstream(%q) = %q, %v; want an error containing %q", tc.in, got, err, tc.err)
		}
	}
}

// TestValidateTLS: the TLS settings are checked, and a server name or CA
// file that no tls:// upstream would use is an error (not silently
// ignored).
func TestValidateTLS(t *testing.T) {
	stub := func(s forward.Stub) func(*forward.Config) {
		return func(c *forward.Config) { c.Stubs = append(c.Stubs, s) }
	}
	for _, tc := range []struct {
		name string
		mod  func(*forward.Config)
		err  string // "" for valid
	}{
		{"tls without a server name (the IP is verified)", func(c *forward.Config) { c.Upstreams = []string{"tls://192.0.2.1"} }, ""},
		{"tls with name and CA", func(c *forward.Config) {
			c.Upstreams, c.TLSServerName, c.TLSCA = []string{"tls://192.0.2.1", "192.0.2.2"}, "dns.example.net", "/etc/ca.pem"
		}, ""},
		{"forward's name used by a stub only", func(c *forward.Config) {
			c.Upstreams, c.TLSServerName = []string{"192.0.2.1"}, "dns.example.net"
			stub(forward.Stub{Zone: "corp.example", Upstreams: []string{"tls://192.0.2.3"}})(c)
		}, ""},
		{"IPv6 address as the name", func(c *forward.Config) { c.Upstreams, c.TLSServerName = []string{"tls://[2001:db8::1]"}, "2001:db8::1" }, ""},
		{"stub's own name and CA", stub(forward.Stub{Zone: "corp.example", Upstreams: []string{"tls://192.0.2.3"}, TLSServerName: "ns.corp.example", TLSCA: "corp.pem"}), ""},
		{"name without tls upstream", func(c *forward.Config) { c.Upstreams, c.TLSServerName = []string{"192.0.2.1"}, "dns.example.net" },
			"tlsServerName set, but no tls:// upstream uses it"},
		{"CA without tls upstream", func(c *forward.Config) { c.Upstreams, c.TLSCA = []string{"192.0.2.1"}, "ca.pem" },
			"tlsCA set, but no tls:// upstream uses it"},
		{"name with resolvConf", func(c *forward.Config) { c.ResolvConf, c.TLSServerName = "/etc/resolv.conf", "dns.example.net" },
			"no tls:// upstream uses it"},
		{"forward's name overridden by every stub", func(c *forward.Config) {
			c.TLSServerName = "dns.example.net"
			stub(forward.Stub{Zone: "corp.example", Upstreams: []string{"tls://192.0.2.3"}, TLSServerName: "ns.corp.example"})(c)
		}, "tlsServerName set, but no tls:// upstream uses it"},
		{"stub name without tls upstream", stub(forward.Stub{Zone: "corp.example", Upstreams: []string{"192.0.2.3"}, TLSServerName: "ns.corp.example"}),
			"stub zone corp.example.: tlsServerName or tlsCA set, but no tls:// upstream uses it"},
		{"bad name", func(c *forward.Config) { c.Upstreams, c.TLSServerName = []string{"tls://192.0.2.1"}, "dns example" }, `tlsServerName "dns example": want a host name`},
		{"name with trailing dot", func(c *forward.Config) {
			c.Upstreams, c.TLSServerName = []string{"tls://192.0.2.1"}, "dns.example.net."
		}, "want a host name"},
		{"wildcard name", func(c *forward.Config) { c.Upstreams, c.TLSServerName = []string{"tls://192.0.2.1"}, "*.example.net" }, "want a host name"},
		{"bad stub name", stub(forward.Stub{Zone: "corp.example", Upstreams: []string{"tls://192.0.2.3"}, TLSServerName: "a..b"}), "stub zone corp.example.: tlsServerName"},
		{"bad scheme", func(c *forward.Config) { c.Upstreams = []string{"https://192.0.2.1"} }, "scheme https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := forward.Defaults()
			tc.mod(&c)
			err := c.Validate()
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("Validate = %v, want an error containing %q", err, tc.err)
			}
		})
	}
}

// TestTLSCAPath: tlsCA (the forward block's and the stubs') is a path
// relative to the config file's directory.
func TestTLSCAPath(t *testing.T) {
	c := forward.Defaults()
	c.Upstreams, c.TLSCA = []string{"tls://192.0.2.1"}, "ca.pem"
	c.Stubs = []forward.Stub{{Zone: "corp.example", Upstreams: []string{"tls://192.0.2.3"}, TLSCA: "/abs/corp.pem"}}
	configfile.ResolvePaths("/etc/dnsd", c.Paths()...)
	if c.TLSCA != filepath.Join("/etc/dnsd", "ca.pem") || c.Stubs[0].TLSCA != "/abs/corp.pem" {
		t.Errorf("tlsCA %q, stub tlsCA %q", c.TLSCA, c.Stubs[0].TLSCA)
	}
}
