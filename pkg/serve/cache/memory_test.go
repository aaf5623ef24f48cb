package cache_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/cache"
	"github.com/poddns/poddns/pkg/serve/dnstest"
	"github.com/poddns/poddns/pkg/serve/loadbalance"
)

// TestEntryMemory measures the live heap of a cache entry — the stored
// message, its packed reply and, once loadbalance has served it, the
// shuffled orders — and holds it under the figures the node-local
// DaemonSet's cache capacity is sized with (deploy/overlays/node-local,
// config.yaml): an entry that grows fails here first.
func TestEntryMemory(t *testing.T) {
	const n = 4096
	four := []string{"%s 60 IN A 192.0.2.1", "%s 60 IN A 192.0.2.2", "%s 60 IN A 192.0.2.3", "%s 60 IN A 192.0.2.4"}
	for _, c := range []struct {
		name     string
		answer   func(*dns.Msg) *dns.Msg
		balanced bool
		most     float64
	}{
		// Measured 733, 789, 1269 and 4277 B (go1.26, amd64).
		{"one A record", records(dns.RcodeSuccess, []string{"%s 3600 IN A 198.51.100.7"}, nil), false, 900},
		{"NXDOMAIN with its SOA", records(dns.RcodeNameError, nil, []string{fmt.Sprintf(soa, 300, 300)}), false, 950},
		{"four A records", records(dns.RcodeSuccess, four, nil), false, 1500},
		{"four A records served shuffled", records(dns.RcodeSuccess, four, nil), true, 5000},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := cache.Defaults()
			cfg.Capacity = 2 * n
			ca, err := cache.New(cfg, cache.Deps{Next: newUpstream(c.answer)})
			if err != nil {
				t.Fatal(err)
			}
			defer ca.Close()
			var h serve.Handler = ca
			if c.balanced {
				if h, err = loadbalance.New(loadbalance.Config{}, loadbalance.Deps{Next: ca}); err != nil {
					t.Fatal(err)
				}
			}
			before := testenv.LiveHeap()
			for i := range n {
				q := dnstest.Query(fmt.Sprintf("host-%d.example.com.", i), dns.TypeA, 0)
				for range 2 { // a miss, then a hit: what loadbalance shuffles
					w := &packedSink{}
					if _, err := h.ServeDNS(context.Background(), w, q); err != nil {
						t.Fatal(err)
					}
					if w.packed != nil {
						w.packed.Src.AppendWire(nil, w.packed.Shuffle) // as the server writes it
					}
				}
			}
			per := float64(testenv.LiveHeap()-before) / n
			runtime.KeepAlive(h)
			t.Logf("%.0f B of live heap per entry", per)
			if per > c.most {
				t.Errorf("%.0f B per entry, more than %.0f: the node-local cache capacity (deploy/overlays/node-local) needs sizing again", per, c.most)
			}
		})
	}
}
