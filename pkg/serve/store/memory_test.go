package store_test

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/serve/store"
)

// decoded round-trips in through protobuf into out, as the API source gets
// objects: every string is then an allocation of its own, as in dnsd.
func decoded[T interface {
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
}](t *testing.T, in, out T) T {
	b, err := in.Marshal()
	if err == nil {
		err = out.Unmarshal(b)
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRecordMemory measures the live heap of a synced store per Pod and per
// Service (a ClusterIP one, and a headless one with a slice of 3 endpoints)
// and holds them under the figures pkg/serve/sizing's formula is built on
// (with room): a record that grows fails here before it shows in the
// sizing test.
func TestRecordMemory(t *testing.T) {
	const n = 20000
	addr := func(base string, i int) netip.Addr {
		a := netip.MustParseAddr(base).As4()
		v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) + uint32(i)
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	measure := func(fill func(st *store.Store)) float64 {
		before := testenv.LiveHeap()
		st := store.New()
		fill(st)
		st.SetSynced()
		after := testenv.LiveHeap()
		runtime.KeepAlive(st)
		return float64(after-before) / n
	}
	pod := measure(func(st *store.Store) {
		var ps []*store.Pod
		for i := range n {
			ip := addr("10.64.0.1", i).String()
			p, _ := store.ToPod(decoded(t, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("app-7d9f8b6c5d-%05d", i), Namespace: fmt.Sprintf("team-%d", i%50), UID: "0f8e1c7a-3b2d-4e5f-9a8b-7c6d5e4f3a2b"},
				Spec:   corev1.PodSpec{DNSPolicy: corev1.DNSClusterFirst},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}}, &corev1.Pod{}))
			ps = append(ps, p)
		}
		st.ReplacePods(ps)
	})
	svc := measure(func(st *store.Store) {
		var ss []*store.Service
		for i := range n {
			s, _ := store.ToService(decoded(t, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("service-%05d", i), Namespace: fmt.Sprintf("team-%d", i%50)},
				Spec: corev1.ServiceSpec{ClusterIP: addr("10.100.0.1", i).String(), Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}, &corev1.Service{}))
			ss = append(ss, s)
		}
		st.ReplaceServices(ss)
	})
	ready := true
	headless := measure(func(st *store.Store) {
		var ss []*store.Service
		var sls []*store.EndpointSlice
		for i := range n {
			ns, name := fmt.Sprintf("team-%d", i%50), fmt.Sprintf("headless-%05d", i)
			s, _ := store.ToService(decoded(t, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
				Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}, &corev1.Service{}))
			ss = append(ss, s)
			var eps []discoveryv1.Endpoint
			for k := range 3 {
				eps = append(eps, discoveryv1.Endpoint{Addresses: []string{addr("10.32.0.1", 3*i+k).String()}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}})
			}
			pn, pp := "http", int32(80)
			sl, _ := store.ToEndpointSlice(decoded(t, &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: name + "-abcde", Namespace: ns,
				Labels: map[string]string{discoveryv1.LabelServiceName: name}}, AddressType: discoveryv1.AddressTypeIPv4, Endpoints: eps,
				Ports: []discoveryv1.EndpointPort{{Name: &pn, Port: &pp}}}, &discoveryv1.EndpointSlice{}))
			sls = append(sls, sl)
		}
		st.ReplaceServices(ss)
		st.ReplaceEndpointSlices(sls)
	})
	t.Logf("live heap of a synced store: %.0f B per Pod, %.0f B per ClusterIP Service, %.0f B per headless Service with 3 endpoints", pod, svc, headless)
	// Measured 492, 639 and 2351 B (go1.26, amd64); sizing's formula
	// counts 1.5 kB per Pod and 3 kB per Service with the GC's headroom.
	for _, c := range []struct {
		what      string
		got, most float64
	}{{"Pod", pod, 560}, {"ClusterIP Service", svc, 800}, {"headless Service with 3 endpoints", headless, 2900}} {
		if c.got > c.most {
			t.Errorf("%.0f B of live heap per %s, more than %.0f: sizing's formula (pkg/serve/sizing) needs measuring again", c.got, c.what, c.most)
		}
	}
}
