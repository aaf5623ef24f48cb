package store_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/poddns/poddns/pkg/serve/store"
)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestConverters(t *testing.T) {
	svc, ok := store.ToService(&corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "Web", Annotations: map[string]string{store.TolerateUnreadyAnnotation: "true"}},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.1", ClusterIPs: []string{"10.96.0.1", "fd00::1"},
			Ports: []corev1.ServicePort{{Name: "HTTP", Port: 80}, {Port: 53, Protocol: corev1.ProtocolUDP}}},
	})
	want := &store.Service{Namespace: "default", Name: "web", Kind: store.ClusterIP, ClusterIPs: []netip.Addr{ip("10.96.0.1"), ip("fd00::1")},
		Ports: []store.Port{{Name: "http", Protocol: "tcp", Port: 80}, {Protocol: "udp", Port: 53}}, TolerateUnready: true}
	if !ok || !reflect.DeepEqual(svc, want) {
		t.Errorf("ToService = %+v, want %+v", svc, want)
	}
	ext, _ := store.ToService(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "e", Namespace: "ns"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "Example.COM"}})
	if ext.Kind != store.ExternalName || ext.ExternalName != "example.com." {
		t.Errorf("ExternalName = %+v", ext)
	}
	hl, _ := store.ToService(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "h"}, Spec: corev1.ServiceSpec{ClusterIP: "None"}})
	if hl.Kind != store.Headless || len(hl.ClusterIPs) != 0 {
		t.Errorf("headless = %+v", hl)
	}

	f, tr := false, true
	name, port, host := "http", int32(8080), "Host-0"
	sl, ok := store.ToEndpointSlice(&discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "s", Namespace: "ns", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &port}, {Name: &name}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.0.0.1"}, Hostname: &host, Conditions: discoveryv1.EndpointConditions{Ready: &tr}},
			{Addresses: []string{"10.0.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: &f}},
			{Addresses: []string{"10.0.0.3"}}, // ready unknown: ready
			{Addresses: []string{"bogus"}},
		},
	})
	wantSl := &store.EndpointSlice{Namespace: "ns", Name: "s", Service: "web", Ports: []store.Port{{Name: "http", Protocol: "tcp", Port: 8080}},
		Endpoints: []store.Endpoint{{Addresses: []netip.Addr{ip("10.0.0.1")}, Hostname: "host-0", Ready: true},
			{Addresses: []netip.Addr{ip("10.0.0.2")}}, {Addresses: []netip.Addr{ip("10.0.0.3")}, Ready: true}}}
	if !ok || !reflect.DeepEqual(sl, wantSl) {
		t.Errorf("ToEndpointSlice = %+v, want %+v", sl, wantSl)
	}
	if _, ok := store.ToEndpointSlice(&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "f"}, AddressType: discoveryv1.AddressTypeFQDN}); ok {
		t.Error("an FQDN slice was accepted")
	}
	now := metav1.Now()
	if _, ok := store.ToPod(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", DeletionTimestamp: &now}, Status: corev1.PodStatus{PodIP: "10.0.0.1"}}); ok {
		t.Error("a terminating pod was accepted")
	}
	if _, ok := store.ToPod(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}}); ok {
		t.Error("a pod without IP was accepted")
	}
	p, _ := store.ToPod(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Spec: corev1.PodSpec{HostNetwork: true},
		Status: corev1.PodStatus{PodIP: "10.0.0.1", PodIPs: []corev1.PodIP{{IP: "10.0.0.1"}, {IP: "fd00::1"}}}})
	if want := (&store.Pod{Namespace: "ns", Name: "p", IPs: []netip.Addr{ip("10.0.0.1"), ip("fd00::1")}, HostNetwork: true}); !reflect.DeepEqual(p, want) {
		t.Errorf("ToPod = %+v, want %+v", p, want)
	}
	// Completion's fields: UID, phase and the DNS fields (a copy).
	dc := &corev1.PodDNSConfig{Searches: []string{"corp.example"}}
	p, _ = store.ToPod(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "q", Namespace: "ns", UID: "u2"},
		Spec:   corev1.PodSpec{DNSPolicy: corev1.DNSClusterFirst, DNSConfig: dc},
		Status: corev1.PodStatus{Phase: corev1.PodSucceeded, PodIP: "10.0.0.2"}})
	if want := (&store.Pod{Namespace: "ns", Name: "q", IPs: []netip.Addr{ip("10.0.0.2")}, UID: "u2", Phase: corev1.PodSucceeded,
		DNSPolicy: corev1.DNSClusterFirst, DNSConfig: &corev1.PodDNSConfig{Searches: []string{"corp.example"}}}); !reflect.DeepEqual(p, want) {
		t.Errorf("ToPod = %+v, want %+v", p, want)
	}
	if dc.Searches[0] = "changed"; p.DNSConfig.Searches[0] != "corp.example" {
		t.Error("ToPod shares the pod's dnsConfig")
	}
	for in, want := range map[string]string{"10.1.2.3": "10-1-2-3", "fd00::1": "fd00--1", "fd00::": "fd00--0", "2001:db8:0:1::5": "2001-db8-0-1--5"} {
		if got := store.DashedIP(ip(in)); got != want {
			t.Errorf("DashedIP(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestSyncAndSnapshots(t *testing.T) {
	s := store.New()
	s.UpsertNamespace(&store.Namespace{Name: "ns"})
	s.UpsertService(&store.Service{Namespace: "ns", Name: "a", ClusterIPs: []netip.Addr{ip("10.96.0.1")}})
	if s.Synced() || s.Snapshot().Service("ns", "a") != nil || s.Snapshot().HasNamespace("ns") {
		t.Fatal("writes before sync were published")
	}
	s.SetSynced()
	before := s.Snapshot()
	if !s.Synced() || before.Service("ns", "a") == nil || !before.HasNamespace("ns") {
		t.Fatal("SetSynced did not publish")
	}
	s.DeleteService("ns", "a")
	s.DeleteNamespace("ns")
	if before.Service("ns", "a") == nil || !before.HasNamespace("ns") || len(before.Reverse(ip("10.96.0.1"))) != 1 {
		t.Error("a write changed an earlier snapshot")
	}
	after := s.Snapshot()
	if after.Service("ns", "a") != nil || after.HasNamespace("ns") || len(after.Reverse(ip("10.96.0.1"))) != 0 {
		t.Error("deletes were not published")
	}
	s.SetClock(func() time.Time { return time.Unix(42, 0) })
	s.UpsertNamespace(&store.Namespace{Name: "x"})
	if s.Snapshot().Serial() != 42 {
		t.Errorf("serial %d, want 42", s.Snapshot().Serial())
	}
}

// view is everything a snapshot answers for the keys the random test uses.
func view(snap *store.Snapshot) string {
	out := ""
	for ns := range 3 {
		n := fmt.Sprintf("ns%d", ns)
		out += fmt.Sprintf("%s:%v ", n, snap.HasNamespace(n))
		for svc := range 4 {
			if r := snap.Service(n, fmt.Sprintf("s%d", svc)); r != nil {
				out += fmt.Sprintf("%s/s%d:%v:%v ", n, svc, r.ClusterIPs, r.Endpoints)
			}
		}
	}
	for i := range 12 {
		a := ip(fmt.Sprintf("10.0.0.%d", i))
		// Order within one IP is not part of the contract.
		rev := slices.Sorted(slices.Values(snap.Reverse(a)))
		var ps []string
		for _, p := range snap.PodsByIP(a) {
			ps = append(ps, p.Namespace+"/"+p.Name)
		}
		slices.Sort(ps)
		out += fmt.Sprintf("%s:%v:%v ", a, rev, ps)
	}
	return out + fmt.Sprint(snap.Counts())
}

// TestIncrementalEqualsRebuild applies random writes one by one and checks
// that every published snapshot equals one rebuilt from the same objects.
func TestIncrementalEqualsRebuild(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	s := store.New()
	s.SetSynced()
	services := map[string]*store.Service{}
	slicesByName := map[string]*store.EndpointSlice{}
	pods := map[string]*store.Pod{}
	nss := map[string]bool{}
	addr := func() netip.Addr { return ip(fmt.Sprintf("10.0.0.%d", r.IntN(12))) }
	for step := range 2000 {
		ns := fmt.Sprintf("ns%d", r.IntN(3))
		switch r.IntN(7) {
		case 0:
			o := &store.Service{Namespace: ns, Name: fmt.Sprintf("s%d", r.IntN(4)), Kind: store.ServiceKind(r.IntN(2))}
			if o.Kind == store.ClusterIP {
				o.ClusterIPs = []netip.Addr{addr()}
			}
			services[ns+"/"+o.Name] = o
			s.UpsertService(o)
		case 1:
			name := fmt.Sprintf("s%d", r.IntN(4))
			delete(services, ns+"/"+name)
			s.DeleteService(ns, name)
		case 2:
			o := &store.EndpointSlice{Namespace: ns, Name: fmt.Sprintf("sl%d", r.IntN(5)), Service: fmt.Sprintf("s%d", r.IntN(4)),
				Endpoints: []store.Endpoint{{Addresses: []netip.Addr{addr()}, Ready: r.IntN(2) == 0, Hostname: fmt.Sprintf("h%d", r.IntN(2))}}}
			slicesByName[ns+"/"+o.Name] = o
			s.UpsertEndpointSlice(o)
		case 3:
			name := fmt.Sprintf("sl%d", r.IntN(5))
			delete(slicesByName, ns+"/"+name)
			s.DeleteEndpointSlice(ns, name)
		case 4:
			o := &store.Pod{Namespace: ns, Name: fmt.Sprintf("p%d", r.IntN(4)), IPs: []netip.Addr{addr()}}
			pods[ns+"/"+o.Name] = o
			s.UpsertPod(o)
		case 5:
			name := fmt.Sprintf("p%d", r.IntN(4))
			delete(pods, ns+"/"+name)
			s.DeletePod(ns, name)
		case 6:
			if r.IntN(2) == 0 {
				nss[ns] = true
				s.UpsertNamespace(&store.Namespace{Name: ns})
			} else {
				delete(nss, ns)
				s.DeleteNamespace(ns)
			}
		}
		var objs store.Objects
		for _, k := range slices.Sorted(maps.Keys(services)) {
			objs.Services = append(objs.Services, services[k])
		}
		for _, k := range slices.Sorted(maps.Keys(slicesByName)) {
			objs.EndpointSlices = append(objs.EndpointSlices, slicesByName[k])
		}
		for _, k := range slices.Sorted(maps.Keys(pods)) {
			objs.Pods = append(objs.Pods, pods[k])
		}
		for _, k := range slices.Sorted(maps.Keys(nss)) {
			objs.Namespaces = append(objs.Namespaces, &store.Namespace{Name: k})
		}
		fresh := store.New()
		fresh.Replace(objs)
		if got, want := view(s.Snapshot()), view(fresh.Snapshot()); got != want {
			t.Fatalf("step %d: incremental snapshot\n%s\nwant (rebuilt)\n%s", step, got, want)
		}
	}
}

// TestConcurrentReads reads while writing (meaningful under -race).
func TestConcurrentReads(t *testing.T) {
	s := store.New()
	s.SetSynced()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				snap := s.Snapshot()
				_ = snap.Service("ns", "a")
				_ = snap.Reverse(ip("10.0.0.1"))
			}
		})
	}
	for i := range 500 {
		s.UpsertService(&store.Service{Namespace: "ns", Name: "a", ClusterIPs: []netip.Addr{ip(fmt.Sprintf("10.0.0.%d", i%200))}})
	}
	close(stop)
	wg.Wait()
}
