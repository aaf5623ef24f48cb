package e2e

// `webhook impact` checked against real clients (issue 16, item 3): a
// Deployment's two pods, one glibc (getent ahosts) and one musl (the static
// gai program), look up a Service by its short names (svc, svc.ns,
// svc.ns.svc) and external names through the default ClusterFirst
// resolv.conf (ndots:5) while dnsd logs every query (completion off). The
// log is replayed against an ndots:2 policy; the report must be exactly the
// expected one (musl loses svc.ns.svc, both libcs save the external names'
// walks); then the pods get the resolv.conf the policy renders and make the
// same lookups, and what resolved and the wire queries dnsd logged must be
// what the replay predicted.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/impact"
	"github.com/poddns/poddns/pkg/manifest"
	"github.com/poddns/poddns/pkg/policy"
	"github.com/poddns/poddns/pkg/render"
	"github.com/poddns/poddns/pkg/resolvconf"
)

// impactEnv carries the helper's parameters; only TestE2EImpactNdots2 sets it.
const impactEnv = "PODDNS_E2E_IMPACT_CHILD"

// impactObjects are the cluster: namespace shop (opted into ndots:2 by the
// label testdata/policies/ndots.yaml selects on), Service web, and two pods
// of Deployment api (ReplicaSet api-7d4f9c8b6, impactPod), as dnsd's file
// source and as the manifests impact reads.
const impactObjects = `apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {poddns.io/ndots: "2"}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {type: ClusterIP, clusterIP: 10.96.0.20, clusterIPs: [10.96.0.20]}
`

// impactPod is a pod of the Deployment: fmt arguments name suffix, address.
const impactPod = `---
apiVersion: v1
kind: Pod
metadata:
  name: api-7d4f9c8b6-%[1]s
  namespace: shop
  uid: e2e-impact-%[1]s
  labels: {app: api, pod-template-hash: 7d4f9c8b6}
  ownerReferences:
  - {apiVersion: apps/v1, kind: ReplicaSet, name: api-7d4f9c8b6, uid: e2e-rs, controller: true}
spec:
  containers: [{name: app, image: app}]
status: {phase: Running, podIP: %[2]s, podIPs: [{ip: %[2]s}]}
`

// The pods: name suffix, address, client.
var impactPods = []struct{ suffix, ip, client string }{
	{"g1ibc", "192.0.2.20", "glibc"},
	{"m8s1x", "192.0.2.21", "musl"},
}

// impactLookups are the names both pods look up, in order: the Service by
// its short names, external names (complZone) with 2 dots (saved at
// ndots:2) and 1 dot (still searched).
var impactLookups = []string{"web", "web.shop", "web.shop.svc", "api.example.com", "v6only.example.com", "portal.example"}

// impactWant is the exact report: 6 lookups per pod, 21 names each through
// ndots:5 (1+2+3+5+5+5), each asked for A and AAAA. At ndots:2 glibc asks
// web.shop.svc. first, then walks on to the same answer (4 names), and the
// 2-dot external names cost 1 name instead of 5: 14 names; musl asks
// web.shop.svc. only and no longer finds the Service: 11 names.
const impactWant = `Deployment shop/api: 2 pods api-7d4f9c8b6-g1ibc api-7d4f9c8b6-m8s1x, 12 lookups
  glibc: 0 breaking, 0 resolving differently, wire queries 84 -> 56 (28 saved)
  musl:  1 breaking, 0 resolving differently, wire queries 84 -> 44 (40 saved)
  BREAKS with musl: web.shop.svc: found web.shop.svc.cluster.local. (asks web.shop.svc.shop.svc.cluster.local. web.shop.svc.svc.cluster.local. web.shop.svc.cluster.local.) -> not found (asks web.shop.svc.)
  unknown: web.shop.svc. is not in the log; taken not to exist
`

// impactRun is one lookup by one pod's client in one phase.
type impactRun struct {
	Phase, Pod, Client, Name string
	Start, End               time.Time
	ExitCode                 int
	Stdout                   string
}

func TestE2EImpactNdots2(t *testing.T) {
	rg := newRig(t)

	// The manifests, the node profile and the policies: none now, the
	// repository's ndots:2 example proposed.
	objects := impactObjects
	for _, ip := range impactPods {
		objects += fmt.Sprintf(impactPod, ip.suffix, ip.ip)
	}
	set, err := manifest.Decode(strings.NewReader(objects), "objects.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Pods) != len(impactPods) {
		t.Fatalf("%d pods in the manifests, want %d", len(set.Pods), len(impactPods))
	}
	profile, err := resolvconf.NewNodeProfile(resolvconf.NodeConfig{
		ClusterDomain: clusterDomain, ClusterDNS: []string{complDNSIP},
		ResolvConf: resolvconf.DefaultResolvConf, ResolvConfData: []byte(complNodeResolvConf),
	})
	if err != nil {
		t.Fatal(err)
	}
	root := testenv.Root(t)
	policies, err := policy.Load(filepath.Join(root, "testdata", "policies", "ndots.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	proposed, err := policy.NewEngine(policies, policy.EngineOptions{Profile: profile})
	if err != nil {
		t.Fatal(err)
	}
	pods := impact.ManifestPods(set.Pods, render.NamespaceLabels(set.Namespaces), impact.Policies{Proposed: proposed})
	pod, ok := pods("shop", "api-7d4f9c8b6-"+impactPods[0].suffix)
	if !ok || pod.ProposedError != "" {
		t.Fatalf("pods: %+v, %v", pod, ok)
	}
	nowConf, proposedConf := pod.Current.Render(), pod.Proposed.Render()
	const search = "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example\nnameserver " + complDNSIP + "\n"
	if nowConf != search+"options ndots:5\n" || proposedConf != search+"options ndots:2\n" {
		t.Fatalf("resolv.conf now:\n%s\nproposed:\n%s", nowConf, proposedConf)
	}

	// Both phases in one helper: the lookups through today's file (the
	// captured log), then through the proposed one.
	logs := map[string]string{"now": filepath.Join(rg.dir, "now.log"), "proposed": filepath.Join(rg.dir, "proposed.log")}
	objectsPath := rg.write("objects.yaml", objects)
	cfg := func(phase string) string {
		return rg.dnsdConfig(phase+".yaml", objectsPath, "queryLog: {enabled: true, output: "+logs[phase]+"}\n")
	}
	results := filepath.Join(rg.dir, "runs.json")
	rg.runHelper("TestImpactNamespaceHelper", impactEnv, map[string]string{
		"cfgnow": cfg("now"), "cfgproposed": cfg("proposed"),
		"confnow": rg.write("now.conf", nowConf), "confproposed": rg.write("proposed.conf", proposedConf),
		"out": results,
	}, "")
	data, err := os.ReadFile(results)
	if err != nil {
		t.Fatal(err)
	}
	var runs []impactRun
	if err := json.Unmarshal(data, &runs); err != nil {
		t.Fatal(err)
	}
	entries := map[string][]impact.Entry{}
	for phase, path := range logs {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		entries[phase], err = impact.ReadLog(f, path)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		// The log's lines are in the order the replies were queued for
		// the writer, not always the order of the queries: a busy machine
		// can delay a handler between its reply and its queueing.
		slices.SortStableFunc(entries[phase], func(a, b impact.Entry) int { return a.Time.Compare(b.Time) })
	}

	// The replay of today's log: exactly the expected report.
	r := impact.Analyze(entries["now"], pods, impact.Options{})
	var text bytes.Buffer
	if err := impact.WriteText(&text, r); err != nil {
		t.Fatal(err)
	}
	if text.String() != impactWant {
		t.Errorf("impact report:\n%s\nwant:\n%s", text.String(), impactWant)
	}
	if !r.Breaks() {
		t.Error("Breaks() = false, want true (--fail-on breakage fails)")
	}
	if len(r.Workloads) != 1 {
		t.Fatalf("%d workloads in the report", len(r.Workloads))
	}

	// Each real run, now and with the proposed file, is what the replay
	// said for its libc: the names dnsd logged for it (each A and AAAA)
	// and what getaddrinfo returned.
	predicted := map[string]impact.LookupReport{}
	for _, d := range r.Workloads[0].Distinct {
		predicted[d.Name] = d
	}
	if len(runs) != 2*len(impactPods)*len(impactLookups) {
		t.Fatalf("%d runs, want %d", len(runs), 2*len(impactPods)*len(impactLookups))
	}
	for _, run := range runs {
		label := fmt.Sprintf("%s: %s lookup of %q", run.Phase, run.Client, run.Name)
		d, ok := predicted[run.Name]
		if !ok || !slices.Equal(d.Types, []string{"A", "AAAA"}) || d.Count != 2 {
			t.Errorf("%s: no prediction, or not A and AAAA by 2 pods: %+v", label, d)
			continue
		}
		var want impact.Outcome
		for _, rp := range d.Replays {
			if string(rp.Libc) == run.Client {
				want = rp.Current
				if run.Phase == "proposed" {
					want = rp.Proposed
				}
			}
		}
		var asked []string
		perName := map[string][]string{}
		for _, e := range entries[run.Phase] {
			if e.Pod == run.Pod && !e.Time.Before(run.Start) && !e.Time.After(run.End) {
				if n := len(asked); n == 0 || asked[n-1] != e.Name {
					asked = append(asked, e.Name)
				}
				perName[e.Name] = append(perName[e.Name], e.Type)
			}
		}
		if !slices.Equal(asked, want.Asked) {
			t.Errorf("%s: dnsd logged\n\t%s\npredicted\n\t%s", label, strings.Join(asked, "\n\t"), strings.Join(want.Asked, "\n\t"))
		}
		for n, ts := range perName {
			slices.Sort(ts)
			if !slices.Equal(ts, []string{"A", "AAAA"}) {
				t.Errorf("%s: %s asked with types %v, want A and AAAA once each", label, n, ts)
			}
		}
		canon, _, err := parseOutput(clientRun{Client: run.Client, Stdout: run.Stdout, ExitCode: run.ExitCode})
		if err != nil {
			t.Errorf("%s: %v", label, err)
		}
		switch want.Result {
		case impact.Found:
			if run.ExitCode != 0 || canon+"." != want.Name {
				t.Errorf("%s: exit %d, canonical name %q; predicted found %s", label, run.ExitCode, canon, want.Name)
			}
		default:
			if run.ExitCode != 2 {
				t.Errorf("%s: exit %d (%q); predicted %s", label, run.ExitCode, run.Stdout, want.Result)
			}
		}
	}
}

// TestImpactNamespaceHelper is the namespace side of TestE2EImpactNdots2;
// run any other way, it does nothing.
func TestImpactNamespaceHelper(t *testing.T) {
	p, ctx, _ := startHelper(t, impactEnv)
	if p == nil {
		return
	}
	inPod := make([]func(args ...string) []string, len(impactPods))
	for i, ip := range impactPods {
		inPod[i] = joinPodNet(t, ctx, p, i, ip.ip, complDNSIP)
	}

	var runs []impactRun
	for _, phase := range []string{"now", "proposed"} {
		// Stacked over the previous phase's: the newest bind mount is seen.
		mustRun(t, ctx, p["mount"], "--bind", p["conf"+phase], "/etc/resolv.conf")
		stop := startDNSD(t, ctx, p["dnsd"], p["cfg"+phase])
		for i, ip := range impactPods {
			for _, name := range impactLookups {
				argv := []string{p["getent"], "ahosts", name}
				if ip.client == "musl" {
					argv = []string{p["gai"], name}
				}
				r := impactRun{Phase: phase, Pod: "api-7d4f9c8b6-" + ip.suffix, Client: ip.client, Name: name, Start: time.Now()}
				var stderr string
				var err error
				r.Stdout, stderr, r.ExitCode, err = runClient(ctx, inPod[i](argv...))
				if err != nil {
					t.Fatalf("%s %q: %v (%s)", ip.client, name, err, stderr)
				}
				r.End = time.Now()
				t.Logf("%s: %s %s: exit %d: %s", phase, ip.client, name, r.ExitCode, strings.ReplaceAll(strings.TrimSpace(r.Stdout), "\n", " | "))
				runs = append(runs, r)
			}
		}
		stop() // dnsd writes what its log has queued before it exits
	}
	data, err := json.Marshal(runs)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p["out"], data, 0o644); err != nil {
		t.Fatal(err)
	}
}
