package impact

import (
	"slices"
	"strings"
	"time"
)

// DefaultWindow is the longest gap between the reply to one wire name of a
// search walk and the question for the next: the stub resolvers ask the next
// name as soon as an answer says the previous one does not do.
const DefaultWindow = time.Second

// Lookup is one name an application asked its stub resolver for, rebuilt
// from the wire queries of its search walk.
type Lookup struct {
	// Name is the name as the application gave it: with a trailing dot only
	// if it had one (or the walk was a single name the pod's search list
	// cannot explain).
	Name string `json:"name"`
	// Types are the query types asked for each name (A and AAAA for
	// getaddrinfo with AF_UNSPEC), sorted.
	Types []string `json:"types"`
	// Walk are the wire names seen, in order.
	Walk []string `json:"walk"`
	// Completed is set when dnsd completed the walk itself (server-side
	// search completion): the client asked the first name only.
	Completed bool      `json:"completed,omitempty"`
	Time      time.Time `json:"time"`
}

// step is one wire name asked once per type (the A and AAAA a resolver
// sends together).
type step struct {
	name        string
	types       []string
	ids         map[string]uint16
	first, last time.Time // the first question, the last reply
	noerror     []string  // types answered NOERROR
	completed   bool
}

// steps folds the entries of one client (in time order) into steps: the
// questions for one name within window of each other, each type once; a
// question repeated with the same ID is a retransmission and dropped.
func steps(entries []Entry, window time.Duration) []*step {
	var out []*step
	for _, e := range entries {
		var cur *step
		if n := len(out); n > 0 && out[n-1].name == e.Name && e.Time.Sub(out[n-1].first) <= window {
			cur = out[n-1]
			if id, ok := cur.ids[e.Type]; ok {
				if id == e.ID {
					continue // a retransmission
				}
				cur = nil // the same name asked again: a new lookup
			}
		}
		if cur == nil {
			cur = &step{name: e.Name, ids: map[string]uint16{}, first: e.Time}
			out = append(out, cur)
		}
		cur.types = append(cur.types, e.Type)
		cur.ids[e.Type] = e.ID
		if end := e.end(); end.After(cur.last) {
			cur.last = end
		}
		if e.Rcode == rcodeNoError {
			cur.noerror = append(cur.noerror, e.Type)
		}
		if e.Source == sourceCompletion {
			cur.completed = true
		}
	}
	return out
}

// Reconstruct rebuilds the lookups of one pod from its query log entries
// (in time order), given what each libc reads from the pod's resolv.conf.
// A walk starts at a name that is the first of some lookup's walk — the
// name under the first search domain for a name with fewer dots than ndots,
// the name as it is for one with more — and takes in the following names
// as long as they are the next ones of that walk, each asked within window
// of the reply to the one before (the log's time and duration). The longest such walk wins (glibc's before musl's, search
// before as-is on a tie); a name that starts none is a lookup of that name
// with a trailing dot.
//
// A walk that goes on past a name answered NOERROR shows that name had no
// records of those types (glibc walks on past NODATA); as learns that.
func Reconstruct(entries []Entry, views map[Libc]View, window time.Duration, as Answers) []Lookup {
	ss := steps(entries, window)
	var out []Lookup
	for i := 0; i < len(ss); {
		name, n := match(ss, i, views, window)
		l := Lookup{Name: name, Time: ss[i].first, Completed: ss[i].completed}
		for _, s := range ss[i : i+n] {
			l.Walk = append(l.Walk, s.name)
			for _, t := range s.types {
				if !slices.Contains(l.Types, t) {
					l.Types = append(l.Types, t)
				}
			}
		}
		slices.Sort(l.Types)
		for _, s := range ss[i : i+n-1] {
			for _, t := range s.noerror {
				if a := as[s.name]; a != nil {
					a.markNoAddr(t)
				}
			}
		}
		out = append(out, l)
		i += n
	}
	return out
}

// match finds the lookup whose walk starts at ss[i]: its name and the
// number of steps it takes.
func match(ss []*step, i int, views map[Libc]View, window time.Duration) (string, int) {
	q := ss[i].name
	bare := strings.TrimSuffix(q, ".")
	best, bestN := "", 0
	for _, l := range Libcs {
		v, ok := views[l]
		if !ok {
			continue
		}
		var cands []string
		if len(v.Search) > 0 {
			if x, ok := strings.CutSuffix(q, "."+v.Search[0]+"."); ok && x != "" && strings.Count(x, ".") < v.Ndots {
				cands = append(cands, x)
			}
		}
		if strings.Count(bare, ".") >= v.Ndots || len(v.Search) == 0 {
			cands = append(cands, bare)
		}
		for _, c := range cands {
			walk := Names(c, v, l)
			if len(walk) == 0 || walk[0] != q {
				continue
			}
			n := 1
			if !ss[i].completed {
				for n < len(walk) && i+n < len(ss) && ss[i+n].name == walk[n] &&
					ss[i+n].first.Sub(ss[i+n-1].last) <= window && !ss[i+n].completed {
					n++
				}
			}
			if n > bestN {
				best, bestN = c, n
			}
		}
	}
	if bestN == 0 {
		return q, 1
	}
	return best, bestN
}
