package impact

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// logBuilder writes query log entries for one client, 1 ms apart, each name
// with A then AAAA.
type logBuilder struct {
	t       time.Time
	id      uint16
	entries []Entry
	ns, pod string
}

func newLog(ns, pod string) *logBuilder {
	return &logBuilder{t: time.Date(2026, 12, 6, 6, 30, 0, 0, time.UTC), ns: ns, pod: pod}
}

// ask logs name asked with both types, answered rcode; source optional.
func (b *logBuilder) ask(name, rcode string, source ...string) *logBuilder {
	for _, typ := range []string{"A", "AAAA"} {
		b.id++
		e := Entry{Time: b.t, Client: "10.244.1.7:40412", ID: b.id, Namespace: b.ns, Pod: b.pod, Name: name, Type: typ, Rcode: rcode}
		if len(source) > 0 {
			e.Source = source[0]
		}
		b.entries = append(b.entries, e)
		b.t = b.t.Add(time.Millisecond)
	}
	return b
}

// walk logs names NXDOMAIN but the last, answered last.
func (b *logBuilder) walk(names []string, last string) *logBuilder {
	for _, n := range names[:len(names)-1] {
		b.ask(n, "NXDOMAIN")
	}
	return b.ask(names[len(names)-1], last)
}

func (b *logBuilder) pause(d time.Duration) *logBuilder { b.t = b.t.Add(d); return b }

func views(v View) map[Libc]View { return map[Libc]View{Glibc: v, Musl: v} }

func lookupStrings(ls []Lookup) []string {
	var out []string
	for _, l := range ls {
		s := fmt.Sprintf("%s %s %d", l.Name, strings.Join(l.Types, ","), len(l.Walk))
		if l.Completed {
			s += " completed"
		}
		out = append(out, s)
	}
	return out
}

func TestReconstruct(t *testing.T) {
	long := []string{"default.svc.cluster.local", "svc.cluster.local", "cluster.local", "team-1.a-rather-long-department-name.corp.example"}
	cases := []struct {
		name  string
		log   *logBuilder
		views map[Libc]View
		want  []string
	}{
		{
			name: "the default walks",
			log: newLog("default", "client").
				walk(walk("web", defaultSearch...)[:1], "NOERROR").
				walk(walk("web.default", defaultSearch...)[:2], "NOERROR").
				walk(walk("web.default.svc", defaultSearch...)[:3], "NOERROR").
				walk(walk("api.example.com", defaultSearch...), "NOERROR").
				walk(walk("nothing.example.org", defaultSearch...), "NXDOMAIN").
				ask("api.example.com.", "NOERROR"),
			views: views(ndots5),
			want: []string{"web A,AAAA 1", "web.default A,AAAA 2", "web.default.svc A,AAAA 3", "api.example.com A,AAAA 5",
				"nothing.example.org A,AAAA 5", "api.example.com. A,AAAA 1"},
		},
		{
			name:  "the same lookup twice",
			log:   newLog("default", "client").ask("web.default.svc.cluster.local.", "NOERROR").ask("web.default.svc.cluster.local.", "NOERROR"),
			views: views(ndots5),
			want:  []string{"web A,AAAA 1", "web A,AAAA 1"},
		},
		{
			name: "a retransmission is no lookup",
			log: func() *logBuilder {
				b := newLog("default", "client").ask("web.default.svc.cluster.local.", "NOERROR")
				again := b.entries[1]
				again.Time = b.t
				b.entries = append(b.entries, again)
				return b
			}(),
			views: views(ndots5),
			want:  []string{"web A,AAAA 1"},
		},
		{
			name: "a gap longer than the window ends a walk",
			log: func() *logBuilder {
				w := walk("api.example.com", defaultSearch...)
				return newLog("default", "client").walk(w[:2], "NXDOMAIN").pause(2*time.Second).walk(w[2:], "NOERROR")
			}(),
			views: views(ndots5),
			want: []string{"api.example.com A,AAAA 2", "api.example.com.cluster.local. A,AAAA 1",
				"api.example.com.corp.example. A,AAAA 1", "api.example.com. A,AAAA 1"},
		},
		{
			name: "a slow upstream answer does not end a walk: the gap is from the reply",
			log: func() *logBuilder {
				w := walk("api.example.com", defaultSearch...)
				b := newLog("default", "client").walk(w[:4], "NXDOMAIN")
				for i := 6; i < 8; i++ { // the node domain's, forwarded: 3 s
					b.entries[i].Duration = 3
				}
				return b.pause(3*time.Second).ask(w[4], "NOERROR")
			}(),
			views: views(ndots5),
			want:  []string{"api.example.com A,AAAA 5"},
		},
		{
			name:  "glibc searches a name with ndots dots after asking it as it is",
			log:   newLog("default", "client").walk(append([]string{"web.default.svc."}, walk("web.default.svc", defaultSearch...)[:3]...), "NOERROR"),
			views: views(ndots2),
			want:  []string{"web.default.svc A,AAAA 4"},
		},
		{
			name:  "musl asks a name with ndots dots as it is only",
			log:   newLog("default", "client").ask("web.default.svc.", "NXDOMAIN").ask("api.example.com.", "NOERROR"),
			views: views(ndots2),
			want:  []string{"web.default.svc A,AAAA 1", "api.example.com A,AAAA 1"},
		},
		{
			name:  "musl without a search list (a search line of 256 bytes or more)",
			log:   newLog("default", "client").ask("web.", "NXDOMAIN"),
			views: map[Libc]View{Glibc: {Search: long, Ndots: 5}, Musl: {Ndots: 5}},
			want:  []string{"web A,AAAA 1"},
		},
		{
			name: "completion: the first name answered by dnsd",
			log: newLog("default", "client").ask("api.example.com.default.svc.cluster.local.", "NOERROR", sourceCompletion).
				ask("web.default.svc.cluster.local.", "NOERROR", "cluster"),
			views: views(ndots5),
			want:  []string{"api.example.com A,AAAA 1 completed", "web A,AAAA 1"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			as := NewAnswers(tc.log.entries)
			got := lookupStrings(Reconstruct(tc.log.entries, tc.views, DefaultWindow, as))
			if !slices.Equal(got, tc.want) {
				t.Errorf("Reconstruct =\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(tc.want, "\n\t"))
			}
		})
	}
}

// A walk that goes on past a NOERROR name shows it NODATA; one that stops
// there does not.
func TestReconstructLearnsNodata(t *testing.T) {
	b := newLog("default", "client").walk(walk("gap.example", defaultSearch...)[:3], "NXDOMAIN").
		ask("gap.example.corp.example.", "NOERROR").ask("gap.example.", "NOERROR").
		ask("web.default.svc.cluster.local.", "NOERROR")
	as := NewAnswers(b.entries)
	got := lookupStrings(Reconstruct(b.entries, views(ndots5), DefaultWindow, as))
	if want := []string{"gap.example A,AAAA 5", "web A,AAAA 1"}; !slices.Equal(got, want) {
		t.Fatalf("Reconstruct = %q, want %q", got, want)
	}
	if a := as["gap.example.corp.example."]; !a.NoAddr["A"] || !a.NoAddr["AAAA"] {
		t.Errorf("gap.example.corp.example. NoAddr = %v, want A and AAAA", a.NoAddr)
	}
	for _, n := range []string{"gap.example.", "web.default.svc.cluster.local."} {
		if a := as[n]; len(a.NoAddr) != 0 {
			t.Errorf("%s NoAddr = %v, want none", n, a.NoAddr)
		}
	}
	// With that, musl's replay stops at the NODATA, glibc's finds gap.example.
	if o := Resolve("gap.example", []string{"A", "AAAA"}, ndots5, Musl, as); o.Result != NotFound || o.Name != "gap.example.corp.example." {
		t.Errorf("musl: %+v", o)
	}
	if o := Resolve("gap.example", []string{"A", "AAAA"}, ndots5, Glibc, as); o.Result != Found || o.Name != "gap.example." {
		t.Errorf("glibc: %+v", o)
	}
}

func TestReadLog(t *testing.T) {
	const good = `{"time":"2026-12-06T06:30:00.123456Z","client":"10.244.1.7:40412","proto":"udp","id":4711,"namespace":"shop","pod":"web-5d9c","name":"API.example.com.","type":"A","rcode":"NOERROR","source":"upstream","duration":0.000412}

{"time":"2026-12-06T06:30:00.2Z","client":"","proto":"udp","id":1,"namespace":"","pod":"","name":"x","type":"AAAA","rcode":"NXDOMAIN","source":"","duration":0}
`
	es, err := ReadLog(strings.NewReader(good), "q.log")
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[0].Name != "api.example.com." || es[0].Pod != "web-5d9c" || es[0].ID != 4711 || es[1].Name != "x." {
		t.Errorf("ReadLog = %+v", es)
	}
	for _, bad := range []struct{ in, want string }{
		{"{\"time\":\"2026-12-06T06:30:00Z\",\"name\":\"a.\",\"type\":\"A\",\"rcode\":\"NOERROR\"}\nnot json\n", "q.log:2: not a query log line"},
		{`{"time":"2026-12-06T06:30:00Z","name":"a.","type":"A"}`, "q.log:1: a query log line needs time, name, type and rcode"},
		{`{"time":"2026-12-06T06:30:00Z","client":"nope","name":"a.","type":"A","rcode":"NOERROR"}`, `q.log:1: client "nope"`},
		{`{"time":"2026-12-06T06:30:00Z","name":"` + strings.Repeat("a", maxLine) + `"}`, "q.log: bufio.Scanner: token too long"},
	} {
		if _, err := ReadLog(strings.NewReader(bad.in), "q.log"); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("ReadLog(%.40q) error %v, want %q", bad.in, err, bad.want)
		}
	}
}
