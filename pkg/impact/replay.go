package impact

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/poddns/poddns/pkg/resolvconf"
)

// Workload is what owns a pod: a Deployment, StatefulSet, ... or the Pod
// itself.
type Workload struct {
	Namespace string `json:"namespace"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
}

func (w Workload) String() string { return w.Kind + " " + w.Namespace + "/" + w.Name }

// Pod is what the replay needs to know of a pod seen in the log.
type Pod struct {
	Workload Workload
	// Current is the resolv.conf the pod has now, Proposed the one it would
	// get under the proposed policies.
	Current, Proposed resolvconf.Config
	// ProposedError says why the pod would not run under the proposed
	// policies (the API server rejects it, kubelet fails its sandbox); ""
	// when it would.
	ProposedError string
}

// Pods finds a pod of the log by namespace and name.
type Pods func(namespace, name string) (Pod, bool)

// Options are the replay's settings.
type Options struct {
	// Window is the longest gap inside one search walk (DefaultWindow).
	Window time.Duration
}

// Change is how a lookup fares under the proposed resolv.conf.
type Change string

// The changes.
const (
	Same      Change = "same"      // the same result (the cost may differ)
	Breaks    Change = "breaks"    // it resolves now and would not
	Different Change = "different" // it would resolve to another name (or resolve where it does not now)
)

// Replay is one lookup replayed with one libc through both files.
type Replay struct {
	Libc     Libc    `json:"libc"`
	Current  Outcome `json:"current"`
	Proposed Outcome `json:"proposed"`
	Change   Change  `json:"change"`
}

// LookupReport is one distinct lookup of a workload (name and types).
type LookupReport struct {
	Name  string   `json:"name"`
	Types []string `json:"types"`
	// Count is how many times the workload's pods made it; Completed how
	// many of those dnsd completed (not replayed: the log does not say
	// which name answered).
	Count     int      `json:"count"`
	Completed int      `json:"completed"`
	Replays   []Replay `json:"replays"`
}

// Summary is a workload's replay with one libc.
type Summary struct {
	Libc Libc `json:"libc"`
	// Breaks and Different are the names of the lookups that would break
	// or resolve to another name.
	Breaks    []string `json:"breaks"`
	Different []string `json:"different"`
	// Queries and ProposedQueries are the wire queries of the replayed
	// lookups through the current and the proposed file; Saved the
	// difference (negative: more queries).
	Queries         int `json:"queries"`
	ProposedQueries int `json:"proposedQueries"`
	Saved           int `json:"saved"`
}

// WorkloadReport is the replay of one workload's lookups.
type WorkloadReport struct {
	Workload
	Pods []string `json:"pods"`
	// Lookups counts the lookups rebuilt from the log, completed ones
	// included.
	Lookups      int            `json:"lookups"`
	Libcs        []Summary      `json:"libcs"`
	Distinct     []LookupReport `json:"distinct"`
	Unknown      []string       `json:"unknown"`
	Notes        []string       `json:"notes"`
	CurrentConf  string         `json:"currentResolvConf"`
	ProposedConf string         `json:"proposedResolvConf"`
}

// Unmatched is a client of the log the replay could not place: an address
// no pod has, or a pod not among the ones given.
type Unmatched struct {
	Client    string `json:"client"`
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	Queries   int    `json:"queries"`
}

// Report is the whole replay.
type Report struct {
	Workloads []WorkloadReport `json:"workloads"`
	Unmatched []Unmatched      `json:"unmatched"`
}

// Breaks reports whether any lookup of any workload would break.
func (r *Report) Breaks() bool {
	for _, w := range r.Workloads {
		for _, s := range w.Libcs {
			if len(s.Breaks) > 0 {
				return true
			}
		}
	}
	return false
}

// Analyze rebuilds every lookup of every pod in entries and replays it with
// glibc and musl through the pod's current and proposed resolv.conf, with
// the log's answers as the oracle of what exists.
func Analyze(entries []Entry, pods Pods, o Options) *Report {
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	sorted := slices.Clone(entries)
	slices.SortStableFunc(sorted, func(a, b Entry) int { return a.Time.Compare(b.Time) })
	as := NewAnswers(sorted)

	type client struct {
		namespace, pod, addr string
		entries              []Entry
	}
	var clients []*client
	byKey := map[string]*client{}
	for _, e := range sorted {
		key := e.Namespace + "/" + e.Pod
		addr := ""
		if e.Pod == "" {
			if ap, err := netip.ParseAddrPort(e.Client); err == nil {
				addr = ap.Addr().String()
			}
			key = "ip " + addr
		}
		c := byKey[key]
		if c == nil {
			c = &client{namespace: e.Namespace, pod: e.Pod, addr: addr}
			byKey[key] = c
			clients = append(clients, c)
		}
		c.entries = append(c.entries, e)
	}

	// Every walk is rebuilt first: they teach the oracle which names are
	// NODATA, which the replays then use.
	type podLookups struct {
		pod     Pod
		name    string
		lookups []Lookup
	}
	var placed []podLookups
	r := &Report{Workloads: []WorkloadReport{}, Unmatched: []Unmatched{}}
	for _, c := range clients {
		var p Pod
		ok := c.pod != ""
		if ok {
			p, ok = pods(c.namespace, c.pod)
		}
		if !ok {
			r.Unmatched = append(r.Unmatched, Unmatched{Client: c.addr, Namespace: c.namespace, Pod: c.pod, Queries: len(c.entries)})
			continue
		}
		views := map[Libc]View{}
		for _, l := range Libcs {
			views[l] = ViewOf(p.Current, l)
		}
		placed = append(placed, podLookups{pod: p, name: c.pod, lookups: Reconstruct(c.entries, views, o.Window, as)})
	}

	byWorkload := map[Workload]*WorkloadReport{}
	distinct := map[Workload]map[string]*LookupReport{}
	for _, pl := range placed {
		w := byWorkload[pl.pod.Workload]
		if w == nil {
			w = &WorkloadReport{Workload: pl.pod.Workload, Pods: []string{}, Distinct: []LookupReport{}, Unknown: []string{}, Notes: []string{},
				CurrentConf: pl.pod.Current.Render(), ProposedConf: pl.pod.Proposed.Render()}
			for _, l := range Libcs {
				w.Libcs = append(w.Libcs, Summary{Libc: l, Breaks: []string{}, Different: []string{}})
			}
			byWorkload[pl.pod.Workload] = w
			distinct[pl.pod.Workload] = map[string]*LookupReport{}
		}
		w.Pods = append(w.Pods, pl.name)
		if pl.pod.ProposedError != "" {
			w.Notes = appendNew(w.Notes, "pod "+pl.name+" would not run under the proposed policies: "+pl.pod.ProposedError)
		}
		if c, p := pl.pod.Current.Render(), pl.pod.Proposed.Render(); c != w.CurrentConf || p != w.ProposedConf {
			w.Notes = appendNew(w.Notes, "pod "+pl.name+" has another resolv.conf than pod "+w.Pods[0]+" (its lookups are replayed through its own)")
		}
		cur, prop := map[Libc]View{}, map[Libc]View{}
		for _, l := range Libcs {
			cur[l], prop[l] = ViewOf(pl.pod.Current, l), ViewOf(pl.pod.Proposed, l)
		}
		for _, lk := range pl.lookups {
			w.Lookups++
			key := lk.Name + " " + strings.Join(lk.Types, ",")
			d := distinct[pl.pod.Workload][key]
			if d == nil {
				d = &LookupReport{Name: lk.Name, Types: lk.Types, Replays: []Replay{}}
				distinct[pl.pod.Workload][key] = d
			}
			d.Count++
			if lk.Completed {
				d.Completed++
				continue
			}
			for i, l := range Libcs {
				rp := Replay{Libc: l, Current: Resolve(lk.Name, lk.Types, cur[l], l, as)}
				if pl.pod.ProposedError == "" {
					rp.Proposed = Resolve(lk.Name, lk.Types, prop[l], l, as)
				} else {
					rp.Proposed = Outcome{Result: Failed, Asked: []string{}}
				}
				rp.Change = change(rp.Current, rp.Proposed)
				if len(d.Replays) < len(Libcs) {
					d.Replays = append(d.Replays, rp)
				}
				s := &w.Libcs[i]
				s.Queries += rp.Current.Queries(len(lk.Types))
				s.ProposedQueries += rp.Proposed.Queries(len(lk.Types))
				switch rp.Change {
				case Breaks:
					s.Breaks = appendNew(s.Breaks, lk.Name)
				case Different:
					s.Different = appendNew(s.Different, lk.Name)
				}
				for _, u := range append(slices.Clone(rp.Current.Unknown), rp.Proposed.Unknown...) {
					w.Unknown = appendNew(w.Unknown, u)
				}
			}
		}
	}
	for wl, w := range byWorkload {
		for i := range w.Libcs {
			w.Libcs[i].Saved = w.Libcs[i].Queries - w.Libcs[i].ProposedQueries
		}
		for _, d := range distinct[wl] {
			w.Distinct = append(w.Distinct, *d)
		}
		slices.SortFunc(w.Distinct, func(a, b LookupReport) int {
			return cmp.Or(cmp.Compare(a.Name, b.Name), slices.Compare(a.Types, b.Types))
		})
		slices.Sort(w.Pods)
		r.Workloads = append(r.Workloads, *w)
	}
	slices.SortFunc(r.Workloads, func(a, b WorkloadReport) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
	})
	return r
}

// change classifies a lookup's proposed outcome against its current one.
func change(cur, prop Outcome) Change {
	switch {
	case cur.Result == Found && prop.Result == Found && cur.Name == prop.Name:
		return Same
	case cur.Result == Found && prop.Result == Found:
		return Different
	case cur.Result == Found:
		return Breaks
	case prop.Result == Found:
		return Different
	}
	return Same
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}
