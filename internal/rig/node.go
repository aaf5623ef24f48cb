package rig

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/poddns/poddns/pkg/nodeprofile"
	"github.com/poddns/poddns/pkg/resolvconf"
)

// nodePrograms are the Kubernetes programs hack/node-assets.sh links into
// bin/node.
var nodePrograms = []string{"kubelet", "kube-controller-manager", "kube-scheduler", "kube-proxy"}

const (
	cniBinDir = "/usr/lib/cni"
	// pauseArchive is `make images`' sandbox image, relative to the
	// repository root, and pauseRef its name.
	pauseArchive = "bin/images/pause.tar"
	pauseRef     = "ghcr.io/poddns/pause:v0.1.0"
)

// Profile is what the node is configured from: deploy/base's node profile.
type Profile struct {
	ClusterDomain string
	ClusterDNS    []string
	// ResolvConf is the node's resolver file, bind-mounted over
	// /etc/resolv.conf inside the rig (kubelet's resolvConf).
	ResolvConf string
	// Upstream is its first nameserver: a resolver inside the rig.
	Upstream string
	// Node is the profile as pkg/resolvconf takes it: what the node's
	// kubelet is configured with (resolvconf.NewNodeProfile(Node)).
	Node resolvconf.NodeConfig
}

func readProfile(path string) (Profile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Profile{}, err
	}
	f, err := nodeprofile.Parse(b, path)
	if err != nil {
		return Profile{}, err
	}
	if f.ClusterDomain == nil || len(f.ClusterDNS) == 0 || f.ResolvConfContent == nil ||
		f.ResolvConf == nil || *f.ResolvConf != resolvconf.DefaultResolvConf {
		return Profile{}, fmt.Errorf("%s: the rig needs clusterDomain, clusterDNS, resolvConf: %s and resolvConfContent", path, resolvconf.DefaultResolvConf)
	}
	rc, err := resolvconf.Parse(strings.NewReader(*f.ResolvConfContent))
	if err != nil {
		return Profile{}, fmt.Errorf("%s: resolvConfContent: %w", path, err)
	}
	if len(rc.Nameservers) == 0 {
		return Profile{}, fmt.Errorf("%s: resolvConfContent names no nameserver (the rig's upstream)", path)
	}
	node := nodeprofile.Defaults()
	f.Apply(&node)
	return Profile{ClusterDomain: *f.ClusterDomain, ClusterDNS: f.ClusterDNS, ResolvConf: *f.ResolvConfContent, Upstream: rc.Nameservers[0], Node: node}, nil
}

// holderScript is the rig's PID 1, started by unshare in new network,
// mount and PID namespaces: it covers the node's directories with tmpfs,
// puts the node's resolver file and hosts file in place, sets up the
// network (lo, the bridge, the upstream's address, the Service route),
// says it is ready and then only reaps orphans.
const holderScript = `set -eu
dir=$1; shift
for d in "$@"; do mkdir -p "$d"; mount -t tmpfs -o mode=0755 poddns-rig "$d"; done
mount --bind "$dir/resolv.conf" /etc/resolv.conf
mount --bind "$dir/hosts" /etc/hosts
ip link set lo up
ip addr add "$UPSTREAM/32" dev lo
ip link add "$BRIDGE" type bridge
ip addr add "$NODE_IP/$POD_PREFIX" dev "$BRIDGE"
ip link set "$BRIDGE" up
ip route add "$SERVICE_CIDR" dev "$BRIDGE"
echo 1 > /proc/sys/net/ipv4/ip_forward
if [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables; fi
: > "$dir/ready"
# PID 1 ignores signals it has no handler for: the rig is stopped with
# SIGKILL. bash reaps the orphans that are reparented to it.
while :; do sleep 3600 & wait $! || true; done
`

// writeFiles writes the certificates, kubeconfigs and configuration files.
func (c *Cluster) writeFiles() error {
	for _, d := range []string{"logs", "manifests", "net.d", "etcd"} {
		if err := os.MkdirAll(filepath.Join(c.Dir, d), 0o755); err != nil {
			return err
		}
	}
	var err error
	if c.CA, err = NewCA("poddns-rig-ca"); err != nil {
		return err
	}
	svc := "kubernetes.default.svc"
	serving, err := c.CA.Issue(CertRequest{
		CommonName: "kube-apiserver", Server: true,
		DNSNames: []string{"kubernetes", "kubernetes.default", svc, svc + "." + c.Profile.ClusterDomain, "localhost"},
		IPs:      []string{KubernetesServiceIP, NodeIP, "127.0.0.1"},
	})
	if err != nil {
		return err
	}
	if c.admin, err = c.CA.Issue(CertRequest{CommonName: "rig-admin", Organization: []string{"system:masters"}}); err != nil {
		return err
	}
	kubelet, err := c.CA.Issue(CertRequest{CommonName: "system:node:" + NodeName, Organization: []string{"system:nodes"}})
	if err != nil {
		return err
	}
	saKey, saPub, err := serviceAccountKey()
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"ca.crt": c.CA.CertPEM, "apiserver.crt": serving.CertPEM, "apiserver.key": serving.KeyPEM,
		"admin.crt": c.admin.CertPEM, "admin.key": c.admin.KeyPEM,
		"sa.key": saKey, "sa.pub": saPub,
		"resolv.conf": []byte(c.Profile.ResolvConf),
		"hosts":       []byte("127.0.0.1 localhost\n" + NodeIP + " " + NodeName + "\n"),
	}
	if files["admin.kubeconfig"], err = c.kubeconfig(c.admin); err != nil {
		return err
	}
	if files["kubelet.kubeconfig"], err = c.kubeconfig(kubelet); err != nil {
		return err
	}
	for name, data := range nodeConfigs(c.Dir, c.Profile) {
		files[name] = data
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(c.Dir, name), data, 0o600); err != nil {
			return err
		}
	}
	c.Kubeconfig = filepath.Join(c.Dir, "admin.kubeconfig")
	return nil
}

// startHolder starts the rig's namespaces and its PID 1, and makes the
// cgroup kubelet is rooted in.
func (c *Cluster) startHolder() error {
	args := append([]string{"--net", "--mount", "--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL",
		"bash", "-c", holderScript, "holder", c.Dir}, tmpfsDirs...)
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), "UPSTREAM="+c.Profile.Upstream, "BRIDGE="+bridge, "NODE_IP="+NodeIP,
		"POD_PREFIX="+PodCIDR[strings.IndexByte(PodCIDR, '/')+1:], "SERVICE_CIDR="+ServiceCIDR)
	log, err := c.logFile("holder")
	if err != nil {
		return err
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	// The rig dies with the test process unless a person keeps it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if !c.keep {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(c.Dir, "ready")); err == nil {
			break
		}
		select {
		case err := <-exited:
			return fmt.Errorf("the rig's namespaces did not come up (%v); holder.log:\n%s", err, c.readLog("holder"))
		case <-time.After(50 * time.Millisecond): // polling the holder's set-up
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the rig's namespaces not ready after 20s; holder.log:\n%s", c.readLog("holder"))
		}
	}
	c.unshareDone = exited
	children, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
	if err != nil {
		return err
	}
	if c.holder, err = strconv.Atoi(strings.TrimSpace(string(children))); err != nil {
		return fmt.Errorf("the rig's PID 1 (children of unshare: %q): %w", children, err)
	}
	c.saveState(c.holder, nsInode(c.holder))
	if c.netns, err = os.Open(fmt.Sprintf("/proc/%d/ns/net", c.holder)); err != nil {
		return err
	}
	if err := makeCgroupParent(); err != nil {
		return err
	}
	return c.startUpstream()
}

// makeCgroupParent makes kubelet's cgroupRoot in every v1 hierarchy.
func makeCgroupParent() error {
	hier, err := os.ReadDir(cgroupRoot)
	if err != nil {
		return err
	}
	for _, h := range hier {
		if h.Name() == "unified" {
			continue
		}
		d := filepath.Join(cgroupRoot, h.Name(), cgroupParent)
		if err := os.Mkdir(d, 0o755); err != nil && !os.IsExist(err) {
			return fmt.Errorf("cgroup %s: %w", d, err)
		}
		if h.Name() == "cpuset" {
			// A cpuset cgroup takes no task until it has CPUs and memory nodes.
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				b, err := os.ReadFile(filepath.Join(cgroupRoot, h.Name(), f))
				if err == nil {
					err = os.WriteFile(filepath.Join(d, f), b, 0o644)
				}
				if err != nil {
					return fmt.Errorf("cgroup %s: %s: %w", d, f, err)
				}
			}
		}
	}
	return nil
}

// run starts name inside the rig with its output in logs/<log>.log.
func (c *Cluster) run(log, name string, args ...string) (*exec.Cmd, error) {
	f, err := c.logFile(log)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := c.ExecInNode(context.Background(), name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", log, err)
	}
	c.procs = append(c.procs, cmd.Process)
	return cmd, nil
}

func (c *Cluster) logFile(name string) (*os.File, error) {
	return os.OpenFile(filepath.Join(c.Dir, "logs", name+".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
}

// readLog returns the last 4 KiB of a component's log.
func (c *Cluster) readLog(name string) string {
	b, _ := os.ReadFile(filepath.Join(c.Dir, "logs", name+".log"))
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}

// wait polls ok every 200 ms until it returns true or an error, for at
// most limit; what names the wait in the error, and log the component
// whose log's tail the error carries.
func (c *Cluster) wait(what, log string, limit time.Duration, ok func(ctx context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var last error
	for {
		done, err := ok(ctx)
		if err == nil && done {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not after %s (last error: %v); %s.log:\n%s", what, limit, last, log, c.readLog(log))
		case <-time.After(200 * time.Millisecond): // polling a starting component
		}
	}
}

// startControlPlane starts etcd and kube-apiserver and waits for /readyz.
func (c *Cluster) startControlPlane(assets string, extra []string) error {
	d := c.Dir
	if _, err := c.run("etcd", filepath.Join(assets, "etcd"), "--name=rig", "--data-dir="+filepath.Join(d, "etcd"),
		"--listen-client-urls=http://127.0.0.1:2379", "--advertise-client-urls=http://127.0.0.1:2379",
		"--listen-peer-urls=http://127.0.0.1:2380", "--initial-advertise-peer-urls=http://127.0.0.1:2380",
		"--initial-cluster=rig=http://127.0.0.1:2380"); err != nil {
		return err
	}
	flags := []string{
		"--etcd-servers=http://127.0.0.1:2379",
		"--advertise-address=" + NodeIP, "--bind-address=0.0.0.0", "--secure-port=" + strconv.Itoa(APIServerPort),
		"--service-cluster-ip-range=" + ServiceCIDR,
		"--tls-cert-file=" + filepath.Join(d, "apiserver.crt"), "--tls-private-key-file=" + filepath.Join(d, "apiserver.key"),
		"--client-ca-file=" + filepath.Join(d, "ca.crt"),
		"--service-account-key-file=" + filepath.Join(d, "sa.pub"), "--service-account-signing-key-file=" + filepath.Join(d, "sa.key"),
		"--service-account-issuer=https://kubernetes.default.svc." + c.Profile.ClusterDomain,
		"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction,ServiceAccount",
		"--kubelet-client-certificate=" + filepath.Join(d, "admin.crt"), "--kubelet-client-key=" + filepath.Join(d, "admin.key"),
		// The node's name is never looked up (a lookup would go to the
		// machine's resolver): the API server reaches kubelet by address.
		"--kubelet-preferred-address-types=InternalIP",
		"--allow-privileged=true",
	}
	if _, err := c.run("kube-apiserver", filepath.Join(assets, "kube-apiserver"), append(flags, extra...)...); err != nil {
		return err
	}
	cfg := c.RESTConfig()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	c.Client = cs
	return c.wait("the API server's /readyz", "kube-apiserver", 90*time.Second, func(ctx context.Context) (bool, error) {
		body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(body) == "ok", err
	})
}

// startNode starts containerd, kubelet, the controller-manager, the
// scheduler and kube-proxy, and waits for the node to be Ready.
func (c *Cluster) startNode() error {
	d, bin := c.Dir, filepath.Join(c.root, "bin/node")
	if _, err := c.run("containerd", "containerd", "--config", filepath.Join(d, "containerd.toml")); err != nil {
		return err
	}
	if err := c.wait("containerd", "containerd", 30*time.Second, func(ctx context.Context) (bool, error) {
		out, err := c.ExecInNode(ctx, "ctr", "--address", containerdSock, "version").CombinedOutput()
		if err != nil {
			return false, fmt.Errorf("%w: %s", err, out)
		}
		return true, nil
	}); err != nil {
		return err
	}
	c.ImportImage(filepath.Join(c.root, pauseArchive))
	kc := filepath.Join(d, "admin.kubeconfig")
	steps := []struct {
		log  string
		args []string
	}{
		{"kubelet", []string{"--config=" + filepath.Join(d, "kubelet.yaml"), "--kubeconfig=" + filepath.Join(d, "kubelet.kubeconfig"),
			"--hostname-override=" + NodeName, "--node-ip=" + NodeIP, "--v=2"}},
		{"kube-controller-manager", []string{"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
			"--leader-elect=false", "--bind-address=127.0.0.1", "--use-service-account-credentials=true",
			"--service-account-private-key-file=" + filepath.Join(d, "sa.key"), "--root-ca-file=" + filepath.Join(d, "ca.crt"),
			"--service-cluster-ip-range=" + ServiceCIDR, "--controllers=*,-nodeipam"}},
		{"kube-scheduler", []string{"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
			"--leader-elect=false", "--bind-address=127.0.0.1"}},
		{"kube-proxy", []string{"--config=" + filepath.Join(d, "kube-proxy.yaml"), "--v=2"}},
	}
	for _, s := range steps {
		if _, err := c.run(s.log, filepath.Join(bin, s.log), s.args...); err != nil {
			return err
		}
	}
	if err := c.wait("node "+NodeName+" Ready", "kubelet", 2*time.Minute, func(ctx context.Context) (bool, error) {
		n, err := c.Client.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				return cond.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	}); err != nil {
		return err
	}
	// The ServiceAccount controller has run: pods can be created.
	if err := c.wait("the default ServiceAccount", "kube-controller-manager", time.Minute, func(ctx context.Context) (bool, error) {
		_, err := c.Client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, err
	}); err != nil {
		return err
	}
	return c.wait("kube-proxy's /healthz", "kube-proxy", time.Minute, func(ctx context.Context) (bool, error) {
		out, err := c.ExecInNode(ctx, "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/10256 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -1 <&3").CombinedOutput()
		return err == nil && strings.Contains(string(out), " 200 "), err
	})
}

// ImportImage imports an OCI image archive (as `make images` writes) into
// containerd's k8s.io namespace, for pods with imagePullPolicy: Never.
func (c *Cluster) ImportImage(archive string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := c.ExecInNode(ctx, "ctr", "--address", containerdSock, "-n", "k8s.io", "images", "import", archive).CombinedOutput()
	if err != nil {
		c.t.Fatalf("rig: importing %s: %v\n%s", archive, err, out)
	}
}

// ExecInNode returns a command that runs name inside the rig's network,
// mount and PID namespaces, as the node's own programs run.
func (c *Cluster) ExecInNode(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "nsenter", append([]string{"-t", strconv.Itoa(c.holder), "-n", "-m", "-p", "--", name}, args...)...)
}

// PodResolvConf returns the /etc/resolv.conf kubelet had written for pod's
// sandbox (containerd writes it from kubelet's DNS configuration; every
// container of the pod mounts it).
func (c *Cluster) PodResolvConf(ctx context.Context, pod *corev1.Pod) (string, error) {
	out, err := c.ExecInNode(ctx, "ctr", "--address", containerdSock, "-n", "k8s.io", "containers", "ls", "-q",
		`labels."io.kubernetes.pod.uid"==`+string(pod.UID)+`,labels."io.cri-containerd.kind"==sandbox`).Output()
	if err != nil {
		return "", fmt.Errorf("the sandbox of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	ids := strings.Fields(string(out))
	if len(ids) != 1 {
		return "", fmt.Errorf("pod %s/%s (uid %s) has %d sandboxes: %q", pod.Namespace, pod.Name, pod.UID, len(ids), ids)
	}
	b, err := c.ExecInNode(ctx, "cat", "/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/"+ids[0]+"/resolv.conf").Output()
	if err != nil {
		return "", fmt.Errorf("the resolv.conf of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return string(b), nil
}

// WriteStaticPod puts a static pod manifest (YAML or JSON) named name
// into kubelet's staticPodPath: written next to it and renamed into place,
// since kubelet reads a file written in place half-written.
func (c *Cluster) WriteStaticPod(name string, manifest []byte) error {
	tmp := filepath.Join(c.Dir, ".static-"+name)
	if err := os.WriteFile(tmp, manifest, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(c.Dir, "manifests", name))
}
