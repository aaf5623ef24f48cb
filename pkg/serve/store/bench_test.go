package store_test

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/poddns/poddns/pkg/serve/store"
)

// scale builds a store of nsvc headless Services with per endpoints each,
// in 100 namespaces (5000 × 15 is CoreDNS's 5k-node scale test: about 8k
// Services, 75k endpoints).
func scale(nsvc, per int) *store.Store {
	var objs store.Objects
	for i := range 100 {
		objs.Namespaces = append(objs.Namespaces, &store.Namespace{Name: fmt.Sprintf("ns%d", i)})
	}
	n := 0
	for i := range nsvc {
		ns := fmt.Sprintf("ns%d", i%100)
		name := fmt.Sprintf("svc%d", i)
		objs.Services = append(objs.Services, &store.Service{Namespace: ns, Name: name, Kind: store.Headless})
		sl := &store.EndpointSlice{Namespace: ns, Name: name + "-1", Service: name,
			Ports: []store.Port{{Name: "http", Protocol: "tcp", Port: 80}}}
		for range per {
			n++
			a := netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)})
			sl.Endpoints = append(sl.Endpoints, store.Endpoint{Addresses: []netip.Addr{a}, Ready: true})
		}
		objs.EndpointSlices = append(objs.EndpointSlices, sl)
	}
	s := store.New()
	s.Replace(objs)
	return s
}

// BenchmarkUpsertEndpointSlice is the cost of one API event at scale: the
// copy-on-write of the indexes it touches and the publication.
func BenchmarkUpsertEndpointSlice(b *testing.B) {
	s := scale(5000, 15)
	sl := &store.EndpointSlice{Namespace: "ns7", Name: "svc7-1", Service: "svc7"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		sl.Endpoints = []store.Endpoint{{Addresses: []netip.Addr{netip.AddrFrom4([4]byte{11, 0, byte(i >> 8), byte(i)})}, Ready: true}}
		s.UpsertEndpointSlice(sl)
	}
}

// BenchmarkSnapshotLookup is the read path of a query.
func BenchmarkSnapshotLookup(b *testing.B) {
	s := scale(5000, 15)
	b.ReportAllocs()
	for b.Loop() {
		if s.Snapshot().Service("ns7", "svc7") == nil {
			b.Fatal("not found")
		}
	}
}

// BenchmarkReplace is a full (re)list at scale.
func BenchmarkReplace(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		scale(5000, 15)
	}
}
