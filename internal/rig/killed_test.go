//go:build e2ecluster

package rig

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/poddns/poddns/internal/testenv"
)

// TestKilledRun: a rig SIGKILLed mid-run (its test process killed, as a
// timeout or a person would) leaves the machine changed — the state file,
// kubelet's sysctls and cgroups — and the next run restores it to the
// killed run's snapshot, then works; its own Close finds the machine as
// before the killed run.
func TestKilledRun(t *testing.T) {
	testenv.RequireRoot(t)
	root := testenv.Root(t)
	requireNode(t, root)
	// The lock is held from before the helper's rig to after this test's,
	// so that no other rig on the machine cleans up the killed one first.
	// (A Cleanup, not a defer: it must run after the rig's Close.)
	lock := lockMachine(t)
	lockHeld = true
	t.Cleanup(func() { lockHeld = false; lock.Close() })
	cmd := helper("kill")
	cmd.Env = append(cmd.Env, lockHeldEnv+"=1")
	out, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = w, w
	err = cmd.Start()
	w.Close() // the helper holds the writing end
	if err != nil {
		t.Fatal(err)
	}
	up := make(chan string, 1)
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if dir, ok := strings.CutPrefix(sc.Text(), "RIG-UP "); ok {
				up <- dir
			}
		}
		close(up)
	}()
	var dir string
	select {
	case d, ok := <-up:
		if !ok {
			_ = cmd.Wait()
			t.Fatalf("the helper ended before its rig was up:\n%s", log.String())
		}
		dir = d
	case <-time.After(8 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("the helper's rig not up after 8 minutes")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	// What the killed run left.
	b, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatalf("the killed run left no state file: %v", err)
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if s.Dir != dir {
		t.Errorf("state file names the rig directory %q, want %q", s.Dir, dir)
	}
	now, err := takeSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	left := s.Base.diff(now)
	if _, err := os.Stat(filepath.Join(cgroupRoot, "pids", cgroupParent)); err != nil || len(left) == 0 {
		t.Errorf("the killed run left no cgroup %s (%v) or no difference (%q): nothing to prove the clean-up on", cgroupParent, err, left)
	}
	t.Logf("the killed run left:\n  %s", strings.Join(left, "\n  "))

	// The next run cleans up and works; its Close compares the machine
	// with a snapshot that must equal the killed run's.
	c := Start(t, Options{ControlPlaneOnly: true})
	if d := s.Base.diff(c.base); len(d) > 0 {
		t.Errorf("after the clean-up the machine differs from before the killed run:\n  %s", strings.Join(d, "\n  "))
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the killed run's directory %s is still there (%v)", dir, err)
	}
	checkNetwork(t, c)
}

// helperEnv makes the test binary run TestRigHelper, in the mode it is set
// to: "kill" (a whole rig, then wait to be killed) or "fail" (a control
// plane, then fail).
const helperEnv = "PODDNS_RIG_HELPER"

// failure is what TestRigHelper fails with in "fail" mode.
const failure = "failing on purpose"

// helper returns the command that runs TestRigHelper in mode.
func helper(mode string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestRigHelper$", "-test.v", "-test.timeout=10m")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	return cmd
}

// TestRigHelper is the victim of TestKilledRun and TestFailedRun.
func TestRigHelper(t *testing.T) {
	switch os.Getenv(helperEnv) {
	case "kill":
		c := Start(t, Options{})
		os.Stdout.WriteString("RIG-UP " + c.Dir + "\n")
		time.Sleep(10 * time.Minute) // until TestKilledRun kills this process
	case "fail":
		Start(t, Options{ControlPlaneOnly: true})
		t.Fatal(failure)
	default:
		t.Skip("the helper of TestKilledRun and TestFailedRun, run by them")
	}
}

// TestFailedRun: a test that fails with a rig up leaves its logs, events
// and pods under bin/rig-logs/<test>/, and its Close still restores the
// machine (no difference reported, no state file left).
func TestFailedRun(t *testing.T) {
	testenv.RequireRoot(t)
	root := testenv.Root(t)
	logs := filepath.Join(root, "bin/rig-logs/TestRigHelper")
	_ = os.RemoveAll(logs)
	// Held across the helper's run, so that the state file checked below
	// can only be the helper's.
	lock := lockMachine(t)
	defer lock.Close()
	cmd := helper("fail")
	cmd.Env = append(cmd.Env, lockHeldEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), failure) {
		t.Fatalf("the helper: %v, want it to fail with %q:\n%s", err, failure, out)
	}
	if strings.Contains(string(out), "differs from its snapshot") {
		t.Errorf("the failed run did not restore the machine:\n%s", out)
	}
	if _, err := os.Stat(statePath); err == nil {
		t.Errorf("the failed run left its state file %s", statePath)
	}
	for _, f := range []string{"kube-apiserver.log", "etcd.log", "cluster.txt"} {
		if fi, err := os.Stat(filepath.Join(logs, f)); err != nil || fi.Size() == 0 {
			t.Errorf("no %s in %s after the failure (%v)", f, logs, err)
		}
	}
}
