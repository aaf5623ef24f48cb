package impact

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/poddns/poddns/pkg/resolvconf"
)

var shopSearch = []string{"shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example"}

func shopConf(ndots string) resolvconf.Config {
	return resolvconf.Config{Nameservers: []string{"10.96.0.10"}, Searches: shopSearch, Options: []string{"ndots:" + ndots}}
}

// shopLog is a workload's two pods each looking up svc, svc.ns, svc.ns.svc
// and an external name through the default file (ndots:5), and a client no
// pod has.
func shopLog() []Entry {
	var out []Entry
	for _, pod := range []string{"api-7d4f9c8b6-glibc", "api-7d4f9c8b6-musl1"} {
		b := newLog("shop", pod).
			walk(walk("web", shopSearch...)[:1], "NOERROR").
			walk(walk("web.shop", shopSearch...)[:2], "NOERROR").
			walk(walk("web.shop.svc", shopSearch...)[:3], "NOERROR").
			walk(walk("api.example.com", shopSearch...), "NOERROR")
		out = append(out, b.entries...)
	}
	stray := newLog("", "").ask("example.org.", "NOERROR")
	stray.entries[0].Client, stray.entries[1].Client = "10.0.0.9:1000", "10.0.0.9:1001"
	return append(out, stray.entries...)
}

func shopPods(proposed resolvconf.Config, proposedErr string) Pods {
	return func(ns, name string) (Pod, bool) {
		if ns != "shop" || !strings.HasPrefix(name, "api-") {
			return Pod{}, false
		}
		return Pod{Workload: Workload{Namespace: "shop", Kind: "Deployment", Name: "api"},
			Current: shopConf("5"), Proposed: proposed, ProposedError: proposedErr}, true
	}
}

func TestAnalyzeNdots2(t *testing.T) {
	r := Analyze(shopLog(), shopPods(shopConf("2"), ""), Options{})
	var buf bytes.Buffer
	if err := WriteText(&buf, r); err != nil {
		t.Fatal(err)
	}
	want := `Deployment shop/api: 2 pods api-7d4f9c8b6-glibc api-7d4f9c8b6-musl1, 8 lookups
  glibc: 0 breaking, 0 resolving differently, wire queries 44 -> 32 (12 saved)
  musl:  1 breaking, 0 resolving differently, wire queries 44 -> 20 (24 saved)
  BREAKS with musl: web.shop.svc: found web.shop.svc.cluster.local. (asks web.shop.svc.shop.svc.cluster.local. web.shop.svc.svc.cluster.local. web.shop.svc.cluster.local.) -> not found (asks web.shop.svc.)
  unknown: web.shop.svc. is not in the log; taken not to exist
not replayed: client 10.0.0.9 (no pod): 2 queries
`
	if got := buf.String(); got != want {
		t.Errorf("text report:\n%s\nwant:\n%s", got, want)
	}
	if !r.Breaks() {
		t.Error("Breaks() = false")
	}
	// JSON: the per-lookup replays are there.
	buf.Reset()
	if err := WriteJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Workloads) != 1 || len(back.Workloads[0].Distinct) != 4 || back.Workloads[0].Libcs[1].Breaks[0] != "web.shop.svc" {
		t.Errorf("JSON report: %s", buf.String())
	}
	for _, d := range back.Workloads[0].Distinct {
		if d.Count != 2 || len(d.Replays) != 2 {
			t.Errorf("lookup %s: count %d, %d replays; want 2, 2", d.Name, d.Count, len(d.Replays))
		}
	}
}

// The log's lines come in the order replies were queued, not always the
// order of the queries: Analyze goes by time.
func TestAnalyzeOutOfOrder(t *testing.T) {
	want := Analyze(shopLog(), shopPods(shopConf("2"), ""), Options{})
	shuffled := shopLog()
	slices.Reverse(shuffled)
	got := Analyze(shuffled, shopPods(shopConf("2"), ""), Options{})
	var a, b bytes.Buffer
	if err := WriteJSON(&a, want); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(&b, got); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Errorf("reversed log:\n%s\nwant:\n%s", b.String(), a.String())
	}
}

func TestAnalyzeChanges(t *testing.T) {
	cases := []struct {
		name     string
		proposed resolvconf.Config
		err      string
		breaks   map[Libc][]string
		diff     map[Libc][]string
	}{
		{"no change", shopConf("5"), "", nil, nil},
		// Without search domains, short names stop resolving; the external
		// name resolves as before.
		{"no search list", resolvconf.Config{Options: []string{"ndots:5"}}, "",
			map[Libc][]string{Glibc: {"web", "web.shop", "web.shop.svc"}, Musl: {"web", "web.shop", "web.shop.svc"}}, nil},
		// corp.example first: api.example.com.corp.example. is known
		// NXDOMAIN, the rest resolves the same.
		{"the node domain first", resolvconf.Config{Searches: []string{"corp.example", "shop.svc.cluster.local", "svc.cluster.local", "cluster.local"}, Options: []string{"ndots:5"}}, "", nil, nil},
		{"the pod would not run", resolvconf.Config{}, "spec.dnsConfig: Required value",
			map[Libc][]string{Glibc: {"web", "web.shop", "web.shop.svc", "api.example.com"}, Musl: {"web", "web.shop", "web.shop.svc", "api.example.com"}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Analyze(shopLog(), shopPods(tc.proposed, tc.err), Options{})
			for _, s := range r.Workloads[0].Libcs {
				b, d := tc.breaks[s.Libc], tc.diff[s.Libc]
				if b == nil {
					b = []string{}
				}
				if d == nil {
					d = []string{}
				}
				if !slices.Equal(s.Breaks, b) || !slices.Equal(s.Different, d) {
					t.Errorf("%s: breaks %q, different %q; want %q, %q", s.Libc, s.Breaks, s.Different, b, d)
				}
			}
			if tc.err != "" && !strings.Contains(strings.Join(r.Workloads[0].Notes, "\n"), tc.err) {
				t.Errorf("notes %q, want %q", r.Workloads[0].Notes, tc.err)
			}
		})
	}
}
