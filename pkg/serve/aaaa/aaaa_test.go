package aaaa_test

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"

	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/aaaa"
	"github.com/poddns/poddns/pkg/serve/dnstest"
	"github.com/poddns/poddns/pkg/serve/store"
)

func TestFilter(t *testing.T) {
	ip := netip.MustParseAddr
	podsAt := func(pods ...*store.Pod) *store.Store {
		s := store.New()
		s.Replace(store.Objects{Pods: pods})
		return s
	}
	client := ip("10.240.0.1") // dnstest.Recorder's
	for _, tc := range []struct {
		name     string
		mode     aaaa.Mode
		store    *store.Store
		filtered bool
	}{
		{"IPv4-only pod", aaaa.ModeIPv4Pods, podsAt(&store.Pod{Namespace: "a", Name: "p", IPs: []netip.Addr{client}, Phase: corev1.PodRunning}), true},
		{"dual-stack pod", aaaa.ModeIPv4Pods, podsAt(&store.Pod{Namespace: "a", Name: "p", IPs: []netip.Addr{client, ip("fd00::5")}, Phase: corev1.PodRunning}), false},
		{"unknown client", aaaa.ModeIPv4Pods, podsAt(), false},
		{"host-network pod", aaaa.ModeIPv4Pods, podsAt(&store.Pod{Namespace: "a", Name: "p", IPs: []netip.Addr{client}, Phase: corev1.PodRunning, HostNetwork: true}), false},
		{"finished pod", aaaa.ModeIPv4Pods, podsAt(&store.Pod{Namespace: "a", Name: "p", IPs: []netip.Addr{client}, Phase: corev1.PodSucceeded}), false},
		{"all, unknown client", aaaa.ModeAll, podsAt(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var next atomic.Int32
			m, _ := aaaa.NewMetrics(nil)
			h, err := aaaa.New(aaaa.Config{Filter: tc.mode}, aaaa.Deps{Store: tc.store, Metrics: m, Next: serve.HandlerFunc(
				func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
					next.Add(1)
					return dns.RcodeRefused, nil
				})})
			if err != nil {
				t.Fatal(err)
			}
			w := &dnstest.Recorder{}
			slot := new(serve.SourceSlot)
			rcode, _ := h.ServeDNS(serve.WithSourceSlot(context.Background(), slot), w, dnstest.Query("example.com.", dns.TypeAAAA, 1232))
			if tc.filtered {
				if rcode != dns.RcodeSuccess || w.Msg == nil || len(w.Msg.Answer) != 0 || !w.Msg.RecursionAvailable || next.Load() != 0 ||
					testutil.ToFloat64(m.Filtered()) != 1 || slot.Get() != serve.SourceFiltered {
					t.Errorf("want NODATA, counted, not handed on: rcode %d msg %v next %d filtered %g", rcode, w.Msg, next.Load(), testutil.ToFloat64(m.Filtered()))
				}
			} else if next.Load() != 1 || testutil.ToFloat64(m.Filtered()) != 0 {
				t.Errorf("want it handed on: next %d filtered %g", next.Load(), testutil.ToFloat64(m.Filtered()))
			}
			// A and other types always pass.
			for _, qt := range []uint16{dns.TypeA, dns.TypeHTTPS} {
				before := next.Load()
				h.ServeDNS(context.Background(), &dnstest.Recorder{}, dnstest.Query("example.com.", qt, 0))
				if next.Load() != before+1 {
					t.Errorf("%s not handed on", dns.TypeToString[qt])
				}
			}
		})
	}
	if (aaaa.Config{Filter: "ipv4"}).Validate() == nil {
		t.Error("filter ipv4 valid")
	}
}
