// Package testenv runs a real Kubernetes control plane (kube-apiserver + etcd)
// for integration and e2e tests, and holds the one rule every test that needs
// a real part of the system follows.
//
// It exists because poddns tests talk to real parts, not mocks (see
// DESIGN.md, "Real parts, not mocks"): the API server's defaulting and
// validation, admission webhooks and watches are what the code has to work
// against, and a fake client reproduces none of them. The binaries are not
// downloaded: `make envtest-assets` builds kube-apiserver from the
// k8s.io/kubernetes module, takes etcd from Debian, and links both into
// bin/envtest/ at the repository root.
//
// The rule for a missing prerequisite (the envtest binaries, root, musl-gcc,
// dig, ...) is: in CI (CI=true) the test fails with how to fix it, because a
// skipped test proves nothing there; elsewhere it is skipped with the same
// message, so `go test ./...` stays usable on a laptop. [RequireOrSkip]
// implements that rule for every such test.
//
// This package is test support: only _test.go files may import it (the
// layout test in test/layout holds that).
package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// ServiceClusterIPRange is the --service-cluster-ip-range of the test API
// server. envtest's default (10.0.0.0/24) holds only ~250 Services and does
// not contain the conventional 10.96.0.10 cluster DNS address that fixtures use.
const ServiceClusterIPRange = "10.96.0.0/12"

// FixHint is what to run when the envtest binaries are missing.
const FixHint = "run `make envtest-assets` (or `make test`) at the repository root, or point KUBEBUILDER_ASSETS at a directory holding kube-apiserver and etcd"

// Env is a running control plane. It is stopped by the test's Cleanup.
type Env struct {
	// Config reaches the API server as an admin (system:masters).
	Config *rest.Config
	// Client is a controller-runtime client using Scheme.
	Client client.Client
	// Scheme holds the built-in Kubernetes types.
	Scheme *runtime.Scheme
	// Environment is the underlying envtest environment, e.g. for
	// Environment.WebhookInstallOptions.LocalServingHost/Port/CertDir.
	Environment *envtest.Environment
	// AssetsDir is the directory kube-apiserver and etcd were taken from.
	AssetsDir string
}

// Option adjusts the envtest environment before it starts, e.g. to set
// WebhookInstallOptions or more API server flags.
type Option func(*envtest.Environment)

// Start starts kube-apiserver and etcd with the binaries from AssetsDir and
// stops them when the test ends. If the binaries are missing the test fails
// in CI and is skipped elsewhere (see RequireOrSkip).
func Start(t testing.TB, opts ...Option) *Env {
	t.Helper()
	dir, err := AssetsDir()
	RequireOrSkip(t, fmt.Sprintf("the envtest binaries kube-apiserver and etcd (%v); %s", err, FixHint), err == nil)

	useExisting := false
	te := &envtest.Environment{
		// Never talk to whatever cluster a kubeconfig or USE_EXISTING_CLUSTER
		// points at: tests only run against the control plane they start.
		UseExistingCluster: &useExisting,
		Scheme:             clientgoscheme.Scheme,
	}
	te.ControlPlane.GetAPIServer().Path = filepath.Join(dir, "kube-apiserver")
	te.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", ServiceClusterIPRange)
	if te.ControlPlane.Etcd == nil {
		te.ControlPlane.Etcd = &envtest.Etcd{}
	}
	te.ControlPlane.Etcd.Path = filepath.Join(dir, "etcd")
	// envtest's 20s default is tight on a loaded two-core CI machine.
	if os.Getenv("KUBEBUILDER_CONTROLPLANE_START_TIMEOUT") == "" {
		te.ControlPlaneStartTimeout = 90 * time.Second
	}
	for _, o := range opts {
		o(te)
	}

	start := time.Now()
	cfg, err := te.Start()
	if err != nil {
		// Stop whatever part did start before failing.
		_ = te.Stop()
		t.Fatalf("testenv: starting kube-apiserver and etcd from %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := te.Stop(); err != nil {
			t.Errorf("testenv: stopping the control plane: %v", err)
		}
	})
	t.Logf("testenv: control plane from %s up in %s at %s", dir, time.Since(start).Round(time.Millisecond), cfg.Host)

	c, err := client.New(cfg, client.Options{Scheme: te.Scheme})
	if err != nil {
		t.Fatalf("testenv: client: %v", err)
	}
	return &Env{Config: cfg, Client: c, Scheme: te.Scheme, Environment: te, AssetsDir: dir}
}

// AssetsDir returns the directory holding the envtest binaries:
// $KUBEBUILDER_ASSETS if set, else <repository root>/bin/envtest. The error
// says what is missing.
func AssetsDir() (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		root, err := RepoRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, "bin", "envtest")
	}
	for _, name := range []string{"kube-apiserver", "etcd"} {
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p) // follows the symlinks into the cache
		if err != nil {
			return dir, fmt.Errorf("missing %s", p)
		}
		if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return dir, fmt.Errorf("%s is not an executable file", p)
		}
	}
	return dir, nil
}

// RepoRoot returns the nearest directory at or above the working directory
// (a package directory under `go test`) that holds a go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod at or above the working directory")
		}
		dir = parent
	}
}

// Root is RepoRoot for a test: it fails tb when there is no go.mod at or
// above the working directory.
func Root(tb testing.TB) string {
	tb.Helper()
	root, err := RepoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	return root
}

// InCI reports whether CI is set to a true value (CI=true, as CI systems do).
func InCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// RequireOrSkip stops the test when a prerequisite is missing (ok is false):
// it fails in CI, where a skipped test would hide a broken machine, and skips
// elsewhere. what names the prerequisite and how to get it, e.g.
// "root (run as root or via sudo)".
func RequireOrSkip(t testing.TB, what string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	if InCI() {
		t.Fatalf("missing prerequisite (fails because CI=true): %s", what)
		return
	}
	t.Skipf("missing prerequisite (skipped; with CI=true this fails): %s", what)
}

// RequireRoot applies RequireOrSkip to running as root (needed for
// network and mount namespaces).
func RequireRoot(t testing.TB) {
	t.Helper()
	RequireOrSkip(t, "root (network and mount namespaces); run the test as root, e.g. `sudo make e2e`", os.Geteuid() == 0)
}

// RequireCommand applies RequireOrSkip to each named program being on PATH
// and returns their paths in order.
func RequireCommand(t testing.TB, names ...string) []string {
	t.Helper()
	paths := make([]string, len(names))
	for i, name := range names {
		p, err := exec.LookPath(name)
		RequireOrSkip(t, fmt.Sprintf("%s on PATH (%v); run `make deps` (hack/install-deps.sh)", name, err), err == nil)
		paths[i] = p
	}
	return paths
}

// HoldTimingLock takes, for the rest of the test, an exclusive lock shared
// by every timing-sensitive test on the machine (a file in the temporary
// directory): `go test ./...` runs packages in parallel, and a test that
// judges latencies or counts retries must not share the CPU with another
// such test.
func HoldTimingLock(t testing.TB) {
	t.Helper()
	f := LockFile(t, filepath.Join(os.TempDir(), "poddns-timing.lock"), "the timing lock")
	t.Cleanup(func() { f.Close() }) // closing releases the lock
}

// LockFile waits for an exclusive flock on path (made, with its
// directory, when missing) and returns the open file: closing it releases
// the lock. what names the lock in the test's log and errors.
func LockFile(t testing.TB, path, what string) *os.File {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatalf("%s %s: %v", what, path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		t.Fatalf("%s %s: %v", what, path, err)
	}
	start := time.Now()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("%s %s: %v", what, path, err)
	}
	if waited := time.Since(start); waited > time.Second {
		t.Logf("testenv: waited %s for %s (%s)", waited.Round(time.Millisecond), what, path)
	}
	return f
}
