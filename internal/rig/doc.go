// Package rig runs a one-node Kubernetes cluster for tests, the way kind
// runs a node inside a container but without a container engine: etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy
// (nftables mode), containerd with runc and the CNI bridge, and kubelet, all
// inside network, mount and PID namespaces of their own.
//
// It exists because envtest has no kubelet: nothing there proves what
// kubelet really writes into a pod's /etc/resolv.conf, that the API server
// calls the webhook over its Service, or that dnsd answers pods through the
// cluster DNS Service (issue 17, "deploy/ for real").
//
// What a test gets from [Start]: a cluster whose node is Ready, with
//   - the rig's network namespace holding only lo, the bridge cni0 (the
//     pods' gateway and the node's address, [NodeIP]; no masquerade), pod
//     veths and a route for the Service CIDR onto the bridge; no default
//     route, so nothing leaves the machine;
//   - the API server advertised on [NodeIP], serving a certificate for
//     10.96.0.1, kubernetes.default.svc and [NodeIP], so in-cluster clients
//     work through the kubernetes Service; ServiceAccount admission on;
//   - kubelet configured as deploy/base/node-profile's profile says (cluster
//     DNS, cluster domain, the node's resolv.conf bind-mounted over
//     /etc/resolv.conf inside the rig), syncFrequency short;
//   - the profile's upstream resolver (its nameserver) living inside the rig;
//   - images without a registry: OCI archives imported with ctr
//     ([Cluster.ImportImage]); pods use imagePullPolicy: Never. The sandbox
//     image is `make images`' pause.
//
// The binaries: kube-apiserver and etcd from bin/envtest (`make
// envtest-assets`), the node programs from bin/node (`make node-assets`,
// hack/node-assets.sh), containerd, runc, the CNI plugins and nft from
// Debian (`make deps`), the pause image from bin/images (`make images`).
// A missing one fails the test under CI=true and skips it elsewhere
// (internal/testenv).
//
// The machine: rigs are serialized machine-wide with a lock; a snapshot of
// the host (watched sysctls, nftables tables, mounts, cgroups, directories,
// rig processes) is taken at start, saved in a state file and restored and
// compared at [Cluster.Close] — a difference fails the test. A run that
// finds the state file of a killed run restores that run's snapshot first.
// KEEP_RIG=1 leaves the cluster running (and prints how to reach it); the
// next run cleans it up. On failure the components' logs, the events and
// the pods land under bin/rig-logs/<test>/.
//
// This package is test support: only _test.go files may import it. Its own
// tests need root and build tag e2ecluster (`make e2e-cluster`).
package rig
