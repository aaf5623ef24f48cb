package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/serve/aaaa"
	"github.com/poddns/poddns/pkg/serve/cluster"
	"github.com/poddns/poddns/pkg/serve/daemon"
	"github.com/poddns/poddns/pkg/serve/dnstest"
)

const exampleCluster = "../../testdata/cluster.yaml"

func loadArgs(t *testing.T, args ...string) (daemon.Config, error) {
	t.Helper()
	cmd, err := parseArgs(args, io.Discard)
	if err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return cmd.load()
}

func TestConfigPrecedence(t *testing.T) {
	file := dnstest.WriteFile(t, "dnsd.yaml", `
apiVersion: poddns.io/v1alpha1
kind: DNSDConfig
listen: 127.0.0.1:1053
zones: [example.internal]
ttl: 10
pods: verified
source: {file: /from/file.yaml}
lameduck: 2s
`)
	cfg, err := loadArgs(t, "--config", file, "--listen", "127.0.0.1:2053", "--source", exampleCluster)
	if err != nil {
		t.Fatal(err)
	}
	// Flags win; the file wins over defaults; defaults fill the rest.
	if cfg.Listen != "127.0.0.1:2053" || cfg.Source.File != exampleCluster {
		t.Errorf("flags did not override: listen %q source %+v", cfg.Listen, cfg.Source)
	}
	if cfg.TTL != 10 || cfg.Pods != cluster.PodsVerified || cfg.Zones[0] != "example.internal" || cfg.Lameduck.D() != 2*time.Second {
		t.Errorf("file values lost: %+v", cfg)
	}
	if cfg.HealthListen != daemon.DefaultHealthListen || cfg.MetricsListen != daemon.DefaultMetricsListen || cfg.LogLevel != "info" {
		t.Errorf("defaults lost: %+v", cfg)
	}
	// Flags alone, with their defaults.
	cfg, err = loadArgs(t, "--source", exampleCluster, "--zone", "a.test", "--zone", "b.test", "--ttl", "0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != daemon.DefaultListen || len(cfg.Zones) != 2 || cfg.TTL != 0 || cfg.Pods != cluster.PodsInsecure {
		t.Errorf("flags only: %+v", cfg)
	}
}

// TestFlagsOverFile: a flag given wins over the file whatever its value,
// zero and empty included; a source or upstream flag replaces the file's
// source or upstreams as a whole.
func TestFlagsOverFile(t *testing.T) {
	file := dnstest.WriteFile(t, "dnsd.yaml", `
apiVersion: poddns.io/v1alpha1
kind: DNSDConfig
udpSockets: 4
pprofListen: 127.0.0.1:6060
ttl: 10
source: {kubeconfig: /from/file}
forward: {resolvConf: /etc/resolv.conf}
`)
	cfg, err := loadArgs(t, "--config", file, "--udp-sockets=0", "--pprof-listen=", "--ttl=0", "--source", exampleCluster,
		"--upstream", "192.0.2.1", "--upstream", "192.0.2.2")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.UDPSockets != 0 || cfg.PprofListen != "" || cfg.TTL != 0 {
		t.Errorf("zero flags lost to the file: udpSockets %d, pprofListen %q, ttl %d", cfg.UDPSockets, cfg.PprofListen, cfg.TTL)
	}
	if cfg.Source != (daemon.SourceConfig{File: exampleCluster}) {
		t.Errorf("--source did not replace the file's source: %+v", cfg.Source)
	}
	if cfg.Forward.ResolvConf != "" || strings.Join(cfg.Forward.Upstreams, ",") != "192.0.2.1,192.0.2.2" {
		t.Errorf("--upstream did not replace the file's upstreams: %v %q", cfg.Forward.Upstreams, cfg.Forward.ResolvConf)
	}
	// --upstream-resolv-conf replaces the file's upstreams as well.
	rc := dnstest.WriteFile(t, "resolv.conf", "nameserver 127.0.0.9\n")
	cfg, err = loadArgs(t, "--config", file, "--upstream-resolv-conf", rc)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Forward.Upstreams) != 0 || cfg.Forward.ResolvConf != rc {
		t.Errorf("--upstream-resolv-conf: upstreams %v, resolvConf %q", cfg.Forward.Upstreams, cfg.Forward.ResolvConf)
	}
	// Both source flags given is an error, as both in the file.
	if _, err := loadArgs(t, "--config", file, "--source", "a", "--kubeconfig", "b"); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("--source and --kubeconfig: err = %v", err)
	}
}

// TestSwitchFlags: --query-log turns the query log on (off by default)
// and off over the file's queryLog block; --aaaa-filter sets the AAAA
// filter's mode. (pkg/serve/daemon tests what the handlers do.)
func TestSwitchFlags(t *testing.T) {
	file := dnstest.WriteFile(t, "dnsd.yaml", "apiVersion: poddns.io/v1alpha1\nkind: DNSDConfig\nqueryLog: {enabled: true}\n")
	for _, tc := range []struct {
		args     []string
		queryLog bool
		aaaa     aaaa.Mode
	}{
		{nil, false, aaaa.ModeNone},
		{[]string{"--query-log"}, true, aaaa.ModeNone},
		{[]string{"--config", file, "--query-log=false"}, false, aaaa.ModeNone},
		{[]string{"--aaaa-filter", "ipv4Pods"}, false, aaaa.ModeIPv4Pods},
	} {
		c, err := loadArgs(t, append(tc.args, "--source", exampleCluster)...)
		if err != nil {
			t.Fatal(err)
		}
		if c.QueryLog.Enabled != tc.queryLog || c.AAAA.Filter != tc.aaaa {
			t.Errorf("%v: queryLog.enabled %v, aaaa.filter %q; want %v, %q", tc.args, c.QueryLog.Enabled, c.AAAA.Filter, tc.queryLog, tc.aaaa)
		}
	}
}

// TestConfigErrors: flag values the configuration's validation refuses
// are errors. (pkg/serve/daemon's TestLoadStrict tests the file's.)
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"pods", []string{"--source", "x", "--pods", "maybe"}, "pods"},
		{"ttl", []string{"--source", "x", "--ttl", "4000"}, "ttl"},
		{"listen", []string{"--source", "x", "--listen", "nope"}, "listen"},
		{"log level", []string{"--source", "x", "--log-level", "loud"}, "logLevel"},
		{"pprof listen", []string{"--source", "x", "--pprof-listen", "nohost"}, "pprofListen"},
		{"upstream", []string{"--source", "x", "--upstream", "nope"}, "nope"},
		{"upstream and resolv.conf", []string{"--source", "x", "--upstream", "127.0.0.1", "--upstream-resolv-conf", "/etc/resolv.conf"}, "not both"},
		{"zone", []string{"--source", "x", "--zone", "a..b"}, "zone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := loadArgs(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestRun: exit status 2 for a bad command line, 1 with one clear error
// line when the daemon cannot start (pkg/serve/daemon tests why it
// refuses), 0 after SIGHUP then SIGTERM.
func TestRun(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	self := net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreeDNSPort(t)))
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr []string
	}{
		{"bad flag", []string{"--bogus"}, 2, nil},
		{"--kubeconfig", []string{"--kubeconfig", "/nonexistent"}, 1, []string{"kubeconfig /nonexistent"}},
		{"no source outside a cluster", nil, 1, []string{"in-cluster"}},
		{"forwarding loop", []string{"--source", exampleCluster, "--listen", self, "--upstream", self,
			"--health-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"}, 1, []string{`"msg":"cannot start"`, "forwarding loop through upstream " + self}},
	} {
		// Bounded: a daemon that starts after all serves until ctx ends
		// (exit 0).
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var stderr bytes.Buffer
		code := run(ctx, tc.args, &stderr, nil)
		cancel()
		if code != tc.code {
			t.Errorf("%s: exit %d, want %d; stderr:\n%s", tc.name, code, tc.code, stderr.String())
		}
		for _, want := range tc.stderr {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("%s: stderr has no %s:\n%s", tc.name, want, stderr.String())
			}
		}
		if n := strings.Count(stderr.String(), "\n"); tc.code == 1 && n > 2 {
			t.Errorf("%s: %d log lines, want a short, clear error:\n%s", tc.name, n, stderr.String())
		}
	}
	sigs := make(chan os.Signal, 2)
	sigs <- syscall.SIGHUP
	sigs <- syscall.SIGTERM
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"--source", exampleCluster, "--listen", "127.0.0.1:0", "--health-listen", "127.0.0.1:0",
		"--metrics-listen", "127.0.0.1:0", "--lameduck", "0s"}, &stderr, sigs)
	if code != 0 {
		t.Errorf("exit %d, want 0; stderr:\n%s", code, stderr.String())
	}
	for _, want := range []string{`"msg":"serving DNS"`, `"msg":"reloaded"`, `"msg":"shutting down"`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("log has no %s:\n%s", want, stderr.String())
		}
	}
}
