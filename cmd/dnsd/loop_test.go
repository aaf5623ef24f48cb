package main

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/poddns/poddns/internal/testenv"
)

// TestLoopRefusesToStart: a dnsd whose upstream is itself does not start;
// run returns 1 within a bounded time with an error naming the upstream.
func TestLoopRefusesToStart(t *testing.T) {
	self := net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreeDNSPort(t)))
	var stderr bytes.Buffer
	done := make(chan int, 1)
	start := time.Now()
	go func() {
		done <- run(context.Background(), []string{"--source", exampleCluster, "--listen", self, "--upstream", self,
			"--health-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"}, &stderr, nil)
	}()
	select {
	case code := <-done:
		if code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("dnsd with itself as upstream still running after 10s")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("refused to start after %s, want within the 3s probe bound (+ slack)", took)
	}
	out := stderr.String()
	t.Logf("stderr:\n%s", out)
	if !strings.Contains(out, "cannot start") || !strings.Contains(out, "forwarding loop through upstream "+self) {
		t.Errorf("stderr does not name the loop and the upstream %s:\n%s", self, out)
	}
	if n := strings.Count(out, "\n"); n > 2 {
		t.Errorf("%d log lines, want a short, clear error:\n%s", n, out)
	}
}
