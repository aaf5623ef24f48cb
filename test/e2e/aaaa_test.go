package e2e

// AAAA control proven with real clients (issue 14): dnsd runs in a private
// network namespace with `aaaa: {filter: ipv4Pods}`, an IPv4-only pod (its
// own network namespace, joined by a veth pair, so that dnsd sees the pod's
// IP and finds the pod in its store) looks names up with glibc and musl,
// and a loopback upstream counts the questions it receives by type. A
// control run with `filter: none` must show what the filter saves.

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// aaaaEnv carries the helper's parameters, as "KEY=VALUE;..." pairs; only
// TestE2EAAAAFilterRealClients sets it.
const aaaaEnv = "PODDNS_E2E_AAAA_CHILD"

// The IPv4-only pod, a dual-stack pod and the dual-stack Service dnsd
// serves.
const (
	aaaaPodIP   = "192.0.2.20"
	aaaaDualIP  = "192.0.2.21" // its IPv6 address, fd00:10:244::21, is only in its status
	aaaaWebV6   = "fd00:10:96::20"
	aaaaPodConf = "search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver " + complDNSIP + "\noptions ndots:5\n"
)

// aaaaObjects is the store: the namespace, a dual-stack Service web and the
// pod, whose status has an IPv4 address only.
const aaaaObjects = `apiVersion: v1
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: default}
- apiVersion: v1
  kind: Service
  metadata: {name: web, namespace: default}
  spec:
    type: ClusterIP
    clusterIP: 10.96.0.20
    clusterIPs: [10.96.0.20, ` + aaaaWebV6 + `]
    ipFamilies: [IPv4, IPv6]
    ipFamilyPolicy: RequireDualStack
    ports: [{name: http, port: 80, protocol: TCP}]
- apiVersion: v1
  kind: Pod
  metadata: {name: client, namespace: default, uid: e2e-aaaa-client}
  spec:
    containers: [{name: app, image: app}]
  status:
    phase: Running
    podIP: ` + aaaaPodIP + `
    podIPs: [{ip: ` + aaaaPodIP + `}]
- apiVersion: v1
  kind: Pod
  metadata: {name: dual, namespace: default, uid: e2e-aaaa-dual}
  spec:
    containers: [{name: app, image: app}]
  status:
    phase: Running
    podIP: ` + aaaaDualIP + `
    podIPs: [{ip: ` + aaaaDualIP + `}, {ip: "fd00:10:244::21"}]
kind: List
`

// aaaaLookup is one lookup by one client under one filter, and what it
// cost.
type aaaaLookup struct {
	run      clientRun
	upstream []query // questions the upstream received during the lookup
	filtered int     // poddns_aaaa_filtered_total's rise
}

// TestE2EAAAAFilterRealClients: from an IPv4-only pod, glibc (getent
// ahosts) and musl (a static getaddrinfo program) look up an external name
// (api.example.com, with A and AAAA upstream; ndots:5, so after the three
// cluster search domains dnsd answers itself) and a dual-stack Service
// (web). With filter ipv4Pods the external lookup costs the upstream
// exactly one question, its A, the AAAA is answered NODATA by dnsd and
// counted, and the client gets the IPv4 address only; the Service's AAAA
// is answered (both addresses returned) and nothing is filtered. The
// control, filter none, costs the upstream A and AAAA and returns both
// addresses; so does, with ipv4Pods, a pod whose status has an IPv6 address
// (the filter is chosen per client, from the pod index). Each lookup runs against a fresh dnsd (an empty cache).
func TestE2EAAAAFilterRealClients(t *testing.T) {
	r := newRig(t)
	objects := r.write("objects.yaml", aaaaObjects)
	cfg := func(filter string) string {
		return r.dnsdConfig("dnsd-"+filter+".yaml", objects, "aaaa: {filter: "+filter+"}\n")
	}
	r.runHelper("TestAAAANamespaceHelper", aaaaEnv, map[string]string{
		"cfgipv4Pods": cfg("ipv4Pods"), "cfgnone": cfg("none"), "resolvconf": r.write("resolv.conf", aaaaPodConf),
	}, "aaaa helper ran")
}

// TestAAAANamespaceHelper is the namespace side of
// TestE2EAAAAFilterRealClients; run any other way, it does nothing.
func TestAAAANamespaceHelper(t *testing.T) {
	p, ctx, up := startHelper(t, aaaaEnv)
	if p == nil {
		return
	}
	mustRun(t, ctx, p["mount"], "--bind", p["resolvconf"], "/etc/resolv.conf")
	if got, err := os.ReadFile("/etc/resolv.conf"); err != nil || string(got) != aaaaPodConf {
		t.Fatalf("/etc/resolv.conf reads %q (%v), want %q", got, err, aaaaPodConf)
	}
	inPod := map[string]func(args ...string) []string{
		"client": joinPodNet(t, ctx, p, 0, aaaaPodIP, complDNSIP),
		"dual":   joinPodNet(t, ctx, p, 1, aaaaDualIP, complDNSIP),
	}

	type key struct{ pod, filter, client, name string }
	results := map[key]aaaaLookup{}
	filters, clients := []string{"ipv4Pods", "none"}, []string{"glibc", "musl"}
	cases := []struct{ pod, filter string }{{"client", "ipv4Pods"}, {"client", "none"}, {"dual", "ipv4Pods"}}
	for _, c := range cases {
		names := []string{"api.example.com", "web"}
		if c.pod == "dual" {
			names = names[:1]
		}
		for _, client := range clients {
			// A fresh dnsd (empty cache) for each client, pod and filter.
			stop := startDNSD(t, ctx, p["dnsd"], p["cfg"+c.filter])
			for _, name := range names {
				before := metricSum(t, ctx, complMetrics, "poddns_aaaa_filtered_total")
				var l aaaaLookup
				l.run, l.upstream = lookUp(t, ctx, p, up, inPod[c.pod], client, name)
				l.filtered = metricSum(t, ctx, complMetrics, "poddns_aaaa_filtered_total") - before
				t.Logf("pod %s, filter %s, %s %s: exit %d, %d filtered\n  output: %s\n  upstream saw: %q",
					c.pod, c.filter, client, name, l.run.ExitCode, l.filtered,
					strings.ReplaceAll(strings.TrimSpace(l.run.Stdout), "\n", " | "), queryStrings(l.upstream))
				results[key{c.pod, c.filter, client, name}] = l
			}
			stop()
		}
	}

	// The dual-stack pod's AAAA goes upstream even with ipv4Pods.
	for _, client := range clients {
		l := results[key{"dual", "ipv4Pods", client, "api.example.com"}]
		label := fmt.Sprintf("pod dual, filter ipv4Pods: %s lookup of api.example.com", client)
		want := []string{"api.example.com. A/udp", "api.example.com. AAAA/udp"}
		if got := slices.Sorted(slices.Values(queryStrings(l.upstream))); !slices.Equal(got, want) || l.filtered != 0 {
			t.Errorf("%s: the upstream received %q, %d filtered; want %q, 0 (the pod has an IPv6 address)", label, got, l.filtered, want)
		}
		checkAddrs(t, label, l.run, "api.example.com", []string{complExtV4, complExtV6})
	}
	for _, filter := range filters {
		for _, client := range clients {
			// The external name: one upstream question (A) with the
			// filter, two (A, AAAA) without.
			ext := results[key{"client", filter, client, "api.example.com"}]
			label := fmt.Sprintf("filter %s: %s lookup of api.example.com", filter, client)
			wantUp, wantAddrs, wantFiltered := []string{"api.example.com. A/udp"}, []string{complExtV4}, 1
			if filter == "none" {
				wantUp, wantAddrs, wantFiltered = []string{"api.example.com. A/udp", "api.example.com. AAAA/udp"}, []string{complExtV4, complExtV6}, 0
			}
			got := queryStrings(ext.upstream)
			slices.Sort(got)
			if !slices.Equal(got, wantUp) {
				t.Errorf("%s: the upstream received %q, want %q", label, got, wantUp)
			}
			if ext.filtered != wantFiltered {
				t.Errorf("%s: poddns_aaaa_filtered_total rose by %d, want %d", label, ext.filtered, wantFiltered)
			}
			checkAddrs(t, label, ext.run, "api.example.com", wantAddrs)

			// The dual-stack Service: answered by dnsd, AAAA included,
			// whatever the filter; nothing upstream, nothing filtered.
			web := results[key{"client", filter, client, "web"}]
			label = fmt.Sprintf("filter %s: %s lookup of web", filter, client)
			if len(web.upstream) > 0 {
				t.Errorf("%s: the upstream received %q, want nothing (a cluster name)", label, queryStrings(web.upstream))
			}
			if web.filtered != 0 {
				t.Errorf("%s: poddns_aaaa_filtered_total rose by %d, want 0 (a cluster name)", label, web.filtered)
			}
			checkAddrs(t, label, web.run, "web.default.svc.cluster.local", []string{"10.96.0.20", aaaaWebV6})
		}
	}
	t.Log("aaaa helper ran")
}

// checkAddrs: the lookup succeeded with the canonical name and exactly
// these addresses (in any order).
func checkAddrs(t *testing.T, label string, r clientRun, canon string, want []string) {
	t.Helper()
	c, addrs, err := parseOutput(r)
	if err != nil {
		t.Errorf("%s: unreadable output: %v", label, err)
		return
	}
	addrs, want = slices.Sorted(slices.Values(addrs)), slices.Sorted(slices.Values(want))
	if r.ExitCode != 0 || c != canon || !slices.Equal(addrs, want) {
		t.Errorf("%s: exit %d, canonical name %q, addresses %q; want 0, %q, %q (stdout %q, stderr %q)", label, r.ExitCode, c, addrs, canon, want, r.Stdout, r.Stderr)
	}
}
