package resolvconf

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BenchmarkCompute measures the reference case: a ClusterFirst pod
// whose dnsConfig adds two searches and two options, on a node with three
// host search domains.
func BenchmarkCompute(b *testing.B) {
	p := mustProfile(b, NodeConfig{
		ClusterDomain:  "cluster.local",
		ClusterDNS:     []string{"10.96.0.10"},
		ResolvConf:     DefaultResolvConf,
		ResolvConfData: []byte("nameserver 10.0.0.2\nsearch corp.example ec2.internal us-east-1.example\noptions edns0\n"),
	})
	two := "2"
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "shop"},
		Spec: corev1.PodSpec{DNSPolicy: corev1.DNSClusterFirst, DNSConfig: &corev1.PodDNSConfig{
			Searches: []string{"extra.example", "shop.example"},
			Options:  []corev1.PodDNSConfigOption{{Name: "ndots", Value: &two}, {Name: "single-request-reopen"}},
		}},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compute(pod, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkComputeAndRender adds the file text to the computation.
func BenchmarkComputeAndRender(b *testing.B) {
	p := mustProfile(b, NodeConfig{ClusterDomain: "cluster.local", ClusterDNS: []string{"10.96.0.10"}, ResolvConf: DefaultResolvConf, ResolvConfData: []byte(testNodeFile)})
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "shop"}, Spec: corev1.PodSpec{DNSPolicy: corev1.DNSClusterFirst}}
	b.ReportAllocs()
	for b.Loop() {
		res, err := Compute(pod, p)
		if err != nil {
			b.Fatal(err)
		}
		_ = res.Config.Render()
	}
}
