package static

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve"
)

// Deps are what the handler is given besides its configuration.
type Deps struct {
	// Next gets what the blocks do not answer.
	Next serve.Handler
	// Upstream resolves CNAME targets the blocks do not have (in dnsd, the
	// whole chain); nil: the CNAME alone.
	Upstream serve.Handler
	// Metrics count hosts-file reloads; nil: unregistered ones.
	Metrics *Metrics
	// Logger logs refused reloads; nil: discarded.
	Logger *slog.Logger
}

// Static is the handler.
type Static struct {
	next, upstream serve.Handler
	blocks         []*block
	m              *Metrics
	log            *slog.Logger
	stop           chan struct{}
	wg             sync.WaitGroup
	once           sync.Once
}

// block is one configured block and its current records.
type block struct {
	cfg   Block
	zones []string
	ttl   uint32
	tab   atomic.Pointer[table]
	last  []byte // the hosts file's content last seen (the reloader's)
}

// New reads the blocks' hosts files and starts watching them; Close stops
// the watches.
func New(c Config, d Deps) (*Static, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	s := &Static{next: d.Next, upstream: d.Upstream, m: d.Metrics, log: d.Logger, stop: make(chan struct{})}
	if s.m == nil {
		s.m, _ = NewMetrics(nil)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for i, bc := range c {
		b := &block{cfg: bc, zones: bc.zones(), ttl: bc.ttl()}
		var file []hostEntry
		if bc.HostsFile != "" {
			data, err := os.ReadFile(bc.HostsFile)
			if err != nil {
				return nil, fmt.Errorf("static[%d]: %w", i, err)
			}
			if file, _, err = parseHosts(string(data), b.zones); err != nil {
				return nil, fmt.Errorf("static[%d]: %s: %w", i, bc.HostsFile, err)
			}
			b.last = data
		}
		b.tab.Store(b.build(file))
		s.blocks = append(s.blocks, b)
	}
	for _, b := range s.blocks {
		if b.cfg.HostsFile != "" && b.cfg.reload() > 0 {
			s.wg.Add(1)
			go s.watch(b)
		}
	}
	return s, nil
}

// build makes the block's table from its inline entries and cnames and
// the hosts file's entries.
func (b *block) build(file []hostEntry) *table {
	t := newTable()
	inline, _, _ := parseHosts(joinLines(b.cfg.Entries), b.zones) // valid: Validate parsed them
	t.add(inline, b.cfg.NoReverse)
	t.add(file, b.cfg.NoReverse)
	for alias, target := range b.cfg.CNAMEs {
		a := dns.CanonicalName(alias)
		if inZones(a, b.zones) {
			t.rec(a).cname = dns.CanonicalName(target)
		}
	}
	return t
}

func joinLines(ls []string) string {
	var buf bytes.Buffer
	for _, l := range ls {
		buf.WriteString(l)
		buf.WriteByte('\n')
	}
	return buf.String()
}

// watch checks b's hosts file every reload interval until Close.
func (s *Static) watch(b *block) {
	defer s.wg.Done()
	t := time.NewTicker(b.cfg.reload())
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.check(b)
		}
	}
}

// check reads b's hosts file through its path (following a ..data
// symlink swap) and applies it when it changed and is whole and not
// empty; else the last good records stay.
func (s *Static) check(b *block) {
	data, err := os.ReadFile(b.cfg.HostsFile)
	if err != nil {
		s.refuse(b, "read", err)
		return
	}
	if bytes.Equal(data, b.last) {
		return
	}
	es, err := checkFile(data, b.zones)
	if err != nil {
		reason := "parse"
		switch {
		case errors.Is(err, ErrIncomplete):
			reason = "incomplete"
		case errors.Is(err, ErrEmpty):
			reason = "empty"
		}
		s.refuse(b, reason, err)
		b.last = data // refused once, counted once
		return
	}
	b.last = data
	b.tab.Store(b.build(es))
	s.m.reloads.WithLabelValues(b.cfg.HostsFile).Inc()
	s.log.Info("hosts file reloaded", "file", b.cfg.HostsFile, "names", len(es))
}

func (s *Static) refuse(b *block, reason string, err error) {
	s.m.refused.WithLabelValues(reason).Inc()
	s.log.Warn("hosts file reload refused, the last good records keep serving", "file", b.cfg.HostsFile, "reason", reason, "error", err)
}

// Close stops watching the hosts files.
func (s *Static) Close() {
	s.once.Do(func() {
		close(s.stop)
		s.wg.Wait()
	})
}

// Name implements serve.Handler.
func (s *Static) Name() string { return "static" }

// chasing marks the context of a CNAME target's lookup through Upstream.
type chasing struct{}

// ServeDNS answers the names of the blocks' zones and the PTR queries of
// their addresses; it hands the rest on.
func (s *Static) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	req := serve.NewRequest(w, r)
	if req.QClass() != dns.ClassINET {
		return serve.NextOrFailure(ctx, s.Name(), s.next, w, r)
	}
	name, qtype := req.Name(), req.QType()
	if qtype == dns.TypePTR {
		for _, b := range s.blocks {
			if names := b.tab.Load().reverse[name]; len(names) > 0 {
				m := req.Reply(dns.RcodeSuccess)
				for _, n := range names {
					m.Answer = append(m.Answer, &dns.PTR{Hdr: b.hdr(req.QName(), dns.TypePTR), Ptr: n})
				}
				return s.write(ctx, w, m)
			}
		}
		if dns.IsSubDomain("in-addr.arpa.", name) || dns.IsSubDomain("ip6.arpa.", name) {
			return serve.NextOrFailure(ctx, s.Name(), s.next, w, r)
		}
	}
	b := s.match(name)
	if b == nil {
		return serve.NextOrFailure(ctx, s.Name(), s.next, w, r)
	}
	t := b.tab.Load()
	rec := t.names[name]
	if rec == nil {
		if b.cfg.Fallthrough {
			return serve.NextOrFailure(ctx, s.Name(), s.next, w, r)
		}
		return s.write(ctx, w, req.Reply(dns.RcodeNameError))
	}
	m := req.Reply(dns.RcodeSuccess)
	owner := req.QName()
	for range 8 { // a CNAME chain inside the block, bounded
		if rec.cname == "" {
			m.Answer = append(m.Answer, b.addrs(owner, rec, qtype)...)
			break
		}
		m.Answer = append(m.Answer, &dns.CNAME{Hdr: b.hdr(owner, dns.TypeCNAME), Target: rec.cname})
		if qtype == dns.TypeCNAME {
			break
		}
		next := t.names[rec.cname]
		if next == nil {
			m.Answer = append(m.Answer, s.chase(ctx, w, rec.cname, qtype)...)
			break
		}
		owner, rec = rec.cname, next
	}
	return s.write(ctx, w, m)
}

// match is the block with the longest zone that holds name.
func (s *Static) match(name string) *block {
	var best *block
	bestLen := -1
	for _, b := range s.blocks {
		for _, z := range b.zones {
			if len(z) > bestLen && dns.IsSubDomain(z, name) {
				best, bestLen = b, len(z)
			}
		}
	}
	return best
}

// chase resolves a CNAME target the block does not have through Upstream,
// once: a target reached while chasing gets no further chase.
func (s *Static) chase(ctx context.Context, w dns.ResponseWriter, target string, qtype uint16) []dns.RR {
	if s.upstream == nil || ctx.Value(chasing{}) != nil {
		return nil
	}
	q := new(dns.Msg)
	q.SetQuestion(target, qtype)
	q.RecursionDesired = true
	capt := serve.NewCapture(w)
	rcode, err := s.upstream.ServeDNS(context.WithValue(ctx, chasing{}, true), capt, q)
	if err != nil || !serve.ClientWrite(rcode) || capt.Msg == nil {
		return nil
	}
	return capt.Msg.Answer
}

func (s *Static) write(ctx context.Context, w dns.ResponseWriter, m *dns.Msg) (int, error) {
	serve.SetSource(ctx, serve.SourceStatic)
	if err := w.WriteMsg(m); err != nil {
		return dns.RcodeServerFailure, err
	}
	return m.Rcode, nil
}

func (b *block) hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: b.ttl}
}

// addrs are rec's records of qtype (A or AAAA), owned by owner.
func (b *block) addrs(owner string, rec *records, qtype uint16) []dns.RR {
	var rrs []dns.RR
	switch qtype {
	case dns.TypeA:
		for _, a := range rec.a {
			rrs = append(rrs, &dns.A{Hdr: b.hdr(owner, dns.TypeA), A: a.AsSlice()})
		}
	case dns.TypeAAAA:
		for _, a := range rec.aaaa {
			rrs = append(rrs, &dns.AAAA{Hdr: b.hdr(owner, dns.TypeAAAA), AAAA: a.AsSlice()})
		}
	}
	return rrs
}
