package rig

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/google/nftables"
)

// Host side effects. The rig runs in namespaces of its own, but some of
// what its programs do reaches the machine anyway: kubelet writes
// host-wide sysctls, kubelet and containerd make cgroups (the cgroupfs
// hierarchy is one for the machine), mount points are created on the
// machine's filesystem before a tmpfs covers them. A snapshot taken before
// the rig starts is what Close restores and then compares against; it is
// also saved in the state file, so that the next run can restore a machine
// a killed run left behind.

// watchedSysctls are the host-wide sysctls the rig's programs are known to
// write (kubelet's kernel tunables, kube-proxy's conntrack sizing) and a few
// that a bridge or netfilter set-up could change in the wrong namespace.
var watchedSysctls = []string{
	"vm/overcommit_memory",
	"vm/panic_on_oom",
	"kernel/panic",
	"kernel/panic_on_oops",
	"kernel/keys/root_maxkeys",
	"kernel/keys/root_maxbytes",
	"net/netfilter/nf_conntrack_max",
	"net/nf_conntrack_max",
	"net/ipv4/ip_forward",
	"net/ipv4/conf/all/route_localnet",
	"net/bridge/bridge-nf-call-iptables",
	"net/bridge/bridge-nf-call-ip6tables",
	"fs/inotify/max_user_instances",
	"fs/inotify/max_user_watches",
}

// watchedDirs are the paths the rig's programs use on a node. Inside the
// rig they are under a tmpfs, so none should appear on the machine; if one
// does (a killed run of an older rig, a program writing outside its
// tmpfs) it is removed. /run/netns is not watched: other tests on the
// machine make named network namespaces there.
var watchedDirs = []string{
	"/var/lib/kubelet",
	"/var/lib/containerd",
	"/var/lib/cni",
	"/var/lib/etcd",
	"/var/log/pods",
	"/var/log/containers",
	"/run/containerd",
	"/run/kubernetes",
	"/run/runc",
	"/etc/cni",
	"/etc/kubernetes",
	"/opt/cni",
	"/opt/containerd",
}

// rigPrograms are the executables only a rig runs on this machine; a process
// running one of them after Close is a leak. (etcd and kube-apiserver are
// not listed: envtest tests run them too. They run in the rig's PID
// namespace, which the process check covers.)
var rigPrograms = []string{
	"kubelet", "kube-proxy", "kube-scheduler", "kube-controller-manager",
	"containerd", "containerd-shim", "containerd-shim-runc-v2", "runc", "pause",
}

// cgroupMarkers are the cgroup names the rig's programs create: the rig's
// own parent (cgroupRoot), kubelet's kubepods and containerd's namespace.
var cgroupMarkers = []string{cgroupParent, "kubepods", "kubepods.slice", "k8s.io"}

// snapshot is the part of the machine's state the rig could change.
type snapshot struct {
	Sysctls map[string]string `json:"sysctls"`
	// Dirs are the watchedDirs that exist.
	Dirs []string `json:"dirs"`
	// Cgroups are the cgroup directories (relative to /sys/fs/cgroup, two
	// levels below each hierarchy) whose name is one of cgroupMarkers.
	Cgroups []string `json:"cgroups"`
	// Mounts are the machine's mount points but named network namespaces.
	Mounts []string `json:"mounts"`
	// Tables are the machine's nftables tables ("family name").
	Tables []string `json:"tables"`
	// Procs are the processes (pid exe) running a rigPrograms binary.
	Procs []string `json:"procs"`
}

func takeSnapshot() (snapshot, error) {
	s := snapshot{Sysctls: map[string]string{}}
	for _, k := range watchedSysctls {
		b, err := os.ReadFile(filepath.Join("/proc/sys", k))
		if err != nil {
			continue // not in this kernel
		}
		s.Sysctls[k] = strings.TrimSpace(string(b))
	}
	for _, d := range watchedDirs {
		if _, err := os.Lstat(d); err == nil {
			s.Dirs = append(s.Dirs, d)
		}
	}
	var err error
	if s.Cgroups, err = markedCgroups(); err != nil {
		return s, err
	}
	if s.Mounts, err = mountPoints(); err != nil {
		return s, err
	}
	if s.Tables, err = nftTables(); err != nil {
		return s, err
	}
	s.Procs = rigProcesses()
	return s, nil
}

// markedCgroups lists cgroup directories named as cgroupMarkers at the top
// of each hierarchy or one level below (kubelet's kubepods sits under
// cgroupParent).
func markedCgroups() ([]string, error) {
	var out []string
	hier, err := os.ReadDir(cgroupRoot)
	if err != nil {
		return nil, err
	}
	for _, h := range hier {
		base := filepath.Join(cgroupRoot, h.Name())
		_ = filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() || p == base {
				return nil
			}
			rel, _ := filepath.Rel(cgroupRoot, p)
			if slices.Contains(cgroupMarkers, d.Name()) {
				out = append(out, rel)
				return filepath.SkipDir
			}
			if strings.Count(rel, "/") >= 2 {
				return filepath.SkipDir
			}
			return nil
		})
	}
	slices.Sort(out)
	return out, nil
}

func mountPoints() ([]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// Named network namespaces are other tests' (ip netns add).
		if f := strings.Fields(sc.Text()); len(f) > 4 && !strings.HasPrefix(f[4], "/run/netns/") {
			out = append(out, f[4])
		}
	}
	slices.Sort(out)
	return out, nil
}

// nftFamilies names nftables' table families as nft prints them.
var nftFamilies = map[nftables.TableFamily]string{
	nftables.TableFamilyINet: "inet", nftables.TableFamilyIPv4: "ip", nftables.TableFamilyIPv6: "ip6",
	nftables.TableFamilyARP: "arp", nftables.TableFamilyNetdev: "netdev", nftables.TableFamilyBridge: "bridge",
}

// nftTables lists the machine's nftables tables (the test process's
// network namespace) as "family name".
func nftTables() ([]string, error) {
	conn, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	ts, err := conn.ListTables()
	if err != nil {
		return nil, fmt.Errorf("listing nftables tables: %w", err)
	}
	var tables []string
	for _, t := range ts {
		tables = append(tables, nftFamilies[t.Family]+" "+t.Name)
	}
	slices.Sort(tables)
	return tables, nil
}

func rigProcesses() []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil {
			continue
		}
		if slices.Contains(rigPrograms, filepath.Base(strings.TrimSuffix(exe, " (deleted)"))) {
			out = append(out, e.Name()+" "+exe)
		}
	}
	return out
}

// diff lists how now differs from the snapshot s, one line per difference.
func (s snapshot) diff(now snapshot) []string {
	var d []string
	for _, k := range watchedSysctls {
		if s.Sysctls[k] != now.Sysctls[k] {
			d = append(d, fmt.Sprintf("sysctl %s = %q, was %q", strings.ReplaceAll(k, "/", "."), now.Sysctls[k], s.Sysctls[k]))
		}
	}
	d = append(d, setDiff("directory", s.Dirs, now.Dirs)...)
	d = append(d, setDiff("cgroup", s.Cgroups, now.Cgroups)...)
	d = append(d, setDiff("mount", s.Mounts, now.Mounts)...)
	d = append(d, setDiff("nftables table", s.Tables, now.Tables)...)
	d = append(d, setDiff("process", s.Procs, now.Procs)...)
	return d
}

func setDiff(what string, was, now []string) []string {
	var d []string
	for _, x := range now {
		if !slices.Contains(was, x) {
			d = append(d, what+" added: "+x)
		}
	}
	for _, x := range was {
		if !slices.Contains(now, x) {
			d = append(d, what+" removed: "+x)
		}
	}
	return d
}

// restore undoes what the rig changed since s: it kills the rig's
// processes that are left, writes the sysctls back, removes the cgroups
// and directories that were not there and unmounts what is new under the
// watched directories. What it cannot undo is returned as an error; the
// caller compares a new snapshot with s afterwards.
func (s snapshot) restore() error {
	var errs []error
	now, err := takeSnapshot()
	if err != nil {
		return err
	}
	for _, p := range now.Procs {
		if slices.Contains(s.Procs, p) {
			continue
		}
		var pid int
		if _, err := fmt.Sscan(p, &pid); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for _, k := range watchedSysctls {
		if v, ok := s.Sysctls[k]; ok && now.Sysctls[k] != v {
			if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0o644); err != nil {
				errs = append(errs, fmt.Errorf("restoring sysctl %s: %w", k, err))
			}
		}
	}
	for _, m := range now.Mounts {
		if !slices.Contains(s.Mounts, m) && underAny(m, watchedDirs) {
			if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
				errs = append(errs, fmt.Errorf("unmounting %s: %w", m, err))
			}
		}
	}
	for _, c := range now.Cgroups {
		if !slices.Contains(s.Cgroups, c) {
			if err := removeCgroup(filepath.Join(cgroupRoot, c)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	// Deepest first, so that /etc/cni/net.d goes before /etc/cni.
	dirs := slices.Clone(now.Dirs)
	slices.Sort(dirs)
	slices.Reverse(dirs)
	for _, d := range dirs {
		if !slices.Contains(s.Dirs, d) {
			if err := os.RemoveAll(d); err != nil {
				errs = append(errs, fmt.Errorf("removing %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

func underAny(p string, dirs []string) bool {
	for _, d := range dirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// removeCgroup removes the cgroup dir and every cgroup below it, deepest
// first, waiting a little for the tasks of killed processes to leave.
func removeCgroup(dir string) error {
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	var last error
	for i := len(dirs) - 1; i >= 0; i-- {
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := syscall.Rmdir(dirs[i])
			if err == nil || errors.Is(err, syscall.ENOENT) {
				break
			}
			if time.Now().After(deadline) {
				last = fmt.Errorf("removing cgroup %s: %w", dirs[i], err)
				break
			}
			time.Sleep(100 * time.Millisecond) // killed tasks leaving the cgroup
		}
	}
	return last
}
