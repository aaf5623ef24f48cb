//go:build e2ecluster

package rig

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/resolvconf"
)

// waitReady waits for the pod to be Ready and returns it.
func waitReady(t *testing.T, c *Cluster, ns, name string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	if err := c.wait("pod "+ns+"/"+name+" Ready", "kubelet", 2*time.Minute, func(ctx context.Context) (bool, error) {
		p, err := c.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		pod = p
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		t.Fatal(err)
	}
	return pod
}

// TestNode is the rig's smoke test: a pod with ClusterFirst and a
// dnsConfig, scheduled by the scheduler, becomes Ready and gets exactly the
// resolv.conf pkg/resolvconf predicts for deploy/base's node profile; a
// Service's ClusterIP reaches a pod (dnsd) through kube-proxy's nftables
// rules; the network stays the rig's own.
func TestNode(t *testing.T) {
	c := Start(t, Options{Images: []string{filepath.Join(testenv.Root(t), "bin/images/dnsd.tar")}})
	ctx := context.Background()
	pods := c.Client.CoreV1().Pods("default")
	checkProfile(t, c)

	ndots := "2"
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "resolv"},
		Spec: corev1.PodSpec{
			DNSPolicy:  corev1.DNSClusterFirst,
			DNSConfig:  &corev1.PodDNSConfig{Searches: []string{"extra.example"}, Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &ndots}, {Name: "timeout", Value: ptr.To("1")}}},
			Containers: []corev1.Container{{Name: "pause", Image: pauseRef, ImagePullPolicy: corev1.PullNever}},
		},
	}
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := waitReady(t, c, "default", "resolv")
	if got.Spec.NodeName != NodeName {
		t.Errorf("pod on node %q, want %q (bound by the scheduler)", got.Spec.NodeName, NodeName)
	}
	prof, err := resolvconf.NewNodeProfile(c.Profile.Node)
	if err != nil {
		t.Fatal(err)
	}
	want, err := resolvconf.Compute(got, prof)
	if err != nil {
		t.Fatal(err)
	}
	file, err := c.PodResolvConf(ctx, got)
	if err != nil {
		t.Fatal(err)
	}
	if file != want.Config.Render() {
		t.Errorf("kubelet wrote for the pod:\n%s\npkg/resolvconf predicts:\n%s", file, want.Config.Render())
	}

	// dnsd from `make images`, on an unprivileged port, behind a Service.
	objects := "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: default}\n"
	if _, err := c.Client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "objects"}, Data: map[string]string{"cluster.yaml": objects},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "smoke-dnsd"}
	if _, err := pods.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "dnsd", Labels: labels},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "dnsd", Image: "ghcr.io/poddns/dnsd:v0.1.0", ImagePullPolicy: corev1.PullNever,
				Args:           []string{"--source=/objects/cluster.yaml", "--listen=0.0.0.0:5353"},
				VolumeMounts:   []corev1.VolumeMount{{Name: "objects", MountPath: "/objects"}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(5353)}}, PeriodSeconds: 1},
			}},
			Volumes: []corev1.Volume{{Name: "objects", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "objects"}}}}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc, err := c.Client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "smoke-dns"},
		Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{
			{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(5353)},
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dnsd := waitReady(t, c, "default", "dnsd")
	checkNetwork(t, c)
	addr := net.JoinHostPort(svc.Spec.ClusterIP, "53")
	var last error
	if err := c.wait("a DNS reply through "+addr, "kube-proxy", time.Minute, func(ctx context.Context) (bool, error) {
		last = exchangeTCP(ctx, c, addr)
		return last == nil, last
	}); err != nil {
		t.Fatalf("the Service %s (pod %s) not reachable through kube-proxy: %v", addr, dnsd.Status.PodIP, err)
	}
	// The API server reaches kubelet by the node's address (no lookup of
	// its name leaves the machine): logs through the API work.
	if _, err := pods.GetLogs("dnsd", &corev1.PodLogOptions{}).DoRaw(ctx); err != nil {
		t.Errorf("dnsd's logs through the API server: %v", err)
	}
	rules := nodeOutput(t, c, "nft", "list", "table", "ip", "kube-proxy")
	if !strings.Contains(rules, svc.Spec.ClusterIP) || !strings.Contains(rules, dnsd.Status.PodIP) {
		t.Errorf("kube-proxy's nftables table does not name the ClusterIP %s and the pod %s:\n%s", svc.Spec.ClusterIP, dnsd.Status.PodIP, rules)
	}
}

// exchangeTCP sends one DNS query over TCP to addr from inside the rig and
// checks that a reply to it comes back.
func exchangeTCP(ctx context.Context, c *Cluster, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := c.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	co := &dns.Conn{Conn: conn}
	q := new(dns.Msg)
	q.SetQuestion("kubernetes.default.svc.cluster.local.", dns.TypeA)
	if err := co.WriteMsg(q); err != nil {
		return err
	}
	r, err := co.ReadMsg()
	if err != nil {
		return err
	}
	if r.Id != q.Id || !r.Response {
		return fmt.Errorf("reply id %d response %v, want a reply to %d", r.Id, r.Response, q.Id)
	}
	return nil
}

// checkProfile: the node is what deploy/base/node-profile says — kubelet's
// running configuration (its /configz, through the API server) has the
// profile's cluster DNS, cluster domain and resolver file, and that file
// inside the rig holds the profile's content, whose nameserver is the
// rig's upstream.
func checkProfile(t *testing.T, c *Cluster) {
	t.Helper()
	ctx := context.Background()
	raw, err := c.Client.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes/" + NodeName + "/proxy/configz").DoRaw(ctx)
	if err != nil {
		t.Fatalf("kubelet's /configz: %v", err)
	}
	var z struct {
		KubeletConfig struct {
			ClusterDNS    []string `json:"clusterDNS"`
			ClusterDomain string   `json:"clusterDomain"`
			ResolvConf    string   `json:"resolvConf"`
		} `json:"kubeletconfig"`
	}
	if err := json.Unmarshal(raw, &z); err != nil {
		t.Fatalf("kubelet's /configz: %v\n%s", err, raw)
	}
	k := z.KubeletConfig
	if !slices.Equal(k.ClusterDNS, c.Profile.Node.ClusterDNS) || k.ClusterDomain != c.Profile.Node.ClusterDomain || k.ResolvConf != c.Profile.Node.ResolvConf {
		t.Errorf("kubelet runs with clusterDNS %v, clusterDomain %q, resolvConf %q; the profile says %v, %q, %q",
			k.ClusterDNS, k.ClusterDomain, k.ResolvConf, c.Profile.Node.ClusterDNS, c.Profile.Node.ClusterDomain, c.Profile.Node.ResolvConf)
	}
	if got := nodeOutput(t, c, "cat", k.ResolvConf); got != string(c.Profile.Node.ResolvConfData) {
		t.Errorf("the node's %s:\n%s\nthe profile's resolvConfContent:\n%s", k.ResolvConf, got, c.Profile.Node.ResolvConfData)
	}
	if want := []string{"10.96.0.10"}; !slices.Equal(c.Profile.ClusterDNS, want) {
		t.Errorf("deploy/base's profile has clusterDNS %v; the rig's Service CIDR and this test expect %v", c.Profile.ClusterDNS, want)
	}
}
