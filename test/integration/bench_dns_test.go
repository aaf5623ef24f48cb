package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/dnstest"
)

// BenchDNSEnv names the file that TestBenchDNS writes its results to; the
// test runs only when it is set (make bench-dns sets it).
const BenchDNSEnv = "PODDNS_BENCH_DNS_OUT"

// stockCorefile is the stock Kubernetes Corefile (coredns.yaml.base) with its
// ports moved to loopback ports off dnsd's and forward pointed at a local
// test upstream instead of /etc/resolv.conf.
func stockCorefile(port int, health, ready, metrics, kubeconfig, upstream string) string {
	return fmt.Sprintf(`.:%d {
    bind 127.0.0.1
    errors
    health %s {
        lameduck 5s
    }
    ready %s
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig %s
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    prometheus %s
    forward . %s {
        max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
`, port, health, ready, kubeconfig, metrics, upstream)
}

// benchRun is one dnsperf run against one server.
type benchRun struct {
	Server      string  `json:"server"`
	Phase       string  `json:"phase"` // "throughput" (as fast as possible) or "latency" (fixed rate)
	Seconds     int     `json:"seconds"`
	Sent        int64   `json:"queries_sent"`
	Completed   int64   `json:"queries_completed"`
	Lost        int64   `json:"queries_lost"`
	QPS         float64 `json:"qps"`
	AvgLatency  float64 `json:"avg_latency_s"`
	MinLatency  float64 `json:"min_latency_s"`
	MaxLatency  float64 `json:"max_latency_s"`
	StdLatency  float64 `json:"latency_stddev_s"`
	ServerRSSKB int64   `json:"server_rss_kb_after"`
	ServerHWMKB int64   `json:"server_peak_rss_kb"`
}

var (
	reSent      = regexp.MustCompile(`Queries sent:\s+(\d+)`)
	reCompleted = regexp.MustCompile(`Queries completed:\s+(\d+)`)
	reLost      = regexp.MustCompile(`Queries lost:\s+(\d+)`)
	reQPS       = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	reAvg       = regexp.MustCompile(`Average Latency \(s\):\s+([0-9.]+) \(min ([0-9.]+), max ([0-9.]+)\)`)
	reStd       = regexp.MustCompile(`Latency StdDev \(s\):\s+([0-9.]+)`)
)

func parseDnsperf(t *testing.T, out string, r *benchRun) {
	t.Helper()
	num := func(re *regexp.Regexp, i int) string {
		m := re.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("dnsperf output has no %s:\n%s", re, out)
		}
		return m[i]
	}
	i64 := func(s string) int64 { v, _ := strconv.ParseInt(s, 10, 64); return v }
	f64 := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
	r.Sent, r.Completed, r.Lost = i64(num(reSent, 1)), i64(num(reCompleted, 1)), i64(num(reLost, 1))
	r.QPS = f64(num(reQPS, 1))
	r.AvgLatency, r.MinLatency, r.MaxLatency = f64(num(reAvg, 1)), f64(num(reAvg, 2)), f64(num(reAvg, 3))
	r.StdLatency = f64(num(reStd, 1))
}

// procMemKB reads VmRSS and VmHWM of pid.
func procMemKB(pid int) (rss, hwm int64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fs := strings.Fields(s.Text())
		if len(fs) >= 2 && (fs[0] == "VmRSS:" || fs[0] == "VmHWM:") {
			v, _ := strconv.ParseInt(fs[1], 10, 64)
			if fs[0] == "VmRSS:" {
				rss = v
			} else {
				hwm = v
			}
		}
	}
	return rss, hwm
}

// TestBenchDNS is `make bench-dns`: dnsperf against dnsd and against CoreDNS
// with the stock Kubernetes Corefile, both fed by the same API server (the
// generated cluster of the differential test) and the same query file, each
// server pinned to CPU 0 with taskset and dnsperf to CPU 1, runs alternated
// A B A B in one process. It writes the results as JSON to $PODDNS_BENCH_DNS_OUT.
func TestBenchDNS(t *testing.T) {
	outPath := os.Getenv(BenchDNSEnv)
	if outPath == "" {
		t.Skipf("a benchmark, not a test: run `make bench-dns` (sets %s)", BenchDNSEnv)
	}
	if runtime.NumCPU() < 2 {
		t.Fatalf("need 2 CPUs (server on CPU 0, dnsperf on CPU 1), have %d", runtime.NumCPU())
	}
	paths := testenv.RequireCommand(t, "dnsperf", "taskset")
	dnsperf, taskset := paths[0], paths[1]
	corebin := coreDNSBinary(t)
	seconds := 8
	if v, err := strconv.Atoi(os.Getenv("PODDNS_BENCH_SECONDS")); err == nil && v > 0 && v <= 120 {
		seconds = v
	}
	const fixedRate = 5000 // queries per second of the latency phase

	env := testenv.Start(t, withDualStack)
	svcs := genCluster(t, env.Client, 4, 66)
	kc := writeKubeconfig(t, env, "bench")
	upstream := dnstest.StartServer(t, serve.Refused)

	// dnsd on CPU 0 (GOMAXPROCS follows the affinity: 1), one UDP socket.
	daddr, dhealth := loopback(freePort(t)), loopback(freePort(t))
	dcmd := startProcess(t, "dnsd", taskset, "-c", "0", buildDnsd(t), "--kubeconfig", kc, "--listen", daddr, "--udp-sockets", "1",
		"--health-listen", dhealth, "--metrics-listen", dhealth, "--lameduck", "0s")
	waitHTTP(t, "http://"+dhealth+"/ready", 60*time.Second)

	cport := freePort(t)
	chealth, cready, cmetrics := loopback(freePort(t)), loopback(freePort(t)), loopback(freePort(t))
	corefile := filepath.Join(t.TempDir(), "Corefile")
	if err := os.WriteFile(corefile, []byte(stockCorefile(cport, chealth, cready, cmetrics, kc, upstream)), 0o600); err != nil {
		t.Fatal(err)
	}
	ccmd := startProcess(t, "coredns", taskset, "-c", "0", corebin, "-conf", corefile)
	waitHTTP(t, "http://"+cready+"/ready", 60*time.Second)
	caddr := loopback(cport)

	// The query file: every Service name (A, AAAA, SRV), endpoint names,
	// named-port SRV, PTR of endpoint IPs, and a share of NXDOMAIN.
	var lines []string
	for _, g := range svcs {
		name := g.name + "." + g.ns + ".svc.cluster.local."
		lines = append(lines, name+" A", name+" AAAA", name+" SRV", "nosuch-"+name+" A")
		for _, p := range g.ports {
			if p.Name != "" {
				lines = append(lines, "_"+p.Name+"._"+strings.ToLower(string(p.Protocol))+"."+name+" SRV")
			}
		}
		for k, ep := range g.epNames {
			lines = append(lines, ep+"."+name+" A")
			if r, err := dns.ReverseAddr(g.epIPs[k]); err == nil {
				lines = append(lines, r+" PTR")
			}
		}
	}
	qfile := filepath.Join(t.TempDir(), "queries.txt")
	if err := os.WriteFile(qfile, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Both servers answer the last Service before any run.
	last := svcs[len(svcs)-1]
	for _, a := range []string{daddr, caddr} {
		pollAnswer(t, a, dnstest.Query(last.name+"."+last.ns+".svc.cluster.local.", dns.TypeAAAA, 0), func(m *dns.Msg) bool { return len(m.Answer) == 1 })
	}

	servers := []struct {
		name, addr string
		cmd        *exec.Cmd
	}{{"dnsd", daddr, dcmd}, {"coredns", caddr, ccmd}}
	var runs []benchRun
	for _, phase := range []string{"throughput", "latency"} {
		for round := range 2 { // A B A B
			for _, s := range servers {
				host, port, _ := strings.Cut(s.addr, ":")
				args := []string{"-c", "1", dnsperf, "-s", host, "-p", port, "-d", qfile, "-l", strconv.Itoa(seconds), "-c", "4", "-q", "100", "-t", "2"}
				if phase == "latency" {
					args = append(args, "-Q", strconv.Itoa(fixedRate))
				}
				cmd := exec.Command(taskset, args...)
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("dnsperf against %s: %v\n%s", s.name, err, out)
				}
				r := benchRun{Server: s.name, Phase: phase, Seconds: seconds}
				parseDnsperf(t, string(out), &r)
				r.ServerRSSKB, r.ServerHWMKB = procMemKB(s.cmd.Process.Pid)
				t.Logf("%s %s round %d: %.0f QPS, avg latency %.3f ms (max %.3f ms), lost %d, RSS %d KiB (peak %d KiB)",
					phase, s.name, round+1, r.QPS, r.AvgLatency*1000, r.MaxLatency*1000, r.Lost, r.ServerRSSKB, r.ServerHWMKB)
				runs = append(runs, r)
			}
		}
	}
	mean := func(server, phase string, f func(benchRun) float64) float64 {
		var s float64
		var n int
		for _, r := range runs {
			if r.Server == server && r.Phase == phase {
				s += f(r)
				n++
			}
		}
		return s / float64(n)
	}
	qps := func(r benchRun) float64 { return r.QPS }
	lat := func(r benchRun) float64 { return r.AvgLatency }
	hwm := func(r benchRun) float64 { return float64(r.ServerHWMKB) }
	summary := map[string]float64{
		"dnsd_qps":                        mean("dnsd", "throughput", qps),
		"coredns_qps":                     mean("coredns", "throughput", qps),
		"qps_ratio_dnsd_over_coredns":     mean("dnsd", "throughput", qps) / mean("coredns", "throughput", qps),
		"dnsd_avg_latency_s_at_rate":      mean("dnsd", "latency", lat),
		"coredns_avg_latency_s_at_rate":   mean("coredns", "latency", lat),
		"latency_ratio_dnsd_over_coredns": mean("dnsd", "latency", lat) / mean("coredns", "latency", lat),
		"dnsd_peak_rss_kb":                mean("dnsd", "latency", hwm),
		"coredns_peak_rss_kb":             mean("coredns", "latency", hwm),
	}
	res := map[string]any{
		"date":       time.Now().UTC().Format(time.RFC3339),
		"services":   len(svcs),
		"queries":    len(lines),
		"fixed_rate": fixedRate,
		"pinning":    "servers on CPU 0 (taskset -c 0), dnsperf on CPU 1 (taskset -c 1), dnsperf -c 4 -q 100",
		"coredns":    "v1.14.7 (hack/coredns.sh), stock Kubernetes Corefile, forward to a loopback test upstream",
		"order":      "throughput: dnsd coredns dnsd coredns; then latency at a fixed rate: the same",
		"runs":       runs,
		"summary":    summary,
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
	t.Logf("dnsd %.0f QPS vs CoreDNS %.0f QPS: ratio %.2f; avg latency at %d QPS: dnsd %.3f ms, CoreDNS %.3f ms; peak RSS dnsd %.0f KiB, CoreDNS %.0f KiB; results in %s",
		summary["dnsd_qps"], summary["coredns_qps"], summary["qps_ratio_dnsd_over_coredns"], fixedRate,
		summary["dnsd_avg_latency_s_at_rate"]*1000, summary["coredns_avg_latency_s_at_rate"]*1000,
		summary["dnsd_peak_rss_kb"], summary["coredns_peak_rss_kb"], outPath)
}
