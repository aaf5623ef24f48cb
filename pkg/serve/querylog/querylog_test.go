package querylog_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"

	"github.com/poddns/poddns/internal/syncbuf"
	"github.com/poddns/poddns/pkg/impact"
	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/dnstest"
	"github.com/poddns/poddns/pkg/serve/querylog"
	"github.com/poddns/poddns/pkg/serve/store"
)

// lines decodes every line of out strictly (each must be one valid JSON
// object of the documented fields) into the type webhook impact reads the
// log with.
func lines(t *testing.T, out []byte) []impact.Entry {
	t.Helper()
	var ls []impact.Entry
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var l impact.Entry
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		ls = append(ls, l)
	}
	return ls
}

// answering is the handler behind the log: the first label of the name
// says what it does (ok: an A record from the cluster, nx: NXDOMAIN,
// nodata: NOERROR without records, fail: SERVFAIL written by the server,
// refused: REFUSED written by the server).
var answering = serve.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	q := r.Question[0]
	m := new(dns.Msg)
	m.SetReply(r)
	switch dns.SplitDomainName(q.Name)[0] {
	case "ok":
		serve.SetSource(ctx, serve.SourceCluster)
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30}, A: net.IPv4(192, 0, 2, 1)}}
	case "nx":
		serve.SetSource(ctx, serve.SourceUpstream)
		m.Rcode = dns.RcodeNameError
	case "nodata":
		serve.SetSource(ctx, serve.SourceCache)
	case "fail":
		return dns.RcodeServerFailure, nil
	default:
		return dns.RcodeRefused, nil
	}
	return m.Rcode, w.WriteMsg(m)
})

func podStore(t *testing.T) *store.Store {
	t.Helper()
	s := store.New()
	ip := netip.MustParseAddr
	s.Replace(store.Objects{Pods: []*store.Pod{
		{Namespace: "shop", Name: "web-1", IPs: []netip.Addr{ip("127.0.0.5")}, Phase: corev1.PodRunning},
		{Namespace: "shop", Name: "old", IPs: []netip.Addr{ip("127.0.0.5")}, Phase: corev1.PodSucceeded},
		{Namespace: "a", Name: "p", IPs: []netip.Addr{ip("127.0.0.6")}, Phase: corev1.PodRunning},
		{Namespace: "b", Name: "q", IPs: []netip.Addr{ip("127.0.0.6")}, Phase: corev1.PodRunning},
		{Namespace: "kube-system", Name: "proxy", IPs: []netip.Addr{ip("127.0.0.7")}, Phase: corev1.PodRunning, HostNetwork: true},
		{Namespace: "batch", Name: "job", IPs: []netip.Addr{ip("10.240.0.1")}, Phase: corev1.PodRunning},
	}})
	return s
}

func newLog(t *testing.T, c querylog.Config, d querylog.Deps) (*querylog.Log, *syncbuf.Buffer) {
	t.Helper()
	out := &syncbuf.Buffer{}
	if d.Output == nil {
		d.Output = out
	}
	if d.Next == nil {
		d.Next = answering
	}
	c.Enabled = true
	l, err := querylog.New(c, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l, out
}

// exchangeFrom sends a query from the local address from, over proto.
func exchangeFrom(t *testing.T, addr, proto, from, name string, id uint16) (*dns.Msg, string) {
	t.Helper()
	c := &dns.Client{Net: proto, Timeout: dnstest.Timeout}
	c.Dialer = &net.Dialer{Timeout: dnstest.Timeout}
	if proto == "tcp" {
		c.Dialer.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	} else {
		c.Dialer.LocalAddr = &net.UDPAddr{IP: net.ParseIP(from)}
	}
	conn, err := c.Dial(addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", from, err)
	}
	defer conn.Close()
	m := dnstest.Query(name, dns.TypeA, 0)
	m.Id = id
	r, _, err := c.ExchangeWithConn(m, conn)
	if err != nil {
		t.Fatalf("exchange from %s: %v", from, err)
	}
	return r, conn.LocalAddr().String()
}

// TestPodIdentity: a query from a pod's IP (loopback aliases given to pods
// in the store) logs that pod's namespace and name, the client's address
// and port, the query and where the answer came from; an address two live
// pods claim, a host-network pod's and an unknown one log no pod.
func TestPodIdentity(t *testing.T) {
	l, out := newLog(t, querylog.Defaults(), querylog.Deps{Store: podStore(t)})
	addr := dnstest.StartServer(t, l)
	type sent struct{ from, proto, name, client, ns, pod, rcode, source string }
	var want []sent
	for i, c := range []sent{
		{from: "127.0.0.5", proto: "udp", name: "ok.example.com.", ns: "shop", pod: "web-1", rcode: "NOERROR", source: "cluster"},
		{from: "127.0.0.5", proto: "tcp", name: "nx.Example.com.", ns: "shop", pod: "web-1", rcode: "NXDOMAIN", source: "upstream"},
		{from: "127.0.0.6", proto: "udp", name: "nodata.example.com.", rcode: "NOERROR", source: "cache"},
		{from: "127.0.0.7", proto: "udp", name: "ok.example.com.", rcode: "NOERROR", source: "cluster"},
		{from: "127.0.0.8", proto: "udp", name: "refused.example.com.", rcode: "REFUSED"},
		{from: "127.0.0.5", proto: "udp", name: "fail.example.com.", ns: "shop", pod: "web-1", rcode: "SERVFAIL"},
	} {
		_, c.client = exchangeFrom(t, addr, c.proto, c.from, c.name, uint16(100+i))
		want = append(want, c)
	}
	// A line is queued when the handler returns, which may be after the
	// client has its reply: wait for the lines (flushed every 100ms).
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		n := bytes.Count(out.Bytes(), []byte("\n"))
		if n >= len(want) {
			break
		}
	}
	l.Close()
	got := lines(t, out.Bytes())
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(got), len(want), out.String())
	}
	// Lines are written as replies complete; time is when each query came.
	slices.SortStableFunc(got, func(a, b impact.Entry) int { return a.Time.Compare(b.Time) })
	for i, w := range want {
		g := got[i]
		if g.Client != w.client || g.Proto != w.proto || g.ID != uint16(100+i) || g.Namespace != w.ns || g.Pod != w.pod ||
			g.Name != w.name || g.Type != "A" || g.Rcode != w.rcode || g.Source != w.source {
			t.Errorf("line %d: %+v, want %+v", i, g, w)
		}
		if g.Duration <= 0 || g.Duration > dnstest.Timeout.Seconds() || time.Since(g.Time) > time.Minute {
			t.Errorf("line %d: time %s duration %g", i, g.Time, g.Duration)
		}
	}
}

// serveN calls l with the given names from dnstest.Recorder's client
// (10.240.0.1, pod batch/job in podStore).
func serveN(t *testing.T, l serve.Handler, names ...string) {
	t.Helper()
	for _, n := range names {
		serve.Handle(context.Background(), l, &dnstest.Recorder{}, dnstest.Query(n, dns.TypeA, 0))
	}
}

func names(ls []impact.Entry) []string {
	var ns []string
	for _, l := range ls {
		ns = append(ns, l.Name)
	}
	return ns
}

// TestFilters: rcode classes as CoreDNS's log plugin names them, the
// namespace filter and sampling.
func TestFilters(t *testing.T) {
	all := []string{"ok.a.", "nx.a.", "nodata.a.", "fail.a.", "refused.a."}
	for _, tc := range []struct {
		name string
		cfg  func(*querylog.Config)
		sent []string
		want []string
	}{
		{"all", func(*querylog.Config) {}, all, all},
		{"denial and error", func(c *querylog.Config) { c.Classes = []string{"denial", "error"} }, all, []string{"nx.a.", "nodata.a.", "fail.a.", "refused.a."}},
		{"success", func(c *querylog.Config) { c.Classes = []string{"success"} }, all, []string{"ok.a."}},
		{"denial", func(c *querylog.Config) { c.Classes = []string{"denial"} }, all, []string{"nx.a.", "nodata.a."}},
		{"error", func(c *querylog.Config) { c.Classes = []string{"error"} }, all, []string{"fail.a.", "refused.a."}},
		{"client's namespace", func(c *querylog.Config) { c.Namespaces = []string{"batch"} }, all, all},
		{"other namespace", func(c *querylog.Config) { c.Namespaces = []string{"shop"} }, all, nil},
		{"one in 3", func(c *querylog.Config) { c.Sample = 3 },
			[]string{"ok.1.", "ok.2.", "ok.3.", "ok.4.", "ok.5.", "ok.6.", "ok.7."}, []string{"ok.3.", "ok.6."}},
		{"sampled, then filtered", func(c *querylog.Config) { c.Sample = 2; c.Classes = []string{"denial"} },
			[]string{"nx.1.", "nx.2.", "ok.3.", "ok.4.", "nx.5.", "nx.6."}, []string{"nx.2.", "nx.6."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := querylog.Defaults()
			tc.cfg(&c)
			l, out := newLog(t, c, querylog.Deps{Store: podStore(t)})
			serveN(t, l, tc.sent...)
			l.Close()
			got := lines(t, out.Bytes())
			if !slices.Equal(names(got), tc.want) {
				t.Errorf("logged %v, want %v", names(got), tc.want)
			}
			for _, g := range got {
				if g.Namespace != "batch" || g.Pod != "job" || g.Client != "10.240.0.1:40212" {
					t.Errorf("line %+v: want batch/job from 10.240.0.1:40212", g)
				}
			}
		})
	}
}

// blockingWriter blocks every write until released.
type blockingWriter struct{ release chan struct{} }

func (b blockingWriter) Write(p []byte) (int, error) { <-b.release; return len(p), nil }

// TestNeverBlocks: with the output stuck, serving goes on; what does not
// fit the queue (and the writer's 64 KiB buffer, which fills before the
// writer blocks) is dropped and counted, and every query is either written
// or counted.
func TestNeverBlocks(t *testing.T) {
	bw := blockingWriter{make(chan struct{})}
	m, _ := querylog.NewMetrics(nil)
	c := querylog.Defaults()
	c.Buffer = 4
	l, _ := newLog(t, c, querylog.Deps{Output: bw, Metrics: m})
	const n = 3000
	const mostWritten = 4 + 1 + 64<<10/120 // the queue, the line in hand, the buffer's lines (each over 120 bytes)
	done := make(chan struct{})
	go func() {
		for range n {
			serveN(t, l, "ok.a.")
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("serving blocked on a stuck query log output")
	}
	dropped := testutil.ToFloat64(m.Dropped())
	close(bw.release)
	l.Close()
	written := testutil.ToFloat64(m.Lines())
	if dropped < n-mostWritten || dropped+written != n {
		t.Errorf("dropped %g, written %g, want %d in all with at most %d written", dropped, written, n, mostWritten)
	}
}

// TestEscaping: whatever the name holds, every line is one valid JSON
// object that gives the name back.
func TestEscaping(t *testing.T) {
	l, out := newLog(t, querylog.Defaults(), querylog.Deps{})
	weird := []string{`ok.a"b.`, `ok.a\\b.`, "ok.\x01\xff\u00e9.", `ok.\000\".`}
	for _, n := range weird {
		m := new(dns.Msg)
		m.SetQuestion(n, dns.TypeA)
		serve.Handle(context.Background(), l, &dnstest.Recorder{}, m)
	}
	l.Close()
	got := lines(t, out.Bytes())
	if len(got) != len(weird) {
		t.Fatalf("%d lines for %d queries:\n%s", len(got), len(weird), out.String())
	}
	for i, g := range got {
		if g.Name != weird[i] && !(i == 2 && g.Name == "ok.\x01\u00ff\u00c3\u00a9.") {
			t.Errorf("name %q, want %q", g.Name, weird[i])
		}
	}
}

// TestFileOutput: the log appends to a file, and Close flushes it.
func TestFileOutput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queries.log")
	if err := os.WriteFile(path, []byte("{\"before\":1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := querylog.Defaults()
	c.Enabled, c.Output = true, path
	l, err := querylog.New(c, querylog.Deps{Next: answering})
	if err != nil {
		t.Fatal(err)
	}
	serveN(t, l, "ok.a.", "nx.a.")
	l.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(b, []byte("\n")); n != 3 || !bytes.HasPrefix(b, []byte("{\"before\":1}\n")) {
		t.Errorf("file:\n%s", b)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(*querylog.Config)
	}{
		{"class", func(c *querylog.Config) { c.Classes = []string{"denials"} }},
		{"no class", func(c *querylog.Config) { c.Classes = nil }},
		{"sample", func(c *querylog.Config) { c.Sample = 0 }},
		{"buffer", func(c *querylog.Config) { c.Buffer = 0 }},
		{"output", func(c *querylog.Config) { c.Output = "" }},
		{"namespace", func(c *querylog.Config) { c.Namespaces = []string{""} }},
	} {
		c := querylog.Defaults()
		tc.cfg(&c)
		if c.Validate() == nil {
			t.Errorf("%s: %+v valid", tc.name, c)
		}
	}
	if err := querylog.Defaults().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// TestNestedLookups: a lookup made through the chain for a query being
// logged (an ExternalName target's) makes no line of its own; the client's
// query's line carries the source recorded last.
func TestNestedLookups(t *testing.T) {
	var l *querylog.Log
	outer := serve.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		if r.Question[0].Name == "ext.a." {
			sub := new(dns.Msg)
			sub.SetQuestion("ok.target.", dns.TypeA)
			l.ServeDNS(ctx, serve.NewCapture(w), sub) // as cluster asks its Upstream
			serve.SetSource(ctx, serve.SourceCluster)
			m := new(dns.Msg)
			m.SetReply(r)
			m.Answer = dnstest.RRs("ext.a. 30 IN CNAME ok.target.", "ok.target. 30 IN A 192.0.2.1")
			return dns.RcodeSuccess, w.WriteMsg(m)
		}
		return answering.ServeDNS(ctx, w, r)
	})
	var out *syncbuf.Buffer
	l, out = newLog(t, querylog.Defaults(), querylog.Deps{Next: outer})
	serveN(t, l, "ext.a.")
	l.Close()
	got := lines(t, out.Bytes())
	if len(got) != 1 || got[0].Name != "ext.a." || got[0].Source != "cluster" {
		t.Errorf("lines %+v, want one for ext.a. from cluster", got)
	}
}
