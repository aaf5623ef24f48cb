package daemon_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/daemon"
	"github.com/poddns/poddns/pkg/serve/dnstest"
	"github.com/poddns/poddns/pkg/serve/loop"
)

// completionCluster is one default-namespace pod on 127.0.0.21 and one
// service.
const completionCluster = `apiVersion: v1
kind: Namespace
metadata: {name: default}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {type: ClusterIP, clusterIP: 10.96.0.20, clusterIPs: [10.96.0.20]}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: default, uid: u1}
spec: {dnsPolicy: ClusterFirst}
status: {phase: Running, podIP: 127.0.0.21, podIPs: [{ip: 127.0.0.21}]}
`

const completionProfile = `apiVersion: poddns.io/v1alpha1
kind: NodeProfile
clusterDomain: cluster.local
clusterDNS: [10.96.0.10]
resolvConfContent: |
  nameserver 192.0.2.53
  search corp.example
`

// TestCompletionWired: with a node profile, dnsd completes a pod's walk to
// an external name in one query (the upstream sees the names of the walk
// outside the cluster zones once each); with enabled: false it does not.
func TestCompletionWired(t *testing.T) {
	var mu sync.Mutex
	asked := map[string]int{}
	up := dnstest.StartServer(t, serve.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		q := r.Question[0]
		m := new(dns.Msg)
		m.SetReply(r)
		if dns.IsSubDomain(loop.Zone, q.Name) {
			return dns.RcodeSuccess, w.WriteMsg(m)
		}
		mu.Lock()
		asked[strings.ToLower(q.Name)+" "+dns.TypeToString[q.Qtype]]++
		mu.Unlock()
		switch {
		case strings.EqualFold(q.Name, "ext.example.") && q.Qtype == dns.TypeA:
			m.Answer = dnstest.RRs("ext.example. 60 IN A 192.0.2.1")
		case strings.EqualFold(q.Name, "ext.example."):
		default:
			m.Rcode = dns.RcodeNameError
			m.Ns = dnstest.RRs("example. 60 IN SOA ns.example. hostmaster.example. 1 3600 600 86400 30")
		}
		return dns.RcodeSuccess, w.WriteMsg(m)
	}))
	source := dnstest.WriteFile(t, "cluster.yaml", completionCluster)
	profile := dnstest.WriteFile(t, "profile.yaml", completionProfile)
	for _, tc := range []struct {
		name    string
		enabled string
		want    []string
		rcode   int
		saved   string
	}{
		{name: "on by default", want: []string{
			"ext.example.default.svc.cluster.local. 60 IN CNAME ext.example.", "ext.example. 60 IN A 192.0.2.1"},
			saved: `poddns_completion_saved_queries_total{namespace="default"} 4`},
		{name: "disabled", enabled: "  enabled: false\n", rcode: dns.RcodeNameError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			clear(asked)
			mu.Unlock()
			cfg := dnstest.WriteFile(t, "dnsd.yaml", "apiVersion: poddns.io/v1alpha1\nkind: DNSDConfig\nsource: {file: "+source+"}\n"+
				"forward: {upstreams: [\""+up+"\"]}\ncompletion:\n  nodeProfile: "+profile+"\n"+tc.enabled)
			d := start(t, cfg)
			c := &dns.Client{Net: "udp", Timeout: dnstest.Timeout,
				Dialer: &net.Dialer{Timeout: dnstest.Timeout, LocalAddr: &net.UDPAddr{IP: net.ParseIP("127.0.0.21")}}}
			r, _, err := c.Exchange(dnstest.Query("ext.example.default.svc.cluster.local.", dns.TypeA, 0), d.DNSAddr())
			if err != nil {
				t.Fatal(err)
			}
			if r.Rcode != tc.rcode {
				t.Fatalf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
			if diff := dnstest.Diff(r.Answer, dnstest.RRs(tc.want...)); diff != "" {
				t.Errorf("answer:\n%s", diff)
			}
			mu.Lock()
			defer mu.Unlock()
			if tc.saved != "" {
				// The walk's names outside cluster.local, A and AAAA once.
				for _, q := range []string{"ext.example.corp.example. A", "ext.example.corp.example. AAAA", "ext.example. A", "ext.example. AAAA"} {
					if asked[q] != 1 {
						t.Errorf("upstream asked %q %d times, want 1 (all: %v)", q, asked[q], asked)
					}
				}
			} else if len(asked) != 0 {
				t.Errorf("upstream asked %v without completion", asked)
			}
			clear(asked)
			// A name that exists nowhere: the asked name's NXDOMAIN; the
			// client's own walk after it is answered from the store and the
			// negative cache, so the upstream sees each name once.
			mu.Unlock()
			nx := func(name string, qtype uint16) {
				t.Helper()
				r, _, err := c.Exchange(dnstest.Query(name, qtype, 0), d.DNSAddr())
				if err != nil {
					t.Fatal(err)
				}
				if r.Rcode != dns.RcodeNameError || len(r.Answer) != 0 {
					t.Fatalf("%s: %v, want NXDOMAIN", name, r)
				}
			}
			for _, name := range []string{"nope.default.svc.cluster.local.", "nope.svc.cluster.local.", "nope.cluster.local.", "nope.corp.example.", "nope."} {
				nx(name, dns.TypeA)
				nx(name, dns.TypeAAAA)
			}
			mu.Lock()
			for _, q := range []string{"nope.corp.example. A", "nope.corp.example. AAAA", "nope. A", "nope. AAAA"} {
				if asked[q] != 1 {
					t.Errorf("upstream asked %q %d times, want 1 (all: %v)", q, asked[q], asked)
				}
			}
			_, body := dnstest.HTTPGet(t, "http://"+d.HTTPAddr("metrics")+"/metrics")
			if tc.saved != "" && !strings.Contains(body, tc.saved) {
				t.Errorf("/metrics has no %s", tc.saved)
			}
			if tc.saved == "" && strings.Contains(body, "poddns_completion_saved_queries_total{") {
				t.Errorf("/metrics counts saved queries without completion")
			}
		})
	}
}

// TestCompletionConfig: enabled without a profile is a configuration
// error; a profile that does not load fails the start (it is read when the
// handler is built).
func TestCompletionConfig(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"enabled without profile", "completion: {enabled: true}\n", "enabled without a nodeProfile"},
		{"missing profile", "completion: {nodeProfile: /nonexistent/profile.yaml}\n", "completion: node profile: open /nonexistent/profile.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := dnstest.WriteFile(t, "dnsd.yaml", "apiVersion: poddns.io/v1alpha1\nkind: DNSDConfig\nsource: {file: x}\n"+tc.body)
			cfg, err := daemon.Load(file, nil)
			if err == nil {
				_, err = daemon.New(cfg, daemon.Options{})
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one with %q", err, tc.want)
			}
		})
	}
}
