package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/poddns/poddns/internal/benchresults"
	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/serve/dnstest"
)

// Environment of the benchmark. OutEnv gates it: `go test ./...` skips it.
const (
	OutEnv         = "PODDNS_BENCH_OUT"          // results JSON path (required)
	ScaleEnv       = "PODDNS_BENCH_SCALE"        // tiny|small|default|large, comma-separated (default: default)
	SecondsEnv     = "PODDNS_BENCH_SECONDS"      // one saturation run (default 8)
	LoadSecondsEnv = "PODDNS_BENCH_LOAD_SECONDS" // fixed-rate load per server, split over the scenarios (default 60)
	RoundsEnv      = "PODDNS_BENCH_ROUNDS"       // A B A B rounds (default 3)
	childEnv       = "PODDNS_BENCH_NETNS_CHILD"  // set for the re-executed test inside its network namespace
)

// Addresses inside the benchmark's private network namespace (on its lo).
// Each server listens on port 53 of its own address, since a pod's
// resolv.conf cannot name a port.
const (
	ipDnsd     = "192.0.2.1"
	ipCoreDNS  = "192.0.2.2"
	ipAutopath = "192.0.2.3"
	ipUnbound  = "192.0.2.4"
	ipTrivial  = "192.0.2.5"
	ipDnsdLog  = "192.0.2.6" // dnsd with the query log on, to a file
	ipUpstream = "192.0.2.10"
	walkerIP   = "10.63.255.1" // the search-walk Pod (outside the fill's Pod range)
	walkerNS   = "ns-0"
)

type tools struct {
	dnsperf, taskset, ip, nsenter, unshare, mount, sh, sleep, unbound, coredns, nft string
	dnsd, gai                                                                       string // built by the parent
	// profiles is the path prefix of dnsd's pprof profiles (the results
	// file without .json).
	profiles string
}

// The results file (bench/README.md describes the schema).
type results struct {
	Kind     string            `json:"kind"`
	Started  string            `json:"started"`
	Machine  machine           `json:"machine"`
	Versions map[string]string `json:"versions"`
	Scales   []scaleResult     `json:"scales"`
}

type machine struct {
	CPUs   int    `json:"cpus"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
}

type scaleResult struct {
	Name     string `json:"name"`
	Services int    `json:"services"`
	Headless int    `json:"headless"`
	Pods     int    `json:"pods"`
	fillStats
	// LoadAvg is the machine's load average (/proc/loadavg: 1, 5, 15
	// minutes) when the scale's runs ended.
	LoadAvg string                    `json:"loadavg,omitempty"`
	Results []*benchresults.DNSResult `json:"results"`
	Ratios  map[string]*float64       `json:"ratios"`
	// Profiles are dnsd's pprof profiles of this scale (file names beside
	// the results file): "heap" after the load, "cpu" during a saturation
	// run of each scenario named cpu-<scenario>.
	Profiles map[string]string `json:"profiles,omitempty"`
	// QueryLogFileLines is the number of lines in dnsd-querylog's log file
	// at the end of the saturation runs; QueryLogFileMB its size.
	QueryLogFileLines *float64 `json:"querylog_file_lines,omitempty"`
	QueryLogFileMB    *float64 `json:"querylog_file_mb,omitempty"`
	// NodeLocalPods are the Pods of the node-local dnsd's node.
	NodeLocalPods int `json:"nodelocal_pods,omitempty"`
	// APIWatchers is the API server's cost with 0, 10, 20 node-local
	// instances, and watcherCost (its fields inline) its CPU per instance
	// and per watch event.
	APIWatchers []benchresults.WatcherLevel `json:"api_watchers,omitempty"`
	watcherCost
}

func envInt(t *testing.T, name string, def, lo, hi int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		t.Fatalf("%s=%q: want an integer in [%d, %d]", name, v, lo, hi)
	}
	return n
}

// TestBenchDNS is `make bench-dns` (and the DNS part of `make bench`); see
// bench/README.md. The test re-executes itself inside a private network
// namespace (unshare --net), where every server, the API server and the
// load generators run on addresses of that namespace only.
func TestBenchDNS(t *testing.T) {
	out := os.Getenv(OutEnv)
	if out == "" {
		t.Skipf("a benchmark, not a test: run `make bench` or `make bench-dns` (sets %s)", OutEnv)
	}
	if os.Getenv(childEnv) != "" {
		benchChild(t, out)
		return
	}
	testenv.RequireRoot(t)
	if runtime.NumCPU() < 2 {
		t.Fatalf("need 2 CPUs (servers on CPU 0, load generators on CPU 1), have %d", runtime.NumCPU())
	}
	testenv.RequireCommand(t, "dnsperf", "taskset", "ip", "nsenter", "unshare", "mount", "sh", "sleep", "unbound", "gcc", "go", "nft")
	if _, err := testenv.AssetsDir(); err != nil {
		testenv.RequireOrSkip(t, fmt.Sprintf("the envtest binaries (%v); %s", err, testenv.FixHint), false)
	}
	root := testenv.Root(t)
	core := filepath.Join(root, "bin", "coredns")
	if _, err := os.Stat(core); err != nil {
		testenv.RequireOrSkip(t, fmt.Sprintf("CoreDNS at %s (%v); run `make coredns`", core, err), false)
	}
	// Build outside the namespace (the module cache may need the network).
	dir := t.TempDir()
	dnsd := filepath.Join(dir, "dnsd")
	if b, err := exec.Command("go", "build", "-C", root, "-o", dnsd, "./cmd/dnsd").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/dnsd: %v\n%s", err, b)
	}
	gai := filepath.Join(dir, "gai_loop")
	if b, err := exec.Command("gcc", "-O2", "-pthread", "-o", gai, filepath.Join(root, "test", "bench", "testdata", "gai_loop.c")).CombinedOutput(); err != nil {
		t.Fatalf("gcc gai_loop.c: %v\n%s", err, b)
	}
	hostNet, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dl, ok := t.Deadline()
	timeout := 2 * time.Hour
	if ok {
		timeout = time.Until(dl) - 30*time.Second
	}
	cmd := exec.Command("unshare", "--net", "--", exe, "-test.run=^TestBenchDNS$", "-test.v", "-test.count=1", "-test.timeout="+timeout.String())
	cmd.Env = append(os.Environ(), childEnv+"="+strings.Join([]string{hostNet, dnsd, gai, core}, ";"))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		t.Fatalf("the benchmark in its network namespace: %v", err)
	}
}

func benchChild(t *testing.T, outPath string) {
	parts := strings.Split(os.Getenv(childEnv), ";")
	if len(parts) != 4 {
		t.Fatalf("%s malformed", childEnv)
	}
	if ns, _ := os.Readlink("/proc/self/ns/net"); ns == "" || ns == parts[0] {
		t.Fatalf("not in a private network namespace (%q): refusing to add addresses", ns)
	}
	p := testenv.RequireCommand(t, "dnsperf", "taskset", "ip", "nsenter", "unshare", "mount", "sh", "sleep", "unbound", "nft")
	tl := &tools{dnsperf: p[0], taskset: p[1], ip: p[2], nsenter: p[3], unshare: p[4], mount: p[5], sh: p[6], sleep: p[7], unbound: p[8], nft: p[9],
		dnsd: parts[1], gai: parts[2], coredns: parts[3], profiles: strings.TrimSuffix(outPath, ".json")}
	must(t, tl.ip, "link", "set", "lo", "up")
	// kube-apiserver wants a default route to pick its advertise address:
	// a veth pair inside the namespace gives it one (198.18.0.0/15 is the
	// benchmarking range; what is routed there goes nowhere).
	must(t, tl.ip, "link", "add", "bdef0", "type", "veth", "peer", "name", "bdef1")
	must(t, tl.ip, "addr", "add", "198.18.0.1/32", "dev", "bdef0")
	must(t, tl.ip, "link", "set", "bdef0", "up")
	must(t, tl.ip, "link", "set", "bdef1", "up")
	must(t, tl.ip, "route", "add", "default", "dev", "bdef0")
	for _, a := range []string{ipDnsd, ipCoreDNS, ipAutopath, ipUnbound, ipTrivial, ipDnsdLog, ipUpstream} {
		must(t, tl.ip, "addr", "add", a+"/32", "dev", "lo")
	}

	names := strings.Split(os.Getenv(ScaleEnv), ",")
	if os.Getenv(ScaleEnv) == "" {
		names = []string{"default"}
	}
	res := results{Kind: "dns", Started: time.Now().UTC().Format(time.RFC3339),
		Machine:  machine{CPUs: runtime.NumCPU(), Kernel: kernel(), Go: runtime.Version()},
		Versions: versions(t, tl)}
	for _, n := range names {
		sc, ok := scales[strings.TrimSpace(n)]
		if !ok {
			t.Fatalf("%s=%q: unknown scale %q (tiny, small, default, large)", ScaleEnv, os.Getenv(ScaleEnv), n)
		}
		t.Run(sc.Name, func(t *testing.T) { res.Scales = append(res.Scales, runScale(t, tl, sc)) })
		if t.Failed() {
			return
		}
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(outPath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(outPath, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("results in %s", outPath)
}

func must(t *testing.T, name string, args ...string) {
	t.Helper()
	if b, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, b)
	}
}

func kernel() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}

func versions(t *testing.T, tl *tools) map[string]string {
	v := map[string]string{}
	root, _ := testenv.RepoRoot()
	if b, err := exec.Command("git", "-C", root, "rev-parse", "--short=12", "HEAD").Output(); err == nil {
		sha := strings.TrimSpace(string(b))
		if st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
			sha += "-dirty"
		}
		v["dnsd"] = sha
	}
	if b, err := exec.Command(tl.coredns, "-version").Output(); err == nil {
		for l := range strings.SplitSeq(string(b), "\n") {
			if s, ok := strings.CutPrefix(strings.TrimSpace(l), "CoreDNS-"); ok {
				v["coredns"] = "v" + s
			}
		}
	}
	if b, err := exec.Command(tl.unbound, "-V").Output(); err == nil {
		l, _, _ := strings.Cut(string(b), "\n")
		v["unbound"] = strings.TrimSpace(strings.TrimPrefix(l, "Version "))
	}
	v["dnsperf"] = "dnsperf"
	if b, err := exec.Command(tl.dnsperf, "-h").CombinedOutput(); err == nil {
		for l := range strings.SplitSeq(string(b), "\n") {
			if s, ok := strings.CutPrefix(l, "Version "); ok {
				v["dnsperf"] = strings.TrimSpace(s)
			}
		}
	}
	return v
}

// server is one DNS server under test.
type server struct {
	name, ip string
	p        *proc
}

func (s *server) addr() string { return net.JoinHostPort(s.ip, "53") }

// freeLoopback is a loopback address whose TCP port was free a moment ago.
func freeLoopback(t *testing.T) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreeTCPPort(t)))
}

// stockCorefile is the stock Kubernetes Corefile (coredns.yaml.base) bound
// to ip:53, with forward pointed at the test upstream instead of
// /etc/resolv.conf; podsMode is "insecure" as shipped, or "verified" with
// autopath @kubernetes for the completion comparison.
func stockCorefile(ip, health, ready, metrics, kubeconfig string, autopath bool) string {
	pods, ap := "insecure", ""
	if autopath {
		pods, ap = "verified", "\n    autopath @kubernetes"
	}
	return fmt.Sprintf(`.:53 {
    bind %s
    errors
    health %s {
        lameduck 5s
    }
    ready %s
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig %s
        pods %s
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }%s
    prometheus %s
    forward . %s {
        max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
`, ip, health, ready, kubeconfig, pods, ap, metrics, ipUpstream)
}

func runScale(t *testing.T, tl *tools, sc scale) scaleResult {
	scaleStart := time.Now()
	seconds := envInt(t, SecondsEnv, 8, 1, 120)
	loadSeconds := envInt(t, LoadSecondsEnv, 60, 3, 600)
	rounds := envInt(t, RoundsEnv, 3, 1, 9)
	dir := t.TempDir()

	env, cs, certDir, etcdDir := startControlPlane(t)
	fillCPU := fillCPUStart(t, certDir, etcdDir)
	fl, fst := fill(t, cs, sc)
	fst.CPUSeconds = fillCPU()
	logFillCPU(t, fst)
	if err := createPod(t.Context(), cs, walkerNS, "bench-walker", walkerIP, nodeLocalNode); err != nil {
		t.Fatal(err)
	}
	kc := env.AdminKubeconfig(t, "bench")
	startUpstream(t, net.JoinHostPort(ipUpstream, "53"))

	// dnsd, as deployed but with completion on (node profile) and forward
	// to the test upstream; pods "insecure" (the default). dnsdConfig
	// writes the configuration file name of one on ip:53, with health and
	// metrics on health, and extra.
	prof := testenv.WriteFile(t, dir, "profile.yaml", "apiVersion: poddns.io/v1alpha1\nkind: NodeProfile\nclusterDomain: cluster.local\nclusterDNS: ["+ipDnsd+"]\nresolvConfContent: |\n  nameserver "+ipUpstream+"\n")
	dnsdConfig := func(name, ip, health, extra string) string {
		return testenv.WriteFile(t, dir, name, "apiVersion: poddns.io/v1alpha1\nkind: DNSDConfig\n"+
			"listen: \""+ip+":53\"\nudpSockets: 1\nhealthListen: \""+health+"\"\nmetricsListen: \""+health+"\"\nlameduck: 0s\n"+
			"source: {kubeconfig: "+kc+"}\n"+
			"forward: {upstreams: [\""+ipUpstream+"\"], clientNetworks: [\"127.0.0.0/8\", \"192.0.2.0/24\", \"10.0.0.0/8\"]}\n"+
			"completion: {nodeProfile: "+prof+"}\n"+extra)
	}
	dh, dp := freeLoopback(t), freeLoopback(t)
	dcfg := dnsdConfig("dnsd.yaml", ipDnsd, dh, "pprofListen: \""+dp+"\"\n")
	lastSvc := dnsQ(fmt.Sprintf("svc-%d.%s.svc.cluster.local.", sc.Services-1, nsName((sc.Services-1)%sc.Namespaces)), dns.TypeA)
	answered := func(m *dns.Msg) bool { return m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0 }

	// Both run with the environment deploy/ gives dnsd (GOGC 50, the
	// soft memory limit from the container's).
	centralEnv := deployedCentralEnv(t)
	dnsdS := &server{name: "dnsd", ip: ipDnsd}
	dnsdS.p = startProcess(t, "dnsd", centralEnv, tl.taskset, "-c", "0", tl.dnsd, "--config", dcfg)
	waitHTTP(t, dnsdS.p, "http://"+dh+"/ready", 5*time.Minute)
	// The same dnsd with every query logged to a file on disk (the
	// directory of the results file: not a tmpfs), for the query log's cost.
	qlh := freeLoopback(t)
	qlDir, err := os.MkdirTemp(filepath.Dir(tl.profiles), ".querylog-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(qlDir) })
	qlFile := filepath.Join(qlDir, "queries.jsonl")
	qlcfg := dnsdConfig("dnsd-querylog.yaml", ipDnsdLog, qlh, "queryLog: {enabled: true, output: "+qlFile+"}\n")
	dnsdLog := &server{name: "dnsd-querylog", ip: ipDnsdLog}
	dnsdLog.p = startProcess(t, "dnsd-querylog", centralEnv, tl.taskset, "-c", "0", tl.dnsd, "--config", qlcfg)
	waitHTTP(t, dnsdLog.p, "http://"+qlh+"/ready", 5*time.Minute)

	startCore := func(name, ip string, autopath bool) *server {
		h, r, m := freeLoopback(t), freeLoopback(t), freeLoopback(t)
		cf := testenv.WriteFile(t, dir, name+".Corefile", stockCorefile(ip, h, r, m, kc, autopath))
		s := &server{name: name, ip: ip}
		s.p = startProcess(t, name, nil, tl.taskset, "-c", "0", tl.coredns, "-conf", cf)
		waitHTTP(t, s.p, "http://"+r+"/ready", 5*time.Minute)
		return s
	}
	core := startCore("coredns", ipCoreDNS, false)
	autop := startCore("coredns-autopath", ipAutopath, true)
	dep := deployedNodeLocal(t)
	nlp := freeLoopback(t)
	nl := startNodeLocal(t, tl, dep, dir, kc, nlp)
	ucfg := testenv.WriteFile(t, dir, "unbound.conf", unboundConf(dir)+unboundClusterData(sc, fl))
	unb := &server{name: "unbound", ip: ipUnbound}
	unb.p = startProcess(t, "unbound", nil, tl.taskset, "-c", "0", tl.unbound, "-d", "-p", "-c", ucfg)
	exe, _ := os.Executable()
	triv := &server{name: "trivial", ip: ipTrivial}
	triv.p = startProcess(t, "trivial", []string{trivialEnv + "=" + net.JoinHostPort(ipTrivial, "53")}, tl.taskset, "-c", "0", exe)
	for _, s := range []*server{dnsdS, dnsdLog, core, autop, nl} {
		if _, err := waitDNS(s.addr(), lastSvc, answered, 2*time.Minute); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
	if _, err := waitDNS(unb.addr(), dnsQ("host-0.example.com.", dns.TypeA), answered, 30*time.Second); err != nil {
		t.Fatalf("unbound: %v", err)
	}
	if _, err := waitDNS(triv.addr(), dnsQ("host-0.example.com.", dns.TypeA), func(m *dns.Msg) bool { return m.Rcode == dns.RcodeSuccess }, 30*time.Second); err != nil {
		t.Fatalf("trivial: %v", err)
	}
	time.Sleep(3 * time.Second) // let the initial lists settle before reading RSS
	rows := map[string]*benchresults.DNSResult{}
	row := func(server, scenario string) *benchresults.DNSResult {
		k := server + "/" + scenario
		if rows[k] == nil {
			rows[k] = &benchresults.DNSResult{Server: server, Scenario: scenario}
		}
		return rows[k]
	}
	// Server-wide figures go on one row per server (bench/README.md).
	home := map[string]*benchresults.DNSResult{
		"dnsd": row("dnsd", "cluster"), "coredns": row("coredns", "cluster"),
		"coredns-autopath": row("coredns-autopath", "search-walk"), "unbound": row("unbound", "external-cached"),
		"dnsd-querylog": row("dnsd-querylog", "cluster"), "dnsd-nodelocal": row("dnsd-nodelocal", "cluster"),
	}
	for _, s := range []*server{dnsdS, dnsdLog, core, autop, unb, nl} {
		rss, _ := procMemKB(s.p.pid())
		home[s.name].RSSAfterFill = mb(rss)
		t.Logf("%s RSS after fill: %d KiB", s.name, rss)
	}
	logMemory(t, "dnsd after fill", dnsdS.p.pid(), dp)
	logMemory(t, "dnsd-nodelocal after fill", nl.p.pid(), nlp)

	// Query files.
	qf := map[string]string{}
	var cl, ext, neg []string
	for i := range sc.Services {
		n := fmt.Sprintf("svc-%d.%s.svc.cluster.local.", i, nsName(i%sc.Namespaces))
		cl = append(cl, n+" A")
		if i%4 == 0 {
			cl = append(cl, "_http._tcp."+n+" SRV")
			if r, err := dns.ReverseAddr(fl.clusterIPs[i]); err == nil && fl.clusterIPs[i] != "" {
				cl = append(cl, r+" PTR")
			}
		}
		if i < 20000 {
			neg = append(neg, fmt.Sprintf("nosuch-%d.%s.svc.cluster.local. A", i, nsName(i%sc.Namespaces)))
			if i%4 == 0 {
				neg = append(neg, fmt.Sprintf("svc-%d.nosuch-ns-%d.svc.cluster.local. A", i, i%97))
			}
		}
	}
	for i := range sc.Headless {
		cl = append(cl, fmt.Sprintf("hl-%d.%s.svc.cluster.local. A", i, nsName(i%sc.Namespaces)))
	}
	for i := range 1000 {
		ext = append(ext, fmt.Sprintf("host-%d.example.com. A", i))
		if i%2 == 0 {
			ext = append(ext, fmt.Sprintf("host-%d.example.com. AAAA", i))
		}
	}
	qf["cluster"] = testenv.WriteFile(t, dir, "cluster.txt", strings.Join(cl, "\n")+"\n")
	qf["external-cached"] = testenv.WriteFile(t, dir, "external.txt", strings.Join(ext, "\n")+"\n")
	qf["negative"] = testenv.WriteFile(t, dir, "negative.txt", strings.Join(neg, "\n")+"\n")
	qf["ceiling"] = qf["external-cached"]
	t.Logf("query files: cluster %d lines, external-cached %d, negative %d", len(cl), len(ext), len(neg))

	type scen struct {
		name    string
		servers []*server
	}
	scens := []scen{
		{"ceiling", []*server{triv}},
		{"cluster", []*server{dnsdS, dnsdLog, core, autop, unb, nl}},
		{"external-cached", []*server{dnsdS, dnsdLog, core, autop, unb, nl}},
		{"negative", []*server{dnsdS, dnsdLog, core, autop, unb}},
	}
	warm := func(s *server, sn string) {
		if sn == "external-cached" {
			runDnsperf(t, tl, s.ip, qf[sn], 30, 0, false, 1)
		}
	}
	// Saturation: A B A B, rounds times.
	roundQPS := map[string][]float64{} // server/scenario -> per round
	cpu := map[string][]float64{}      // server/scenario -> CPU seconds, answers, per round
	for r := range rounds {
		for _, sn := range scens {
			for _, s := range sn.servers {
				warm(s, sn.name)
				var before queryLogCounts
				if s == dnsdLog {
					before = readQueryLogCounts(t, qlh, queryLogCounts{})
				}
				cpu0 := procCPUSeconds(s.p.pid())
				pr := runDnsperf(t, tl, s.ip, qf[sn.name], seconds, 0, false, 0)
				if s == dnsdS || s == dnsdLog {
					// Summed over the rounds as CPU seconds and answers,
					// divided below.
					cpu[s.name+"/"+sn.name] = append(cpu[s.name+"/"+sn.name], procCPUSeconds(s.p.pid())-cpu0, float64(pr.completed))
				}
				k := s.name + "/" + sn.name
				roundQPS[k] = append(roundQPS[k], round(pr.qps, 0))
				t.Logf("round %d %-16s %-8s %8.0f QPS (sent %d, lost %d)", r+1, sn.name, s.name, pr.qps, pr.sent, pr.lost)
				if s == dnsdLog {
					d := readQueryLogCounts(t, qlh, before).minus(before)
					rw := row(s.name, sn.name)
					rw.QueryLogRequests = addTo(rw.QueryLogRequests, d.requests)
					rw.QueryLogLines = addTo(rw.QueryLogLines, d.lines)
					rw.QueryLogDropped = addTo(rw.QueryLogDropped, d.dropped)
					t.Logf("round %d %-16s %-8s query log: %.0f queries, %.0f lines, %.0f dropped", r+1, sn.name, s.name, d.requests, d.lines, d.dropped)
				}
			}
		}
	}
	for _, sn := range scens {
		for _, s := range sn.servers {
			rw := row(s.name, sn.name)
			rw.QPSRounds = roundQPS[s.name+"/"+sn.name]
			rw.QPS = f(median(rw.QPSRounds))
			var secs, answers float64
			for i, v := range cpu[s.name+"/"+sn.name] {
				if i%2 == 0 {
					secs += v
				} else {
					answers += v
				}
			}
			if answers > 0 && secs > 0 {
				rw.CPUPerQueryUS = f(round(secs/answers*1e6, 2))
				t.Logf("%-16s %-13s %.2f µs CPU per query", sn.name, s.name, *rw.CPUPerQueryUS)
			}
		}
	}
	// Where dnsd's time goes at saturation: a CPU profile of one more run
	// of each scenario (not counted in the figures).
	profiles := map[string]string{}
	for _, sn := range scens[1:] {
		warm(dnsdS, sn.name)
		done := make(chan string, 1)
		go func() {
			done <- saveProfile(t, tl, dp, sc.Name, "cpu-"+sn.name, fmt.Sprintf("profile?seconds=%d", seconds))
		}()
		time.Sleep(200 * time.Millisecond) // the profile starts before the load
		runDnsperf(t, tl, dnsdS.ip, qf[sn.name], seconds, 0, false, 0)
		if name := <-done; name != "" {
			profiles["cpu-"+sn.name] = name
		}
	}

	// Latency and CPU per query at a fixed rate below saturation: half the
	// slowest server's median QPS in that scenario, the same rate for every
	// server; each server's load of loadSeconds is split into 3 scenarios
	// and, within a scenario, into rounds run A B A B. The trivial server
	// runs beside them at the same rate (its rate does not count): a Go UDP
	// loop that parses nothing, the floor of what a Go server pays per
	// query here for the runtime's wake-ups and the socket calls.
	per := max(loadSeconds/3, 1)
	perRound := max(per/rounds, 1)
	fixedCPU := map[string][]float64{} // server/scenario -> µs per query, per round
	for _, sn := range scens[1:] {
		low := 0.0
		for _, s := range sn.servers {
			if s == dnsdLog {
				continue // the rate the other servers were measured at before it
			}
			if q := *row(s.name, sn.name).QPS; low == 0 || q < low {
				low = q
			}
		}
		rate := max(int(low/2/1000)*1000, 1000)
		if low < 2000 {
			rate = max(int(low/2), 100)
		}
		lats := map[string][]float64{}
		fixed := append(slices.Clip(sn.servers), triv)
		for r := range rounds {
			for _, s := range fixed {
				warm(s, sn.name)
				cpu0 := procCPUSeconds(s.p.pid())
				pr := runDnsperf(t, tl, s.ip, qf[sn.name], perRound, rate, true, 0)
				secs := procCPUSeconds(s.p.pid()) - cpu0
				k := s.name + "/" + sn.name
				if pr.completed > 0 && secs > 0 {
					fixedCPU[k] = append(fixedCPU[k], round(secs/float64(pr.completed)*1e6, 2))
				}
				lats[s.name] = append(lats[s.name], pr.lat...)
				t.Logf("fixed rate round %d %-16s %-16s at %d QPS for %ds: %d answers, lost %d, %.2f s CPU",
					r+1, sn.name, s.name, rate, perRound, pr.completed, pr.lost, secs)
			}
		}
		for _, s := range fixed {
			lat := lats[s.name]
			sort.Float64s(lat)
			rw := row(s.name, sn.name)
			rw.FixedRateQPS = f(float64(rate))
			rw.P50, rw.P99, rw.P999 = pct(lat, 0.5), pct(lat, 0.99), pct(lat, 0.999)
			if cs := fixedCPU[s.name+"/"+sn.name]; len(cs) > 0 {
				rw.CPUPerQueryFixedRounds = cs
				rw.CPUPerQueryFixedUS = f(round(median(cs), 2))
			}
			t.Logf("fixed rate %-16s %-16s at %d QPS: %d answers, p50 %v p99 %v p99.9 %v ms, CPU µs/query %v (rounds %v)",
				sn.name, s.name, rate, len(lat), deref(rw.P50), deref(rw.P99), deref(rw.P999), deref(rw.CPUPerQueryFixedUS), rw.CPUPerQueryFixedRounds)
		}
	}
	for _, s := range []*server{dnsdS, dnsdLog, core, unb, nl} {
		rss, _ := procMemKB(s.p.pid())
		home[s.name].RSSAfterLoad = mb(rss)
		t.Logf("%s RSS after load: %d KiB", s.name, rss)
	}
	logMemory(t, "dnsd after load", dnsdS.p.pid(), dp)
	logMemory(t, "dnsd-nodelocal after load", nl.p.pid(), nlp)
	// Every line the query log counted is in its file.
	time.Sleep(500 * time.Millisecond) // the writer flushes every 100 ms
	qlEnd := readQueryLogCounts(t, qlh, queryLogCounts{})
	qlData, err := os.ReadFile(qlFile)
	if err != nil {
		t.Fatal(err)
	}
	qlLines := float64(bytes.Count(qlData, []byte("\n")))
	t.Logf("query log file: %.0f lines, %d bytes; poddns_querylog_lines_total %.0f, dropped %.0f", qlLines, len(qlData), qlEnd.lines, qlEnd.dropped)
	if qlLines != qlEnd.lines {
		t.Errorf("the query log file has %.0f lines, poddns_querylog_lines_total says %.0f", qlLines, qlEnd.lines)
	}
	qlMB := round(float64(len(qlData))/(1<<20), 1)
	qlData = nil

	// What dnsd's memory holds after the load (no forced GC: as measured).
	if name := saveProfile(t, tl, dp, sc.Name, "heap", "heap"); name != "" {
		profiles["heap"] = name
	}

	// Search walks as a pod makes them.
	podNS := walkerNamespace(t, tl)
	walk := searchWalk(t, tl, dir, podNS, sc, rounds, seconds, []*server{dnsdS, autop, core, nl})
	for name, qs := range walk {
		rw := row(name, "search-walk")
		rw.QPSRounds = qs
		rw.QPS = f(median(qs))
	}
	rss, _ := procMemKB(autop.p.pid())
	home["coredns-autopath"].RSSAfterLoad = mb(rss)
	rss, _ = procMemKB(nl.p.pid())
	home["dnsd-nodelocal"].RSSAfterLoad = mb(rss) // after the search walks too
	t.Logf("dnsd-nodelocal RSS after load and search walks: %d KiB", rss)
	logMemory(t, "dnsd-nodelocal after load and search walks", nl.p.pid(), nlp)
	// What the node-local dnsd's memory holds then (no forced GC).
	if name := saveProfile(t, tl, nlp, sc.Name, "heap-nodelocal", "heap"); name != "" {
		profiles["heap-nodelocal"] = name
	}

	// A pod's view: through the node-local dnsd, and through kube-proxy's
	// DNAT to the central one.
	view := podView(t, tl, podNS, qf, rounds, seconds, per, row)

	// API write to changed answer.
	watchers := []*server{dnsdS, core, autop, nl}
	lat := map[string][]float64{}
	for k := range 3 {
		name := fmt.Sprintf("probe-%d", k)
		if _, err := cs.CoreV1().Services(walkerNS).Create(t.Context(), &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		d := pollAll(t, watchers, dnsQ(name+"."+walkerNS+".svc.cluster.local.", dns.TypeA), answered, 60*time.Second)
		for n, v := range d {
			lat[n] = append(lat[n], v.Seconds())
		}
		t.Logf("API write to answer %s: %v", name, d)
	}
	for _, s := range watchers {
		home[s.name].APIToAnswerSeconds = f(round(median(lat[s.name]), 4))
	}

	// Peak RSS across an API-server restart.
	for _, s := range watchers {
		if err := resetPeakRSS(s.p.pid()); err != nil {
			t.Logf("resetting the peak RSS of %s: %v (the peak is since its start)", s.name, err)
		}
	}
	restartAPIServer(t, env)
	if _, err := cs.CoreV1().Services(walkerNS).Create(t.Context(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "after-restart"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	d := pollAll(t, watchers, dnsQ("after-restart."+walkerNS+".svc.cluster.local.", dns.TypeA), answered, 3*time.Minute)
	t.Logf("after the API-server restart, a new Service answered after %v", d)
	time.Sleep(5 * time.Second) // relists finishing
	for _, s := range watchers {
		_, hwm := procMemKB(s.p.pid())
		home[s.name].PeakRSSRestart = mb(hwm)
		t.Logf("%s peak RSS across the restart: %d KiB", s.name, hwm)
	}

	// The API server's cost of node-local watchers.
	levels, cost := apiWatchers(t, tl, dep, dir, kc, certDir, cs, sc, watcherLevels(t), rounds, max(seconds*3, 20))

	// Ratios: medians of the per-round ratios dnsd/other.
	ratio := func(scenario, other string) *float64 {
		if scenario == "search-walk" {
			return medianRatio(walk["dnsd"], walk[other])
		}
		return medianRatio(roundQPS["dnsd/"+scenario], roundQPS[other+"/"+scenario])
	}
	ratios := map[string]*float64{
		"cluster_qps":         ratio("cluster", "coredns"),
		"external_cached_qps": ratio("external-cached", "coredns"),
		"negative_qps":        ratio("negative", "coredns"),
		"search_walk":         ratio("search-walk", "coredns-autopath"),
	}
	// The query log's cost: dnsd-querylog / dnsd, per round.
	for _, sn := range []string{"cluster", "external-cached", "negative"} {
		ratios["querylog_"+strings.ReplaceAll(sn, "-", "_")+"_qps"] = medianRatio(roundQPS["dnsd-querylog/"+sn], roundQPS["dnsd/"+sn])
	}
	// CPU per query at the fixed rate: dnsd / each peer, per round.
	for _, sn := range []string{"cluster", "external-cached", "negative"} {
		for _, other := range []string{"coredns", "coredns-autopath", "unbound", "trivial"} {
			ratios["cpu_fixed_"+strings.ReplaceAll(sn, "-", "_")+"_vs_"+strings.ReplaceAll(other, "-", "_")] = medianRatio(fixedCPU["dnsd/"+sn], fixedCPU[other+"/"+sn])
		}
	}
	if a, b := home["dnsd"].RSSAfterLoad, home["coredns"].RSSAfterLoad; a != nil && b != nil {
		ratios["rss_after_load"] = f(round(*a / *b, 3))
	}
	// Node-local: its RSS against the central dnsd's and CoreDNS with
	// autopath (each as completion-on servers), and the pod's view through
	// it against the DNAT to the central dnsd.
	for k, other := range map[string]string{"nodelocal_rss_vs_dnsd": "dnsd", "nodelocal_rss_vs_autopath": "coredns-autopath"} {
		if a, b := home["dnsd-nodelocal"].RSSAfterLoad, home[other].RSSAfterLoad; a != nil && b != nil {
			ratios[k] = f(round(*a / *b, 3))
		}
	}
	for _, sn := range []string{"cluster", "external-cached"} {
		ratios["pod_view_"+strings.ReplaceAll(sn, "-", "_")+"_qps"] = medianRatio(view["dnsd-nodelocal/pod-"+sn], view["dnsd-dnat/pod-"+sn])
	}
	// A ratio without a round on both sides is left out.
	for k, v := range ratios {
		if v == nil {
			delete(ratios, k)
		}
	}
	var list []*benchresults.DNSResult
	for _, k := range []string{"trivial/ceiling",
		"dnsd/cluster", "dnsd-querylog/cluster", "coredns/cluster", "coredns-autopath/cluster", "unbound/cluster",
		"dnsd/external-cached", "dnsd-querylog/external-cached", "coredns/external-cached", "coredns-autopath/external-cached", "unbound/external-cached",
		"dnsd/negative", "dnsd-querylog/negative", "coredns/negative", "coredns-autopath/negative", "unbound/negative",
		"trivial/cluster", "trivial/external-cached", "trivial/negative",
		"dnsd/search-walk", "coredns-autopath/search-walk", "coredns/search-walk",
		"dnsd-nodelocal/cluster", "dnsd-nodelocal/external-cached", "dnsd-nodelocal/search-walk",
		"dnsd-nodelocal/pod-cluster", "dnsd-dnat/pod-cluster", "dnsd-nodelocal/pod-external-cached", "dnsd-dnat/pod-external-cached"} {
		if rows[k] != nil {
			list = append(list, rows[k])
			delete(rows, k)
		}
	}
	// A row the order above does not name yet is kept, after the others.
	for _, k := range slices.Sorted(maps.Keys(rows)) {
		list = append(list, rows[k])
	}
	b, _ := json.Marshal(ratios)
	t.Logf("%s scale done in %s (fill %.0fs; load %s); ratios %s", sc.Name, time.Since(scaleStart).Round(time.Second), fst.Seconds, loadAvg(), b)
	return scaleResult{Name: sc.Name, Services: sc.Services, Headless: sc.Headless, Pods: sc.Pods,
		fillStats: fst, LoadAvg: loadAvg(), Results: list, Ratios: ratios, Profiles: profiles,
		QueryLogFileLines: f(qlLines), QueryLogFileMB: f(qlMB),
		NodeLocalPods: nodeLocalPods(sc), APIWatchers: levels, watcherCost: cost}
}

// queryLogCounts are a dnsd's query and query-log counters.
type queryLogCounts struct{ requests, lines, dropped float64 }

func (c queryLogCounts) minus(o queryLogCounts) queryLogCounts {
	return queryLogCounts{c.requests - o.requests, c.lines - o.lines, c.dropped - o.dropped}
}

// readQueryLogCounts scrapes the counters from the dnsd whose metrics are
// at addr, once the query log has caught up with the queries counted since
// since (lines + dropped reach the queries, or 5 s pass: the writer may
// still hold queued lines right after a run).
func readQueryLogCounts(t *testing.T, addr string, since queryLogCounts) queryLogCounts {
	t.Helper()
	var c queryLogCounts
	for deadline := time.Now().Add(5 * time.Second); ; {
		sums := metricSums(t, addr, "poddns_dns_requests_total", "poddns_querylog_lines_total", "poddns_querylog_dropped_total")
		c = queryLogCounts{sums[0], sums[1], sums[2]}
		d := c.minus(since)
		if d.lines+d.dropped >= d.requests || time.Now().After(deadline) {
			return c
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metricSums are the sums over all series of each named metric at
// http://addr/metrics.
func metricSums(t *testing.T, addr string, names ...string) []float64 {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	sums, err := dnstest.SumMetrics(string(body), names...)
	if err != nil {
		t.Fatal(err)
	}
	return sums
}

// addTo adds v to *p (nil: 0).
func addTo(p *float64, v float64) *float64 {
	if p == nil {
		return f(v)
	}
	return f(*p + v)
}

func deref(p *float64) any {
	if p == nil {
		return "-"
	}
	return *p
}

func dnsQ(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

// pollAll polls every server at once until each answers q as ok wants and
// returns the time each took from the call.
func pollAll(t *testing.T, ss []*server, q *dns.Msg, ok func(*dns.Msg) bool, limit time.Duration) map[string]time.Duration {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	out := map[string]time.Duration{}
	var errs []error
	for _, s := range ss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := waitDNS(s.addr(), q, ok, limit)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
			}
			out[s.name] = d.Round(100 * time.Microsecond)
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return out
}

// restartAPIServer stops kube-apiserver (etcd keeps running) and starts it
// again on the same address with the same certificates.
func restartAPIServer(t *testing.T, env *testenv.Env) {
	t.Helper()
	as := env.Environment.ControlPlane.GetAPIServer()
	t0 := time.Now()
	if err := as.Stop(); err != nil && !strings.Contains(err.Error(), "timeout waiting for process") {
		t.Fatalf("stopping kube-apiserver: %v", err)
	}
	hostPort := as.SecureServing.Address + ":" + as.SecureServing.Port
	for {
		l, err := net.Listen("tcp", hostPort)
		if err == nil {
			l.Close()
			break
		}
		if time.Since(t0) > 30*time.Second {
			t.Fatalf("%s still in use after the stop: %v", hostPort, err)
		}
		time.Sleep(50 * time.Millisecond) // waiting for a stopped process to exit, bounded above
	}
	time.Sleep(2 * time.Second) // a short outage
	if err := as.Start(); err != nil {
		t.Fatalf("restarting kube-apiserver: %v", err)
	}
	t.Logf("kube-apiserver restarted (down %s)", time.Since(t0).Round(time.Millisecond))
}

// unboundConf: unbound on ipUnbound:53, one thread, cache on (defaults),
// forwarding everything to the test upstream, no DNSSEC validation (the
// test zone is unsigned), in the foreground without chroot or privilege drop.
func unboundConf(dir string) string {
	return `server:
    interface: ` + ipUnbound + `
    port: 53
    num-threads: 1
    do-ip6: no
    do-daemonize: no
    chroot: ""
    username: ""
    directory: "` + dir + `"
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 0
    access-control: 0.0.0.0/0 allow
    module-config: "iterator"
    do-not-query-localhost: no
    qname-minimisation: no
    harden-referral-path: no
forward-zone:
    name: "."
    forward-addr: ` + ipUpstream + `@53
`
}

// unboundClusterData is unbound's copy of the cluster names the dnsperf
// scenarios ask, as local-data generated from the fill (the answers dnsd
// gives: Service A, the http port's SRV, the ClusterIP's PTR, a headless
// Service's endpoint A records; TTL 30), with cluster.local a static zone:
// a name not in it is NXDOMAIN with the zone's SOA (the PTRs go to
// unbound's default 10.in-addr.arpa zone). It gives cluster names a C peer;
// unlike dnsd, unbound adds no address records to an SRV answer.
func unboundClusterData(sc scale, fl filled) string {
	var b strings.Builder
	b.WriteString("server:\n    local-zone: \"cluster.local.\" static\n")
	b.WriteString("    local-data: \"cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 30\"\n")
	for i := range sc.Services {
		n := fmt.Sprintf("svc-%d.%s.svc.cluster.local.", i, nsName(i%sc.Namespaces))
		ip := fl.clusterIPs[i]
		if ip == "" {
			continue
		}
		fmt.Fprintf(&b, "    local-data: \"%s 30 IN A %s\"\n", n, ip)
		fmt.Fprintf(&b, "    local-data: \"_http._tcp.%s 30 IN SRV 0 100 80 %s\"\n", n, n)
		fmt.Fprintf(&b, "    local-data-ptr: \"%s 30 %s\"\n", ip, n)
	}
	for i := range sc.Headless {
		n := fmt.Sprintf("hl-%d.%s.svc.cluster.local.", i, nsName(i%sc.Namespaces))
		for k := range 3 {
			fmt.Fprintf(&b, "    local-data: \"%s 30 IN A %s\"\n", n, endpointIP(i, k))
		}
	}
	return b.String()
}

// startUpstream serves the test upstream on addr (UDP and TCP): every
// name under example.com has an A and an AAAA record (TTL 3600);
// everything else is NXDOMAIN. It answers authoritatively.
func startUpstream(t *testing.T, addr string) {
	t.Helper()
	soa, _ := dns.NewRR("example.com. 3600 IN SOA ns.example.com. hostmaster.example.com. 1 7200 1800 86400 300")
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		if len(r.Question) != 1 {
			m.Rcode = dns.RcodeFormatError
			_ = w.WriteMsg(m)
			return
		}
		q := r.Question[0]
		name := strings.ToLower(q.Name)
		switch {
		case dns.IsSubDomain("example.com.", name) && name != "example.com.":
			sum := 0
			for _, c := range name {
				sum += int(c)
			}
			switch q.Qtype {
			case dns.TypeA:
				rr, _ := dns.NewRR(fmt.Sprintf("%s 3600 IN A 198.51.100.%d", q.Name, sum%250+1))
				m.Answer = []dns.RR{rr}
			case dns.TypeAAAA:
				rr, _ := dns.NewRR(fmt.Sprintf("%s 3600 IN AAAA 2001:db8::%x", q.Name, sum%4000+1))
				m.Answer = []dns.RR{rr}
			default:
				m.Ns = []dns.RR{soa}
			}
		default:
			m.Rcode = dns.RcodeNameError
			m.Ns = []dns.RR{soa}
		}
		_ = w.WriteMsg(m)
	})
	for _, network := range []string{"udp", "tcp"} {
		started := make(chan struct{})
		errc := make(chan error, 1)
		s := &dns.Server{Addr: addr, Net: network, Handler: h, NotifyStartedFunc: func() { close(started) }}
		go func() { errc <- s.ListenAndServe() }()
		select {
		case <-started:
		case err := <-errc:
			t.Fatalf("upstream %s/%s: %v", addr, network, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("upstream %s/%s did not start", addr, network)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = s.ShutdownContext(ctx)
		})
	}
}
