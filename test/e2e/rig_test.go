package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/poddns/poddns/internal/testenv"
)

// The rig of the tests that run dnsd in private namespaces with pods joined
// to it (completion, impact): dnsd built once per test, the test binary
// re-executed inside `unshare --net --mount` to run a helper test there, and
// the helper's namespace set-up.

// buildDNSD builds cmd/dnsd into dir.
func buildDNSD(t *testing.T, goCmd, dir string) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dnsd := filepath.Join(dir, "dnsd")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goCmd, "build", "-o", dnsd, filepath.Join(root, "cmd", "dnsd")).CombinedOutput()
	if err != nil {
		t.Fatalf("go build cmd/dnsd: %v\n%s", err, out)
	}
	return dnsd
}

// runHelper re-executes the test binary inside `unshare --net --mount` to
// run the test named helper there, with params in the environment variable
// env as "KEY=VALUE;..." pairs, and returns its output once it passed. The
// helper runs in its own process group, killed whole at childTimeout or when
// the test dies.
func runHelper(t *testing.T, unshare, helper, env string, params map[string]string) string {
	t.Helper()
	var kv []string
	for k, v := range params {
		kv = append(kv, k+"="+v)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, unshare, "--net", "--mount", "--propagation", "private", "--",
		exe, "-test.run=^"+helper+"$", "-test.v", "-test.count=1", "-test.timeout="+(childTimeout-10*time.Second).String())
	cmd.Env = append(os.Environ(), env+"="+strings.Join(kv, ";"))
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	t.Logf("namespace helper %s:\n%s", helper, buf.String())
	if ctx.Err() != nil {
		t.Fatalf("namespace helper killed after %s", childTimeout)
	}
	if err != nil {
		t.Fatalf("namespace helper: %v", err)
	}
	if !strings.Contains(buf.String(), "--- PASS: "+helper) {
		t.Fatalf("namespace helper %s did not run and pass", helper)
	}
	return buf.String()
}

// setUpDNSDNamespace prepares the private namespaces a helper runs in (it
// must have checked they are private): lo up, the fixed hosts and nsswitch
// files (p["hosts"], p["nsswitch"]) over the machine's, and dnsd's address
// on lo.
func setUpDNSDNamespace(t *testing.T, ctx context.Context, p map[string]string) {
	t.Helper()
	mustRun(t, ctx, p["ip"], "link", "set", "dev", "lo", "up")
	for src, dst := range map[string]string{p["hosts"]: "/etc/hosts", p["nsswitch"]: "/etc/nsswitch.conf"} {
		if _, err := os.Stat(dst); err == nil {
			mustRun(t, ctx, p["mount"], "--bind", src, dst)
		}
	}
	mustRun(t, ctx, p["ip"], "addr", "add", complDNSIP+"/32", "dev", "lo")
}

// mustRun runs a command of a namespace set-up; a failure ends the test.
func mustRun(t *testing.T, ctx context.Context, name string, args ...string) {
	t.Helper()
	if err := run(ctx, name, args...); err != nil {
		t.Fatal(err)
	}
}
