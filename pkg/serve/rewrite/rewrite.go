// Package rewrite rewrites query names before they are looked up —
// CoreDNS's `rewrite name ... answer auto` — and answers with the name the
// client asked: every record of the reply owned by the rewritten name is
// given back the client's name (spelt as the client spelt it), and the
// question is the client's.
//
// Why the asked name and not a CNAME to the target: a rewrite is there to
// make a name resolve where it would not, and stub resolvers compare the
// reply with the question (glibc drops answer records owned by a name it
// did not ask and follows no CNAME whose target it gets no record for);
// with the records owned by the asked name every client takes the answer,
// caches it under the name it asked, and sees nothing of the rewrite —
// which is also what CoreDNS users migrate from. A CNAME would show the
// target, but break clients that look only for records of their name.
//
// Rules are tried in order and the first that matches applies: exact (the
// name equals From), suffix (the name is From or ends in ".From"; the
// suffix is replaced by To) and regex (a Go regular expression matched
// against the whole fully qualified lower-case name; To may use $1...).
// Names inside the cluster zones are never rewritten unless the rule says
// Cluster: a rewrite must not change what a Service's name means by
// accident. Rewriting an outside name TO a cluster name is the common use
// and always allowed. dnsd puts the handler right in front of the cluster
// handler, so a rewritten name is answered by cluster, static, cache and
// forward alike.
package rewrite

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve"
)

// Config is the rewrite block of dnsd's DNSDConfig: the rules, in order.
type Config []Rule

// Rule is one rewrite.
type Rule struct {
	// Match is exact, suffix or regex.
	Match string `json:"match"`
	// From is the name (exact), the suffix (suffix) or the regular
	// expression (regex).
	From string `json:"from"`
	// To is the name looked up instead (exact), the suffix put in From's
	// place (suffix), or the replacement with $1... (regex).
	To string `json:"to"`
	// Cluster lets the rule rewrite names inside the cluster zones
	// (default: never).
	Cluster bool `json:"cluster,omitempty"`
}

// Validate checks c.
func (c Config) Validate() error {
	var errs []error
	for i, r := range c {
		at := fmt.Sprintf("rewrite[%d]", i)
		switch r.Match {
		case "exact", "suffix":
			for _, n := range []string{r.From, r.To} {
				if _, ok := dns.IsDomainName(n); !ok || n == "" || n == "." {
					errs = append(errs, fmt.Errorf("%s: %q is not a domain name", at, n))
				}
			}
		case "regex":
			if _, err := regexp.Compile(r.From); err != nil || r.From == "" {
				errs = append(errs, fmt.Errorf("%s: from %q: not a regular expression: %v", at, r.From, err))
			}
			if r.To == "" {
				errs = append(errs, fmt.Errorf("%s: to is empty", at))
			}
		default:
			errs = append(errs, fmt.Errorf("%s: match %q: want exact, suffix or regex", at, r.Match))
		}
	}
	return errors.Join(errs...)
}

// Deps are what the handler is given besides its configuration.
type Deps struct {
	// Next answers the (rewritten) queries.
	Next serve.Handler
	// Zones are the cluster zones, fully qualified lower case.
	Zones []string
}

// Rewrite is the handler.
type Rewrite struct {
	next  serve.Handler
	zones []string
	rules []rule
}

type rule struct {
	Rule
	from, to string // canonical (exact, suffix)
	re       *regexp.Regexp
}

// New returns the handler.
func New(c Config, d Deps) (*Rewrite, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	h := &Rewrite{next: d.Next, zones: d.Zones}
	for _, r := range c {
		x := rule{Rule: r}
		if r.Match == "regex" {
			x.re = regexp.MustCompile(r.From)
		} else {
			x.from, x.to = dns.CanonicalName(r.From), dns.CanonicalName(r.To)
		}
		h.rules = append(h.rules, x)
	}
	return h, nil
}

// Name implements serve.Handler.
func (h *Rewrite) Name() string { return "rewrite" }

// target is the name to look up instead of name (canonical), or "".
func (h *Rewrite) target(name string) string {
	inCluster := false
	for _, z := range h.zones {
		if dns.IsSubDomain(z, name) {
			inCluster = true
		}
	}
	for _, r := range h.rules {
		if inCluster && !r.Cluster {
			continue
		}
		var to string
		switch r.Match {
		case "exact":
			if name == r.from {
				to = r.to
			}
		case "suffix":
			if name == r.from {
				to = r.to
			} else if strings.HasSuffix(name, "."+r.from) {
				to = name[:len(name)-len(r.from)] + r.to
			}
		case "regex":
			if m := r.re.FindStringSubmatchIndex(name); m != nil {
				to = dns.CanonicalName(string(r.re.ExpandString(nil, r.To, name, m)))
			}
		}
		if to == "" {
			continue
		}
		if _, ok := dns.IsDomainName(to); !ok || to == name {
			return ""
		}
		return to
	}
	return ""
}

// ServeDNS rewrites the query's name and hands it on; the reply is given
// back the asked name.
func (h *Rewrite) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	req := serve.NewRequest(w, r)
	to := h.target(req.Name())
	if to == "" {
		return serve.NextOrFailure(ctx, h.Name(), h.next, w, r)
	}
	r2 := *r
	r2.Question = []dns.Question{{Name: to, Qtype: req.QType(), Qclass: req.QClass()}}
	return serve.NextOrFailure(ctx, h.Name(), h.next, &writer{ResponseWriter: w, asked: r.Question, to: to}, &r2)
}

// writer gives a reply the question asked and the asked name back.
type writer struct {
	dns.ResponseWriter
	asked []dns.Question
	to    string
}

func (w *writer) WriteMsg(m *dns.Msg) error {
	c := *m
	c.Question = w.asked
	c.Answer, c.Ns, c.Extra = w.back(m.Answer), w.back(m.Ns), w.back(m.Extra)
	return w.ResponseWriter.WriteMsg(&c)
}

// back returns rrs with the records owned by the rewritten name copied and
// owned by the asked name; the others are shared.
func (w *writer) back(rrs []dns.RR) []dns.RR {
	if len(rrs) == 0 {
		return rrs
	}
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		if strings.EqualFold(rr.Header().Name, w.to) {
			rr = dns.Copy(rr)
			rr.Header().Name = w.asked[0].Name
		}
		out[i] = rr
	}
	return out
}
