package rig

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/poddns/poddns/internal/testenv"
)

// The rig's fixed addresses and names.
const (
	// NodeName is the node's name (kubelet --hostname-override).
	NodeName = "rig-node"
	// NodeIP is the node's address: the bridge's, the pods' gateway, the
	// API server's --advertise-address.
	NodeIP = "10.244.0.1"
	// PodCIDR is the pods' network on the bridge.
	PodCIDR = "10.244.0.0/24"
	// ServiceCIDR is the API server's --service-cluster-ip-range.
	ServiceCIDR = "10.96.0.0/12"
	// KubernetesServiceIP is the kubernetes Service's ClusterIP.
	KubernetesServiceIP = "10.96.0.1"
	// APIServerPort is the API server's secure port on NodeIP.
	APIServerPort = 6443
	// bridge is the bridge's name (the CNI configuration's).
	bridge = "cni0"
	// cgroupParent is kubelet's cgroupRoot and the cgroup every rig process
	// starts in, in every hierarchy.
	cgroupParent = "poddns-rig"
	cgroupRoot   = "/sys/fs/cgroup"
)

// apiServerURL is the API server's address inside the rig.
var apiServerURL = fmt.Sprintf("https://%s:%d", NodeIP, APIServerPort)

// Machine-wide paths: the lock that serializes rigs and the state file a
// killed run leaves for the next one.
var (
	lockPath  = "/run/lock/poddns-rig.lock"
	statePath = "/var/tmp/poddns-rig.state.json"
)

// tmpfsDirs are covered by a tmpfs inside the rig's mount namespace: what
// kubelet, containerd and the CNI plugins write under them (/var/lib/kubelet,
// /var/lib/containerd, /var/lib/cni, /run/containerd, /run/netns,
// /var/log/pods, ...) never reaches the machine, and no mount point has to
// be made on the machine's filesystem. None of the rig's programs needs
// what the machine keeps there.
var tmpfsDirs = []string{"/run", "/var/lib", "/var/log"}

// Options are what a test may choose about its rig.
type Options struct {
	// Images are OCI image archives imported into containerd before Start
	// returns (more with ImportImage).
	Images []string
	// APIServerFlags are extra kube-apiserver flags, "--name=value".
	APIServerFlags []string
	// ControlPlaneOnly stops after etcd and the API server (no containerd,
	// kubelet, controller-manager, scheduler or kube-proxy).
	ControlPlaneOnly bool
}

// Cluster is a running rig. Close (also run by the test's Cleanup) stops
// it and restores the machine.
type Cluster struct {
	// Dir holds the rig's files: certificates, configurations, logs/.
	Dir string
	// Kubeconfig is an admin kubeconfig file whose server is
	// https://NodeIP:6443: valid inside the rig's network namespace
	// (ExecInNode), not on the machine. Use RESTConfig in the test process.
	Kubeconfig string
	// Client is a clientset for RESTConfig.
	Client kubernetes.Interface
	// CA signed every certificate of the cluster.
	CA *CA
	// Profile is the node profile the node was configured from
	// (deploy/base/node-profile/profile.yaml).
	Profile Profile

	t           testing.TB
	root        string // the repository root
	admin       KeyPair
	unshareDone <-chan error
	holder      int // the rig's PID 1, as the machine sees it
	netns       *os.File
	base        snapshot
	lock        *os.File
	keep        bool
	closed      bool
	procs       []*os.Process
	upstream    *atomic.Int32
}

// state is the state file: enough for the next run to clean up after a
// killed one.
type state struct {
	Base   snapshot `json:"base"`
	Dir    string   `json:"dir"`
	Holder int      `json:"holder"`
	// PidNS is the inode of the rig's PID namespace: every process in it
	// is the rig's.
	PidNS uint64 `json:"pidNS"`
}

// Start starts a rig and returns once its node is Ready (or, with
// ControlPlaneOnly, once the API server is). It fails the test if the rig
// does not come up; a missing prerequisite fails it under CI=true and skips
// it elsewhere.
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "unshare", "nsenter", "ip", "nft", "bash", "sleep")
	root := testenv.Root(t)
	assets, err := testenv.AssetsDir()
	testenv.RequireOrSkip(t, fmt.Sprintf("the envtest binaries (%v); %s", err, testenv.FixHint), err == nil)
	if !o.ControlPlaneOnly {
		requireNode(t, root)
	}
	prof, err := readProfile(filepath.Join(root, "deploy/base/node-profile/profile.yaml"))
	if err != nil {
		t.Fatal(err)
	}

	c := &Cluster{t: t, root: root, Profile: prof, keep: os.Getenv("KEEP_RIG") == "1"}
	c.takeLock()
	t.Cleanup(c.Close)
	if err := recoverKilled(t); err != nil {
		t.Fatalf("rig: cleaning up after an earlier run: %v", err)
	}
	if c.base, err = takeSnapshot(); err != nil {
		t.Fatalf("rig: host snapshot: %v", err)
	}
	if c.Dir, err = os.MkdirTemp("", "poddns-rig-"); err != nil {
		t.Fatal(err)
	}
	c.saveState(0, 0)

	start := time.Now()
	if err := c.writeFiles(); err != nil {
		t.Fatalf("rig: %v", err)
	}
	if err := c.startHolder(); err != nil {
		t.Fatalf("rig: %v", err)
	}
	if err := c.startControlPlane(assets, o.APIServerFlags); err != nil {
		t.Fatalf("rig: %v", err)
	}
	t.Logf("rig: API server up in %s", time.Since(start).Round(time.Millisecond))
	if o.ControlPlaneOnly {
		return c
	}
	if err := c.startNode(); err != nil {
		t.Fatalf("rig: %v", err)
	}
	for _, img := range o.Images {
		c.ImportImage(img)
	}
	t.Logf("rig: node %s Ready in %s", NodeName, time.Since(start).Round(time.Millisecond))
	return c
}

// requireNode checks the node's prerequisites.
func requireNode(t testing.TB, root string) {
	t.Helper()
	testenv.RequireCommand(t, "containerd", "ctr", "runc")
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		_, err := os.Stat(filepath.Join(cniBinDir, p))
		testenv.RequireOrSkip(t, fmt.Sprintf("the CNI plugin %s (%v); run `make deps` (containernetworking-plugins)", p, err), err == nil)
	}
	for _, p := range nodePrograms {
		_, err := os.Stat(filepath.Join(root, "bin/node", p))
		testenv.RequireOrSkip(t, fmt.Sprintf("%s (%v); run `make node-assets`", p, err), err == nil)
	}
	_, err := os.Stat(filepath.Join(root, pauseArchive))
	testenv.RequireOrSkip(t, fmt.Sprintf("the pause image (%v); run `make images`", err), err == nil)
}

// lockHeldEnv, set to 1 in a helper process's environment, says that the
// test running the helper holds the machine-wide lock for it.
const lockHeldEnv = "PODDNS_RIG_LOCK_HELD"

// lockHeld means the machine-wide lock is already held for the rigs this
// process starts: by a test that keeps it across a helper's rig and its
// own (TestKilledRun), or, in that helper, by the test running it.
var lockHeld = os.Getenv(lockHeldEnv) == "1"

// takeLock takes the machine-wide rig lock for the rig, held until Close,
// unless lockHeld.
func (c *Cluster) takeLock() {
	if !lockHeld {
		c.lock = lockMachine(c.t)
	}
}

// lockMachine waits for the machine-wide rig lock; closing the file
// releases it.
func lockMachine(t testing.TB) *os.File {
	t.Helper()
	return testenv.LockFile(t, lockPath, "the rig lock (another rig is running)")
}

func (c *Cluster) saveState(holder int, pidNS uint64) {
	b, err := json.Marshal(state{Base: c.base, Dir: c.Dir, Holder: holder, PidNS: pidNS})
	if err == nil {
		err = writeAtomic(statePath, b)
	}
	if err != nil {
		c.t.Fatalf("rig: state file: %v", err)
	}
}

// recoverKilled restores the machine a killed run left (its state file),
// then checks that it matches that run's snapshot.
func recoverKilled(t testing.TB) error {
	b, err := os.ReadFile(statePath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%s: %w", statePath, err)
	}
	t.Logf("rig: an earlier run did not finish (%s): restoring the machine", statePath)
	killPidNS(s.PidNS, s.Holder)
	if err := cleanup(s.Base, s.Dir); err != nil {
		return err
	}
	return os.Remove(statePath)
}

// killPidNS kills holder and every process in the PID namespace pidNS
// (inode), and waits for them to go.
func killPidNS(pidNS uint64, holder int) {
	if pidNS == 0 {
		return
	}
	if holder > 0 && nsInode(holder) == pidNS {
		_ = syscall.Kill(holder, syscall.SIGKILL)
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		left := 0
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || nsInode(pid) != pidNS {
				continue
			}
			left++
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if left == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond) // the kernel reaping a PID namespace
	}
}

func nsInode(pid int) uint64 {
	var st syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/pid", pid), &st); err != nil {
		return 0
	}
	return st.Ino
}

// cleanup restores the machine to base and removes dir, then compares.
func cleanup(base snapshot, dir string) error {
	var errs []error
	// The rig's cgroups go last: their tasks may take a moment to leave.
	if err := base.restore(); err != nil {
		errs = append(errs, err)
	}
	if dir != "" && strings.HasPrefix(dir, os.TempDir()) {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	}
	now, err := takeSnapshot()
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	if d := base.diff(now); len(d) > 0 {
		errs = append(errs, fmt.Errorf("the machine differs from its snapshot:\n  %s", strings.Join(d, "\n  ")))
	}
	return errors.Join(errs...)
}

// Close stops the rig, restores the machine and fails the test if the
// machine then differs from the snapshot taken at Start. With KEEP_RIG=1
// it leaves the rig running and says how to reach it. Safe to call twice.
func (c *Cluster) Close() {
	if c.closed {
		return
	}
	c.closed = true
	defer func() {
		if c.lock != nil {
			c.lock.Close()
		}
	}()
	if c.Dir == "" {
		return // Start failed before changing anything
	}
	if c.t.Failed() {
		c.dumpLogs()
	}
	if c.keep && c.holder > 0 {
		c.t.Logf("rig: KEEP_RIG=1: the rig stays up (PID %d), kubeconfig %s (its server is inside the rig); e.g.\n"+
			"  nsenter -t %d -n -m -p kubectl --kubeconfig %s get pods -A\n"+
			"  nsenter -t %d -n curl --cacert %s/ca.crt --cert %s/admin.crt --key %s/admin.key %s/api/v1/pods\n"+
			"the next run (or kill -9 %d and a run) cleans it up",
			c.holder, c.Kubeconfig, c.holder, c.Kubeconfig, c.holder, c.Dir, c.Dir, c.Dir, apiServerURL, c.holder)
		return
	}
	if c.holder > 0 {
		killPidNS(nsInode(c.holder), c.holder)
	}
	if c.unshareDone != nil {
		<-c.unshareDone
	}
	for _, p := range c.procs {
		_, _ = p.Wait()
	}
	if c.netns != nil {
		c.netns.Close()
	}
	if err := cleanup(c.base, c.Dir); err != nil {
		c.t.Errorf("rig: %v", err)
		return
	}
	if err := os.Remove(statePath); err != nil {
		c.t.Errorf("rig: %v", err)
	}
}

// RESTConfig returns an admin configuration for the API server that dials
// through the rig's network namespace.
func (c *Cluster) RESTConfig() *rest.Config {
	return &rest.Config{
		Host:            apiServerURL,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.CA.CertPEM, CertData: c.admin.CertPEM, KeyData: c.admin.KeyPEM},
		Dial:            c.DialContext,
		QPS:             50,
		Burst:           100,
	}
}

// kubeconfig renders a kubeconfig for the API server inside the rig with
// the client certificate kp.
func (c *Cluster) kubeconfig(kp KeyPair) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["rig"] = &clientcmdapi.Cluster{Server: apiServerURL, CertificateAuthorityData: c.CA.CertPEM}
	cfg.AuthInfos["rig"] = &clientcmdapi.AuthInfo{ClientCertificateData: kp.CertPEM, ClientKeyData: kp.KeyPEM}
	cfg.Contexts["rig"] = &clientcmdapi.Context{Cluster: "rig", AuthInfo: "rig"}
	cfg.CurrentContext = "rig"
	return clientcmd.Write(*cfg)
}

// writeAtomic writes data to a temporary file next to path and renames it
// over path, so a reader never sees it half-written (kubelet reading a
// static manifest, the next run reading the state file).
func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
