package serve_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/dnstest"
)

// fdChildEnv makes the test binary a DNS server limited to a few file
// descriptors (TestTCPAtFDLimit's child); only that test sets it.
const fdChildEnv = "PODDNS_SERVE_FDLIMIT_CHILD"

// TestTCPAtFDLimit: a server out of file descriptors (more clients than
// its RLIMIT_NOFILE) neither spins in accept nor stops serving TCP: it
// backs off and closes the connection idle the longest, so a new client is
// still answered. It runs the server as a child process with a limit of 64
// descriptors and measures the child's CPU time.
func TestTCPAtFDLimit(t *testing.T) {
	if os.Getenv(fdChildEnv) != "" {
		fdLimitChild(t)
		return
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestTCPAtFDLimit$", "-test.count=1")
	cmd.Env = append(os.Environ(), fdChildEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	sc := bufio.NewScanner(out)
	var addr string
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
			addr = a
			break
		}
	}
	if addr == "" {
		t.Fatal("child did not report its address")
	}
	// 200 idle connections against 64 descriptors: the kernel completes
	// them (backlog), the server cannot accept them all.
	for range 200 {
		c := dialTCP(t, addr)
		_ = c
	}
	time.Sleep(300 * time.Millisecond)
	before := cpuTime(t, cmd.Process.Pid)
	time.Sleep(2 * time.Second)
	used := cpuTime(t, cmd.Process.Pid) - before
	if used > 400*time.Millisecond {
		t.Errorf("the server used %v of CPU in 2s at its descriptor limit: accept spins", used)
	}
	// A new client is answered: idle connections make room.
	c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
	m, _, err := c.Exchange(dnstest.Query("a.example.", dns.TypeA, 0), addr)
	if err != nil || len(m.Answer) != 1 {
		t.Fatalf("new TCP client at the descriptor limit: %v, %v", m, err)
	}
	t.Logf("CPU used in 2s at the limit: %v", used)
}

func fdLimitChild(t *testing.T) {
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: 64, Max: 64}); err != nil {
		t.Fatal(err)
	}
	s, err := serve.NewServer(serve.Options{Addr: "127.0.0.1:0", UDPSockets: 1, Handler: answerA(1), TCPIdleTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("ADDR " + s.Addr() + "\n")
	time.Sleep(25 * time.Second) // killed by the parent
}

// cpuTime is the user and system time of process pid (/proc/pid/stat).
func cpuTime(t *testing.T, pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}
