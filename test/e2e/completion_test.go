package e2e

// Server-side search completion proven with real clients (issue 5): dnsd
// runs in a private network namespace and each test pod (its own network
// namespace, joined to dnsd's by a veth pair, so that dnsd sees the pod's IP
// as the source address) looks names up with glibc and musl, with completion
// on and off. The test counts the queries dnsd receives per lookup
// (poddns_dns_requests_total, scraped before and after each lookup) and
// compares what getaddrinfo returns in both modes.
//
// The test re-executes its own binary inside `unshare --net --mount` with
// -test.run selecting TestCompletionNamespaceHelper, which does the work in
// there; that helper does nothing when run any other way.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/poddns/poddns/pkg/resolvconf"
	"github.com/poddns/poddns/pkg/serve/dnstest"
)

// completionEnv carries the helper's parameters, as "KEY=VALUE;..." pairs;
// only TestE2ECompletionRealClients sets it.
const completionEnv = "PODDNS_E2E_COMPLETION_CHILD"

// The namespaces' addresses: RFC 5737 TEST-NET-1 on the veth pairs, and a
// loopback address for the upstream. None of them exists outside the
// namespaces the test creates.
const (
	complDNSIP      = "192.0.2.1"  // dnsd, a /32 on lo of dnsd's namespace
	complUpstreamIP = "127.0.0.54" // the authoritative upstream, in dnsd's namespace
	complMetrics    = "127.0.0.1:9153"
	complHealth     = "127.0.0.1:8080"
	complExtV4      = "192.0.2.10"
	complExtV6      = "2001:db8::10"
	complHostIP     = "192.0.2.30" // host.corp.example
)

// complNodeResolvConf is the node's resolv.conf: one search domain.
const complNodeResolvConf = "nameserver " + complUpstreamIP + "\nsearch corp.example\n"

const complProfile = `apiVersion: poddns.io/v1alpha1
kind: NodeProfile
clusterDomain: cluster.local
clusterDNS: [` + complDNSIP + `]
resolvConfContent: |
  nameserver ` + complUpstreamIP + `
  search corp.example
`

// The upstream's zone (authoritative; it never sets RA): each name with
// its A and AAAA address ("" for none). A name listed without addresses
// exists with neither (NODATA); every other name is NXDOMAIN.
var complZone = map[string]struct{ a, aaaa string }{
	externalAPI:                 {complExtV4, complExtV6},
	"v6only.example.com.":       {"", complExtV6},
	"nodata.example.com.":       {},
	"host.corp.example.":        {complHostIP, ""},
	"tool.team.example.":        {"192.0.2.31", "2001:db8::31"},
	"box.lab.example.":          {"192.0.2.32", ""},
	"portal.example.":           {"192.0.2.33", "2001:db8::33"},
	"v6.example.":               {"", "2001:db8::34"},
	"empty.example.":            {},
	"gap.example.corp.example.": {},
	"gap.example.":              {"192.0.2.35", ""},
}

// answer is what getaddrinfo returns for a name that resolves.
type answer struct {
	canon string
	addrs []string
}

var (
	ansWeb    = &answer{"web.default.svc.cluster.local", []string{"10.96.0.20"}}
	ansAPI    = &answer{"api.example.com", []string{complExtV4, complExtV6}}
	ansV6only = &answer{"v6only.example.com", []string{complExtV6}}
	ansHost   = &answer{"host.corp.example", []string{complHostIP}}
	ansTool   = &answer{"tool.team.example", []string{"192.0.2.31", "2001:db8::31"}}
	ansBox    = &answer{"box.lab.example", []string{"192.0.2.32"}}
	ansPortal = &answer{"portal.example", []string{"192.0.2.33", "2001:db8::33"}}
	ansV6     = &answer{"v6.example", []string{"2001:db8::34"}}
	ansGap    = &answer{"gap.example", []string{"192.0.2.35"}}
)

// outcome is what one client must get for one lookup: the queries dnsd
// receives with completion on and off, and the result (nil: not found,
// exit status 2), the same in both modes.
type outcome struct {
	on, off int
	want    *answer
}

// complLookup is one name looked up from a pod.
type complLookup struct {
	name        string
	glibc, musl outcome
}

// same is a lookup where glibc and musl behave alike.
func same(name string, on, off int, want *answer) complLookup {
	o := outcome{on, off, want}
	return complLookup{name: name, glibc: o, musl: o}
}

// complPod is a test pod: its spec, the resolv.conf kubelet renders for it
// (checked), its address, and its lookups.
type complPod struct {
	name, ip string
	pod      *corev1.Pod
	wantConf string
	lookups  []complLookup
}

// complPods is the matrix. The counts follow from these rules (each name a
// client tries costs 2 queries, A and AAAA, sent together by both clients):
//
//   - A name with fewer dots than ndots is tried under each search domain
//     in order, then as it is; with ndots or more dots, as it is first,
//     then (glibc only: musl never searches such a name) under each search
//     domain. A trailing dot means as it is, alone.
//   - glibc stops at the first name with an address of either type; musl
//     at the first name that is not NXDOMAIN (NODATA included). NODATA
//     before a later hit: glibc walks on and finds it, musl fails.
//   - Completion on: when the client's first try is base + "." +
//     search[0] with fewer dots in base than ndots and that name is
//     NXDOMAIN, dnsd walks the rest itself. At the first name where glibc
//     and musl would both stop (NOERROR for both types, an address of
//     either) it answers with a CNAME there: the lookup costs 2. Where they
//     would differ (a NODATA name) or when nothing exists, it answers
//     NXDOMAIN and the client walks as without completion: same count.
//     A first try that exists is answered as it is (same count).
var complPods = []complPod{
	{
		// ClusterFirst, the default: 4 search domains (3 cluster, the
		// node's corp.example), ndots:5.
		name: "client", ip: "192.0.2.20",
		pod:      pod(corev1.DNSClusterFirst, nil),
		wantConf: "search default.svc.cluster.local svc.cluster.local cluster.local corp.example\nnameserver " + complDNSIP + "\noptions ndots:5\n",
		lookups: []complLookup{
			same("web", 2, 2, ansWeb),                            // hit in search[0]: 1 name; on: the first try answers
			same("web.default", 2, 4, ansWeb),                    // hit in search[1]: 2 names; on: completed
			same("web.default.svc", 2, 6, ansWeb),                // hit in search[2] (cluster.local): 3 names; on: completed
			same("host", 2, 8, ansHost),                          // hit in search[3] (corp.example, A only): 4 names; on: completed
			same("api.example.com", 2, 10, ansAPI),               // absolute hit after 4 domains: 5 names; on: completed
			same("web.default.svc.cluster.local", 2, 10, ansWeb), // a cluster FQDN without the dot (4 dots < 5): 5 names; on: completed
			same("api.example.com.", 2, 2, ansAPI),               // trailing dot: 1 name, no search, nothing to complete
			same("v6only.example.com", 2, 10, ansV6only),         // AAAA only, absolute: 5 names; on: completed (A gets NODATA after the CNAME)
			same("nodata.example.com", 10, 10, nil),              // NODATA as the last name: both stop there, not found; on: not completed, 5 names
			same("nothing.example.org", 10, 10, nil),             // exists nowhere: 5 names; on: NXDOMAIN, the client walks
			{name: "gap.example", // NODATA at corp.example (search[3]), address as it is: on: not completed
				glibc: outcome{10, 10, ansGap}, // walks on past the NODATA: 5 names, found
				musl:  outcome{8, 8, nil}},     // stops at the NODATA: 4 names, not found
		},
	},
	{
		// ClusterFirst with dnsConfig ndots:2: the same 4 domains.
		name: "ndots2", ip: "192.0.2.22",
		pod: pod(corev1.DNSClusterFirst, &corev1.PodDNSConfig{
			Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: strp("2")}},
		}),
		wantConf: "search default.svc.cluster.local svc.cluster.local cluster.local corp.example\nnameserver " + complDNSIP + "\noptions ndots:2\n",
		lookups: []complLookup{
			same("web", 2, 2, ansWeb),                // 0 dots, hit in search[0]: 1 name
			same("web.default", 2, 4, ansWeb),        // 1 dot, hit in search[1]: 2 names; on: completed
			same("host", 2, 8, ansHost),              // 0 dots, hit in search[3]: 4 names; on: completed
			same("portal.example", 2, 10, ansPortal), // 1 dot, absolute hit after 4 domains: 5 names; on: completed
			same("v6.example", 2, 10, ansV6),         // 1 dot, AAAA only: 5 names; on: completed
			same("api.example.com", 2, 2, ansAPI),    // 2 dots: as it is first, hit: 1 name
			same("empty.example", 10, 10, nil),       // 1 dot, NODATA as the last name: 5 names; not completed
			same("nothing.example", 10, 10, nil),     // 1 dot, nowhere: 5 names
			{name: "web.default.svc", // 2 dots: as it is first (NXDOMAIN); base has 2 dots, never completed
				glibc: outcome{8, 8, ansWeb}, // then the list: hit in search[2]: 1 + 3 names
				musl:  outcome{2, 2, nil}},   // no search for such a name: 1 name, not found
			{name: "nodata.example.com", // 2 dots: as it is first, NODATA
				glibc: outcome{10, 10, nil}, // then the 4 domains: 1 + 4 names, not found
				musl:  outcome{2, 2, nil}},  // stops: 1 name
			{name: "nothing.example.org", // 2 dots, nowhere
				glibc: outcome{10, 10, nil}, // 1 + 4 names
				musl:  outcome{2, 2, nil}},  // 1 name
			{name: "gap.example", // 1 dot: NODATA at corp.example (search[3]), address as it is; not completed
				glibc: outcome{10, 10, ansGap}, // 5 names, found
				musl:  outcome{8, 8, nil}},     // 4 names, not found
		},
	},
	{
		// ClusterFirst with dnsConfig searches: kubelet appends them to
		// the cluster and node domains: 6 domains, ndots:5.
		name: "searches", ip: "192.0.2.23",
		pod: pod(corev1.DNSClusterFirst, &corev1.PodDNSConfig{
			Searches: []string{"team.example", "lab.example"},
		}),
		wantConf: "search default.svc.cluster.local svc.cluster.local cluster.local corp.example team.example lab.example\nnameserver " + complDNSIP + "\noptions ndots:5\n",
		lookups: []complLookup{
			same("web", 2, 2, ansWeb),                    // hit in search[0]: 1 name
			same("web.default", 2, 4, ansWeb),            // hit in search[1]: 2 names; on: completed
			same("web.default.svc", 2, 6, ansWeb),        // hit in search[2]: 3 names; on: completed
			same("host", 2, 8, ansHost),                  // hit in search[3] (the node's): 4 names; on: completed
			same("tool", 2, 10, ansTool),                 // hit in search[4] (the pod's team.example): 5 names; on: completed
			same("box", 2, 12, ansBox),                   // hit in search[5] (the pod's lab.example): 6 names; on: completed
			same("api.example.com", 2, 14, ansAPI),       // absolute hit after 6 domains: 7 names; on: completed
			same("v6only.example.com", 2, 14, ansV6only), // AAAA only: 7 names; on: completed
			same("nodata.example.com", 14, 14, nil),      // NODATA as the last name: 7 names; not completed
			same("nothing.example.org", 14, 14, nil),     // nowhere: 7 names
			{name: "gap.example", // NODATA at corp.example (search[3]); not completed
				glibc: outcome{14, 14, ansGap}, // walks on: 7 names, found as it is
				musl:  outcome{8, 8, nil}},     // stops: 4 names, not found
		},
	},
	{
		// None with explicit nameservers and its own list and ndots:5
		// (only the pod's dnsConfig counts).
		name: "none", ip: "192.0.2.21",
		pod: func() *corev1.Pod {
			p := pod(corev1.DNSNone, &corev1.PodDNSConfig{
				Nameservers: []string{complDNSIP},
				Searches:    []string{"team.example", nsSvc, "corp.example"},
				Options:     []corev1.PodDNSConfigOption{{Name: "ndots", Value: strp("5")}},
			})
			p.Name, p.UID = "none", "e2e-none"
			return p
		}(),
		wantConf: "search team.example default.svc.cluster.local corp.example\nnameserver " + complDNSIP + "\noptions ndots:5\n",
		lookups: []complLookup{
			same("tool", 2, 2, ansTool),                 // hit in search[0] (team.example): 1 name
			same("web", 2, 4, ansWeb),                   // hit in search[1] (the cluster domain): 2 names; on: completed
			same("host", 2, 6, ansHost),                 // hit in search[2]: 3 names; on: completed
			same("api.example.com", 2, 8, ansAPI),       // absolute hit after 3 domains: 4 names; on: completed
			same("v6only.example.com", 2, 8, ansV6only), // AAAA only: 4 names; on: completed
			same("nodata.example.com", 8, 8, nil),       // NODATA as the last name: 4 names; not completed
			same("nothing.example.org", 8, 8, nil),      // nowhere: 4 names
			{name: "gap.example", // NODATA at corp.example (search[2]); not completed
				glibc: outcome{8, 8, ansGap}, // walks on: 4 names, found
				musl:  outcome{6, 6, nil}},   // stops: 3 names, not found
		},
	},
}

// complObjects is the store dnsd serves: the web Service and the pods.
func complObjects() (string, error) {
	var b strings.Builder
	b.WriteString(`apiVersion: v1
kind: Namespace
metadata: {name: default}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {type: ClusterIP, clusterIP: 10.96.0.20, clusterIPs: [10.96.0.20]}
`)
	for _, cp := range complPods {
		p := cp.pod.DeepCopy()
		p.APIVersion, p.Kind = "v1", "Pod"
		p.Name, p.UID = cp.name, types.UID("e2e-"+cp.name)
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: cp.ip, PodIPs: []corev1.PodIP{{IP: cp.ip}}}
		data, err := yaml.Marshal(p)
		if err != nil {
			return "", err
		}
		b.WriteString("---\n")
		b.Write(data)
	}
	return b.String(), nil
}

// TestE2ECompletionRealClients: from four pod shapes (ClusterFirst default,
// ndots:2 via dnsConfig, ClusterFirst with dnsConfig searches, None with its
// own nameservers and list), glibc and musl look up the names of complPods
// with completion on and off. Each lookup costs exactly the dnsd queries the
// matrix states (an external name 2, one per address type, with completion;
// the whole walk without); what getaddrinfo returns (exit status, canonical
// name, addresses, error) is the same in both modes and as stated; and with
// completion on the upstream receives each question at most once per lookup
// (the A and AAAA walks share their upstream queries: in-flight coalescing
// in package cache).
func TestE2ECompletionRealClients(t *testing.T) {
	r := newRig(t)
	// Each pod's resolv.conf, as kubelet would write it.
	profile, err := resolvconf.NewNodeProfile(resolvconf.NodeConfig{
		ClusterDomain:  clusterDomain,
		ClusterDNS:     []string{complDNSIP},
		ResolvConf:     resolvconf.DefaultResolvConf,
		ResolvConfData: []byte(complNodeResolvConf),
	})
	if err != nil {
		t.Fatal(err)
	}
	params := map[string]string{}
	for i, cp := range complPods {
		res, err := resolvconf.Compute(cp.pod, profile)
		if err != nil {
			t.Fatal(err)
		}
		conf := res.Config.Render()
		if conf != cp.wantConf {
			t.Fatalf("pod %s: rendered resolv.conf:\n%s\nwant:\n%s", cp.name, conf, cp.wantConf)
		}
		params[fmt.Sprint("resolvconf", i)] = r.write(fmt.Sprintf("resolv%d.conf", i), conf)
	}

	objects, err := complObjects()
	if err != nil {
		t.Fatal(err)
	}
	objectsPath := r.write("objects.yaml", objects)
	prof := r.write("profile.yaml", complProfile)
	cfg := func(name, extra string) string {
		return r.dnsdConfig(name, objectsPath, "completion:\n  nodeProfile: "+prof+"\n"+extra)
	}
	params["cfgon"], params["cfgoff"] = cfg("on.yaml", ""), cfg("off.yaml", "  enabled: false\n")
	r.runHelper("TestCompletionNamespaceHelper", completionEnv, params, "completion helper ran")
}

// complRun is one lookup by one client in one mode.
type complRun struct {
	run      clientRun
	requests int     // queries dnsd received during the lookup
	upstream []query // queries the upstream received meanwhile
}

// TestCompletionNamespaceHelper is the namespace side of
// TestE2ECompletionRealClients; run any other way, it does nothing.
func TestCompletionNamespaceHelper(t *testing.T) {
	p, ctx, up := startHelper(t, completionEnv)
	if p == nil {
		return
	}
	podNet := func(i int, ip string) func(args ...string) []string {
		return joinPodNet(t, ctx, p, i, ip, complDNSIP)
	}

	type key struct{ pod, name, client, mode string }
	results := map[key]complRun{}
	clients := []string{"glibc", "musl"}
	for i, cp := range complPods {
		inPod := podNet(i, cp.ip)
		conf := p[fmt.Sprint("resolvconf", i)]
		// Stacked over the previous pod's: the newest bind mount is seen.
		mustRun(t, ctx, p["mount"], "--bind", conf, "/etc/resolv.conf")
		want, _ := os.ReadFile(conf)
		if got, err := os.ReadFile("/etc/resolv.conf"); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("/etc/resolv.conf reads %q (%v), want %q", got, err, want)
		}
		for _, mode := range []string{"on", "off"} {
			// A fresh dnsd (empty cache) per pod and mode.
			stop := startDNSD(t, ctx, p["dnsd"], p["cfg"+mode])
			for _, l := range cp.lookups {
				for _, client := range clients {
					before := dnsRequests(t, ctx)
					var r complRun
					r.run, r.upstream = lookUp(t, ctx, p, up, inPod, client, l.name)
					r.requests = dnsRequests(t, ctx) - before
					t.Logf("pod %s, completion %s, %s %s: %d dnsd queries, exit %d\n  output: %s\n  upstream saw: %q",
						cp.name, mode, client, l.name, r.requests, r.run.ExitCode,
						strings.ReplaceAll(strings.TrimSpace(r.run.Stdout), "\n", " | "), queryStrings(r.upstream))
					results[key{cp.name, l.name, client, mode}] = r
				}
			}
			stop()
		}
	}

	for _, cp := range complPods {
		for _, l := range cp.lookups {
			for _, client := range clients {
				w := l.glibc
				if client == "musl" {
					w = l.musl
				}
				on, off := results[key{cp.name, l.name, client, "on"}], results[key{cp.name, l.name, client, "off"}]
				label := fmt.Sprintf("pod %s: %s lookup of %q", cp.name, client, l.name)
				cOn, aOn, errOn := parseOutput(on.run)
				cOff, aOff, errOff := parseOutput(off.run)
				if errOn != nil || errOff != nil {
					t.Errorf("%s: unreadable output: %v / %v", label, errOn, errOff)
				}
				// The same result either way; a failure's error too (musl
				// prints its EAI code: NONAME and NODATA differ).
				if on.run.ExitCode != off.run.ExitCode || cOn != cOff || !slices.Equal(aOn, aOff) ||
					(on.run.ExitCode != 0 && on.run.Stdout != off.run.Stdout) {
					t.Errorf("%s differs with completion on (exit %d, %q, %q, %q) and off (exit %d, %q, %q, %q)",
						label, on.run.ExitCode, cOn, aOn, on.run.Stdout, off.run.ExitCode, cOff, aOff, off.run.Stdout)
				}
				if on.requests != w.on {
					t.Errorf("%s with completion cost %d dnsd queries, want %d", label, on.requests, w.on)
				}
				if off.requests != w.off {
					t.Errorf("%s without completion cost %d dnsd queries, want %d", label, off.requests, w.off)
				}
				for mode, r := range map[string]complRun{"on": on, "off": off} {
					seen := map[string]int{}
					for _, q := range r.upstream {
						if seen[q.Name+" "+q.Type]++; seen[q.Name+" "+q.Type] == 2 {
							t.Errorf("%s with completion %s: the upstream received %s %s more than once: %q",
								label, mode, q.Name, q.Type, queryStrings(r.upstream))
						}
					}
				}
				for mode, r := range map[string]complRun{"on": on, "off": off} {
					c, a := cOn, slices.Clone(aOn)
					if mode == "off" {
						c, a = cOff, slices.Clone(aOff)
					}
					if w.want == nil {
						if r.run.ExitCode != 2 {
							t.Errorf("%s with completion %s: exit %d, want 2 (not found)", label, mode, r.run.ExitCode)
						}
						continue
					}
					wantAddrs := slices.Clone(w.want.addrs)
					slices.Sort(a)
					slices.Sort(wantAddrs)
					if r.run.ExitCode != 0 || c != w.want.canon || !slices.Equal(a, wantAddrs) {
						t.Errorf("%s with completion %s: exit %d, %q, %q; want %q, %q", label, mode, r.run.ExitCode, c, a, w.want.canon, wantAddrs)
					}
				}
			}
		}
	}
	t.Log("completion helper ran")
}

// joinPodNet makes a test pod's network namespace, held by a sleep that
// dies with the test, and joins it to the current one by a veth pair
// (e2edns<i> here, e2epod<i> there): dnsIP is on lo here, the pod has ip
// and a /32 route each way, so dnsd sees the pod's IP as the source. It
// returns a function that prefixes a command line with nsenter into the
// pod. p holds the programs: unshare, sleep, nsenter, ip.
func joinPodNet(t *testing.T, ctx context.Context, p map[string]string, i int, ip, dnsIP string) (inPod func(args ...string) []string) {
	t.Helper()
	netNS, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	holder := exec.Command(p["unshare"], "--net", "--", p["sleep"], "600")
	holder.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Process.Kill(); _ = holder.Wait() })
	podNS := fmt.Sprintf("/proc/%d/ns/net", holder.Process.Pid)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if ns, err := os.Readlink(podNS); err == nil && ns != netNS {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the pod's network namespace did not appear")
		}
		time.Sleep(20 * time.Millisecond)
	}
	inPod = func(args ...string) []string { return append([]string{p["nsenter"], "--net=" + podNS, "--"}, args...) }
	here, there := fmt.Sprintf("e2edns%d", i), fmt.Sprintf("e2epod%d", i)
	mustRun(t, ctx, p["ip"], "link", "add", here, "type", "veth", "peer", "name", there)
	mustRun(t, ctx, p["ip"], "link", "set", there, "netns", strconv.Itoa(holder.Process.Pid))
	mustRun(t, ctx, p["ip"], "link", "set", here, "up")
	mustRun(t, ctx, p["ip"], "route", "add", ip+"/32", "dev", here, "src", dnsIP)
	for _, args := range [][]string{
		{p["ip"], "link", "set", "lo", "up"},
		{p["ip"], "addr", "add", ip + "/32", "dev", there},
		{p["ip"], "link", "set", there, "up"},
		{p["ip"], "route", "add", dnsIP + "/32", "dev", there, "src", ip},
	} {
		a := inPod(args...)
		mustRun(t, ctx, a[0], a[1:]...)
	}
	return inPod
}

// startDNSD runs dnsd with a config and waits for /ready; stop ends it.
func startDNSD(t *testing.T, ctx context.Context, bin, cfg string) (stop func()) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(bin, "--config", cfg)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		})
	}
	t.Cleanup(stop)
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("dnsd exited: %v\n%s", err, out.String())
		default:
		}
		resp, err := c.Get("http://" + complHealth + "/ready")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return stop
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("dnsd not ready after 20s (last: %v)\n%s", err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dnsRequests is the sum of poddns_dns_requests_total over all its series.
func dnsRequests(t *testing.T, ctx context.Context) int {
	t.Helper()
	return dnsRequestsAt(t, ctx, complMetrics)
}

// dnsRequestsAt is dnsRequests of the dnsd whose metrics are at addr.
func dnsRequestsAt(t *testing.T, ctx context.Context, addr string) int {
	t.Helper()
	return metricSum(t, ctx, addr, "poddns_dns_requests_total")
}

// metricSum is the sum of a metric over all its series, from the /metrics
// of the dnsd at addr.
func metricSum(t *testing.T, ctx context.Context, addr, metric string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: 3 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	sums, err := dnstest.SumMetrics(string(body), metric)
	if err != nil {
		t.Fatal(err)
	}
	return int(sums[0])
}

// answerCompl is the upstream: the authoritative server of complZone;
// dnsd's loop probes get an empty NOERROR and are not logged.
func answerCompl(r *dns.Msg, q dns.Question, name string) (*dns.Msg, bool) {
	m := new(dns.Msg)
	m.SetReply(r)
	if dns.IsSubDomain("poddns-loop.", name) {
		return m, false
	}
	m.Authoritative = true
	soa := mustRR(". 30 IN SOA ns.e2e.test. hostmaster.e2e.test. 1 7200 1800 86400 30")
	addrs, ok := complZone[name]
	switch {
	case !ok:
		m.Rcode = dns.RcodeNameError
	case q.Qtype == dns.TypeA && addrs.a != "":
		m.Answer = []dns.RR{mustRR(q.Name + " 300 IN A " + addrs.a)}
	case q.Qtype == dns.TypeAAAA && addrs.aaaa != "":
		m.Answer = []dns.RR{mustRR(q.Name + " 300 IN AAAA " + addrs.aaaa)}
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{soa}
	}
	return m, true
}

// startUpstream serves the upstream (answerCompl) on addr.
func startUpstream(ctx context.Context, addr string) (*server, error) {
	return startServer(ctx, "upstream", addr, answerCompl)
}
