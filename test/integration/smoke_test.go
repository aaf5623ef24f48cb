// Package integration holds tests that run against a real kube-apiserver and
// etcd started by internal/testenv.
package integration

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/poddns/poddns/internal/testenv"
)

// TestSmokeControlPlane checks that the test control plane is a real API
// server: it defaults fields and labels the way the webhook and dnsd rely on.
func TestSmokeControlPlane(t *testing.T) {
	env := testenv.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "smoke"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	var gotNS corev1.Namespace
	if err := env.Client.Get(ctx, client.ObjectKey{Name: "smoke"}, &gotNS); err != nil {
		t.Fatalf("get namespace: %v", err)
	}
	if v, ok := gotNS.Labels[corev1.LabelMetadataName]; !ok || v != "smoke" {
		t.Errorf("namespace labels = %v, want %s=smoke set by the API server", gotNS.Labels, corev1.LabelMetadataName)
	}

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "smoke", Name: "p"},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/c:1"}},
		},
	}
	if pod.Spec.DNSPolicy != "" {
		t.Fatalf("test bug: the pod sent must not carry a dnsPolicy")
	}
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatalf("create pod: %v", err)
	}

	// Read it back from the server rather than trusting the object Create
	// filled in.
	var got corev1.Pod
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "smoke", Name: "p"}, &got); err != nil {
		t.Fatalf("get pod: %v", err)
	}
	if got.Spec.DNSPolicy != corev1.DNSClusterFirst {
		t.Errorf("spec.dnsPolicy = %q, want %q defaulted by the API server", got.Spec.DNSPolicy, corev1.DNSClusterFirst)
	}
	if got.Spec.DNSConfig != nil {
		t.Errorf("spec.dnsConfig = %+v, want nil (no webhook installed)", got.Spec.DNSConfig)
	}
	if got.UID == "" || got.ResourceVersion == "" {
		t.Errorf("pod read back without uid/resourceVersion: %+v", got.ObjectMeta)
	}

	// The Service ClusterIP range was widened (testenv.ServiceClusterIPRange):
	// a fixed ClusterIP from it, e.g. the conventional cluster DNS address,
	// must be accepted.
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "smoke", Name: "dns"},
		Spec: corev1.ServiceSpec{
			ClusterIP: "10.96.0.10",
			Ports:     []corev1.ServicePort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}},
		},
	}
	if err := env.Client.Create(ctx, svc); err != nil {
		t.Errorf("create service with clusterIP 10.96.0.10 (service-cluster-ip-range %s): %v", testenv.ServiceClusterIPRange, err)
	}
}
