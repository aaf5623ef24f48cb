package static

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// records are the static records of one name.
type records struct {
	a, aaaa []netip.Addr
	cname   string
}

// table is a block's records, names fully qualified and lower-cased.
type table struct {
	names   map[string]*records
	reverse map[string][]string // reverse name -> names, in entry order
}

func newTable() *table {
	return &table{names: map[string]*records{}, reverse: map[string][]string{}}
}

func (t *table) rec(name string) *records {
	r := t.names[name]
	if r == nil {
		r = &records{}
		t.names[name] = r
	}
	return r
}

// entries counts the names with records.
func (t *table) entries() int { return len(t.names) }

// hostEntry is one name's address from a hosts-format source.
type hostEntry struct {
	addr netip.Addr
	name string
}

// Errors of hosts-format content.
var (
	ErrIncomplete = errors.New("last line has no newline: the file may have been cut while written")
	ErrEmpty      = errors.New("no entries")
)

// parseHosts parses hosts-format content: "IP name [name...]" lines, #
// comments, blank lines. Every line must parse (a bad line is an error,
// not skipped: a file that lost part of a line must not half-apply), and
// content that does not end with a newline is incomplete. Names outside
// zones are left out; it returns the entries and how many were left out.
func parseHosts(content string, zones []string) ([]hostEntry, int, error) {
	if content != "" && !strings.HasSuffix(content, "\n") {
		return nil, 0, ErrIncomplete
	}
	var out []hostEntry
	outside := 0
	for i, line := range strings.Split(strings.TrimSuffix(content, "\n"), "\n") {
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		addr, err := netip.ParseAddr(f[0])
		if err != nil || addr.Zone() != "" {
			return nil, 0, fmt.Errorf("line %d: %q is not an IP address", i+1, f[0])
		}
		if len(f) < 2 {
			return nil, 0, fmt.Errorf("line %d: %s has no name", i+1, f[0])
		}
		for _, n := range f[1:] {
			if _, ok := dns.IsDomainName(n); !ok {
				return nil, 0, fmt.Errorf("line %d: %q is not a domain name", i+1, n)
			}
			name := dns.CanonicalName(n)
			if !inZones(name, zones) {
				outside++
				continue
			}
			out = append(out, hostEntry{addr: addr.Unmap(), name: name})
		}
	}
	return out, outside, nil
}

// inZones reports whether name (canonical) is in one of zones.
func inZones(name string, zones []string) bool {
	for _, z := range zones {
		if dns.IsSubDomain(z, name) {
			return true
		}
	}
	return false
}

// add puts entries into t, with their reverse names unless noReverse.
func (t *table) add(es []hostEntry, noReverse bool) {
	for _, e := range es {
		r := t.rec(e.name)
		if e.addr.Is4() {
			r.a = appendNew(r.a, e.addr)
		} else {
			r.aaaa = appendNew(r.aaaa, e.addr)
		}
		if noReverse {
			continue
		}
		rev, _ := dns.ReverseAddr(e.addr.String())
		if !contains(t.reverse[rev], e.name) {
			t.reverse[rev] = append(t.reverse[rev], e.name)
		}
	}
}

func appendNew(as []netip.Addr, a netip.Addr) []netip.Addr {
	for _, x := range as {
		if x == a {
			return as
		}
	}
	return append(as, a)
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// checkFile applies the reload rule to a hosts file's content: whole
// (ends with a newline, every line parses) and not empty.
func checkFile(b []byte, zones []string) ([]hostEntry, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, ErrEmpty
	}
	es, _, err := parseHosts(string(b), zones)
	if err != nil {
		return nil, err
	}
	if len(es) == 0 {
		return nil, ErrEmpty
	}
	return es, nil
}
