package admission_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/poddns/poddns/internal/testenv"
	padmission "github.com/poddns/poddns/pkg/policy/admission"
)

// startServer runs a Server on a loopback port with a self-signed
// certificate and h registered at padmission.Path; it is stopped when the
// test ends. It returns the server's address and the error channel of Start.
func startServer(t *testing.T, o padmission.ServerOptions, h http.Handler) (string, context.CancelFunc, <-chan error) {
	t.Helper()
	o.Host, o.Port, o.CertDir = "127.0.0.1", testenv.FreeTCPPort(t), testenv.ServingCertDir(t)
	o.Log = testr.NewWithOptions(t, testr.Options{Verbosity: 1})
	s := padmission.NewServer(o)
	s.Register(padmission.Path, h)
	return runServer(t, s, "127.0.0.1:"+strconv.Itoa(o.Port))
}

func runServer(t *testing.T, s webhook.Server, addr string) (string, context.CancelFunc, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		// Closed after the result: the test may have received it already.
		done <- s.Start(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("server did not stop")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // test: reachability only
		if err == nil {
			c.Close()
			return addr, cancel, done
		}
		if time.Now().After(deadline) {
			t.Fatalf("server on %s not up: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	_, _ = io.WriteString(w, "ok")
})

// TestServerHTTP2 (issue 12, item 9): h2 is not offered unless enabled; a
// client offering h2 and http/1.1 gets http/1.1. controller-runtime's own
// server, the control, offers h2.
func TestServerHTTP2(t *testing.T) {
	negotiated := func(t *testing.T, addr string) string {
		t.Helper()
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}}) //nolint:gosec // test
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().NegotiatedProtocol
	}
	t.Run("off by default", func(t *testing.T) {
		addr, _, _ := startServer(t, padmission.ServerOptions{}, ok)
		if p := negotiated(t, addr); p != "http/1.1" {
			t.Errorf("negotiated %q, want http/1.1", p)
		}
	})
	t.Run("on when enabled", func(t *testing.T) {
		addr, _, _ := startServer(t, padmission.ServerOptions{HTTP2: true}, ok)
		if p := negotiated(t, addr); p != "h2" {
			t.Errorf("negotiated %q, want h2", p)
		}
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true} //nolint:gosec // test
		resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Post("https://"+addr+padmission.Path, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Errorf("protocol %s, want HTTP/2", resp.Proto)
		}
	})
	t.Run("controller-runtime's server offers h2 (control)", func(t *testing.T) {
		port := testenv.FreeTCPPort(t)
		s := webhook.NewServer(webhook.Options{Host: "127.0.0.1", Port: port, CertDir: testenv.ServingCertDir(t)})
		s.Register(padmission.Path, ok)
		addr, _, _ := runServer(t, s, "127.0.0.1:"+strconv.Itoa(port))
		if p := negotiated(t, addr); p != "h2" {
			t.Errorf("negotiated %q, want h2: the control no longer shows what this test guards against", p)
		}
	})
}

// stall opens a TLS connection and sends a request whose body stops after
// 10 of its 1000 bytes.
func stall(t *testing.T, addr string) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // test
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"kind\":\"A", padmission.Path)
	return c
}

// closedWithin reports whether the server closes c (after an answer, if
// any) within d.
func closedWithin(c *tls.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// TestServerStalledBody (issue 12, item 10): connections whose request body
// stalls are closed within the read timeout; controller-runtime's server,
// the control, keeps them open.
func TestServerStalledBody(t *testing.T) {
	const n = 20
	check := func(t *testing.T, addr string, wait time.Duration, wantClosed bool) {
		conns := make([]*tls.Conn, n)
		for i := range conns {
			conns[i] = stall(t, addr)
			defer conns[i].Close()
		}
		start := time.Now()
		var wg sync.WaitGroup
		closed := make([]bool, n)
		for i, c := range conns {
			wg.Go(func() { closed[i] = closedWithin(c, wait) })
		}
		wg.Wait()
		for i, got := range closed {
			if got != wantClosed {
				t.Errorf("connection %d closed within %s: %t, want %t", i, wait, got, wantClosed)
			}
		}
		t.Logf("%d stalled connections checked in %s", n, time.Since(start).Round(time.Millisecond))
	}
	t.Run("closed after the read timeout", func(t *testing.T) {
		addr, _, _ := startServer(t, padmission.ServerOptions{ReadTimeout: 500 * time.Millisecond}, ok)
		check(t, addr, 2*time.Second, true)
	})
	t.Run("controller-runtime's server keeps them (control)", func(t *testing.T) {
		port := testenv.FreeTCPPort(t)
		s := webhook.NewServer(webhook.Options{Host: "127.0.0.1", Port: port, CertDir: testenv.ServingCertDir(t)})
		s.Register(padmission.Path, ok)
		addr, _, _ := runServer(t, s, "127.0.0.1:"+strconv.Itoa(port))
		check(t, addr, 2*time.Second, false)
	})
}

// TestServerShutdown (issue 12, item 10): with stalled requests open, the
// server stops within its shutdown timeout.
func TestServerShutdown(t *testing.T) {
	addr, cancel, done := startServer(t, padmission.ServerOptions{ReadTimeout: time.Minute, ShutdownTimeout: time.Second}, ok)
	for range 5 {
		defer stall(t, addr).Close()
	}
	time.Sleep(100 * time.Millisecond) // the requests are being read
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Start: %v", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("stopped after %s, want about the 1s shutdown timeout", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not stop within 10s with a 1s shutdown timeout")
	}
}

// postSized sends a request with a body of size bytes and returns the status, or
// 0 and the error.
func postSized(addr string, size int) (int, error) {
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // test
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	// The headers first: the server may answer before the body.
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", padmission.Path, size)
	go func() { _, _ = c.Write(make([]byte, size)) }()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestServerLimits (issue 12, item 11): a body over the limit is refused
// with 413, and a request that does not fit in the in-flight budget with
// 429, at once; a request that fits is served.
func TestServerLimits(t *testing.T) {
	m, err := padmission.NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	entered := make(chan struct{}, 4)
	blocking := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		entered <- struct{}{}
		<-release
		_, _ = io.WriteString(w, "ok")
	})
	addr, _, _ := startServer(t, padmission.ServerOptions{MaxBodyBytes: 1 << 20, MaxInFlightBytes: 1536 << 10, Metrics: m}, blocking)

	if code, err := postSized(addr, 2<<20); code != http.StatusRequestEntityTooLarge {
		t.Errorf("2 MiB body: %d %v, want 413", code, err)
	}
	first := make(chan int, 1)
	go func() { code, _ := postSized(addr, 1<<20); first <- code }()
	<-entered // 1 MiB of the 1.5 MiB budget is in use
	start := time.Now()
	if code, err := postSized(addr, 1<<20); code != http.StatusTooManyRequests {
		t.Errorf("second 1 MiB request: %d %v, want 429", code, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the refusal took %s, want it at once", d)
	}
	second := make(chan int, 1)
	go func() { code, _ := postSized(addr, 100<<10); second <- code }() // fits beside the first
	<-entered
	close(release)
	if code := <-first; code != http.StatusOK {
		t.Errorf("first request: %d, want 200", code)
	}
	if code := <-second; code != http.StatusOK {
		t.Errorf("small request beside it: %d, want 200", code)
	}
	if n := testutil.ToFloat64(m.Refused.WithLabelValues(padmission.RefusedBusy)); n != 1 {
		t.Errorf("refused busy = %v, want 1", n)
	}
	if n := testutil.ToFloat64(m.Refused.WithLabelValues(padmission.RefusedTooLarge)); n != 1 {
		t.Errorf("refused too large = %v, want 1", n)
	}
}
