package bench

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/internal/syncbuf"
	"github.com/poddns/poddns/internal/testenv"
)

// proc is a process started for the benchmark; it is killed when the test
// ends, or earlier by stop.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	done chan struct{}
	once sync.Once
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) stop() {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

// startProcess runs path with args (and extra environment) until the test
// ends; its output is logged if the test failed.
func startProcess(t *testing.T, name string, env []string, path string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, out: &syncbuf.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(path, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.out.String())
		}
	})
	return p
}

// waitHTTP polls url until it answers 200, at most limit.
func waitHTTP(t *testing.T, p *proc, url string, limit time.Duration) {
	t.Helper()
	if err := testenv.WaitHTTP(url, limit, p.done); err != nil {
		t.Fatalf("%s: %v\n%s", p.name, err, p.out.String())
	}
}

// waitDNS queries addr until ok accepts the reply, at most limit, and
// returns how long that took.
func waitDNS(addr string, q *dns.Msg, ok func(*dns.Msg) bool, limit time.Duration) (time.Duration, error) {
	c := &dns.Client{Net: "udp", Timeout: 500 * time.Millisecond}
	start := time.Now()
	var last *dns.Msg
	var err error
	for {
		last, _, err = c.Exchange(q.Copy(), addr)
		if err == nil && ok(last) {
			return time.Since(start), nil
		}
		if time.Since(start) > limit {
			return 0, fmt.Errorf("%s %s at %s: no expected answer after %s (err %v, last %v)",
				q.Question[0].Name, dns.TypeToString[q.Question[0].Qtype], addr, limit, err, last)
		}
		time.Sleep(time.Millisecond) // polling the effect of an API write, bounded above
	}
}

// procStatus is pid's /proc/PID/status as numbers, by field name (VmRSS,
// RssAnon, Threads, ...; sizes in KiB); empty when it cannot be read.
func procStatus(pid int) map[string]int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil
	}
	fields := map[string]int64{}
	for l := range strings.SplitSeq(string(b), "\n") {
		name, rest, ok := strings.Cut(l, ":")
		fs := strings.Fields(rest)
		if !ok || len(fs) == 0 {
			continue
		}
		if v, err := strconv.ParseInt(fs[0], 10, 64); err == nil {
			fields[name] = v
		}
	}
	return fields
}

// procMemKB reads VmRSS and VmHWM of pid.
func procMemKB(pid int) (rss, hwm int64) {
	s := procStatus(pid)
	return s["VmRSS"], s["VmHWM"]
}

// logMemory logs what pid's resident memory is made of, for reading a
// memory figure rather than for the report: the kernel's split of its RSS
// (/proc/PID/status: anonymous, file-backed) and, when pprofAddr serves
// Go's /debug/pprof, the runtime's own accounts (heap in use, idle and
// returned to the OS, stacks in use/obtained, total obtained from the OS).
func logMemory(t *testing.T, name string, pid int, pprofAddr string) {
	t.Helper()
	var kernel []string
	status := procStatus(pid)
	for _, k := range []string{"VmHWM", "VmRSS", "RssAnon", "RssFile", "Threads"} {
		if v, ok := status[k]; ok {
			kernel = append(kernel, k+":"+strconv.FormatInt(v, 10))
		}
	}
	var goMem []string
	if pprofAddr != "" {
		if resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + pprofAddr + "/debug/pprof/heap?debug=1"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, l := range strings.Split(string(b), "\n") {
				for _, k := range []string{"# Sys = ", "# HeapAlloc = ", "# HeapInuse = ", "# HeapIdle = ", "# HeapReleased = ", "# Stack = ", "# NumGC = "} {
					if v, ok := strings.CutPrefix(l, k); ok {
						goMem = append(goMem, strings.TrimSuffix(strings.TrimPrefix(k, "# "), " = ")+"="+strings.ReplaceAll(v, " ", ""))
					}
				}
			}
		}
	}
	t.Logf("%s memory: kernel (KiB) %s; Go runtime (bytes) %s", name, strings.Join(kernel, " "), strings.Join(goMem, " "))
}

// procCPUSeconds is the CPU time pid has used (user + system, from
// /proc/PID/stat), 0 when it cannot be read.
func procCPUSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command (which may hold spaces) start after
	// its closing parenthesis: state is field 3, utime 14, stime 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	fs := strings.Fields(string(b[i+1:]))
	if len(fs) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(fs[11], 64)
	st, _ := strconv.ParseFloat(fs[12], 64)
	return (ut + st) / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times (100 on Linux).
const clockTicks = 100

// resetPeakRSS sets VmHWM of pid back to its current RSS (clear_refs 5).
func resetPeakRSS(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

func mb(kb int64) *float64 {
	if kb <= 0 {
		return nil
	}
	return f(round(float64(kb)/1024, 1))
}

// perfResult is what one dnsperf run reports.
type perfResult struct {
	sent, completed, lost int64
	qps                   float64
	lat                   []float64 // per-query latency in seconds (verbose runs only), sorted
}

var (
	reSent      = regexp.MustCompile(`Queries sent:\s+(\d+)`)
	reCompleted = regexp.MustCompile(`Queries completed:\s+(\d+)`)
	reLost      = regexp.MustCompile(`Queries lost:\s+(\d+)`)
	reQPS       = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
)

// dnsperfArgs are the fixed dnsperf settings: 4 clients, 100 queries
// outstanding, 2 s timeout.
var dnsperfArgs = []string{"-c", "4", "-q", "100", "-t", "2"}

// runDnsperf runs dnsperf pinned to CPU 1 against ip:53 with qfile for
// seconds; rate > 0 caps the rate (-Q); verbose records every query's
// latency (-v); maxruns > 0 stops after that many passes over the file.
func runDnsperf(t *testing.T, tools *tools, ip, qfile string, seconds, rate int, verbose bool, maxruns int) perfResult {
	t.Helper()
	return runDnsperfIn(t, tools, "", ip, qfile, seconds, rate, verbose, maxruns)
}

// runDnsperfIn is runDnsperf inside the network namespace netns (a
// /proc/PID/ns/net path; "" for the benchmark's own).
func runDnsperfIn(t *testing.T, tools *tools, netns, ip, qfile string, seconds, rate int, verbose bool, maxruns int) perfResult {
	t.Helper()
	args := append([]string{"-c", "1", tools.dnsperf, "-s", ip, "-p", "53", "-d", qfile, "-l", strconv.Itoa(seconds)}, dnsperfArgs...)
	if rate > 0 {
		args = append(args, "-Q", strconv.Itoa(rate))
	}
	if verbose {
		args = append(args, "-v")
	}
	if maxruns > 0 {
		args = append(args, "-n", strconv.Itoa(maxruns))
	}
	cmd := exec.Command(tools.taskset, args...)
	if netns != "" {
		cmd = exec.Command(tools.nsenter, append([]string{"--net=" + netns, "--", tools.taskset}, args...)...)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dnsperf %v: %v\n%s", args, err, tail(out))
	}
	var r perfResult
	num := func(re *regexp.Regexp) string {
		m := re.FindSubmatch(out)
		if m == nil {
			t.Fatalf("dnsperf output has no %s:\n%s", re, tail(out))
		}
		return string(m[1])
	}
	r.sent, _ = strconv.ParseInt(num(reSent), 10, 64)
	r.completed, _ = strconv.ParseInt(num(reCompleted), 10, 64)
	r.lost, _ = strconv.ParseInt(num(reLost), 10, 64)
	r.qps, _ = strconv.ParseFloat(num(reQPS), 64)
	if verbose {
		// "> NOERROR name type 0.000123": the latency dnsperf measured.
		for line := range strings.SplitSeq(string(out), "\n") {
			if !strings.HasPrefix(line, "> ") {
				continue
			}
			fs := strings.Fields(line)
			if v, err := strconv.ParseFloat(fs[len(fs)-1], 64); err == nil {
				r.lat = append(r.lat, v)
			}
		}
		sort.Float64s(r.lat)
	}
	return r
}

func tail(b []byte) string {
	if len(b) > 4000 {
		return "...\n" + string(b[len(b)-4000:])
	}
	return string(b)
}

// pct is the q-quantile of sorted values (nearest rank), in milliseconds.
func pct(sorted []float64, q float64) *float64 {
	if len(sorted) == 0 {
		return nil
	}
	return f(round(sorted[int(q*float64(len(sorted)-1))]*1000, 3))
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// medianRatio is the median of the per-round ratios a[i]/b[i] over the
// rounds both have with b[i] > 0, to 3 places; nil when there is none.
func medianRatio(a, b []float64) *float64 {
	var rs []float64
	for i := range min(len(a), len(b)) {
		if b[i] > 0 {
			rs = append(rs, a[i]/b[i])
		}
	}
	if len(rs) == 0 {
		return nil
	}
	return f(round(median(rs), 3))
}

func f(v float64) *float64 { return &v }

func round(v float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	if v < 0 {
		return -float64(int64(-v*p+0.5)) / p
	}
	return float64(int64(v*p+0.5)) / p
}

// saveProfile fetches dnsd's pprof endpoint path from addr into
// <results>-<scale>-dnsd-<kind>.pprof beside the results file and returns the
// file's base name; "" (logged) when it could not.
func saveProfile(t *testing.T, tl *tools, addr, scale, kind, path string) string {
	t.Helper()
	file := fmt.Sprintf("%s-%s-dnsd-%s.pprof", tl.profiles, scale, kind)
	c := &http.Client{Timeout: 2 * time.Minute}
	resp, err := c.Get("http://" + addr + "/debug/pprof/" + path)
	if err != nil {
		t.Logf("dnsd %s profile: %v", kind, err)
		return ""
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Logf("dnsd %s profile: status %d, %v", kind, resp.StatusCode, err)
		return ""
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Logf("dnsd %s profile: %v", kind, err)
		return ""
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Logf("dnsd %s profile: %v", kind, err)
		return ""
	}
	t.Logf("dnsd %s profile: %s (go tool pprof -top %s)", kind, file, file)
	return filepath.Base(file)
}

// TestMedianRatio: the ratios of the rounds both sides have, a round with
// nothing on the right left out, the median of an even count the mean of
// the middle two, and nil with no round.
func TestMedianRatio(t *testing.T) {
	for _, tt := range []struct {
		name string
		a, b []float64
		want *float64
	}{
		{"no rounds", nil, []float64{1}, nil},
		{"only a zero on the right", []float64{5}, []float64{0}, nil},
		{"odd", []float64{2, 9, 3}, []float64{1, 3, 2}, f(2)},
		{"even, rounded", []float64{1, 2}, []float64{3, 3}, f(0.5)},
		{"extra rounds and a zero left out", []float64{4, 1, 6, 7}, []float64{2, 0, 3}, f(2)},
		{"to 3 places", []float64{2}, []float64{3}, f(0.667)},
	} {
		got := medianRatio(tt.a, tt.b)
		if (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
			t.Errorf("%s: medianRatio(%v, %v) = %v, want %v", tt.name, tt.a, tt.b, deref(got), deref(tt.want))
		}
	}
}
