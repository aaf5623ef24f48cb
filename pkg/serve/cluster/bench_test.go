package cluster_test

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/dnstest"
)

// BenchmarkCluster measures the cluster handler alone (no sockets) per kind
// of name.
func BenchmarkCluster(b *testing.B) {
	st := newStore(b, fixture)
	h := newHandler(b, st, nil)
	for _, q := range []struct {
		name  string
		qname string
		qtype uint16
	}{
		{"clusterip_A", web, dns.TypeA},
		{"headless_A", db, dns.TypeA},
		{"srv_headless", "_postgres._tcp." + db, dns.TypeSRV},
		{"nxdomain", "nosuch.default.svc.cluster.local.", dns.TypeA},
		{"ptr", "20.0.96.10.in-addr.arpa.", dns.TypePTR},
		{"pod_A", "10-244-1-10.default.pod.cluster.local.", dns.TypeA},
	} {
		b.Run(q.name, func(b *testing.B) {
			req := dnstest.Query(q.qname, q.qtype, 0)
			w := &dnstest.Recorder{}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h.ServeDNS(b.Context(), w, req); err != nil {
					b.Fatal(err)
				}
			}
			if w.Msg == nil || len(w.Msg.Question) != 1 {
				b.Fatalf("no reply: %v", w.Msg)
			}
		})
	}
}

// BenchmarkClusterUDP measures whole queries over loopback UDP (client
// included), one at a time.
func BenchmarkClusterUDP(b *testing.B) {
	st := newStore(b, fixture)
	addr := dnstest.StartServer(b, newHandler(b, st, nil))
	c := &dns.Client{Net: "udp", Timeout: dnstest.Timeout}
	conn, err := c.Dial(addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	req := dnstest.Query(web, dns.TypeA, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.ExchangeWithConn(req, conn); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChain is one query through what dnsd runs per packet, without
// the sockets: serve.Handle (checks, fitting writer), metrics, cluster.
func BenchmarkChain(b *testing.B) {
	m := newChain(b, newStore(b, fixture))
	req := dnstest.Query(web, dns.TypeA, 1232)
	w := &dnstest.Recorder{}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := serve.Handle(b.Context(), m, w, req); err != nil {
			b.Fatal(err)
		}
	}
}
