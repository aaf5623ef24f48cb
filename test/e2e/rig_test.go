package e2e

import (
	"bytes"
	"context"
	"net"
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
// to it (AAAA, completion, impact): dnsd built once per test, the test
// binary re-executed inside `unshare --net --mount` to run a helper test
// there (the node-local test's helper too), and the helper's namespace
// set-up.

// rig is what such a test starts from: the programs its helper runs (the
// musl client and dnsd built), a directory for its files, and the fixed
// hosts and nsswitch files the helper mounts over the machine's.
type rig struct {
	t      *testing.T
	tools  namespaceTools
	dir    string
	params map[string]string // for the helper: the programs and files above
}

// newRig checks the prerequisites (namespaces, nsenter, sleep, go), builds
// the musl client and dnsd, and writes the hosts and nsswitch files.
func newRig(t *testing.T) *rig {
	t.Helper()
	tools := requireNamespaceTools(t)
	p := testenv.RequireCommand(t, "nsenter", "sleep", "go")
	r := &rig{t: t, tools: tools, dir: t.TempDir()}
	r.params = map[string]string{
		"dnsd": buildDNSD(t, p[2], r.dir), "gai": buildMuslClient(t, tools.muslGCC),
		"ip": tools.ip, "mount": tools.mount, "nsenter": p[0], "unshare": tools.unshare, "sleep": p[1], "getent": tools.getent,
		"hosts":    r.write("hosts", "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"),
		"nsswitch": r.write("nsswitch.conf", "hosts: files dns\n"),
	}
	return r
}

// write writes content to the file name in the rig's directory and
// returns its path.
func (r *rig) write(name, content string) string {
	r.t.Helper()
	return testenv.WriteFile(r.t, r.dir, name, content)
}

// dnsdConfig writes the configuration file name of a dnsd of the rig: DNS
// on complDNSIP, health and metrics on theirs, the objects of the file
// objects, forwarding to the helper's upstream for the pods' networks; then
// extra (handler blocks). It returns its path.
func (r *rig) dnsdConfig(name, objects, extra string) string {
	return r.write(name, "apiVersion: poddns.io/v1alpha1\nkind: DNSDConfig\n"+
		"listen: \""+complDNSIP+":53\"\nudpSockets: 1\n"+
		"healthListen: \""+complHealth+"\"\nmetricsListen: \""+complMetrics+"\"\nlameduck: 0s\n"+
		"source: {file: "+objects+"}\n"+
		"forward: {upstreams: [\""+complUpstreamIP+"\"], clientNetworks: [\"192.0.2.0/24\", \"127.0.0.0/8\"]}\n"+
		extra)
}

// runHelper runs the helper test with the rig's parameters and params
// (runHelper) and fails unless it logged ran.
func (r *rig) runHelper(helper, env string, params map[string]string, ran string) {
	r.t.Helper()
	for k, v := range r.params {
		params[k] = v
	}
	if out := runHelper(r.t, r.tools.unshare, helper, env, params); !strings.Contains(out, ran) {
		r.t.Fatalf("namespace helper %s did not run", helper)
	}
}

// buildDNSD builds cmd/dnsd into dir.
func buildDNSD(t *testing.T, goCmd, dir string) string {
	t.Helper()
	root := testenv.Root(t)
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
// run the test named helper there, with params and the host's namespaces
// (hostnet, hostmnt) in the environment variable env as "KEY=VALUE;..."
// pairs (helperParams reads them), and returns its output once it passed.
func runHelper(t *testing.T, unshare, helper, env string, params map[string]string) string {
	t.Helper()
	params["hostnet"], params["hostmnt"] = hostNamespaces(t)
	var kv []string
	for k, v := range params {
		kv = append(kv, k+"="+v)
	}
	return runInNamespaces(t, unshare, helper, env, strings.Join(kv, ";"), childTimeout)
}

// runInNamespaces re-executes the test binary inside `unshare --net
// --mount` to run the test named helper there, with env=value in its
// environment, and returns its output once it passed (reexecInNamespaces).
func runInNamespaces(t *testing.T, unshare, helper, env, value string, timeout time.Duration) string {
	t.Helper()
	out := reexecInNamespaces(t, unshare, "namespace helper "+helper, env, value, timeout,
		"-test.run=^"+helper+"$", "-test.v", "-test.count=1", "-test.timeout="+(timeout-10*time.Second).String())
	if !strings.Contains(out, "--- PASS: "+helper) {
		t.Fatalf("namespace helper %s did not run and pass", helper)
	}
	return out
}

// reexecInNamespaces re-executes the test binary with args inside a fresh
// private network and mount namespace (`unshare --net --mount`), with
// env=value in its environment, logs its output and returns it once it
// exited 0; what names the child in failures. The child runs in its own
// process group, killed whole after timeout or when the test dies; the
// host's files that children mount over must be the same after it.
func reexecInNamespaces(t *testing.T, unshare, what, env, value string, timeout time.Duration, args ...string) string {
	t.Helper()
	hostBefore := readEtc(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, unshare, append([]string{"--net", "--mount", "--propagation", "private", "--", exe}, args...)...)
	cmd.Env = append(os.Environ(), env+"="+value)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	t.Logf("%s (%s):\n%s", what, time.Since(start).Round(time.Millisecond), buf.String())
	if ctx.Err() != nil {
		t.Fatalf("%s killed after %s", what, timeout)
	}
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if after := readEtc(t); after != hostBefore {
		t.Fatalf("the host's /etc files changed while the %s ran:\nbefore %q\nafter  %q", what, hostBefore, after)
	}
	return buf.String()
}

// hostNamespaces returns the network and mount namespaces of the test
// process: the ones a helper must not run in.
func hostNamespaces(t *testing.T) (netNS, mntNS string) {
	t.Helper()
	netNS, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	mntNS, err = os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	return netNS, mntNS
}

// helperParams is the side of runHelper in the helper test: the parameters
// in env, nil when env is unset (the test was not run by runHelper: it does
// nothing). A helper not in namespaces of its own stops here.
func helperParams(t *testing.T, env string) map[string]string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		return nil
	}
	p := map[string]string{}
	for kv := range strings.SplitSeq(v, ";") {
		k, v, _ := strings.Cut(kv, "=")
		p[k] = v
	}
	requirePrivateNamespaces(t, p["hostnet"], p["hostmnt"])
	return p
}

// requirePrivateNamespaces stops a helper that is not in namespaces of its
// own (hostNet and hostMnt are the test process's): it must not mount or
// listen on the host.
func requirePrivateNamespaces(t *testing.T, hostNet, hostMnt string) {
	t.Helper()
	netNS, _ := os.Readlink("/proc/self/ns/net")
	mntNS, _ := os.Readlink("/proc/self/ns/mnt")
	if netNS == "" || mntNS == "" || netNS == hostNet || mntNS == hostMnt {
		t.Fatalf("not in private namespaces (net %s, mnt %s): refusing to mount or listen", netNS, mntNS)
	}
}

// startHelper starts a helper test of the rig: its parameters (helperParams;
// nil when the test was not run by runHelper: it does nothing), a context
// that ends before the helper's time does, dnsd's namespace set up
// (setUpDNSDNamespace) and the upstream serving on complUpstreamIP. The
// context and the upstream end with the test.
func startHelper(t *testing.T, env string) (map[string]string, context.Context, *server) {
	t.Helper()
	p := helperParams(t, env)
	if p == nil {
		return nil, nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout-20*time.Second)
	t.Cleanup(cancel)
	setUpDNSDNamespace(t, ctx, p)
	up, err := startUpstream(ctx, net.JoinHostPort(complUpstreamIP, "53"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.shutdown)
	return p, ctx, up
}

// lookUp runs client's lookup of name in a pod (inPod: joinPodNet's):
// glibc's getent ahosts or musl's getaddrinfo program. It returns the run
// and the queries up received meanwhile; a client that cannot be run ends
// the test.
func lookUp(t *testing.T, ctx context.Context, p map[string]string, up *server, inPod func(args ...string) []string, client, name string) (clientRun, []query) {
	t.Helper()
	argv := []string{p["getent"], "ahosts", name}
	if client == "musl" {
		argv = []string{p["gai"], name}
	}
	argv = inPod(argv...)
	up.log.reset()
	run := clientRun{Client: client, Argv: argv}
	var err error
	run.Stdout, run.Stderr, run.ExitCode, err = runClient(ctx, argv)
	if err != nil {
		t.Fatalf("%s %q: %v", client, argv, err)
	}
	return run, up.log.snapshot()
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
