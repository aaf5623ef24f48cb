package rig

import (
	"fmt"
	"path/filepath"
	"strings"
)

const containerdSock = "/run/containerd/containerd.sock"

// nodeConfigs returns the node programs' configuration files, by name in
// the rig's directory dir.
func nodeConfigs(dir string, p Profile) map[string][]byte {
	return map[string][]byte{
		"containerd.toml":          []byte(containerdConfig(dir)),
		"kubelet.yaml":             []byte(kubeletConfig(dir, p)),
		"kube-proxy.yaml":          []byte(kubeProxyConfig(dir)),
		"net.d/10-bridge.conflist": []byte(cniConfig()),
	}
}

// containerdConfig: Debian's containerd 1.6 (config version 2). Everything
// it writes is under the rig's tmpfs directories. restrict_oom_score_adj
// because the machine lacks CAP_SYS_RESOURCE (runc fails to raise a
// container's oom_score_adj otherwise); the sandbox image is `make images`'
// pause, imported before kubelet starts.
func containerdConfig(dir string) string {
	return fmt.Sprintf(`version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = "/var/lib/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
`, containerdSock, pauseRef, cniBinDir, filepath.Join(dir, "net.d"))
}

// kubeletConfig: cgroups v1 with the cgroupfs driver, rooted in the rig's
// cgroup; DNS as the node profile says; a short syncFrequency so that
// ConfigMap updates reach pods in seconds; no eviction or image GC on a
// small test machine.
func kubeletConfig(dir string, p Profile) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
failSwapOn: false
cgroupDriver: cgroupfs
cgroupRoot: /%s
containerRuntimeEndpoint: unix://%s
staticPodPath: %s
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %s}
authorization: {mode: Webhook}
clusterDomain: %s
clusterDNS: [%s]
resolvConf: /etc/resolv.conf
syncFrequency: 2s
fileCheckFrequency: 2s
address: %s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
podCIDR: %s
rotateCertificates: false
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "0%%"
  nodefs.available: "0%%"
  nodefs.inodesFree: "0%%"
  imagefs.available: "0%%"
`, cgroupParent, containerdSock, filepath.Join(dir, "manifests"), filepath.Join(dir, "ca.crt"),
		p.ClusterDomain, strings.Join(p.ClusterDNS, ", "), NodeIP, PodCIDR)
}

// kubeProxyConfig: nftables mode; conntrack sizing left alone (its sysctls
// are the machine's); the pod CIDR tells local traffic from the rest.
func kubeProxyConfig(dir string) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
clientConnection:
  kubeconfig: %s
hostnameOverride: %s
clusterCIDR: %s
bindAddress: %s
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`, filepath.Join(dir, "admin.kubeconfig"), NodeName, PodCIDR, NodeIP)
}

// cniConfig: the bridge plugin on the rig's bridge, which is the pods'
// gateway; no masquerade (nothing leaves the rig); hairpin so that a pod
// reaches itself through a Service.
func cniConfig() string {
	return fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "poddns-rig",
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": %q, "gateway": %q}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "loopback"}
  ]
}
`, bridge, PodCIDR, NodeIP)
}
