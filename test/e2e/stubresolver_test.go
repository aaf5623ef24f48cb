package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/resolvconf"
)

// TestE2EStubResolversFollowRenderedResolvConf checks that the resolv.conf
// pkg/resolvconf renders for a pod is read by glibc and musl the way poddns
// predicts: which names they ask for, in which order, with which types, and
// what the application gets back.
func TestE2EStubResolversFollowRenderedResolvConf(t *testing.T) {
	tools := requireNamespaceTools(t)
	tools.gai = buildMuslClient(t, tools.muslGCC)

	for _, tc := range resolverCases() {
		t.Run(tc.name, func(t *testing.T) {
			profile, err := resolvconf.NewNodeProfile(tc.node)
			if err != nil {
				t.Fatalf("NewNodeProfile: %v", err)
			}
			res, err := resolvconf.Compute(tc.pod, profile)
			if err != nil {
				t.Fatalf("Compute: %v", err)
			}
			conf := res.Config.Render()
			if conf != tc.wantConf {
				t.Fatalf("rendered resolv.conf:\n%s\nwant:\n%s", conf, tc.wantConf)
			}
			var reasons []string
			for _, e := range res.Events {
				reasons = append(reasons, e.Reason+": "+e.Message)
			}
			if tc.wantCut != (len(reasons) > 0) || (tc.wantCut && !strings.Contains(reasons[0], "Search Line limits were exceeded")) {
				t.Fatalf("events %q; want a search line cut: %v", reasons, tc.wantCut)
			}
			t.Logf("resolv.conf (%d bytes):\n%s", len(conf), conf)
			notes := resolvconf.ClientNotes(res.Config)
			if got := strings.Contains(strings.Join(notes, "\n"), "musl libc (e.g. Alpine images) ignores the search line"); got != tc.wantMuslNote {
				t.Errorf("ClientNotes = %q: musl search-line note %v, want %v", notes, got, tc.wantMuslNote)
			}

			var lookups []childLookup
			for _, l := range tc.lookups {
				lookups = append(lookups,
					childLookup{Client: "glibc", Argv: []string{tools.getent, "ahosts", l.name}},
					childLookup{Client: "musl", Argv: []string{tools.gai, l.name}},
				)
			}
			got := runInNamespace(t, tools, conf, lookups)
			if len(got.Runs) != len(lookups) {
				t.Fatalf("the namespace child reported %d runs, want %d", len(got.Runs), len(lookups))
			}
			for i, l := range tc.lookups {
				checkRun(t, l.name, l.glibc, got.Runs[2*i])
				checkRun(t, l.name, l.musl, got.Runs[2*i+1])
			}
		})
	}
}

// resolverCase is a pod on a node, the file kubelet would give it, and
// lookups made from it.
type resolverCase struct {
	name     string
	node     resolvconf.NodeConfig
	pod      *corev1.Pod
	wantConf string
	wantCut  bool // kubelet cuts the search line (a DNSConfigForming event)
	// wantMuslNote: resolvconf.ClientNotes warns that musl skips the
	// search line.
	wantMuslNote bool
	lookups      []lookupCase
}

type lookupCase struct {
	name        string // what the application asks for
	glibc, musl want
}

// want is what one client must do for one lookup.
type want struct {
	// names are the names the client asks the server for, in order, each
	// once with A and once with AAAA (any order within a name: both
	// resolvers send the two questions together).
	names []string
	// canon and addrs are what the application gets; addrs nil means the
	// lookup fails with "not found".
	canon string
	addrs []string
}

// both is a lookup where glibc and musl behave the same.
func both(name string, w want) lookupCase { return lookupCase{name: name, glibc: w, musl: w} }

func found(canon, addr string, names ...string) want {
	return want{names: names, canon: canon, addrs: []string{addr}}
}

func notFound(names ...string) want { return want{names: names} }

// walk is the names a search walk asks for: name under each search domain in
// order, then name as it is (every name here is looked up without a trailing
// dot; the server sees them fully qualified).
func walk(name string, searches ...string) []string {
	var out []string
	for _, s := range searches {
		out = append(out, name+"."+s+".")
	}
	return append(out, name+".")
}

const (
	clusterDomain = "cluster.local"
	nsSvc         = "default.svc.cluster.local"
	svc           = "svc.cluster.local"
)

// node is a kubelet with --cluster-dns pointing at the test's server and the
// given node resolv.conf.
func node(resolvConf string) resolvconf.NodeConfig {
	return resolvconf.NodeConfig{
		ClusterDomain:  clusterDomain,
		ClusterDNS:     []string{serverIP},
		ResolvConf:     resolvconf.DefaultResolvConf,
		ResolvConfData: []byte(resolvConf),
	}
}

func pod(policy corev1.DNSPolicy, dc *corev1.PodDNSConfig) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "client", Namespace: "default", UID: "e2e-client"},
		Spec: corev1.PodSpec{
			DNSPolicy:  policy,
			DNSConfig:  dc,
			Containers: []corev1.Container{{Name: "app", Image: "app"}},
		},
	}
}

func strp(s string) *string { return &s }

func resolverCases() []resolverCase {
	// The node's own nameserver is never used by a cluster-policy pod.
	const nodeConf = "search corp.example\nnameserver 127.0.0.1\n"
	defaultConf := "search default.svc.cluster.local svc.cluster.local cluster.local corp.example\nnameserver 127.0.0.53\noptions ndots:5\n"
	defaultSearch := []string{nsSvc, svc, clusterDomain, "corp.example"}

	// (d) 35 short node search domains: kubelet keeps the first 32 entries
	// of the pod's list (3 cluster + 29 node). The line stays short (< 256
	// bytes) so that musl reads it too; see the musl-long-search-line case.
	var many, kept []string
	for i := 1; i <= 35; i++ {
		many = append(many, fmt.Sprintf("h%02d.x", i))
	}
	kept = append([]string{nsSvc, svc, clusterDomain}, many[:29]...)

	// (d) a 254-character node search entry: kubelet drops entries over 253.
	long := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 62)

	// A search line kubelet keeps (well under 2048 characters) but that is
	// longer than the 255 bytes musl reads per line.
	var wide []string
	for i := 1; i <= 5; i++ {
		wide = append(wide, fmt.Sprintf("team-%d.a-rather-long-department-name.corp.example", i))
	}
	wideSearch := append([]string{nsSvc, svc, clusterDomain}, wide...)

	// The edge of musl's line buffer: "search " and the cluster domains are
	// 64 bytes; two node domains of 94 characters make a line of 254 bytes
	// and a newline, which musl reads; one more character and it skips it.
	edge := func(extra int) []string {
		return []string{strings.Repeat("a", 60) + "." + strings.Repeat("b", 25) + ".example",
			strings.Repeat("c", 60+extra) + "." + strings.Repeat("d", 25) + ".example"}
	}
	lineOf := func(node []string) string {
		return "search " + strings.Join(append([]string{nsSvc, svc, clusterDomain}, node...), " ") + "\n"
	}

	return []resolverCase{
		{
			// (a) The default: a ClusterFirst pod, ndots:5, three cluster
			// search domains and the node's. An external name walks the
			// whole list before it is asked as it is: 5 names × A/AAAA.
			name:     "ClusterFirst_external_name_walks_search_list",
			node:     node(nodeConf),
			pod:      pod(corev1.DNSClusterFirst, nil),
			wantConf: defaultConf,
			lookups: []lookupCase{
				both("api.example.com", found("api.example.com", externalIP, walk("api.example.com", defaultSearch...)...)),
				both("nothing.example.org", notFound(walk("nothing.example.org", defaultSearch...)...)),
			},
		},
		{
			// (a) DESIGN.md's figure: a node without search domains, so an
			// external name costs 4 names × A/AAAA = 8 queries.
			name:     "ClusterFirst_external_name_costs_8_queries",
			node:     node("nameserver 127.0.0.1\n"),
			pod:      pod(corev1.DNSClusterFirst, nil),
			wantConf: "search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 127.0.0.53\noptions ndots:5\n",
			lookups: []lookupCase{
				both("api.example.com", found("api.example.com", externalIP, walk("api.example.com", nsSvc, svc, clusterDomain)...)),
			},
		},
		{
			// (b) Short names resolve on the first expansion that exists.
			name:     "ClusterFirst_short_name_first_expansion",
			node:     node(nodeConf),
			pod:      pod(corev1.DNSClusterFirst, nil),
			wantConf: defaultConf,
			lookups: []lookupCase{
				both("web", found(webService[:len(webService)-1], webIP, webService)),
				both("web.default", found(webService[:len(webService)-1], webIP, "web.default."+nsSvc+".", webService)),
			},
		},
		{
			// (c) dnsConfig ndots:1: a name with a dot is asked as it is
			// first. glibc falls back to the search list when that fails;
			// musl never searches a name with ndots or more dots.
			name: "ClusterFirst_ndots1_absolute_first",
			node: node(nodeConf),
			pod: pod(corev1.DNSClusterFirst, &corev1.PodDNSConfig{
				Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: strp("1")}},
			}),
			wantConf: "search default.svc.cluster.local svc.cluster.local cluster.local corp.example\nnameserver 127.0.0.53\noptions ndots:1\n",
			lookups: []lookupCase{
				both("api.example.com", found("api.example.com", externalIP, "api.example.com.")),
				both("web", found(webService[:len(webService)-1], webIP, webService)),
				{
					name: "nothing.example.org",
					glibc: notFound(append([]string{"nothing.example.org."},
						walk("nothing.example.org", defaultSearch...)[:len(defaultSearch)]...)...),
					musl: notFound("nothing.example.org."),
				},
			},
		},
		{
			// (d) More than 32 search domains: the resolvers walk exactly
			// the 32 kubelet keeps, whatever the node's file said.
			name:     "search_list_cut_to_32_entries",
			node:     node("search " + strings.Join(many, " ") + "\nnameserver 127.0.0.1\n"),
			pod:      pod(corev1.DNSClusterFirst, nil),
			wantConf: "search " + strings.Join(kept, " ") + "\nnameserver 127.0.0.53\noptions ndots:5\n",
			wantCut:  true,
			lookups: []lookupCase{
				both("api.example.com", found("api.example.com", externalIP, walk("api.example.com", kept...)...)),
			},
		},
		{
			// (d) A node search entry over 253 characters is dropped by
			// kubelet; the resolvers walk the entries around it.
			name:     "search_list_overlong_entry_dropped",
			node:     node("search corp.example " + long + " lab.example\nnameserver 127.0.0.1\n"),
			pod:      pod(corev1.DNSClusterFirst, nil),
			wantConf: "search default.svc.cluster.local svc.cluster.local cluster.local corp.example lab.example\nnameserver 127.0.0.53\noptions ndots:5\n",
			wantCut:  true,
			lookups: []lookupCase{
				both("api.example.com", found("api.example.com", externalIP,
					walk("api.example.com", nsSvc, svc, clusterDomain, "corp.example", "lab.example")...)),
			},
		},
		{
			// A None pod with a complete dnsConfig (the node-local-cache
			// set-up): only the pod's own fields count.
			name: "None_pod_dnsConfig_only",
			node: node(nodeConf),
			pod: pod(corev1.DNSNone, &corev1.PodDNSConfig{
				Nameservers: []string{serverIP},
				Searches:    []string{svc},
				Options:     []corev1.PodDNSConfigOption{{Name: "ndots", Value: strp("2")}},
			}),
			wantConf: "search svc.cluster.local\nnameserver 127.0.0.53\noptions ndots:2\n",
			lookups: []lookupCase{
				both("web.default", found(webService[:len(webService)-1], webIP, webService)),
				both("api.example.com", found("api.example.com", externalIP, "api.example.com.")),
			},
		},
		{
			// A name that exists without addresses (NODATA) ends musl's
			// walk; glibc walks on. (This server sets RA: glibc takes a
			// NOERROR reply with no records and neither AA nor RA for a
			// referral and resends the query.)
			name:     "NODATA_glibc_walks_on_musl_stops",
			node:     node(nodeConf),
			pod:      pod(corev1.DNSClusterFirst, nil),
			wantConf: defaultConf,
			lookups: []lookupCase{
				{
					name:  "nodata.example.com",
					glibc: notFound(walk("nodata.example.com", defaultSearch...)...),
					musl:  notFound(walk("nodata.example.com", defaultSearch...)...),
				},
				{
					name:  "gap.example",
					glibc: found("gap.example", gapIP, walk("gap.example", defaultSearch...)...),
					musl:  notFound(walk("gap.example", defaultSearch...)[:4]...),
				},
			},
		},
		{
			// A search line kubelet keeps but musl cannot read: musl reads
			// resolv.conf in 256-byte lines and skips a longer line whole,
			// so a musl pod has no search list at all: short names fail.
			// glibc walks the whole list.
			name:         "musl_ignores_search_line_over_255_bytes",
			node:         node("search " + strings.Join(wide, " ") + "\nnameserver 127.0.0.1\n"),
			pod:          pod(corev1.DNSClusterFirst, nil),
			wantConf:     "search " + strings.Join(wideSearch, " ") + "\nnameserver 127.0.0.53\noptions ndots:5\n",
			wantMuslNote: true,
			lookups: []lookupCase{
				{
					name:  "web",
					glibc: found(webService[:len(webService)-1], webIP, webService),
					musl:  notFound("web."),
				},
				{
					name:  "api.example.com",
					glibc: found("api.example.com", externalIP, walk("api.example.com", wideSearch...)...),
					musl:  found("api.example.com", externalIP, "api.example.com."),
				},
			},
		},
		{
			// 255 bytes with the newline: musl still reads the line.
			name:     "musl_reads_search_line_of_255_bytes",
			node:     node("search " + strings.Join(edge(0), " ") + "\nnameserver 127.0.0.1\n"),
			pod:      pod(corev1.DNSClusterFirst, nil),
			wantConf: lineOf(edge(0)) + "nameserver 127.0.0.53\noptions ndots:5\n",
			lookups: []lookupCase{
				both("web", found(webService[:len(webService)-1], webIP, webService)),
			},
		},
		{
			// 256 bytes with the newline: musl skips it, as ClientNotes says.
			name:         "musl_skips_search_line_of_256_bytes",
			node:         node("search " + strings.Join(edge(1), " ") + "\nnameserver 127.0.0.1\n"),
			pod:          pod(corev1.DNSClusterFirst, nil),
			wantConf:     lineOf(edge(1)) + "nameserver 127.0.0.53\noptions ndots:5\n",
			wantMuslNote: true,
			lookups: []lookupCase{
				{
					name:  "web",
					glibc: found(webService[:len(webService)-1], webIP, webService),
					musl:  notFound("web."),
				},
			},
		},
	}
}

// checkRun compares one client run with what was predicted.
func checkRun(t *testing.T, name string, w want, r clientRun) {
	t.Helper()
	label := fmt.Sprintf("%s lookup of %q", r.Client, name)
	t.Logf("%s: exit %d, %d queries:\n\t%s\n  output:\n\t%s", label, r.ExitCode, len(r.Queries),
		strings.Join(queryStrings(r.Queries), "\n\t"), strings.ReplaceAll(strings.TrimSpace(r.Stdout), "\n", "\n\t"))

	for _, q := range r.Queries {
		if q.Proto != "udp" {
			t.Errorf("%s: query %s over %s, want udp only", label, q.Name, q.Proto)
		}
	}
	names, types := groupQueries(r.Queries)
	if !slices.Equal(names, w.names) {
		t.Errorf("%s asked for names\n\t%s\nwant\n\t%s", label, strings.Join(names, "\n\t"), strings.Join(w.names, "\n\t"))
	}
	for i, ts := range types {
		if !slices.Equal(ts, []string{"A", "AAAA"}) {
			t.Errorf("%s asked for %s with types %v, want A and AAAA once each", label, names[i], ts)
		}
	}

	canon, addrs, err := parseOutput(r)
	switch {
	case err != nil:
		t.Errorf("%s: %v (stdout %q, stderr %q)", label, err, r.Stdout, r.Stderr)
	case w.addrs == nil:
		if r.ExitCode != 2 {
			t.Errorf("%s: exit status %d, want 2 (not found); stdout %q stderr %q", label, r.ExitCode, r.Stdout, r.Stderr)
		}
	default:
		if r.ExitCode != 0 {
			t.Errorf("%s: exit status %d, want 0; stdout %q stderr %q", label, r.ExitCode, r.Stdout, r.Stderr)
		}
		if canon != w.canon || !slices.Equal(addrs, w.addrs) {
			t.Errorf("%s returned canonical name %q, addresses %q; want %q, %q", label, canon, addrs, w.canon, w.addrs)
		}
	}
}

func queryStrings(qs []query) []string {
	out := make([]string, len(qs))
	for i, q := range qs {
		out[i] = q.String()
	}
	return out
}

// groupQueries folds runs of questions for the same name into one name and
// the sorted types asked for it. A name asked again later, after another
// name, shows as a second entry.
func groupQueries(qs []query) (names []string, types [][]string) {
	for _, q := range qs {
		if n := len(names); n > 0 && names[n-1] == q.Name {
			types[n-1] = append(types[n-1], q.Type)
			continue
		}
		names = append(names, q.Name)
		types = append(types, []string{q.Type})
	}
	for _, ts := range types {
		slices.Sort(ts)
	}
	return names, types
}

// parseOutput reads a client's output: the canonical name and the distinct
// addresses in order. getent ahosts prints "ADDR STREAM CANON" first, then a
// line per address and socket type; gai prints "canon NAME" and "addr ADDR".
func parseOutput(r clientRun) (canon string, addrs []string, err error) {
	if r.ExitCode != 0 {
		return "", nil, nil
	}
	for line := range strings.SplitSeq(strings.TrimSpace(r.Stdout), "\n") {
		f := strings.Fields(line)
		switch {
		case r.Client == "musl" && len(f) == 2 && f[0] == "canon":
			canon = f[1]
		case r.Client == "musl" && len(f) == 2 && f[0] == "addr":
			addrs = append(addrs, f[1])
		case r.Client == "glibc" && len(f) >= 2:
			if canon == "" && len(f) >= 3 {
				canon = f[2]
			}
			if !slices.Contains(addrs, f[0]) {
				addrs = append(addrs, f[0])
			}
		default:
			return "", nil, fmt.Errorf("unexpected output line %q", line)
		}
	}
	return canon, addrs, nil
}

// namespaceTools are the programs the stub-resolver tests run.
type namespaceTools struct {
	unshare, mount, ip, getent, muslGCC string
	gai                                 string // the musl client, built by the test
}

// requireNamespaceTools applies the prerequisite rule (fail with CI=true,
// skip otherwise) to root, the programs, and namespaces actually working.
func requireNamespaceTools(t *testing.T) namespaceTools {
	t.Helper()
	testenv.RequireRoot(t)
	p := testenv.RequireCommand(t, "unshare", "mount", "ip", "getent", "musl-gcc")
	tools := namespaceTools{unshare: p[0], mount: p[1], ip: p[2], getent: p[3], muslGCC: p[4]}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, tools.unshare, "--net", "--mount", "--propagation", "private", "--", "true").CombinedOutput()
	testenv.RequireOrSkip(t, fmt.Sprintf("private network and mount namespaces (`unshare --net --mount` failed: %v %s); run as root on a kernel or sandbox that allows them", err, bytes.TrimSpace(out)), err == nil)
	return tools
}

// buildMuslClient compiles testdata/gai.c statically against musl.
func buildMuslClient(t *testing.T, muslGCC string) string {
	t.Helper()
	src, err := filepath.Abs(filepath.Join("testdata", "gai.c"))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "gai")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, muslGCC, "-static", "-O2", "-Wall", "-Werror", "-o", bin, src).CombinedOutput()
	if err != nil {
		t.Fatalf("musl-gcc -static %s: %v\n%s", src, err, out)
	}
	return bin
}

// childTimeout bounds one namespace child, all its clients included.
const childTimeout = 3 * time.Minute

// runInNamespace runs lookups inside a fresh private network and mount
// namespace whose /etc/resolv.conf is conf, and returns what the child saw.
// The namespaces die with the child; the host's files are checked untouched.
func runInNamespace(t *testing.T, tools namespaceTools, conf string, lookups []childLookup) childResult {
	t.Helper()
	dir := t.TempDir()
	write := func(name, content string) string { return testenv.WriteFile(t, dir, name, content) }
	hostNet, hostMnt := hostNamespaces(t)
	if _, err := os.Stat("/etc/resolv.conf"); err != nil {
		t.Fatalf("/etc/resolv.conf must exist to be bind-mounted over in the namespace: %v", err)
	}

	// The resolv.conf under test, and fixed hosts and nsswitch files so that
	// the machine's own (a "resolve" or "mdns" hosts source, extra host
	// names) cannot change what glibc or musl do.
	mounts := []bindMount{{Source: write("resolv.conf", conf), Target: "/etc/resolv.conf"}}
	for target, content := range map[string]string{
		"/etc/hosts":         "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n",
		"/etc/nsswitch.conf": "hosts: files dns\n",
	} {
		if _, err := os.Stat(target); err == nil {
			mounts = append(mounts, bindMount{Source: write(filepath.Base(target), content), Target: target})
		}
	}
	slices.SortFunc(mounts, func(a, b bindMount) int { return strings.Compare(a.Target, b.Target) })

	spec := childSpec{
		HostNetNS: hostNet, HostMntNS: hostMnt,
		Mounts:         mounts,
		WantResolvConf: conf,
		IP:             tools.ip, Mount: tools.mount,
		Lookups:  lookups,
		Deadline: time.Now().Add(childTimeout - 10*time.Second),
		Out:      filepath.Join(dir, "result.json"),
	}
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	specPath := write("spec.json", string(data))

	// The child is TestMain's runChild (childEnv), not a test.
	reexecInNamespaces(t, tools.unshare, "namespace child", childEnv, specPath, childTimeout)
	data, err = os.ReadFile(spec.Out)
	if err != nil {
		t.Fatalf("namespace child wrote no result: %v", err)
	}
	var res childResult
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	t.Logf("namespace child ran in %s, %s", res.NetNS, res.MntNS)
	return res
}

// readEtc returns the host's files the child mounts over, to check that they
// are the same after the child as before.
func readEtc(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, p := range []string{"/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf"} {
		data, err := os.ReadFile(p)
		fmt.Fprintf(&b, "%s: %q %v\n", p, data, err)
	}
	return b.String()
}
