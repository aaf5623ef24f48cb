package impact

import (
	"slices"
	"strings"
	"testing"

	"github.com/poddns/poddns/pkg/resolvconf"
)

// The default ClusterFirst file of the e2e tests: 3 cluster domains and the
// node's, ndots:5.
var (
	defaultSearch = []string{"default.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example"}
	ndots5        = View{Search: defaultSearch, Ndots: 5}
	ndots2        = View{Search: defaultSearch, Ndots: 2}
	ndots1        = View{Search: defaultSearch, Ndots: 1}
)

// walk is name under each domain, then as it is.
func walk(name string, search ...string) []string {
	var out []string
	for _, s := range search {
		out = append(out, name+"."+s+".")
	}
	return append(out, name+".")
}

func TestViewOf(t *testing.T) {
	long := make([]string, 5)
	for i := range long {
		long[i] = "team-" + string(rune('1'+i)) + ".a-rather-long-department-name.corp.example"
	}
	cases := []struct {
		name        string
		conf        resolvconf.Config
		glibc, musl View
	}{
		{"default", resolvconf.Config{Searches: defaultSearch, Options: []string{"ndots:5"}}, ndots5, ndots5},
		{"no options: ndots 1", resolvconf.Config{Searches: []string{"a.example"}}, View{Search: []string{"a.example"}, Ndots: 1}, View{Search: []string{"a.example"}, Ndots: 1}},
		{"last ndots wins, capped at 15", resolvconf.Config{Options: []string{"ndots:3", "edns0", "ndots:20"}}, View{Ndots: 15}, View{Ndots: 15}},
		{"ndots with trailing junk takes the digits", resolvconf.Config{Options: []string{"ndots:2x"}}, View{Ndots: 2}, View{Ndots: 2}},
		{"ndots without digits ignored", resolvconf.Config{Options: []string{"ndots:"}}, View{Ndots: 1}, View{Ndots: 1}},
		{"upper case and trailing dots", resolvconf.Config{Searches: []string{"Corp.Example."}}, View{Search: []string{"corp.example"}, Ndots: 1}, View{Search: []string{"corp.example"}, Ndots: 1}},
		{"musl skips a search line of 256 bytes or more",
			resolvconf.Config{Searches: append(slices.Clone(defaultSearch[:3]), long...), Options: []string{"ndots:5"}},
			View{Search: append(slices.Clone(defaultSearch[:3]), long...), Ndots: 5}, View{Ndots: 5}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for l, want := range map[Libc]View{Glibc: tc.glibc, Musl: tc.musl} {
				got := ViewOf(tc.conf, l)
				if !slices.Equal(got.Search, want.Search) || got.Ndots != want.Ndots {
					t.Errorf("%s: ViewOf = %+v, want %+v", l, got, want)
				}
			}
		})
	}
	// The musl line limit is the one ClientNotes states: 255 bytes with
	// the newline are read, 256 are not.
	for _, extra := range []int{0, 1} {
		d := []string{strings.Repeat("a", 60) + "." + strings.Repeat("b", 25) + ".example",
			strings.Repeat("c", 60+extra) + "." + strings.Repeat("d", 25) + ".example"}
		c := resolvconf.Config{Searches: append(slices.Clone(defaultSearch[:3]), d...)}
		if got := len(ViewOf(c, Musl).Search); (got == 0) != (extra == 1) {
			t.Errorf("a search line of %d bytes: musl reads %d domains", len("search ")+len(strings.Join(c.Searches, " "))+1, got)
		}
	}
}

func TestNames(t *testing.T) {
	cases := []struct {
		name        string
		view        View
		glibc, musl []string
	}{
		{"web", ndots5, walk("web", defaultSearch...), walk("web", defaultSearch...)},
		{"api.example.com", ndots5, walk("api.example.com", defaultSearch...), walk("api.example.com", defaultSearch...)},
		{"api.example.com.", ndots5, []string{"api.example.com."}, []string{"api.example.com."}},
		{"API.Example.COM", ndots2, append([]string{"api.example.com."}, walk("api.example.com", defaultSearch...)[:4]...), []string{"api.example.com."}},
		// ndots or more dots: as it is first; glibc then searches, musl never.
		{"web.default.svc", ndots2, append([]string{"web.default.svc."}, walk("web.default.svc", defaultSearch...)[:4]...), []string{"web.default.svc."}},
		{"nothing.example.org", ndots1, append([]string{"nothing.example.org."}, walk("nothing.example.org", defaultSearch...)[:4]...), []string{"nothing.example.org."}},
		{"web.default", ndots2, walk("web.default", defaultSearch...), walk("web.default", defaultSearch...)},
		// No search list: the name as it is.
		{"web", View{Ndots: 5}, []string{"web."}, []string{"web."}},
		// ndots:0: every name is asked as it is first.
		{"web", View{Search: []string{"a.example"}, Ndots: 0}, []string{"web.", "web.a.example."}, []string{"web."}},
		{"", ndots5, nil, nil},
		{".", ndots5, nil, nil},
	}
	for _, tc := range cases {
		for l, want := range map[Libc][]string{Glibc: tc.glibc, Musl: tc.musl} {
			if got := Names(tc.name, tc.view, l); !slices.Equal(got, want) {
				t.Errorf("%s: Names(%q, ndots:%d) = %q, want %q", l, tc.name, tc.view.Ndots, got, want)
			}
		}
	}
}

// zone is an oracle of a few names: A and AAAA rcodes, NODATA marks.
func zone() Answers {
	as := Answers{}
	add := func(name, a, aaaa string, noAddr ...string) {
		ans := &Answer{Rcodes: map[string]string{"A": a, "AAAA": aaaa}}
		for _, t := range noAddr {
			ans.markNoAddr(t)
		}
		as[name] = ans
	}
	for _, n := range append(walk("api.example.com", defaultSearch...)[:4], walk("nothing.example.org", defaultSearch...)...) {
		add(n, "NXDOMAIN", "NXDOMAIN")
	}
	add("api.example.com.", "NOERROR", "NOERROR", "AAAA")
	add("web.default.svc.cluster.local.", "NOERROR", "NOERROR", "AAAA")
	for _, n := range []string{"web.default.default.svc.cluster.local.", "web.default.svc.default.svc.cluster.local.", "web.default.svc.svc.cluster.local."} {
		add(n, "NXDOMAIN", "NXDOMAIN")
	}
	// gap.example: NODATA under corp.example, an address as it is.
	for _, n := range walk("gap.example", defaultSearch...)[:3] {
		add(n, "NXDOMAIN", "NXDOMAIN")
	}
	add("gap.example.corp.example.", "NOERROR", "NOERROR", "A", "AAAA")
	add("gap.example.", "NOERROR", "NOERROR", "AAAA")
	// broken.example: SERVFAIL under cluster.local, found as it is.
	for _, n := range walk("broken.example", defaultSearch...) {
		add(n, "NXDOMAIN", "NXDOMAIN")
	}
	add("broken.example.cluster.local.", "SERVFAIL", "SERVFAIL")
	add("broken.example.", "NOERROR", "NOERROR")
	add("refused.example.default.svc.cluster.local.", "REFUSED", "REFUSED")
	// Only A logged: NXDOMAIN is the name's.
	add("a-only.example.com.", "NXDOMAIN", "")
	delete(as["a-only.example.com."].Rcodes, "AAAA")
	return as
}

func TestResolve(t *testing.T) {
	aaaa := []string{"A", "AAAA"}
	cases := []struct {
		name        string
		view        View
		types       []string
		glibc, musl Outcome
	}{
		{"api.example.com", ndots5, aaaa,
			Outcome{Result: Found, Name: "api.example.com.", Asked: walk("api.example.com", defaultSearch...)},
			Outcome{Result: Found, Name: "api.example.com.", Asked: walk("api.example.com", defaultSearch...)}},
		{"api.example.com", ndots2, aaaa,
			Outcome{Result: Found, Name: "api.example.com.", Asked: []string{"api.example.com."}},
			Outcome{Result: Found, Name: "api.example.com.", Asked: []string{"api.example.com."}}},
		{"web.default.svc", ndots5, aaaa,
			Outcome{Result: Found, Name: "web.default.svc.cluster.local.", Asked: walk("web.default.svc", defaultSearch...)[:3]},
			Outcome{Result: Found, Name: "web.default.svc.cluster.local.", Asked: walk("web.default.svc", defaultSearch...)[:3]}},
		// The musl breakage: web.default.svc. was never asked.
		{"web.default.svc", ndots2, aaaa,
			Outcome{Result: Found, Name: "web.default.svc.cluster.local.", Asked: append([]string{"web.default.svc."}, walk("web.default.svc", defaultSearch...)[:3]...), Unknown: []string{"web.default.svc."}},
			Outcome{Result: NotFound, Asked: []string{"web.default.svc."}, Unknown: []string{"web.default.svc."}}},
		{"nothing.example.org", ndots5, aaaa,
			Outcome{Result: NotFound, Asked: walk("nothing.example.org", defaultSearch...)},
			Outcome{Result: NotFound, Asked: walk("nothing.example.org", defaultSearch...)}},
		// NODATA: glibc walks on, musl stops.
		{"gap.example", ndots5, aaaa,
			Outcome{Result: Found, Name: "gap.example.", Asked: walk("gap.example", defaultSearch...)},
			Outcome{Result: NotFound, Name: "gap.example.corp.example.", Asked: walk("gap.example", defaultSearch...)[:4]}},
		// SERVFAIL: glibc walks on, musl fails.
		{"broken.example", ndots5, aaaa,
			Outcome{Result: Found, Name: "broken.example.", Asked: walk("broken.example", defaultSearch...)},
			Outcome{Result: Failed, Name: "broken.example.cluster.local.", Asked: walk("broken.example", defaultSearch...)[:3]}},
		// REFUSED ends both walks.
		{"refused.example", ndots5, aaaa,
			Outcome{Result: Failed, Name: "refused.example.default.svc.cluster.local.", Asked: walk("refused.example", defaultSearch...)[:1]},
			Outcome{Result: Failed, Name: "refused.example.default.svc.cluster.local.", Asked: walk("refused.example", defaultSearch...)[:1]}},
		// A trailing dot: as it is, alone.
		{"web.default.svc.cluster.local.", ndots5, aaaa,
			Outcome{Result: Found, Name: "web.default.svc.cluster.local.", Asked: []string{"web.default.svc.cluster.local."}},
			Outcome{Result: Found, Name: "web.default.svc.cluster.local.", Asked: []string{"web.default.svc.cluster.local."}}},
		// An A-only lookup of a name whose NXDOMAIN was logged for A.
		{"a-only.example.com.", ndots5, []string{"AAAA"},
			Outcome{Result: NotFound, Asked: []string{"a-only.example.com."}},
			Outcome{Result: NotFound, Asked: []string{"a-only.example.com."}}},
	}
	as := zone()
	for _, tc := range cases {
		for l, want := range map[Libc]Outcome{Glibc: tc.glibc, Musl: tc.musl} {
			got := Resolve(tc.name, tc.types, tc.view, l, as)
			if got.Result != want.Result || got.Name != want.Name || !slices.Equal(got.Asked, want.Asked) || !slices.Equal(got.Unknown, want.Unknown) {
				t.Errorf("%s: Resolve(%q, ndots:%d) =\n\t%+v\nwant\n\t%+v", l, tc.name, tc.view.Ndots, got, want)
			}
		}
	}
	if got := (Outcome{Asked: []string{"a.", "b."}}).Queries(2); got != 4 {
		t.Errorf("Queries = %d, want 4", got)
	}
}
