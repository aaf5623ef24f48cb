// Package deploy holds the acceptance test of deploy/: the kustomize base and
// every overlay are rendered with kustomize's Go API, every object is decoded
// strictly with typed schemes (client-go's and cert-manager's), applied with
// a server-side dry run to a real kube-apiserver that has cert-manager's
// CRDs, and the references between the objects are checked (issuers, the
// serving certificate and its Secret, CA injection, Services, ports, probes,
// mounted ConfigMaps, the programs' configuration files and flags).
//
// It exists because a wrong webhook install can block or silently skip pod
// DNS cluster-wide: users install exactly these files, so they are tested
// the way an API server and the two programs will read them.
package deploy
