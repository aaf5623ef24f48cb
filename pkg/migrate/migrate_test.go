package migrate_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/poddns/poddns/internal/corefilecorpus"
	"github.com/poddns/poddns/internal/golden"
	"github.com/poddns/poddns/pkg/migrate"
	"github.com/poddns/poddns/pkg/serve/daemon"
)

// TestCorpus translates every configuration of testdata/corefiles and
// compares the DNSDConfig and the report with <case>/migrate.golden; the
// output must load and validate as dnsd loads its config file.
func TestCorpus(t *testing.T) {
	dir, cases := corefilecorpus.Load(t)
	if len(cases) < 6 {
		t.Fatalf("%d cases in the corpus, want at least 6", len(cases))
	}
	t.Chdir(dir) // paths in the output and the report relative to the corpus
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			res, err := migrate.Translate(c.Input())
			if err != nil {
				t.Fatal(err)
			}
			golden.Assert(t, filepath.Join(c.Name, "migrate.golden"), string(res.YAML)+"---- report\n"+res.Report())
			p := filepath.Join(t.TempDir(), "dnsd.yaml")
			if err := os.WriteFile(p, res.YAML, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := daemon.Load(p, nil); err != nil {
				t.Errorf("the migrated config does not load: %v", err)
			}
		})
	}
}

// translate writes corefile (and extra files by name) to a directory and
// translates it.
func translate(t *testing.T, corefile string, in migrate.Input, files map[string]string) (*migrate.Result, error) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	in.Corefile = filepath.Join(dir, "Corefile")
	if err := os.WriteFile(in.Corefile, []byte(corefile), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*string{&in.Custom, &in.KubeDNSConfigMap, &in.NodeProfile} {
		if *p != "" {
			*p = filepath.Join(dir, *p)
		}
	}
	return migrate.Translate(in)
}

// TestTranslate checks each directive's translation: the fields it sets
// and what it reports as not translated (by directive name).
func TestTranslate(t *testing.T) {
	server := func(body string) string { return ".:53 {\n" + body + "\n}\n" }
	for _, tt := range []struct {
		name     string
		corefile string
		in       migrate.Input
		files    map[string]string
		check    func(t *testing.T, c daemon.Config)
		skipped  []string // directive names, in order
	}{
		{name: "nothing means off", corefile: server("kubernetes cluster.local\nforward . 192.0.2.1"), check: func(t *testing.T, c daemon.Config) {
			expect(t, "cache disabled", c.Cache.Disabled, true)
			expect(t, "loadBalance", c.LoadBalance, false)
			expect(t, "reload", c.Reload.D().String(), "0s")
			expect(t, "errors", c.Errors.Enabled, false)
			expect(t, "queryLog", c.QueryLog.Enabled, false)
			expect(t, "reverseFallthrough", c.ReverseFallthrough, false)
			expect(t, "maxConcurrent", c.Forward.MaxConcurrent, 0)
			expect(t, "cluster ttl (the kubernetes plugin's default)", c.TTL, uint32(5))
			expect(t, "upstreams", strings.Join(c.Forward.Upstreams, ","), "192.0.2.1")
		}},
		{name: "kubernetes", corefile: server("kubernetes example.cluster in-addr.arpa ip6.arpa {\n pods verified\n ttl 5\n fallthrough in-addr.arpa ip6.arpa\n kubeconfig /k.conf\n}"),
			check: func(t *testing.T, c daemon.Config) {
				expect(t, "zones", strings.Join(c.Zones, ","), "example.cluster")
				expect(t, "pods", string(c.Pods), "verified")
				expect(t, "ttl", c.TTL, uint32(5))
				expect(t, "reverseFallthrough", c.ReverseFallthrough, true)
				expect(t, "kubeconfig", c.Source.Kubeconfig, "/k.conf")
			}},
		{name: "kubernetes unsupported", corefile: server("kubernetes cluster.local {\n fallthrough\n namespaces a b\n endpoint https://x\n ttl 99999\n}"),
			skipped: []string{"kubernetes.fallthrough", "kubernetes.namespaces", "kubernetes.endpoint", "kubernetes.ttl"}},
		{name: "two kubernetes", corefile: server("kubernetes cluster.local\nkubernetes other.local"), skipped: []string{"kubernetes"}},
		{name: "forward options", corefile: server("forward . dns://192.0.2.1 192.0.2.2:5353 [2001:db8::1]:53 {\n policy round_robin\n force_tcp\n max_concurrent 10\n max_fails 3\n expire 20s\n health_check 1s\n}"),
			check: func(t *testing.T, c daemon.Config) {
				expect(t, "upstreams", strings.Join(c.Forward.Upstreams, ","), "192.0.2.1,192.0.2.2:5353,[2001:db8::1]:53")
				expect(t, "policy", string(c.Forward.Policy), "round_robin")
				expect(t, "forceTCP", c.Forward.ForceTCP, true)
				expect(t, "maxConcurrent", c.Forward.MaxConcurrent, 10)
				expect(t, "maxFails", c.Forward.MaxFails, 3)
				expect(t, "expire", c.Forward.Expire.D().String(), "20s")
				expect(t, "healthCheck", c.Forward.HealthCheck.D().String(), "1s")
			}},
		{name: "forward except and others", corefile: server("forward . 192.0.2.1 {\n except example.org\n prefer_udp\n next NXDOMAIN\n}"),
			skipped: []string{"forward.except", "forward.prefer_udp", "forward.next"}},
		{name: "forward stub in main block", corefile: server("forward example.org 192.0.2.9\nforward . /etc/resolv.conf"), check: func(t *testing.T, c daemon.Config) {
			expect(t, "stubs", len(c.Forward.Stubs), 1)
			expect(t, "stub", c.Forward.Stubs[0].Zone+"="+strings.Join(c.Forward.Stubs[0].Upstreams, ","), "example.org=192.0.2.9")
			expect(t, "resolvConf", c.Forward.ResolvConf, "/etc/resolv.conf")
		}},
		{name: "stub block with shared directives", corefile: server("errors\ncache 30\nforward . 192.0.2.1") + "corp.example:53 {\n errors\n cache 30\n forward . 192.0.2.7\n}\nother.example:53 {\n cache 60\n forward . 192.0.2.8 {\n  force_tcp\n }\n}\n",
			check: func(t *testing.T, c daemon.Config) {
				expect(t, "stubs", len(c.Forward.Stubs), 2)
				expect(t, "successTTL", c.Cache.SuccessTTL.D().String(), "30s")
				expect(t, "forceTCP", c.Forward.ForceTCP, false)
			}, skipped: []string{"cache", "forward.force_tcp"}},
		{name: "resolv.conf in a stub", corefile: "corp.example {\n forward . /etc/resolv.conf\n}\n", skipped: []string{"forward"}},
		{name: "other port and scheme", corefile: server("forward . 192.0.2.1") + ".:5353 {\n errors\n}\ntls://.:853 {\n forward . 192.0.2.1\n}\n",
			skipped: []string{"server", "errors", "server", "forward"}},
		{name: "cache", corefile: server("cache 300 {\n success 20000 600 10\n denial 5000 60 10\n prefetch 5 30s 25%\n serve_stale 10m verify\n servfail 2s\n}"),
			check: func(t *testing.T, c daemon.Config) {
				expect(t, "disabled", c.Cache.Disabled, false)
				expect(t, "capacity", c.Cache.Capacity, 20000)
				expect(t, "successTTL", c.Cache.SuccessTTL.D().String(), "10m0s")
				expect(t, "denialTTL", c.Cache.DenialTTL.D().String(), "1m0s")
				expect(t, "minTTL", c.Cache.MinTTL.D().String(), "10s")
				expect(t, "prefetch", c.Cache.Prefetch, 5)
				expect(t, "prefetchWindow", c.Cache.PrefetchWindow.D().String(), "30s")
				expect(t, "prefetchPercent", c.Cache.PrefetchPercent, 25)
				expect(t, "serveStale", c.Cache.ServeStale.D().String(), "10m0s")
				expect(t, "servfailTTL", c.Cache.ServfailTTL.D().String(), "2s")
			}},
		{name: "cache unsupported", corefile: server("cache 30 example.org {\n}") + "x.example {\n cache {\n  serve_stale\n  keepttl\n  disable success example.org\n }\n}\n",
			skipped: []string{"cache", "cache"}},
		{name: "cache options unsupported", corefile: server("cache {\n serve_stale\n keepttl\n disable success example.org\n}"),
			skipped: []string{"cache.serve_stale", "cache.keepttl", "cache.disable"}},
		{name: "hosts", corefile: server("hosts /etc/coredns/NodeHosts example.org {\n 192.0.2.1 a.example.org\n 2001:db8::1 a.example.org\n ttl 60\n reload 15s\n no_reverse\n fallthrough\n}"),
			check: func(t *testing.T, c daemon.Config) {
				expect(t, "static blocks", len(c.Static), 1)
				b := c.Static[0]
				expect(t, "hostsFile", b.HostsFile, "/etc/coredns/NodeHosts")
				expect(t, "zones", strings.Join(b.Zones, ","), "example.org.")
				expect(t, "entries", strings.Join(b.Entries, ","), "192.0.2.1 a.example.org,2001:db8::1 a.example.org")
				expect(t, "ttl", *b.TTL, uint32(60))
				expect(t, "reload", b.Reload.D().String(), "15s")
				expect(t, "noReverse", b.NoReverse, true)
				expect(t, "fallthrough", b.Fallthrough, true)
			}},
		{name: "hosts default file and partial fallthrough", corefile: server("hosts {\n 192.0.2.1 a.example.org\n fallthrough example.org\n}"),
			check: func(t *testing.T, c daemon.Config) {
				expect(t, "hostsFile", c.Static[0].HostsFile, "/etc/hosts")
			}, skipped: []string{"hosts.fallthrough"}},
		{name: "rewrite", corefile: server("kubernetes cluster.local\nrewrite name exact db.example.com postgres.default.svc.cluster.local\nrewrite stop name suffix .old.example .new.example answer auto\n" +
			"rewrite name regex (.*)\\.svc\\.corp\\.example {1}.default.svc.cluster.local answer name (.*)\\.default\\.svc\\.cluster\\.local {1}.svc.corp.example\nrewrite name exact kubernetes.default.svc.cluster.local db.example.com"),
			check: func(t *testing.T, c daemon.Config) {
				expect(t, "rules", len(c.Rewrite), 4)
				expect(t, "exact", c.Rewrite[0].Match+" "+c.Rewrite[0].From+" "+c.Rewrite[0].To, "exact db.example.com postgres.default.svc.cluster.local")
				expect(t, "exact cluster", c.Rewrite[0].Cluster, false)
				expect(t, "suffix", c.Rewrite[1].From+" "+c.Rewrite[1].To, "old.example new.example")
				expect(t, "regex to", c.Rewrite[2].To, "${1}.default.svc.cluster.local")
				expect(t, "rewrite of a cluster name", c.Rewrite[3].Cluster, true)
			}},
		{name: "rewrite unsupported", corefile: server("rewrite name prefix a b\nrewrite continue name exact a.example b.example\nrewrite type ANY HINFO\nrewrite name exact a.example b.example answer value x y"),
			skipped: []string{"rewrite", "rewrite", "rewrite", "rewrite"}},
		{name: "log errors health ready prometheus reload loadbalance loop bind",
			corefile: server("bind 127.0.0.53\nlog . {\n class denial error\n}\nerrors {\n consolidate 5m \".* i/o timeout$\"\n consolidate 5m \"^refused$\"\n}\nhealth :8081 {\n lameduck 7s\n}\nready :8181\nprometheus 0.0.0.0:9253\nreload 10s\nloadbalance round_robin\nloop"),
			check: func(t *testing.T, c daemon.Config) {
				expect(t, "listen", c.Listen, "127.0.0.53:53")
				expect(t, "queryLog", c.QueryLog.Enabled, true)
				expect(t, "classes", strings.Join(c.QueryLog.Classes, ","), "denial,error")
				expect(t, "errors", c.Errors.Enabled, true)
				expect(t, "consolidate", c.Errors.Consolidate.D().String(), "5m0s")
				expect(t, "patterns", len(c.Errors.Patterns), 2)
				expect(t, "healthListen", c.HealthListen, ":8081")
				expect(t, "lameduck", c.Lameduck.D().String(), "7s")
				expect(t, "metricsListen", c.MetricsListen, "0.0.0.0:9253")
				expect(t, "reload", c.Reload.D().String(), "10s")
				expect(t, "loadBalance", c.LoadBalance, true)
			}},
		{name: "ready alone", corefile: server("ready"), check: func(t *testing.T, c daemon.Config) { expect(t, "healthListen", c.HealthListen, ":8181") }},
		{name: "log names and formats", corefile: server("log example.org\nerrors stdout\nloadbalance prefer 10.0.0.0/8"), skipped: []string{"log", "errors", "loadbalance"}},
		{name: "AAAA template", corefile: server("template ANY AAAA {\n rcode NOERROR\n}"), check: func(t *testing.T, c daemon.Config) {
			expect(t, "aaaa", string(c.AAAA.Filter), "all")
		}},
		{name: "other templates", corefile: server("template IN A example.org {\n answer \"{{ .Name }} 60 IN A 192.0.2.1\"\n}\ntemplate IN AAAA example.org {\n rcode NOERROR\n}\ntemplate IN AAAA {\n rcode NXDOMAIN\n}"),
			skipped: []string{"template", "template", "template"}},
		{name: "autopath without a node profile", corefile: server("kubernetes cluster.local\nautopath @kubernetes"), skipped: []string{"autopath"}},
		{name: "autopath with a node profile", corefile: server("kubernetes cluster.local\nautopath @kubernetes"), in: migrate.Input{NodeProfile: "node.yaml"},
			files: map[string]string{"node.yaml": "apiVersion: poddns.io/v1alpha1\nkind: NodeProfile\n"},
			check: func(t *testing.T, c daemon.Config) {
				expect(t, "completion", *c.Completion.Enabled, true)
				expect(t, "nodeProfile", filepath.Base(c.Completion.NodeProfile), "node.yaml")
			}},
		{name: "unknown plugins", corefile: server("dnssec\nfile db.example example.org\nwhoami"), skipped: []string{"dnssec", "file", "whoami"}},
		{name: "kube-dns", corefile: server("forward . /etc/resolv.conf"), in: migrate.Input{KubeDNSConfigMap: "kube-dns.yaml"},
			files: map[string]string{"kube-dns.yaml": "apiVersion: v1\nkind: ConfigMap\ndata:\n  stubDomains: '{\"b.example\": [\"192.0.2.2\"], \"a.example\": [\"192.0.2.1:5353\", \"192.0.2.3\"]}'\n  upstreamNameservers: '[\"192.0.2.9\"]'\n  federations: '{\"x\": \"y\"}'\n"},
			check: func(t *testing.T, c daemon.Config) {
				expect(t, "stubs", len(c.Forward.Stubs), 2)
				expect(t, "stub a", c.Forward.Stubs[0].Zone+"="+strings.Join(c.Forward.Stubs[0].Upstreams, ","), "a.example=192.0.2.1:5353,192.0.2.3")
				expect(t, "upstreams", strings.Join(c.Forward.Upstreams, ","), "192.0.2.9")
				expect(t, "resolvConf", c.Forward.ResolvConf, "")
			}, skipped: []string{"federations"}},
		{name: "custom directory", corefile: server("errors\nimport custom/*.override") + "import custom/*.server\n", in: migrate.Input{Custom: "cm"},
			files: map[string]string{"cm/a.override": "log\n", "cm/b.server": "x.example {\n forward . 192.0.2.5\n}\n", "cm/c.other": "junk {"},
			check: func(t *testing.T, c daemon.Config) {
				expect(t, "queryLog", c.QueryLog.Enabled, true)
				expect(t, "stubs", len(c.Forward.Stubs), 1)
			}},
		{name: "custom ConfigMap", corefile: server("import /etc/coredns/custom/*.override"), in: migrate.Input{Custom: "cm.yaml"},
			files: map[string]string{"cm.yaml": "apiVersion: v1\nkind: ConfigMap\ndata:\n  x.override: |\n    loadbalance\n"},
			check: func(t *testing.T, c daemon.Config) { expect(t, "loadBalance", c.LoadBalance, true) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := translate(t, tt.corefile, tt.in, tt.files)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range res.Skipped {
				got = append(got, s.Directive)
			}
			if !slices.Equal(got, tt.skipped) {
				t.Errorf("skipped %q, want %q; report:\n%s", got, tt.skipped, res.Report())
			}
			if res.Complete() != (len(tt.skipped) == 0) {
				t.Errorf("Complete() = %v with %d skipped", res.Complete(), len(tt.skipped))
			}
			if tt.check != nil {
				tt.check(t, res.Config)
			}
			back, err := daemon.ParseConfig(res.YAML, "migrated")
			if err != nil {
				t.Fatalf("output does not load: %v\n%s", err, res.YAML)
			}
			if err := back.Validate(); err != nil {
				t.Errorf("output does not validate: %v", err)
			}
		})
	}
}

func expect[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// TestUnreadable: inputs that cannot be read or parsed are errors naming
// the file and line.
func TestUnreadable(t *testing.T) {
	for _, tt := range []struct {
		name, corefile string
		in             migrate.Input
		files          map[string]string
		want           string
	}{
		{name: "unclosed block", corefile: ".:53 {\n  errors\n", want: "Corefile:1: block opened here is not closed"},
		{name: "bad kube-dns JSON", corefile: ".:53 {\n}\n", in: migrate.Input{KubeDNSConfigMap: "k.yaml"},
			files: map[string]string{"k.yaml": "kind: ConfigMap\ndata:\n  stubDomains: '{not json'\n"}, want: "data.stubDomains: want a JSON object"},
		{name: "not a ConfigMap", corefile: ".:53 {\n}\n", in: migrate.Input{Custom: "c.yaml"},
			files: map[string]string{"c.yaml": "kind: Secret\n"}, want: `kind "Secret": want a ConfigMap`},
		{name: "missing custom", corefile: ".:53 {\n}\n", in: migrate.Input{Custom: "nope"}, want: "no such file"},
		{name: "value out of range", corefile: ".:53 {\n cache 30 {\n  success 10\n }\n forward . 192.0.2.1 {\n  max_concurrent -1\n }\n}\n", want: ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := translate(t, tt.corefile, tt.in, tt.files)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
	if _, err := migrate.Translate(migrate.Input{Corefile: "/no/such/Corefile"}); err == nil || !strings.Contains(err.Error(), "/no/such/Corefile") {
		t.Errorf("missing Corefile: error %v", err)
	}
}

// TestTranslateTLS: tls:// upstreams and tls_servername/tls CA take the
// shape agreed with the forwarder (tls://IP[:port], tlsServerName and tlsCA
// on the forward block and on each stub); until the forwarder speaks DNS
// over TLS (TLSTransport) such forwards are reported as not translated.
func TestTranslateTLS(t *testing.T) {
	corefile := ".:53 {\n forward . tls://192.0.2.1 tls://192.0.2.2:8853 {\n  tls_servername dns.example\n  tls /ca.pem\n }\n}\n" +
		"corp.example {\n forward . tls://192.0.2.3 {\n  tls_servername corp.example\n }\n}\n"
	t.Logf("the forwarder speaks DNS over TLS: %v", migrate.TLSTransport())
	for _, transport := range []bool{false, true} {
		t.Run(fmt.Sprintf("transport %v", transport), func(t *testing.T) {
			migrate.SetTLSTransport(t, transport)
			res, err := translate(t, corefile, migrate.Input{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !transport {
				var got []string
				for _, s := range res.Skipped {
					got = append(got, s.Directive+": "+s.Reason)
				}
				want := []string{"forward: upstream tls://192.0.2.1: dnsd's forwarder does not speak DNS over TLS yet", "forward: upstream tls://192.0.2.3: dnsd's forwarder does not speak DNS over TLS yet"}
				if !slices.Equal(got, want) {
					t.Errorf("skipped %q, want %q", got, want)
				}
				return
			}
			if !res.Complete() {
				t.Errorf("not complete:\n%s", res.Report())
			}
			f := res.Config.Forward
			expect(t, "upstreams", strings.Join(f.Upstreams, ","), "tls://192.0.2.1,tls://192.0.2.2:8853")
			expect(t, "tlsServerName", f.TLSServerName, "dns.example")
			expect(t, "tlsCA", f.TLSCA, "/ca.pem")
			expect(t, "stubs", len(f.Stubs), 1)
			expect(t, "stub", f.Stubs[0].Zone+" "+strings.Join(f.Stubs[0].Upstreams, ",")+" "+f.Stubs[0].TLSServerName, "corp.example tls://192.0.2.3 corp.example")
		})
	}
}
