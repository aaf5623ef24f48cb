//go:build e2ecluster

package rig

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// nodeOutput runs a command inside the rig and returns its output.
func nodeOutput(t *testing.T, c *Cluster, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := c.ExecInNode(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v in the rig: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// checkNetwork: the rig's network namespace holds lo and the bridge (and,
// with pods, their veths), the bridge carries the node's address, the
// Service CIDR is routed onto it, and there is no default route.
func checkNetwork(t *testing.T, c *Cluster) {
	t.Helper()
	for _, l := range strings.Split(strings.TrimSpace(nodeOutput(t, c, "ip", "-o", "link", "show")), "\n") {
		f := strings.Fields(l)
		name := strings.TrimSuffix(strings.SplitN(f[1], "@", 2)[0], ":")
		if name != "lo" && name != bridge && !strings.HasPrefix(name, "veth") {
			t.Errorf("link %q in the rig's network namespace; want only lo, %s and pod veths", name, bridge)
		}
	}
	routes := nodeOutput(t, c, "ip", "route", "show")
	if strings.Contains(routes, "default") {
		t.Errorf("the rig has a default route:\n%s", routes)
	}
	if !strings.Contains(routes, ServiceCIDR+" dev "+bridge) {
		t.Errorf("no route for %s onto %s:\n%s", ServiceCIDR, bridge, routes)
	}
	if addr := nodeOutput(t, c, "ip", "-o", "-4", "addr", "show", "dev", bridge); !strings.Contains(addr, " "+NodeIP+"/") {
		t.Errorf("%s does not carry the node's address %s: %s", bridge, NodeIP, addr)
	}
}

// TestControlPlane: etcd and the API server inside the rig; the kubernetes
// Service's endpoint is the node's address (in-cluster clients reach it),
// the network is the rig's own, and the node's upstream resolver answers
// inside the rig. Close then finds the machine as it was.
func TestControlPlane(t *testing.T) {
	c := Start(t, Options{ControlPlaneOnly: true})
	checkNetwork(t, c)
	ctx := context.Background()
	if err := c.wait("the kubernetes Service's endpoint", "kube-apiserver", 30*time.Second, func(ctx context.Context) (bool, error) {
		s, err := c.Client.DiscoveryV1().EndpointSlices("default").Get(ctx, "kubernetes", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, e := range s.Endpoints {
			for _, p := range s.Ports {
				if slices.Contains(e.Addresses, NodeIP) && p.Port != nil && *p.Port == APIServerPort {
					return true, nil
				}
			}
		}
		return false, nil
	}); err != nil {
		t.Fatal(err)
	}
	svc, err := c.Client.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil || svc.Spec.ClusterIP != KubernetesServiceIP {
		t.Fatalf("kubernetes Service: %v, ClusterIP %v; want %s", err, svc.Spec.ClusterIP, KubernetesServiceIP)
	}
	before := c.UpstreamQueries()
	out := nodeOutput(t, c, "getent", "ahostsv4", "example.org")
	if !strings.Contains(out, UpstreamAnswer) || c.UpstreamQueries() <= before {
		t.Errorf("getent inside the rig through its /etc/resolv.conf: %q, upstream queries %d→%d; want %s from the rig's upstream", out, before, c.UpstreamQueries(), UpstreamAnswer)
	}
}
