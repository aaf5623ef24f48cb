package store_test

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/poddns/poddns/pkg/serve/store"
)

// TestReplaceKinds: a Replace* call (a source's relist) makes its list the
// whole kind — new, changed and vanished objects show, in one published
// snapshot — and keeps the unchanged records themselves, so the next
// state shares them (SharedPod and friends return the store's record).
func TestReplaceKinds(t *testing.T) {
	st := store.New()
	web := &store.Service{Namespace: "ns", Name: "web", Kind: store.ClusterIP, ClusterIPs: []netip.Addr{ip("10.96.0.1")}}
	old := &store.Service{Namespace: "ns", Name: "old", Kind: store.ClusterIP, ClusterIPs: []netip.Addr{ip("10.96.0.2")}}
	hl := &store.Service{Namespace: "ns", Name: "hl", Kind: store.Headless}
	sl := &store.EndpointSlice{Namespace: "ns", Name: "hl-1", Service: "hl",
		Endpoints: []store.Endpoint{{Addresses: []netip.Addr{ip("10.1.0.1")}, Ready: true}}}
	p1 := &store.Pod{Namespace: "ns", Name: "p1", IPs: []netip.Addr{ip("10.2.0.1")}, UID: "u1", Phase: corev1.PodRunning}
	p2 := &store.Pod{Namespace: "ns", Name: "p2", IPs: []netip.Addr{ip("10.2.0.2")}, UID: "u2", Phase: corev1.PodRunning}
	st.ReplaceNamespaces([]*store.Namespace{{Name: "ns"}})
	st.ReplaceServices([]*store.Service{web, old, hl})
	st.ReplaceEndpointSlices([]*store.EndpointSlice{sl})
	st.ReplacePods([]*store.Pod{p1, p2})
	if s := st.Snapshot(); s.Service("ns", "web") != nil {
		t.Fatal("published before sync")
	}
	st.SetSynced()
	s1 := st.Snapshot()
	if s1.Service("ns", "web") == nil || len(s1.Service("ns", "hl").Endpoints) != 1 || len(s1.PodsByIP(ip("10.2.0.2"))) != 1 {
		t.Fatalf("after sync: %+v", s1.Counts())
	}

	// The relist: web unchanged (an equal copy), old gone, hl's slice
	// changed, p1 unchanged, p2 replaced by p3 on its IP.
	webCopy := *web
	if got := st.SharedService(&webCopy); got != web {
		t.Error("SharedService of an equal record did not return the store's")
	}
	changed := &store.Service{Namespace: "ns", Name: "web", Kind: store.ClusterIP, ClusterIPs: []netip.Addr{ip("10.96.0.9")}}
	if got := st.SharedService(changed); got != changed {
		t.Error("SharedService of a changed record returned the store's")
	}
	sl2 := &store.EndpointSlice{Namespace: "ns", Name: "hl-1", Service: "hl",
		Endpoints: []store.Endpoint{{Addresses: []netip.Addr{ip("10.1.0.1")}, Ready: true}, {Addresses: []netip.Addr{ip("10.1.0.2")}, Ready: true}}}
	p1Copy := *p1
	p3 := &store.Pod{Namespace: "ns", Name: "p3", IPs: []netip.Addr{ip("10.2.0.2")}, UID: "u3", Phase: corev1.PodRunning}
	st.ReplaceServices([]*store.Service{&webCopy, hl})
	st.ReplaceEndpointSlices([]*store.EndpointSlice{sl2})
	st.ReplacePods([]*store.Pod{&p1Copy, p3})
	st.ReplaceNamespaces([]*store.Namespace{{Name: "ns"}, {Name: "new"}})
	s2 := st.Snapshot()
	if s2.Service("ns", "old") != nil || s2.Service("ns", "web") != s1.Service("ns", "web") {
		t.Error("relist: old Service kept, or the unchanged one republished")
	}
	if len(s2.Service("ns", "hl").Endpoints) != 2 {
		t.Errorf("relist: hl endpoints %v", s2.Service("ns", "hl").Endpoints)
	}
	if ps := s2.PodsByIP(ip("10.2.0.2")); len(ps) != 1 || ps[0] != p3 {
		t.Errorf("relist: pods on 10.2.0.2 = %v, want p3 only", ps)
	}
	if ps := s2.PodsByIP(ip("10.2.0.1")); len(ps) != 1 || ps[0] != p1 {
		t.Errorf("relist: an unchanged pod is not the store's first record: %v", ps)
	}
	if !s2.HasNamespace("new") || len(s1.Reverse(ip("10.96.0.2"))) != 1 || len(s2.Reverse(ip("10.96.0.2"))) != 0 {
		t.Error("relist: namespaces or reverse records wrong (or the old snapshot changed)")
	}
	if n := s2.Counts(); n.Services != 2 || n.EndpointSlices != 1 || n.Endpoints != 2 || n.Pods != 2 || n.Namespaces != 2 {
		t.Errorf("counts after the relist: %+v", n)
	}

	// An update that changes nothing DNS reads publishes nothing.
	p1Again := *p1
	st.UpsertPod(&p1Again)
	st.UpsertService(&webCopy)
	if st.Snapshot() != s2 {
		t.Error("a no-op update published a new snapshot")
	}
}

func TestEqualRecords(t *testing.T) {
	ndots := "2"
	base := store.Pod{Namespace: "ns", Name: "p", IPs: []netip.Addr{ip("10.0.0.1")}, UID: "u", Phase: corev1.PodRunning,
		DNSConfig: &corev1.PodDNSConfig{Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &ndots}}}}
	for name, mod := range map[string]func(p *store.Pod){
		"phase":     func(p *store.Pod) { p.Phase = corev1.PodSucceeded },
		"uid":       func(p *store.Pod) { p.UID = "v" },
		"ip":        func(p *store.Pod) { p.IPs = []netip.Addr{ip("10.0.0.2")} },
		"dnsConfig": func(p *store.Pod) { p.DNSConfig = &corev1.PodDNSConfig{Searches: []string{"x"}} },
		"policy":    func(p *store.Pod) { p.DNSPolicy = corev1.DNSNone },
		"hostNet":   func(p *store.Pod) { p.HostNetwork = true },
	} {
		q := base
		mod(&q)
		if store.EqualPod(&base, &q) {
			t.Errorf("EqualPod ignores %s", name)
		}
	}
	two := "2"
	same := base
	same.DNSConfig = &corev1.PodDNSConfig{Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &two}}}
	if !store.EqualPod(&base, &same) {
		t.Error("EqualPod: equal DNS configs differ")
	}
	a := store.EndpointSlice{Namespace: "ns", Name: "s", Endpoints: []store.Endpoint{{Addresses: []netip.Addr{ip("10.0.0.1")}, Ready: true}}}
	b := a
	b.Endpoints = []store.Endpoint{{Addresses: []netip.Addr{ip("10.0.0.1")}}}
	if store.EqualEndpointSlice(&a, &b) {
		t.Error("EqualEndpointSlice ignores readiness")
	}
	s := store.Service{Namespace: "ns", Name: "s", Ports: []store.Port{{Name: "http", Protocol: "tcp", Port: 80}}}
	s2 := s
	s2.Ports = []store.Port{{Name: "http", Protocol: "tcp", Port: 81}}
	if store.EqualService(&s, &s2) {
		t.Error("EqualService ignores ports")
	}
}
