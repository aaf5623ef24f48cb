package rig

import (
	"strings"
	"testing"
)

// TestSnapshotDiff: each kind of host change the rig could leave is
// reported, and an unchanged machine gives no difference.
func TestSnapshotDiff(t *testing.T) {
	base := func() snapshot {
		return snapshot{
			Sysctls: map[string]string{"kernel/panic": "1", "vm/overcommit_memory": "0"},
			Dirs:    []string{"/var/lib/cni"}, Cgroups: []string{"memory/other"},
			Mounts: []string{"/", "/proc"}, Tables: []string{"inet filter"}, Procs: []string{"1 /sbin/init"},
		}
	}
	tests := []struct {
		name   string
		change func(*snapshot)
		want   string
	}{
		{"unchanged", func(*snapshot) {}, ""},
		{"sysctl", func(s *snapshot) { s.Sysctls["kernel/panic"] = "10" }, `sysctl kernel.panic = "10", was "1"`},
		{"directory", func(s *snapshot) { s.Dirs = append(s.Dirs, "/var/lib/kubelet") }, "directory added: /var/lib/kubelet"},
		{"cgroup", func(s *snapshot) { s.Cgroups = append(s.Cgroups, "pids/poddns-rig") }, "cgroup added: pids/poddns-rig"},
		{"mount", func(s *snapshot) { s.Mounts = s.Mounts[:1] }, "mount removed: /proc"},
		{"table", func(s *snapshot) { s.Tables = append(s.Tables, "ip kube-proxy") }, "nftables table added: ip kube-proxy"},
		{"process", func(s *snapshot) { s.Procs = append(s.Procs, "42 /usr/bin/containerd") }, "process added: 42 /usr/bin/containerd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := base()
			tt.change(&now)
			got := strings.Join(base().diff(now), "\n")
			if got != tt.want {
				t.Errorf("diff = %q, want %q", got, tt.want)
			}
		})
	}
}
