package deploy

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"testing"

	"github.com/poddns/poddns/pkg/serve/daemon"
)

// nodeLocalName is the node-local dnsd's DaemonSet (in kube-system).
const nodeLocalName = "poddns-dnsd-node-local"

// checkNodeLocal holds the node-local DaemonSet (deploy/overlays/node-local)
// to issue 11's list and to the one exception checkSecurity makes for it:
//
//   - hostNetwork, dnsPolicy Default, priority system-node-critical,
//     nodeSelector kubernetes.io/os: linux, every taint tolerated;
//   - RollingUpdate with maxSurge 1 and maxUnavailable 0, and no container
//     ports (a hostNetwork pod's ports are host ports: the surge pod could
//     not be scheduled);
//   - UID 0 with every capability dropped but exactly NET_ADMIN and
//     NET_BIND_SERVICE; read-only root filesystem, no privilege escalation,
//     RuntimeDefault seccomp; a memory limit of at most 64Mi, which dnsd is
//     told (checkGoMemoryEnv);
//   - the kubelet config mounted read-only from the host at the path the
//     config names, the lock file's directory a hostPath, probes on the
//     health address of its configuration, which has a nodeLocal block.
func checkNodeLocal(t *testing.T, r *rendering, _ binaries) []string {
	var msgs []string
	for _, ds := range all[daemonSet](r) {
		bad := func(format string, args ...any) {
			msgs = append(msgs, fmt.Sprintf("DaemonSet %s: ", key(ds.Namespace, ds.Name))+fmt.Sprintf(format, args...))
		}
		if ds.Name != nodeLocalName {
			bad("only %s may be a DaemonSet", nodeLocalName)
			continue
		}
		ps := ds.Spec.Template.Spec
		if !ps.HostNetwork || ps.DNSPolicy != corev1.DNSDefault {
			bad("hostNetwork %v, dnsPolicy %q: want true and Default", ps.HostNetwork, ps.DNSPolicy)
		}
		if ps.PriorityClassName != "system-node-critical" {
			bad("priorityClassName %q, want system-node-critical", ps.PriorityClassName)
		}
		if ps.NodeSelector["kubernetes.io/os"] != "linux" {
			bad("nodeSelector %v lacks kubernetes.io/os: linux", ps.NodeSelector)
		}
		if !slices.ContainsFunc(ps.Tolerations, func(t corev1.Toleration) bool {
			return t.Key == "" && t.Operator == corev1.TolerationOpExists && t.Effect == ""
		}) {
			bad("does not tolerate every taint (operator Exists without key or effect)")
		}
		u := ds.Spec.UpdateStrategy
		if u.Type != appsv1.RollingUpdateDaemonSetStrategyType || u.RollingUpdate == nil || u.RollingUpdate.MaxSurge == nil ||
			u.RollingUpdate.MaxSurge.String() != "1" || u.RollingUpdate.MaxUnavailable == nil || u.RollingUpdate.MaxUnavailable.String() != "0" {
			bad("update strategy %+v: want RollingUpdate with maxSurge 1 and maxUnavailable 0", u)
		}
		if ps.SecurityContext == nil || ps.SecurityContext.SeccompProfile == nil || ps.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			bad("pod seccompProfile is not RuntimeDefault")
		}
		if len(ps.Containers) != 1 {
			bad("%d containers, want 1", len(ps.Containers))
			continue
		}
		c := &ps.Containers[0]
		if len(c.Ports) > 0 {
			bad("container ports %v: on the host network they are host ports, and the surge pod of an update could not be scheduled", c.Ports)
		}
		sc := c.SecurityContext
		if sc == nil || sc.Capabilities == nil {
			bad("no securityContext with capabilities")
			continue
		}
		if !slices.Contains(sc.Capabilities.Drop, "ALL") {
			bad("capabilities do not drop ALL")
		}
		added := slices.Clone(sc.Capabilities.Add)
		slices.Sort(added)
		if !slices.Equal(added, []corev1.Capability{"NET_ADMIN", "NET_BIND_SERVICE"}) {
			bad("adds capabilities %v, want exactly [NET_ADMIN NET_BIND_SERVICE]", added)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			bad("readOnlyRootFilesystem is not true")
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			bad("allowPrivilegeEscalation is not false")
		}
		if sc.Privileged != nil && *sc.Privileged {
			bad("privileged")
		}
		if uid := sc.RunAsUser; uid == nil || *uid != 0 {
			bad("runAsUser %v, want 0 (nftables and netlink need root with NET_ADMIN)", uid)
		}
		if lim := c.Resources.Limits.Memory(); lim.IsZero() || lim.Cmp(resource.MustParse("64Mi")) > 0 {
			bad("memory limit %s, want at most 64Mi", lim)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
			bad("no cpu and memory requests")
		}
		for _, m := range checkGoMemoryEnv("the node-local dnsd", c) {
			bad("%s", m)
		}

		// Its configuration, read with dnsd's parser.
		asDeployment := &appsv1.Deployment{ObjectMeta: ds.ObjectMeta, Spec: appsv1.DeploymentSpec{Template: ds.Spec.Template}}
		cfg, err := readDNSDConfig(r, asDeployment, c)
		if err != nil {
			bad("%v", err)
			continue
		}
		msgs = append(msgs, checkNodeLocalConfig(ds, c, cfg)...)
		// dnsd's own validation, with the node name the downward API gives.
		if cfg.NodeLocal != nil {
			nl := cfg.NodeLocal.WithDefaults() // as dnsd's Load does
			nl.NodeName = "node-1"
			cfg.NodeLocal = &nl
			if err := validateDNSDConfig(t, r, asDeployment, c, cfg); err != nil {
				bad("%v", err)
			}
		}
	}
	return msgs
}

// checkNodeLocalConfig: the configuration has a nodeLocal block whose
// files are mounted as they must be, and the probes reach its health
// address.
func checkNodeLocalConfig(ds *appsv1.DaemonSet, c *corev1.Container, cfg daemon.Config) []string {
	var msgs []string
	bad := func(format string, args ...any) {
		msgs = append(msgs, fmt.Sprintf("DaemonSet %s: ", key(ds.Namespace, ds.Name))+fmt.Sprintf(format, args...))
	}
	nl := cfg.NodeLocal
	if nl == nil {
		bad("its dnsd configuration has no nodeLocal block")
		return msgs
	}
	if !slices.Contains(nl.IPs, "169.254.20.10") {
		bad("nodeLocal.ips %v lack the link-local IP 169.254.20.10", nl.IPs)
	}
	// mountOf returns the volume mounted at a directory holding path.
	mountOf := func(path string) (*corev1.Volume, *corev1.VolumeMount) {
		for i, m := range c.VolumeMounts {
			if path == m.MountPath || strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
				for j, v := range ds.Spec.Template.Spec.Volumes {
					if v.Name == m.Name {
						return &ds.Spec.Template.Spec.Volumes[j], &c.VolumeMounts[i]
					}
				}
			}
		}
		return nil, nil
	}
	if nl.KubeletConfig == "" {
		bad("nodeLocal.kubeletConfig is not set: completion would be off")
	} else if v, m := mountOf(nl.KubeletConfig); v == nil || v.HostPath == nil || !m.ReadOnly {
		bad("nodeLocal.kubeletConfig %s is not mounted read-only from the host", nl.KubeletConfig)
	}
	lock := nl.LockFile
	if lock == "" {
		lock = "/run/poddns/" + nl.Interface + ".lock"
	}
	if v, _ := mountOf(lock); v == nil || v.HostPath == nil || v.HostPath.Path != filepath.Dir(lock) {
		bad("the lock file %s is not in a hostPath directory of the same path: instances on one node would not share it", lock)
	}
	for what, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil {
			bad("no %s httpGet probe", what)
			continue
		}
		addr := fmt.Sprintf("%s:%s", p.HTTPGet.Host, p.HTTPGet.Port.String())
		if addr != cfg.HealthListen {
			bad("%s probe on %s, but dnsd serves health on %s", what, addr, cfg.HealthListen)
		}
	}
	return msgs
}
