package impact

import (
	"strconv"
	"strings"

	"github.com/poddns/poddns/pkg/resolvconf"
)

// Libc is a stub resolver whose search algorithm is modelled.
type Libc string

// The modelled stub resolvers.
const (
	Glibc Libc = "glibc"
	Musl  Libc = "musl"
)

// Libcs are the modelled stub resolvers, in report order.
var Libcs = []Libc{Glibc, Musl}

// Stub resolver constants both libcs share (resolv.h, musl's resolvconf.c).
const (
	defaultNdots = 1
	maxNdots     = 15
	// muslLine is musl's resolv.conf line buffer: a line of this many
	// bytes or more, newline included, is skipped whole.
	muslLine = 256
)

// View is what one stub resolver takes from a resolv.conf for its search
// walk: the search domains (lower case, without a trailing dot) and ndots.
type View struct {
	Search []string `json:"search"`
	Ndots  int      `json:"ndots"`
}

// ViewOf is what l reads from c as containerd writes it (c.Render): the
// search line (musl skips a line of 256 bytes or more whole: no search
// list then) and ndots from the options line (the last ndots:N wins, capped
// at 15; musl skips a long options line too, keeping ndots:1).
func ViewOf(c resolvconf.Config, l Libc) View {
	v := View{Ndots: defaultNdots}
	fits := func(keyword string, items []string) bool {
		return l != Musl || len(keyword)+1+len(strings.Join(items, " "))+1 < muslLine
	}
	if len(c.Searches) > 0 && fits("search", c.Searches) {
		for _, s := range c.Searches {
			s = strings.ToLower(strings.TrimSuffix(s, "."))
			if s != "" {
				v.Search = append(v.Search, s)
			}
		}
	}
	if len(c.Options) > 0 && fits("options", c.Options) {
		for _, o := range c.Options {
			val, ok := strings.CutPrefix(o, "ndots:")
			if !ok {
				continue
			}
			// glibc uses atoi, musl strtoul: both take the leading digits.
			end := 0
			for end < len(val) && val[end] >= '0' && val[end] <= '9' {
				end++
			}
			if end == 0 {
				continue
			}
			n, err := strconv.Atoi(val[:end])
			if err != nil || n > maxNdots {
				n = maxNdots
			}
			v.Ndots = n
		}
	}
	return v
}

// Names are the wire names l asks, in order, for a lookup of name with view
// v when no name on the way stops the walk (all fully qualified, lower case):
//
//   - a name with a trailing dot is asked as it is, alone;
//   - a name with fewer dots than ndots is asked under each search domain
//     in order, then as it is;
//   - a name with ndots or more dots is asked as it is first; glibc then
//     walks the search domains, musl never searches such a name.
func Names(name string, v View, l Libc) []string {
	name = strings.ToLower(name)
	if name == "" || name == "." {
		return nil
	}
	if strings.HasSuffix(name, ".") {
		return []string{name}
	}
	abs := name + "."
	searched := make([]string, 0, len(v.Search)+1)
	for _, d := range v.Search {
		searched = append(searched, name+"."+d+".")
	}
	if strings.Count(name, ".") < v.Ndots {
		return append(searched, abs)
	}
	if l == Musl {
		return []string{abs}
	}
	return append([]string{abs}, searched...)
}

// Answer is what the query log says about one wire name.
type Answer struct {
	// Rcodes are the rcodes logged for the name by query type ("A",
	// "AAAA", ...).
	Rcodes map[string]string `json:"rcodes"`
	// NoAddr are the types answered NOERROR without records: NODATA (a
	// glibc walk went on past the name, or dnsd's AAAA filter answered).
	NoAddr map[string]bool `json:"noAddr,omitempty"`
}

// The rcodes the walk rules look at, as the query log writes them.
const (
	rcodeNoError  = "NOERROR"
	rcodeNXDomain = "NXDOMAIN"
	rcodeServFail = "SERVFAIL"
)

// addr reports whether the name has records of type t: NOERROR and not
// known to be NODATA. The query log does not say whether a NOERROR reply
// had records; one is taken to have them unless the log shows otherwise.
func (a *Answer) addr(t string) bool { return a.Rcodes[t] == rcodeNoError && !a.NoAddr[t] }

// Oracle answers what the query log knows about a wire name; ok is false
// for a name the log never asked.
type Oracle interface {
	Answer(name string) (a *Answer, ok bool)
}

// Result is how a lookup ends.
type Result string

// The results of a lookup.
const (
	Found    Result = "found"     // an address, at Outcome.Name
	NotFound Result = "not found" // NXDOMAIN or NODATA: EAI_NONAME, EAI_NODATA
	Failed   Result = "failed"    // a server failure or refusal stopped the walk: EAI_AGAIN, EAI_FAIL
)

// Outcome is a lookup replayed with one libc and one view.
type Outcome struct {
	Result Result `json:"result"`
	// Name is the wire name that answered (Found) or stopped the walk
	// (musl's NODATA, Failed); "" when the walk ran out.
	Name string `json:"name"`
	// Asked are the wire names asked, in order.
	Asked []string `json:"asked"`
	// Unknown are the asked names the log never asked: taken not to exist.
	Unknown []string `json:"unknown,omitempty"`
}

// Queries is the number of wire queries the outcome costs for a lookup of
// types types (each name is asked once per type).
func (o Outcome) Queries(types int) int { return len(o.Asked) * types }

// Resolve replays a lookup of name for types (the query types the
// application's call sends: A and AAAA for getaddrinfo with AF_UNSPEC)
// with libc l and view v, answering each wire name from o. A name the log
// never asked is taken not to exist and listed in Outcome.Unknown.
//
// The stop rules, as the e2e tests pin them down:
//   - glibc stops at the first name with an address of any asked type; it
//     walks on past NXDOMAIN, NODATA and SERVFAIL; another error rcode
//     (REFUSED, FORMERR, ...) ends the walk as a failure.
//   - musl stops at the first name whose replies (A before AAAA) hold no
//     NXDOMAIN before a SERVFAIL or another error: NODATA ends the walk
//     not found, SERVFAIL and other errors as a failure.
func Resolve(name string, types []string, v View, l Libc, o Oracle) Outcome {
	out := Outcome{Result: NotFound, Asked: []string{}}
	for _, n := range Names(name, v, l) {
		out.Asked = append(out.Asked, n)
		a, ok := o.Answer(n)
		if !ok {
			out.Unknown = append(out.Unknown, n)
			continue
		}
		var r Result
		var stop bool
		if l == Musl {
			r, stop = muslStep(a, types)
		} else {
			r, stop = glibcStep(a, types)
		}
		if stop {
			out.Result, out.Name = r, n
			return out
		}
	}
	return out
}

func glibcStep(a *Answer, types []string) (Result, bool) {
	for _, t := range types {
		if a.addr(t) {
			return Found, true
		}
	}
	for _, t := range types {
		switch rc, ok := a.Rcodes[t]; {
		case !ok, rc == rcodeNoError, rc == rcodeNXDomain, rc == rcodeServFail:
		default:
			return Failed, true
		}
	}
	return "", false
}

func muslStep(a *Answer, types []string) (Result, bool) {
	logged := false
	for _, t := range ordered(types) {
		rc, ok := a.Rcodes[t]
		if !ok {
			continue
		}
		logged = true
		switch rc {
		case rcodeNXDomain:
			return "", false
		case rcodeNoError:
		default:
			return Failed, true
		}
	}
	if !logged {
		// Only other types were logged: NXDOMAIN is for the name.
		for _, rc := range a.Rcodes {
			if rc == rcodeNXDomain {
				return "", false
			}
		}
	}
	for _, t := range types {
		if a.addr(t) {
			return Found, true
		}
	}
	return NotFound, true
}

// ordered returns types with A before AAAA, as musl sends and reads them.
func ordered(types []string) []string {
	out := make([]string, 0, len(types))
	for _, first := range []string{"A", "AAAA"} {
		for _, t := range types {
			if t == first {
				out = append(out, t)
			}
		}
	}
	for _, t := range types {
		if t != "A" && t != "AAAA" {
			out = append(out, t)
		}
	}
	return out
}
