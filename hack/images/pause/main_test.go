package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestMain runs the program itself when the test binary is started as the
// child of TestExitsOnSignal.
func TestMain(m *testing.M) {
	if os.Getenv("PAUSE_TEST_CHILD") == "1" {
		sig := notify()
		fmt.Println("ready")
		wait(sig)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestExitsOnSignal: the point of the program is to exit 0 at once on SIGTERM
// and SIGINT (sleep as PID 1 ignores SIGTERM), and to keep running otherwise.
func TestExitsOnSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "PAUSE_TEST_CHILD=1")
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Signals are sent once the handlers are in place.
			if line, err := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
				_ = cmd.Process.Kill()
				t.Fatalf("child: %q, %v", line, err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				t.Fatalf("exited before any signal: %v", err)
			case <-time.After(300 * time.Millisecond):
			}
			// SIGCHLD alone must not end it.
			if err := cmd.Process.Signal(syscall.SIGCHLD); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				t.Fatalf("exited on SIGCHLD: %v", err)
			case <-time.After(200 * time.Millisecond):
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("exit after %s: %v, want status 0", sig, err)
				}
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatalf("still running 10s after %s", sig)
			}
		})
	}
}
