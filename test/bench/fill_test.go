package bench

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/poddns/poddns/internal/testenv"
)

// scale is one cluster size of the benchmark.
type scale struct {
	Name       string
	Services   int // ClusterIP Services
	Headless   int // headless Services, 3 ready endpoints each (one EndpointSlice)
	Pods       int // Pods with status.podIP set
	Namespaces int
}

// scales are the sizes PODDNS_BENCH_SCALE selects. default is issue 7's;
// small and large have 1k and 50k ClusterIP Services; tiny is for trying
// the harness out.
var scales = map[string]scale{
	"tiny":    {"tiny", 100, 10, 300, 4},
	"small":   {"small", 1000, 100, 5000, 20},
	"default": {"default", 10000, 1000, 50000, 100},
	"large":   {"large", 50000, 1000, 50000, 100},
}

// Bench namespaces, Services and Pods are named so that the query files
// can be written from the indexes alone.
func nsName(i int) string { return fmt.Sprintf("ns-%d", i) }

// podIP is the address of Pod i: 10.64.0.0/10 counted up from 10.64.0.1.
func podIP(i int) string {
	a := netip.MustParseAddr("10.64.0.1").As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += uint32(i)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
}

// serviceIP is the ClusterIP of svc-i, set in the Service rather than
// allocated: the API server allocates ClusterIPs several times slower under
// concurrent creates (10.100.0.0/16 and up, inside the test API server's
// 10.96.0.0/12 and off the addresses it allocates first).
func serviceIP(i int) string {
	v := uint32(10)<<24 | uint32(100)<<16 + uint32(i+1)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
}

// endpointIP is the address of endpoint k of headless Service i (10.32.0.0/11).
func endpointIP(i, k int) string {
	v := uint32(10)<<24 | uint32(32)<<16 + uint32(i*3+k+1)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
}

// filled is what the fill created that the queries need.
type filled struct {
	clusterIPs []string // of svc-i
}

// benchClient is a clientset with client-side rate limits raised for the fill.
func benchClient(t *testing.T, cfg *rest.Config) kubernetes.Interface {
	t.Helper()
	c := rest.CopyConfig(cfg)
	c.QPS, c.Burst = 5000, 10000
	c.ContentType = "application/vnd.kubernetes.protobuf" // cheaper for the API server than JSON
	cs, err := kubernetes.NewForConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// fill creates the namespaces, Services, headless Services with their
// EndpointSlices, and Pods (status.podIP set through the status
// subresource) of sc, with a bounded pool of concurrent writers.
func fill(t *testing.T, cs kubernetes.Interface, sc scale) filled {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 40*time.Minute)
	defer cancel()
	const workers = 48
	start := time.Now()
	step := func(what string, n int, fn func(ctx context.Context, i int) error) {
		t.Helper()
		s := time.Now()
		if err := testenv.ParallelCreate(ctx, n, workers, fn); err != nil {
			t.Fatalf("fill %s: %v", what, err)
		}
		t.Logf("fill: %d %s in %s (%.0f/s)", n, what, time.Since(s).Round(time.Millisecond), float64(n)/time.Since(s).Seconds())
	}
	step("namespaces", sc.Namespaces, func(ctx context.Context, i int) error {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nsName(i)}}, metav1.CreateOptions{})
		return err
	})
	var fl filled
	fl.clusterIPs = make([]string, sc.Services)
	port := []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}
	step("ClusterIP Services", sc.Services, func(ctx context.Context, i int) error {
		s, err := cs.CoreV1().Services(nsName(i%sc.Namespaces)).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("svc-%d", i)},
			Spec:       corev1.ServiceSpec{ClusterIP: serviceIP(i), Ports: port},
		}, metav1.CreateOptions{})
		if err == nil {
			fl.clusterIPs[i] = s.Spec.ClusterIP
		}
		return err
	})
	step("headless Services and EndpointSlices", sc.Headless, func(ctx context.Context, i int) error {
		return testenv.CreateHeadless(ctx, cs, nsName(i%sc.Namespaces), fmt.Sprintf("hl-%d", i), []string{endpointIP(i, 0), endpointIP(i, 1), endpointIP(i, 2)})
	})
	step("Pods (create, then status.podIP)", sc.Pods, func(ctx context.Context, i int) error {
		return createPod(ctx, cs, nsName(i%sc.Namespaces), fmt.Sprintf("pod-%d", i), podIP(i), podNode(sc, i))
	})
	t.Logf("fill: %s scale (%d Services, %d headless, %d Pods in %d namespaces) in %s",
		sc.Name, sc.Services, sc.Headless, sc.Pods, sc.Namespaces, time.Since(start).Round(time.Millisecond))
	return fl
}

// podsPerNode is how many of the fill's Pods share a node: kubelet's
// default maxPods, as the "~110 on the node".
const podsPerNode = 110

// nodeLocalNode is the node the node-local dnsd serves (and the
// bench-walker Pod's).
const nodeLocalNode = "node-0"

// podNode is the node of Pod i: the Pods spread round-robin over
// Pods/podsPerNode nodes, node-0 to node-<n-1>.
func podNode(sc scale, i int) string {
	return fmt.Sprintf("node-%d", i%max(1, sc.Pods/podsPerNode))
}

// createPod creates a Running Pod on node with ip as its address
// (testenv.CreateRunningPod).
func createPod(ctx context.Context, cs kubernetes.Interface, ns, name, ip, node string) error {
	return testenv.CreateRunningPod(ctx, cs, ns, name, node, ip, "192.0.2.200")
}
