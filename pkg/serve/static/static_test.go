package static_test

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/poddns/poddns/pkg/configfile"
	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/dnstest"
	"github.com/poddns/poddns/pkg/serve/static"
)

// next answers every query it gets with one TXT record "next", so a test
// sees what was handed on.
func next(n *atomic.Int32) serve.Handler {
	return serve.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		n.Add(1)
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = dnstest.RRs(r.Question[0].Name + ` 5 IN TXT "next"`)
		return dns.RcodeSuccess, w.WriteMsg(m)
	})
}

// upstream answers A queries with 192.0.2.99.
var upstream = serve.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	m := new(dns.Msg)
	m.SetReply(r)
	if r.Question[0].Qtype == dns.TypeA {
		m.Answer = dnstest.RRs(r.Question[0].Name + " 60 IN A 192.0.2.99")
	}
	return dns.RcodeSuccess, w.WriteMsg(m)
})

func ttl(v uint32) *uint32 { return &v }

func TestStatic(t *testing.T) {
	var n atomic.Int32
	cfg := static.Config{
		{
			Zones:   []string{"Corp.Example"},
			Entries: []string{"10.1.0.1 db.corp.example db2.corp.example # the database", "fd00::1 db.corp.example", "  # comment", "10.1.0.9 outside.example.org"},
			CNAMEs:  map[string]string{"www.corp.example": "web.corp.example", "web.corp.example": "db.corp.example", "ext.corp.example": "cdn.example.net"},
			TTL:     ttl(60),
		},
		{Zones: []string{"lab.example."}, Entries: []string{"10.2.0.1 gw.lab.example"}, Fallthrough: true},
		{Zones: []string{"deep.lab.example."}, Entries: []string{"10.3.0.1 x.deep.lab.example"}},
	}
	h, err := static.New(cfg, static.Deps{Next: next(&n), Upstream: upstream})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	addr := dnstest.StartServer(t, h)
	rev4, _ := dns.ReverseAddr("10.1.0.1")
	rev6, _ := dns.ReverseAddr("fd00::1")
	for _, c := range []dnstest.Case{
		{Qname: "db.corp.example.", Qtype: dns.TypeA, Answer: dnstest.RRs("db.corp.example. 60 IN A 10.1.0.1")},
		{Qname: "DB.Corp.Example.", Qtype: dns.TypeA, Answer: dnstest.RRs("DB.Corp.Example. 60 IN A 10.1.0.1")},
		{Qname: "db.corp.example.", Qtype: dns.TypeAAAA, Answer: dnstest.RRs("db.corp.example. 60 IN AAAA fd00::1")},
		{Qname: "db2.corp.example.", Qtype: dns.TypeA, Answer: dnstest.RRs("db2.corp.example. 60 IN A 10.1.0.1")},
		// Known name, other type: NODATA; unknown name: NXDOMAIN.
		{Qname: "db2.corp.example.", Qtype: dns.TypeAAAA},
		{Qname: "db.corp.example.", Qtype: dns.TypeMX},
		{Qname: "nothere.corp.example.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError},
		// The longest zone decides: deep.lab.example has no fallthrough,
		// lab.example does.
		{Qname: "gw.lab.example.", Qtype: dns.TypeA, Answer: dnstest.RRs("gw.lab.example. 3600 IN A 10.2.0.1")},
		{Qname: "nothere.deep.lab.example.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError},
		// CNAMEs: a chain inside the block, a target outside resolved
		// through the chain, a CNAME query answered alone.
		{Qname: "www.corp.example.", Qtype: dns.TypeA, Answer: dnstest.RRs("www.corp.example. 60 IN CNAME web.corp.example.",
			"web.corp.example. 60 IN CNAME db.corp.example.", "db.corp.example. 60 IN A 10.1.0.1")},
		{Qname: "ext.corp.example.", Qtype: dns.TypeA, Answer: dnstest.RRs("ext.corp.example. 60 IN CNAME cdn.example.net.", "cdn.example.net. 60 IN A 192.0.2.99")},
		{Qname: "www.corp.example.", Qtype: dns.TypeCNAME, Answer: dnstest.RRs("www.corp.example. 60 IN CNAME web.corp.example.")},
		// PTR of the entries' addresses.
		{Qname: rev4, Qtype: dns.TypePTR, Answer: dnstest.RRs(rev4+" 60 IN PTR db.corp.example.", rev4+" 60 IN PTR db2.corp.example.")},
		{Qname: rev6, Qtype: dns.TypePTR, Answer: dnstest.RRs(rev6 + " 60 IN PTR db.corp.example.")},
	} {
		dnstest.Check(t, c, dnstest.Exchange(t, addr, "udp", c.Msg()))
	}
	if got := n.Load(); got != 0 {
		t.Fatalf("%d queries handed on, want 0", got)
	}
	// Handed on: a name of lab.example it does not know (fallthrough),
	// names outside every zone (also an entry's name outside the zones),
	// other reverse names, other classes.
	rev9, _ := dns.ReverseAddr("10.9.9.9")
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"nothere.lab.example.", dns.TypeA}, {"example.com.", dns.TypeA}, {"outside.example.org.", dns.TypeA}, {rev9, dns.TypePTR}} {
		c := dnstest.Case{Qname: q.name, Qtype: q.qtype, NoAA: true, Answer: dnstest.RRs(q.name + ` 5 IN TXT "next"`)}
		dnstest.Check(t, c, dnstest.Exchange(t, addr, "udp", c.Msg()))
	}
	m := dnstest.Query("db.corp.example.", dns.TypeA, 0)
	m.Question[0].Qclass = dns.ClassCHAOS
	dnstest.Exchange(t, addr, "udp", m)
	if got := n.Load(); got != 5 {
		t.Errorf("%d queries handed on, want 5", got)
	}
}

// TestSource: static answers are recorded as such for the query log.
func TestSource(t *testing.T) {
	h, err := static.New(static.Config{{Entries: []string{"10.0.0.1 a.example"}}}, static.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	slot := new(serve.SourceSlot)
	h.ServeDNS(serve.WithSourceSlot(context.Background(), slot), &dnstest.Recorder{}, dnstest.Query("a.example.", dns.TypeA, 0))
	if slot.Get() != serve.SourceStatic {
		t.Errorf("source %q, want static", slot.Get())
	}
}

// configMapDir writes a ConfigMap volume as kubelet does: the file is a
// symlink to ..data/<key>, ..data a symlink to a timestamped directory, and
// an update swaps ..data atomically (rename of a new symlink).
type configMapDir struct {
	t   *testing.T
	dir string
	gen int
}

func (c *configMapDir) write(key, content string) {
	c.t.Helper()
	c.gen++
	ts := filepath.Join(c.dir, "..2026_12_06_"+string(rune('a'+c.gen)))
	if err := os.Mkdir(ts, 0o755); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ts, key), []byte(content), 0o644); err != nil {
		c.t.Fatal(err)
	}
	tmp := filepath.Join(c.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, "..data")); err != nil {
		c.t.Fatal(err)
	}
	link := filepath.Join(c.dir, key)
	if _, err := os.Lstat(link); err != nil {
		if err := os.Symlink(filepath.Join("..data", key), link); err != nil {
			c.t.Fatal(err)
		}
	}
}

// TestHostsFileReload: a ConfigMap-style ..data swap of the hosts file
// applies without a restart; an invalid, empty or cut version is refused
// and counted, and the last good records keep serving.
func TestHostsFileReload(t *testing.T) {
	cm := &configMapDir{t: t, dir: t.TempDir()}
	cm.write("NodeHosts", "192.168.1.10 node-a\n")
	m, _ := static.NewMetrics(nil)
	every := configfile.Duration(20 * time.Millisecond)
	var n atomic.Int32
	h, err := static.New(static.Config{{HostsFile: filepath.Join(cm.dir, "NodeHosts"), Reload: &every, Fallthrough: true}},
		static.Deps{Next: next(&n), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	addr := dnstest.StartServer(t, h)
	a := func(name string) []string {
		r := dnstest.Exchange(t, addr, "udp", dnstest.Query(name, dns.TypeA, 0))
		return dnstest.Strings(r.Answer)
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if got := a("node-a."); len(got) != 1 || got[0] != "node-a. 3600 IN A 192.168.1.10" {
		t.Fatalf("node-a: %v", got)
	}
	cm.write("NodeHosts", "192.168.1.10 node-a\n192.168.1.11 node-b\n")
	waitFor("node-b", func() bool { return len(a("node-b.")) == 1 && a("node-b.")[0] == "node-b. 3600 IN A 192.168.1.11" })

	for _, bad := range []struct{ content, reason string }{
		{"192.168.1.12 node-c\n300.1.1.1 node-d\n", "parse"},
		{"", "empty"},
		{"# nothing here\n\n", "empty"},
		{"192.168.1.12 node-c\n192.168.1.1", "incomplete"},
	} {
		before := testutil.ToFloat64(m.Refused(bad.reason))
		cm.write("NodeHosts", bad.content)
		waitFor("refusal ("+bad.reason+")", func() bool { return testutil.ToFloat64(m.Refused(bad.reason)) == before+1 })
		if got := a("node-b."); len(got) != 1 {
			t.Errorf("after a %s version: node-b %v, want the last good record", bad.reason, got)
		}
		if got := a("node-c."); len(got) != 1 || got[0] != `node-c. 5 IN TXT "next"` {
			t.Errorf("after a %s version: node-c %v, want it unknown (handed on)", bad.reason, got)
		}
	}
	cm.write("NodeHosts", "192.168.1.12 node-c\n")
	waitFor("node-c", func() bool { return len(a("node-c.")) == 1 && a("node-c.")[0] == "node-c. 3600 IN A 192.168.1.12" })
	if got := a("node-b."); len(got) != 1 || got[0] != `node-b. 5 IN TXT "next"` {
		t.Errorf("node-b after its removal: %v", got)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []static.Config{
		{{}},
		{{Entries: []string{"10.0.0.1"}}},
		{{Entries: []string{"nope a.example"}}},
		{{Entries: []string{"10.0.0.1 a..example"}}},
		{{Zones: []string{"a..b"}, Entries: []string{"10.0.0.1 a.example"}}},
		{{CNAMEs: map[string]string{"a.example": ""}}},
		{{HostsFile: "x", TTL: ttl(1 << 30)}},
	} {
		if c.Validate() == nil {
			t.Errorf("%+v valid", c)
		}
	}
	if _, err := static.New(static.Config{{HostsFile: filepath.Join(t.TempDir(), "missing")}}, static.Deps{}); err == nil {
		t.Error("a missing hosts file at start is no error")
	}
	cut := filepath.Join(t.TempDir(), "hosts")
	os.WriteFile(cut, []byte("10.0.0.1 a.example\n10.0.0.2 b.exa"), 0o644)
	if _, err := static.New(static.Config{{HostsFile: cut}}, static.Deps{}); err == nil {
		t.Error("a cut hosts file at start is no error")
	}
}
