package daemon_test

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/internal/syncbuf"
	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/daemon"
	"github.com/poddns/poddns/pkg/serve/dnstest"
	"github.com/poddns/poddns/pkg/serve/loop"
)

// TestForwardChain: with upstreams, names outside the cluster zones are
// forwarded and cached, cluster names still come from the store, and
// ExternalName targets outside the zones are resolved through the chain.
func TestForwardChain(t *testing.T) {
	up, n := dnstest.StartUpstream(t, "192.0.2.10")
	d := start(t, "", source(exampleCluster), upstreams(up))
	addr := d.DNSAddr()
	for _, c := range []dnstest.Case{
		{Qname: "web.default.svc.cluster.local.", Qtype: dns.TypeA, Answer: dnstest.RRs("web.default.svc.cluster.local. 30 IN A 10.96.0.20")},
		{Qname: "example.com.", Qtype: dns.TypeA, NoAA: true, Answer: dnstest.RRs("example.com. 60 IN A 192.0.2.10")},
		{Qname: "Example.COM.", Qtype: dns.TypeA, NoAA: true, Answer: dnstest.RRs("Example.COM. 60 IN A 192.0.2.10")},
		{Qname: "search.default.svc.cluster.local.", Qtype: dns.TypeA, Answer: dnstest.RRs(
			"search.default.svc.cluster.local. 30 IN CNAME search.example.com.", "search.example.com. 60 IN A 192.0.2.10")},
	} {
		dnstest.Check(t, c, dnstest.Exchange(t, addr, "udp", c.Msg()))
	}
	if got := n.Load(); got != 2 {
		t.Errorf("upstream got %d queries, want 2 (example.com once: cached; search.example.com once)", got)
	}
	_, body := dnstest.HTTPGet(t, "http://"+d.HTTPAddr("metrics")+"/metrics")
	// Forward requests: the two queries and the startup loop probe.
	for _, want := range []string{`poddns_cache_hits_total{type="success"} 1`, `poddns_forward_requests_total{to="` + up + `"} 3`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
}

// TestForwardConfig: upstreams, stubs and cache settings from the file;
// bad values are errors; the resolv.conf is read when the forwarder is
// built. (cmd/dnsd tests the upstream flags.)
func TestForwardConfig(t *testing.T) {
	file := dnstest.WriteFile(t, "dnsd.yaml", `
apiVersion: poddns.io/v1alpha1
kind: DNSDConfig
source: {file: x}
forward:
  upstreams: [127.0.0.1, "127.0.0.2:5353"]
  stubs: [{zone: corp.example, upstreams: [127.0.0.3]}]
  policy: sequential
  deadline: 3s
cache:
  capacity: 2048
  serveStale: 1h
  prefetch: 10
`)
	cfg, err := daemon.Load(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fo := cfg.Forward; len(fo.Upstreams) != 2 || len(fo.Stubs) != 1 || fo.Policy != "sequential" || fo.Deadline.String() != "3s" {
		t.Errorf("forward config %+v", fo)
	}
	if co := cfg.Cache; co.Capacity != 2048 || co.ServeStale.String() != "1h0m0s" || co.Prefetch != 10 {
		t.Errorf("cache config %+v", co)
	}
	cfg.Forward.Upstreams = []string{"nope"}
	if err := cfg.Validate(); err == nil {
		t.Error("upstream nope: no error")
	}
	cfg.Forward.Upstreams, cfg.Forward.ResolvConf = []string{"127.0.0.1"}, "/etc/resolv.conf"
	if err := cfg.Validate(); err == nil {
		t.Error("upstreams and resolvConf: no error")
	}
	// The resolv.conf file is read when the forwarder is built.
	cfg = daemon.Defaults()
	cfg.Source.File, cfg.Forward.ResolvConf = exampleCluster, "/nonexistent/resolv.conf"
	if _, err := daemon.New(cfg, daemon.Options{}); err == nil || !strings.Contains(err.Error(), "/nonexistent/resolv.conf") {
		t.Errorf("missing resolv.conf: New error = %v", err)
	}
	bad := dnstest.WriteFile(t, "bad.yaml", "apiVersion: poddns.io/v1alpha1\nkind: DNSDConfig\nsource: {file: x}\nforward: {upstreams: [127.0.0.1], policy: fastest}\ncache: {capacity: 10}\n")
	if _, err := daemon.Load(bad, nil); err == nil || !strings.Contains(err.Error(), "policy") || !strings.Contains(err.Error(), "capacity") {
		t.Errorf("bad forward/cache config: err = %v", err)
	}
}

// TestClientNetworks: recursion only for the configured client networks;
// cluster names are answered to every client.
func TestClientNetworks(t *testing.T) {
	up, n := dnstest.StartUpstream(t, "192.0.2.10")
	file := dnstest.WriteFile(t, "dnsd.yaml", "apiVersion: poddns.io/v1alpha1\nkind: DNSDConfig\nforward: {clientNetworks: [10.0.0.0/8]}\n")
	d := start(t, file, source(exampleCluster), upstreams(up))
	addr := d.DNSAddr()
	for _, c := range []dnstest.Case{
		{Qname: "web.default.svc.cluster.local.", Qtype: dns.TypeA, Answer: dnstest.RRs("web.default.svc.cluster.local. 30 IN A 10.96.0.20")},
		{Qname: "example.com.", Qtype: dns.TypeA, Rcode: dns.RcodeRefused, NoAA: true},
	} {
		dnstest.Check(t, c, dnstest.Exchange(t, addr, "udp", c.Msg()))
	}
	if got := n.Load(); got != 0 {
		t.Errorf("upstream got %d queries from a client outside the networks, want 0", got)
	}
}

// TestReloadUpstreams: a reload switches upstreams (and starts a new
// cache); a reload to no upstream refuses again; a bad one keeps the last
// good chain.
func TestReloadUpstreams(t *testing.T) {
	a, na := dnstest.StartUpstream(t, "192.0.2.1")
	b, nb := dnstest.StartUpstream(t, "192.0.2.2")
	d := start(t, "", source(exampleCluster), upstreams(a))
	addr := d.DNSAddr()
	want := func(ip string, rcode int) {
		t.Helper()
		c := dnstest.Case{Qname: "example.com.", Qtype: dns.TypeA, NoAA: true, Rcode: rcode}
		if ip != "" {
			c.Answer = dnstest.RRs("example.com. 60 IN A " + ip)
		}
		dnstest.Check(t, c, dnstest.Exchange(t, addr, "udp", c.Msg()))
	}
	want("192.0.2.1", dns.RcodeSuccess)
	cfg := d.Config()
	cfg.Forward.Upstreams = []string{b}
	if err := d.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	want("192.0.2.2", dns.RcodeSuccess)
	bad := cfg
	bad.Forward.Policy = "fastest"
	if err := d.Reload(bad); err == nil {
		t.Error("reload with a bad policy succeeded")
	}
	want("192.0.2.2", dns.RcodeSuccess) // from the cache of the good chain
	none := cfg
	none.Forward = daemon.Defaults().Forward
	if err := d.Reload(none); err != nil {
		t.Fatal(err)
	}
	want("", dns.RcodeRefused)
	if na.Load() != 1 || nb.Load() != 1 {
		t.Errorf("upstream queries: a %d, b %d; want 1 and 1", na.Load(), nb.Load())
	}
}

// TestTCPPipeliningSlowUpstream: on one TCP connection, a cluster name
// asked after a forwarded name whose upstream is slow is answered at once,
// not behind the forward (RFC 7766 §6.2.1.1).
func TestTCPPipeliningSlowUpstream(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	up := dnstest.StartServer(t, serve.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		if !dns.IsSubDomain(loop.Zone, r.Question[0].Name) {
			select {
			case <-release:
			case <-time.After(4 * time.Second):
			}
		}
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = dnstest.RRs(r.Question[0].Name + " 60 IN A 192.0.2.10")
		return dns.RcodeSuccess, w.WriteMsg(m)
	}))
	d := start(t, "", source(exampleCluster), upstreams(up))
	c, err := dns.Dial("tcp", d.DNSAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	slow := dnstest.Query("slow.example.", dns.TypeA, 0)
	slow.Id = 1
	cl := dnstest.Query("web.default.svc.cluster.local.", dns.TypeA, 0)
	cl.Id = 2
	for _, q := range []*dns.Msg{slow, cl} {
		if err := c.WriteMsg(q); err != nil {
			t.Fatal(err)
		}
	}
	c.SetReadDeadline(time.Now().Add(time.Second))
	m, err := c.ReadMsg()
	if err != nil || m.Id != 2 {
		t.Fatalf("first reply: %v, %v; want the cluster answer (ID 2) while the forward waits", m, err)
	}
	dnstest.Check(t, dnstest.Case{Qname: "web.default.svc.cluster.local.", Qtype: dns.TypeA,
		Answer: dnstest.RRs("web.default.svc.cluster.local. 30 IN A 10.96.0.20")}, m)
	release <- struct{}{}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if m, err = c.ReadMsg(); err != nil || m.Id != 1 || len(m.Answer) != 1 {
		t.Fatalf("forwarded reply: %v, %v", m, err)
	}
}

// TestForwardTLS: a tls:// upstream from the config file, its CA file
// relative to the file, answers over TLS; a server name its certificate
// does not carry is refused (SERVFAIL), counted in /metrics and logged.
func TestForwardTLS(t *testing.T) {
	ca := dnstest.NewTLSCA(t)
	up, n := dnstest.StartTLSUpstream(t, ca, "192.0.2.10")
	dir := filepath.Dir(ca.File)
	for _, tc := range []struct {
		name, serverName string
		want             dnstest.Case
	}{
		{"verified", dnstest.TLSServerName, dnstest.Case{Qname: "example.com.", Qtype: dns.TypeA, NoAA: true, Answer: dnstest.RRs("example.com. 60 IN A 192.0.2.10")}},
		{"wrong server name", "other.test", dnstest.Case{Qname: "example.com.", Qtype: dns.TypeA, NoAA: true, Rcode: dns.RcodeServerFailure}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, tc.name+".yaml")
			body := header + "forward:\n  upstreams: [\"" + up + "\"]\n  tlsServerName: " + tc.serverName +
				"\n  tlsCA: ca.pem\n  tryTimeout: 500ms\n  deadline: 1s\n"
			if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			var logs syncbuf.Buffer
			cfg, err := daemon.Load(file, func(c *daemon.Config) error {
				c.Source.File = exampleCluster
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			d := dnstest.StartDaemon(t, cfg, daemon.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			before := n.Load()
			dnstest.Check(t, tc.want, dnstest.Exchange(t, d.DNSAddr(), "udp", tc.want.Msg()))
			_, metrics := dnstest.HTTPGet(t, "http://"+d.HTTPAddr("metrics")+"/metrics")
			handshakeErrors := `poddns_forward_tls_handshake_errors_total{reason="certificate",to="` + up + `"}`
			if tc.want.Rcode == dns.RcodeSuccess {
				if got := n.Load() - before; got != 1 {
					t.Errorf("upstream got %d queries, want 1", got)
				}
				if strings.Contains(metrics, handshakeErrors) {
					t.Errorf("/metrics has %s", handshakeErrors)
				}
				return
			}
			if !strings.Contains(metrics, handshakeErrors) {
				t.Errorf("/metrics has no %s", handshakeErrors)
			}
			if !strings.Contains(logs.String(), "TLS handshake with upstream failed") {
				t.Errorf("log has no failed handshake:\n%s", logs.String())
			}
		})
	}
}

// BenchmarkDaemonUDP is one query at a time over loopback UDP through dnsd
// as the benchmark runs it (bench/README.md): the example cluster, the
// default chain with completion on (a node profile; the client is no pod)
// and a forwarder whose replies the cache holds. The client sends packed
// queries and reads into one buffer, so allocs/op are the server's. Per
// kind of name the bench's dnsperf scenarios ask.
func BenchmarkDaemonUDP(b *testing.B) {
	up, _ := dnstest.StartUpstream(b, "192.0.2.10")
	profile := dnstest.WriteFile(b, "profile.yaml", completionProfile)
	cfg, err := daemon.Load("", func(c *daemon.Config) error {
		c.Source.File = exampleCluster
		c.Forward.Upstreams = []string{up}
		c.Completion.NodeProfile = profile
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	d := dnstest.StartDaemon(b, cfg, daemon.Options{})
	conn, err := net.Dial("udp", d.DNSAddr())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	buf := make([]byte, 4096)
	exchange := func(b *testing.B, q []byte) {
		if _, err := conn.Write(q); err != nil {
			b.Fatal(err)
		}
		n, err := conn.Read(buf)
		if err != nil {
			b.Fatal(err)
		}
		if n < 12 || binary.BigEndian.Uint16(buf) != binary.BigEndian.Uint16(q) || buf[3]&0xF != 0 {
			b.Fatalf("bad reply %x", buf[:n])
		}
	}
	for _, c := range []struct {
		name  string
		qname string
		qtype uint16
	}{
		{"cluster_A", "web.default.svc.cluster.local.", dns.TypeA},
		{"cluster_SRV", "_http._tcp.web.default.svc.cluster.local.", dns.TypeSRV},
		{"cluster_PTR", "20.0.96.10.in-addr.arpa.", dns.TypePTR},
		{"headless_A", "db.default.svc.cluster.local.", dns.TypeA},
		{"external_cached_A", "host-1.example.com.", dns.TypeA},
	} {
		b.Run(c.name, func(b *testing.B) {
			q := dnstest.Query(c.qname, c.qtype, 0)
			q.Id = 0x4242
			p, err := q.Pack()
			if err != nil {
				b.Fatal(err)
			}
			if err := conn.SetDeadline(time.Now().Add(time.Hour)); err != nil {
				b.Fatal(err)
			}
			exchange(b, p) // fills the cache
			b.ReportAllocs()
			for b.Loop() {
				exchange(b, p)
			}
		})
	}
}
