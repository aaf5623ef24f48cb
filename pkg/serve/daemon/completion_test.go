package daemon_test

import (
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve/daemon"
	"github.com/poddns/poddns/pkg/serve/dnstest"
)

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
	up, asked := countingUpstream(t, func(q dns.Question, m *dns.Msg) {
		switch {
		case strings.EqualFold(q.Name, "ext.example.") && q.Qtype == dns.TypeA:
			m.Answer = dnstest.RRs("ext.example. 60 IN A 192.0.2.1")
		case strings.EqualFold(q.Name, "ext.example."):
		default:
			m.Rcode = dns.RcodeNameError
			m.Ns = dnstest.RRs("example. 60 IN SOA ns.example. hostmaster.example. 1 3600 600 86400 30")
		}
	})
	source := dnstest.WriteFile(t, "cluster.yaml", podsCluster)
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
			asked.take()
			cfg := dnstest.WriteFile(t, "dnsd.yaml", "apiVersion: poddns.io/v1alpha1\nkind: DNSDConfig\nsource: {file: "+source+"}\n"+
				"forward: {upstreams: [\""+up+"\"]}\ncompletion:\n  nodeProfile: "+profile+"\n"+tc.enabled)
			d := start(t, cfg)
			r := askFrom(t, "127.0.0.21", d.DNSAddr(), dnstest.Query("ext.example.default.svc.cluster.local.", dns.TypeA, 0))
			if r.Rcode != tc.rcode {
				t.Fatalf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
			if diff := dnstest.Diff(r.Answer, dnstest.RRs(tc.want...)); diff != "" {
				t.Errorf("answer:\n%s", diff)
			}
			got := asked.take()
			if tc.saved != "" {
				// The walk's names outside cluster.local, A and AAAA once.
				for _, q := range []string{"ext.example.corp.example. A", "ext.example.corp.example. AAAA", "ext.example. A", "ext.example. AAAA"} {
					if got[q] != 1 {
						t.Errorf("upstream asked %q %d times, want 1 (all: %v)", q, got[q], got)
					}
				}
			} else if len(got) != 0 {
				t.Errorf("upstream asked %v without completion", got)
			}
			// A name that exists nowhere: the asked name's NXDOMAIN; the
			// client's own walk after it is answered from the store and the
			// negative cache, so the upstream sees each name once.
			nx := func(name string, qtype uint16) {
				t.Helper()
				r := askFrom(t, "127.0.0.21", d.DNSAddr(), dnstest.Query(name, qtype, 0))
				if r.Rcode != dns.RcodeNameError || len(r.Answer) != 0 {
					t.Fatalf("%s: %v, want NXDOMAIN", name, r)
				}
			}
			for _, name := range []string{"nope.default.svc.cluster.local.", "nope.svc.cluster.local.", "nope.cluster.local.", "nope.corp.example.", "nope."} {
				nx(name, dns.TypeA)
				nx(name, dns.TypeAAAA)
			}
			got = asked.take()
			for _, q := range []string{"nope.corp.example. A", "nope.corp.example. AAAA", "nope. A", "nope. AAAA"} {
				if got[q] != 1 {
					t.Errorf("upstream asked %q %d times, want 1 (all: %v)", q, got[q], got)
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
