// Package cluster runs deploy/ as users install it on the one-node cluster
// of internal/rig (issue 17, "the real thing, end to end"): the images of
// `make images` imported into the node's containerd, deploy/'s manifests
// changed only in image references (internal/deployrender), and what
// cert-manager would write made through the API from the applied
// Certificates (internal/certstandin).
//
// It proves what envtest cannot: a cluster running CoreDNS as kubeadm
// installs it (bin/coredns packaged by `make images`) switches to dnsd with
// deploy/overlays/replace-coredns as README's "Taking over from CoreDNS"
// says, under load, without losing a lookup; the API server calls the
// webhook over its Service, kubelet writes exactly the resolv.conf the
// webhook's annotation predicts, glibc and musl pods resolve through dnsd
// behind the cluster DNS ClusterIP (with completion on, an external name
// costs 2 queries), a policy change reaches the running webhook without a
// restart, rolling dnsd under 50 lookups/s per glibc and musl client loses
// none, the audit overlay changes no pod, the webhook fails open, pods are
// created as before once poddns is uninstalled (back to CoreDNS first), and
// beside CoreDNS deploy/overlays/beside-coredns moves one namespace's pods
// to dnsd while the others keep CoreDNS.
//
// The tests need root and build tag e2ecluster (`make e2e-cluster`); with
// CI=true a missing prerequisite fails them.
package cluster
