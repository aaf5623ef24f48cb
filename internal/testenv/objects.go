package testenv

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Create creates objs through c, in order; an error ends the test.
func Create(t testing.TB, c client.Client, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := c.Create(t.Context(), o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

// CreateRunningPod creates a Pod ns/name on node, then writes what kubelet
// would (envtest runs none) through the status subresource: phase Running,
// ip as its address and, if not empty, hostIP as its node's. A Pod that
// exists already (a retried fill) only gets its status written, once.
func CreateRunningPod(ctx context.Context, cs kubernetes.Interface, ns, name, node, ip, hostIP string) error {
	p, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}, NodeName: node},
	}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		p, err = cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		return err
	}
	if p.Status.PodIP == ip {
		return nil
	}
	p.Status.Phase = corev1.PodRunning
	p.Status.PodIP = ip
	p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	if hostIP != "" {
		p.Status.HostIP = hostIP
		p.Status.HostIPs = []corev1.HostIP{{IP: hostIP}}
	}
	_, err = cs.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	return err
}

// CreateHeadless creates a headless Service ns/name with one port, http/80,
// and its EndpointSlice name-1 with one ready endpoint per address in ips,
// for tests and benchmarks that fill an API server. A Service that exists
// already (a retried fill) is kept.
func CreateHeadless(ctx context.Context, cs kubernetes.Interface, ns, name string, ips []string) error {
	_, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	ready := true
	var eps []discoveryv1.Endpoint
	for _, ip := range ips {
		eps = append(eps, discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}})
	}
	pn, proto, pp := "http", corev1.ProtocolTCP, int32(80)
	_, err = cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   eps,
		Ports:       []discoveryv1.EndpointPort{{Name: &pn, Protocol: &proto, Port: &pp}},
	}, metav1.CreateOptions{})
	return err
}
