package integration

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/poddns/poddns/internal/syncbuf"
	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/serve/dnstest"
)

// dualStackRange gives the test API server an IPv4 and an IPv6 Service
// range, so that dual-stack and IPv6-only Services can be created.
const dualStackRange = testenv.ServiceClusterIPRange + ",fd00:10:96::/112"

func withDualStack(e *envtest.Environment) {
	e.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", dualStackRange)
}

// startProcess runs path with args until the test ends (then it is killed
// and waited for); its output is logged if the test failed.
func startProcess(t *testing.T, name, path string, args ...string) *exec.Cmd {
	t.Helper()
	return startProcessWith(t, name, path, nil, args...)
}

// startProcessWith is startProcess with setup (if not nil) adjusting the
// command before it starts (its environment, say).
func startProcessWith(t *testing.T, name, path string, setup func(*exec.Cmd), args ...string) *exec.Cmd {
	t.Helper()
	cmd, _ := startProcessOutput(t, name, path, setup, args...)
	return cmd
}

// startProcessOutput is startProcessWith that also returns the buffer
// collecting the process's stdout and stderr.
func startProcessOutput(t *testing.T, name, path string, setup func(*exec.Cmd), args ...string) (*exec.Cmd, *syncbuf.Buffer) {
	t.Helper()
	out := &syncbuf.Buffer{}
	cmd := exec.Command(path, args...)
	if setup != nil {
		setup(cmd)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s (pid %d) did not exit 10s after SIGKILL", name, cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
	return cmd, out
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// buildDnsd builds cmd/dnsd into a temporary directory and returns its path.
func buildDnsd(t *testing.T) string {
	t.Helper()
	root := testenv.Root(t)
	bin := filepath.Join(t.TempDir(), "dnsd")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/dnsd")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/dnsd: %v\n%s", err, out)
	}
	return bin
}

// startDnsd runs the dnsd binary against the API server of kubeconfig on a
// free loopback port, waits until /ready, and returns the DNS address.
func startDnsd(t *testing.T, bin, kubeconfig string, args ...string) string {
	t.Helper()
	addr, health := loopback(testenv.FreeDNSPort(t)), loopback(testenv.FreeTCPPort(t))
	startProcess(t, "dnsd", bin, append([]string{"--kubeconfig", kubeconfig, "--listen", addr, "--udp-sockets", "1",
		"--health-listen", health, "--metrics-listen", health, "--lameduck", "0s"}, args...)...)
	waitHTTP(t, "http://"+health+"/ready", 60*time.Second)
	return addr
}

// waitHTTP polls url until it answers 200, at most limit.
func waitHTTP(t *testing.T, url string, limit time.Duration) {
	t.Helper()
	if err := testenv.WaitHTTP(url, limit, nil); err != nil {
		t.Fatal(err)
	}
}

// exchange sends q over proto and returns the reply or the error, without
// failing the test (for polling and for comparing two servers).
func exchange(addr, proto string, q *dns.Msg) (*dns.Msg, error) {
	c := &dns.Client{Net: proto, Timeout: dnstest.Timeout, UDPSize: dns.MaxMsgSize}
	r, _, err := c.Exchange(q, addr)
	return r, err
}

// pollAnswer queries addr over UDP until ok accepts the reply, at most 15s,
// and returns how long that took from the call (made right after the API
// write): the API-write-to-changed-answer time as a client sees it.
func pollAnswer(t *testing.T, addr string, q *dns.Msg, ok func(*dns.Msg) bool) time.Duration {
	t.Helper()
	start := time.Now()
	var last *dns.Msg
	var lastErr error
	for i := 0; ; i++ {
		last, lastErr = exchange(addr, "udp", q)
		if lastErr == nil && ok(last) {
			return time.Since(start)
		}
		if time.Since(start) > 15*time.Second {
			t.Fatalf("%s %s: no expected answer after %d queries in %s; last reply (err %v):\n%v",
				q.Question[0].Name, dns.TypeToString[q.Question[0].Qtype], i+1, time.Since(start), lastErr, last)
		}
		time.Sleep(2 * time.Millisecond) // polling the effect of an API write, bounded above
	}
}

// normalizeSerials checks that every SOA serial in m is a Unix time in
// [lo, hi] (the store's clock over the test) and sets it to 0, so that the
// expected SOA records can be written with serial 0.
func normalizeSerials(t *testing.T, m *dns.Msg, lo, hi time.Time) {
	t.Helper()
	for _, rr := range append(append([]dns.RR{}, m.Answer...), m.Ns...) {
		s, ok := rr.(*dns.SOA)
		if !ok {
			continue
		}
		if int64(s.Serial) < lo.Unix() || int64(s.Serial) > hi.Unix()+1 {
			t.Errorf("SOA serial %d is not a Unix time of this test [%d, %d]", s.Serial, lo.Unix(), hi.Unix())
			continue
		}
		s.Serial = 0
	}
}

func fmtDurations(ds map[string]time.Duration, order []string) string {
	var b bytes.Buffer
	for _, k := range order {
		fmt.Fprintf(&b, "  %-55s %8.1f ms\n", k, float64(ds[k].Microseconds())/1000)
	}
	return b.String()
}
