package cache

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve"
)

// Defaults (CoreDNS's).
const (
	DefaultCapacity        = 9984
	MinCapacity            = 1024
	DefaultSuccessMaxTTL   = 3600 * time.Second
	DefaultDenialMaxTTL    = 1800 * time.Second
	DefaultMinTTL          = 5 * time.Second
	DefaultServfailTTL     = 5 * time.Second
	MaxServfailTTL         = 5 * time.Minute
	DefaultPrefetchWindow  = time.Minute
	DefaultPrefetchPercent = 10
	DefaultStaleTTL        = 30 * time.Second
	numShards              = 256
	maxPrefetching         = 16
	prefetchTimeout        = 10 * time.Second
)

// Options configure a Cache. Zero values mean the defaults.
type Options struct {
	// Capacity is the number of entries of each of the two caches
	// (success, denial), rounded down to a multiple of 256, at least 1024.
	Capacity int
	// SuccessMaxTTL and DenialMaxTTL cap entry TTLs.
	SuccessMaxTTL, DenialMaxTTL time.Duration
	// SuccessMinTTL and DenialMinTTL floor entry TTLs; negative means 0.
	SuccessMinTTL, DenialMinTTL time.Duration
	// ServfailTTL is how long a SERVFAIL is cached (at most 5 m); negative
	// disables it.
	ServfailTTL time.Duration
	// Prefetch is the number of hits that makes an entry popular; 0 turns
	// prefetch off.
	Prefetch int
	// PrefetchWindow is the longest gap between hits of a popular entry.
	PrefetchWindow time.Duration
	// PrefetchPercent (10..90) of the TTL left triggers the refresh.
	PrefetchPercent int
	// ServeStale keeps expired entries this long, served when the next
	// handler fails; 0 turns serve-stale off.
	ServeStale time.Duration
	// StaleTTL is the TTL of stale answers.
	StaleTTL time.Duration
	// Metrics, if set, receive the cache's metrics.
	Metrics *Metrics
	// Next answers what the cache does not have.
	Next serve.Handler
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Cache is the caching handler.
type Cache struct {
	Next serve.Handler

	succ, deny  *store
	succMax     uint32
	succMin     uint32
	denyMax     uint32
	denyMin     uint32
	servfail    uint32
	prefetch    int32
	window      time.Duration
	percent     int
	stale       time.Duration
	staleTTL    uint32
	m           *Metrics
	now         func() time.Time
	prefetchSem chan struct{}
	prefetchWG  sync.WaitGroup
	closed      atomic.Bool
	// Metric handles of the hot path, resolved once.
	hitS, hitD, missC, reqC, evictS, evictD interface{ Inc() }
}

func secs(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	return uint32(min(d/time.Second, 1<<31))
}

// New checks o and returns the cache.
func New(o Options) (*Cache, error) {
	c := &Cache{Next: o.Next, m: o.Metrics, now: o.Now, prefetchSem: make(chan struct{}, maxPrefetching)}
	capacity := o.Capacity
	if capacity == 0 {
		capacity = DefaultCapacity
	}
	if capacity < MinCapacity {
		return nil, fmt.Errorf("cache: capacity %d is below %d", capacity, MinCapacity)
	}
	or := func(d, def time.Duration) time.Duration {
		if d == 0 {
			return def
		}
		return d
	}
	c.succMax = secs(or(o.SuccessMaxTTL, DefaultSuccessMaxTTL))
	c.denyMax = secs(or(o.DenialMaxTTL, DefaultDenialMaxTTL))
	c.succMin = secs(or(o.SuccessMinTTL, DefaultMinTTL))
	c.denyMin = secs(or(o.DenialMinTTL, DefaultMinTTL))
	if c.succMin > c.succMax || c.denyMin > c.denyMax {
		return nil, errors.New("cache: a minimum TTL is above its maximum")
	}
	sf := or(o.ServfailTTL, DefaultServfailTTL)
	if sf > MaxServfailTTL {
		return nil, fmt.Errorf("cache: servfail TTL %s is above %s", sf, MaxServfailTTL)
	}
	c.servfail = secs(sf)
	if o.Prefetch < 0 {
		return nil, errors.New("cache: prefetch is negative")
	}
	c.prefetch = int32(o.Prefetch)
	c.window = or(o.PrefetchWindow, DefaultPrefetchWindow)
	c.percent = o.PrefetchPercent
	if c.percent == 0 {
		c.percent = DefaultPrefetchPercent
	}
	if c.percent < 10 || c.percent > 90 {
		return nil, fmt.Errorf("cache: prefetch percentage %d is outside 10..90", c.percent)
	}
	if o.ServeStale < 0 {
		return nil, errors.New("cache: serve-stale duration is negative")
	}
	c.stale = o.ServeStale
	c.staleTTL = secs(or(o.StaleTTL, DefaultStaleTTL))
	if c.now == nil {
		c.now = time.Now
	}
	if c.m == nil {
		c.m, _ = NewMetrics(nil)
	}
	perShard := capacity / numShards
	c.succ = newStore(perShard, c.m.entries.WithLabelValues("success"))
	c.deny = newStore(perShard, c.m.entries.WithLabelValues("denial"))
	c.hitS, c.hitD = c.m.hits.WithLabelValues("success"), c.m.hits.WithLabelValues("denial")
	c.evictS, c.evictD = c.m.evictions.WithLabelValues("success"), c.m.evictions.WithLabelValues("denial")
	c.missC, c.reqC = c.m.misses, c.m.requests
	return c, nil
}

// Name implements serve.Handler.
func (c *Cache) Name() string { return "cache" }

// Close waits for the background refreshes and takes the cache's entries
// out of the entries gauge (the metrics outlive the cache).
func (c *Cache) Close() {
	if c.closed.Swap(true) {
		return
	}
	c.prefetchWG.Wait()
	c.succ.clear()
	c.deny.clear()
}

// Len returns the number of entries of the success and denial caches.
func (c *Cache) Len() (success, denial int) { return c.succ.len(), c.deny.len() }

// kinds of entries.
const (
	kindSuccess = iota
	kindDenial
	kindServfail
)

type entry struct {
	msg         *dns.Msg // never modified
	kind        int
	ttl         uint32
	stored      time.Time
	expires     time.Time
	hits        atomic.Int32
	lastHit     atomic.Int64 // unix nanoseconds
	prefetching atomic.Bool
}

// key makes the cache key of r.
func key(r *dns.Msg) string {
	q := r.Question[0]
	var flags byte
	if r.CheckingDisabled {
		flags |= 1
	}
	if opt := r.IsEdns0(); opt != nil && opt.Do() {
		flags |= 2
	}
	var b strings.Builder
	b.Grow(len(q.Name) + 5)
	for i := 0; i < len(q.Name); i++ {
		ch := q.Name[i]
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		b.WriteByte(ch)
	}
	b.Write([]byte{byte(q.Qtype >> 8), byte(q.Qtype), byte(q.Qclass >> 8), byte(q.Qclass), flags})
	return b.String()
}

// ServeDNS answers from the cache or hands on, caching the reply.
func (c *Cache) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	switch r.Question[0].Qtype {
	case dns.TypeAXFR, dns.TypeIXFR:
		return serve.NextOrFailure(ctx, c.Name(), c.Next, w, r)
	}
	c.reqC.Inc()
	k := key(r)
	now := c.now()
	e := c.get(k)
	if e != nil && now.Before(e.expires) {
		if e.kind == kindSuccess {
			c.hitS.Inc()
		} else {
			c.hitD.Inc()
		}
		if c.prefetch > 0 && e.kind != kindServfail {
			c.maybePrefetch(e, k, w, r, now)
		}
		if e.kind == kindServfail {
			return dns.RcodeServerFailure, nil
		}
		if err := w.WriteMsg(c.reply(e, r, now, false)); err != nil {
			return dns.RcodeServerFailure, err
		}
		return e.msg.Rcode, nil
	}
	c.missC.Inc()
	if e != nil && e.kind != kindServfail && c.stale > 0 && now.Before(e.expires.Add(c.stale)) {
		return c.serveStale(ctx, e, k, w, r)
	}
	cw := &cachingWriter{ResponseWriter: w, c: c, key: k, req: r}
	rcode, err := serve.NextOrFailure(ctx, c.Name(), c.Next, cw, r)
	if !cw.written && rcode == dns.RcodeServerFailure {
		c.add(k, servfailMsg(r))
	}
	return rcode, err
}

// serveStale asks the next handler first and serves the expired entry e
// when it fails.
func (c *Cache) serveStale(ctx context.Context, e *entry, k string, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	capture := serve.NewCapture(w)
	rcode, err := serve.NextOrFailure(ctx, c.Name(), c.Next, capture, r)
	if m := capture.Msg; err == nil && m != nil && serve.ClientWrite(rcode) &&
		m.Rcode != dns.RcodeServerFailure && m.Rcode != dns.RcodeRefused {
		c.add(k, m)
		if werr := w.WriteMsg(m); werr != nil {
			return dns.RcodeServerFailure, werr
		}
		return rcode, nil
	}
	c.m.stale.Inc()
	if werr := w.WriteMsg(c.reply(e, r, c.now(), true)); werr != nil {
		return dns.RcodeServerFailure, werr
	}
	return e.msg.Rcode, nil
}

// reply makes the client's reply from e: a copy with the client's ID and
// question, the remaining TTL (StaleTTL when stale) on every record, and
// the owner names of the question's name spelt as the client did.
func (c *Cache) reply(e *entry, r *dns.Msg, now time.Time, stale bool) *dns.Msg {
	m := e.msg.Copy()
	m.Id = r.Id
	m.Question = r.Question
	m.Authoritative = false
	ttl := c.staleTTL
	if !stale {
		elapsed := uint32(now.Sub(e.stored) / time.Second)
		ttl = 0
		if elapsed < e.ttl {
			ttl = e.ttl - elapsed
		}
	}
	qname := r.Question[0].Name
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			if h.Rrtype == dns.TypeOPT {
				continue
			}
			h.Ttl = ttl
			if h.Name != qname && strings.EqualFold(h.Name, qname) {
				h.Name = qname
			}
		}
	}
	return m
}

func servfailMsg(r *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(r, dns.RcodeServerFailure)
	return m
}

// cachingWriter caches what the next handler writes, then writes it: from
// the new entry when cached (so the first reply already has the capped or
// floored TTL, as later ones), else as it is.
type cachingWriter struct {
	dns.ResponseWriter
	c       *Cache
	key     string
	req     *dns.Msg
	written bool
}

func (w *cachingWriter) WriteMsg(m *dns.Msg) error {
	w.written = true
	if e := w.c.add(w.key, m); e != nil && e.kind != kindServfail {
		return w.ResponseWriter.WriteMsg(w.c.reply(e, w.req, e.stored, false))
	}
	return w.ResponseWriter.WriteMsg(m)
}

// classify returns the kind of m and its TTL in seconds, capped and
// floored; ok is false when m must not be cached.
func (c *Cache) classify(m *dns.Msg) (kind int, ttl uint32, ok bool) {
	if m.Truncated || len(m.Question) != 1 {
		return 0, 0, false
	}
	switch m.Rcode {
	case dns.RcodeServerFailure:
		return kindServfail, c.servfail, c.servfail > 0
	case dns.RcodeSuccess:
		if len(m.Answer) > 0 {
			t, _ := minTTL(m)
			return kindSuccess, clamp(t, c.succMin, c.succMax), true
		}
		fallthrough
	case dns.RcodeNameError:
		for _, rr := range m.Ns {
			if soa, isSOA := rr.(*dns.SOA); isSOA {
				return kindDenial, clamp(min(soa.Hdr.Ttl, soa.Minttl), c.denyMin, c.denyMax), true
			}
		}
	}
	return 0, 0, false
}

func clamp(v, lo, hi uint32) uint32 { return min(max(v, lo), hi) }

// minTTL is the smallest TTL of m's records (OPT excepted).
func minTTL(m *dns.Msg) (uint32, bool) {
	t, found := uint32(0), false
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			if h.Rrtype == dns.TypeOPT {
				continue
			}
			if !found || h.Ttl < t {
				t, found = h.Ttl, true
			}
		}
	}
	return t, found
}

// add caches a copy of m under k, when it may be cached, and returns the
// new entry (nil when not cached).
func (c *Cache) add(k string, m *dns.Msg) *entry {
	kind, ttl, ok := c.classify(m)
	if !ok || c.closed.Load() {
		return nil
	}
	now := c.now()
	if kind == kindServfail && c.stale > 0 {
		// A SERVFAIL never replaces what can still be served stale.
		if old := c.get(k); old != nil && old.kind != kindServfail && now.Before(old.expires.Add(c.stale)) {
			return nil
		}
	}
	cp := m.Copy()
	cp.Extra = deleteOPT(cp.Extra)
	e := &entry{msg: cp, kind: kind, ttl: ttl, stored: now, expires: now.Add(time.Duration(ttl) * time.Second)}
	keep := time.Duration(0)
	if kind != kindServfail {
		keep = c.stale
	}
	if kind == kindSuccess {
		c.deny.remove(k)
		if c.succ.put(k, e, now, keep) {
			c.evictS.Inc()
		}
	} else {
		c.succ.remove(k)
		if c.deny.put(k, e, now, keep) {
			c.evictD.Inc()
		}
	}
	return e
}

func deleteOPT(rrs []dns.RR) []dns.RR {
	out := rrs[:0]
	for _, rr := range rrs {
		if rr.Header().Rrtype != dns.TypeOPT {
			out = append(out, rr)
		}
	}
	return out
}

func (c *Cache) get(k string) *entry {
	if e := c.succ.get(k); e != nil {
		return e
	}
	return c.deny.get(k)
}

// maybePrefetch counts a hit on e and refreshes it in the background when
// it is popular and about to expire.
func (c *Cache) maybePrefetch(e *entry, k string, w dns.ResponseWriter, r *dns.Msg, now time.Time) {
	last := e.lastHit.Swap(now.UnixNano())
	var n int32
	if last == 0 || now.Sub(time.Unix(0, last)) > c.window {
		n = 1
		e.hits.Store(1)
	} else {
		n = e.hits.Add(1)
	}
	if n < c.prefetch {
		return
	}
	left := e.expires.Sub(now)
	threshold := time.Duration(e.ttl) * time.Second * time.Duration(c.percent) / 100
	if left > threshold && left > time.Second {
		return
	}
	if c.closed.Load() || !e.prefetching.CompareAndSwap(false, true) {
		return
	}
	select {
	case c.prefetchSem <- struct{}{}:
	default:
		e.prefetching.Store(false)
		return
	}
	q := r.Copy()
	aw := &addrWriter{local: w.LocalAddr(), remote: w.RemoteAddr()}
	c.prefetchWG.Add(1)
	go func() {
		defer c.prefetchWG.Done()
		defer func() { <-c.prefetchSem }()
		defer e.prefetching.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), prefetchTimeout)
		defer cancel()
		capture := serve.NewCapture(aw)
		rcode, err := serve.NextOrFailure(ctx, c.Name(), c.Next, capture, q)
		if err == nil && serve.ClientWrite(rcode) && capture.Msg != nil && capture.Msg.Rcode != dns.RcodeServerFailure {
			c.m.prefetches.Inc()
			c.add(k, capture.Msg)
		}
	}()
}

// addrWriter is the writer of a background query: the addresses of the
// client that triggered it, nothing sent.
type addrWriter struct {
	dns.ResponseWriter
	local, remote net.Addr
}

func (a *addrWriter) LocalAddr() net.Addr  { return a.local }
func (a *addrWriter) RemoteAddr() net.Addr { return a.remote }

// store is one sharded, bounded map.
type store struct {
	shards   [numShards]shard
	perShard int
	size     interface{ Add(float64) }
	n        atomic.Int64
}

type shard struct {
	mu sync.RWMutex
	m  map[string]*entry
}

func newStore(perShard int, size interface{ Add(float64) }) *store {
	s := &store{perShard: perShard, size: size}
	for i := range s.shards {
		s.shards[i].m = make(map[string]*entry)
	}
	return s
}

func (s *store) shard(k string) *shard {
	// FNV-1a.
	h := uint32(2166136261)
	for i := 0; i < len(k); i++ {
		h ^= uint32(k[i])
		h *= 16777619
	}
	return &s.shards[h%numShards]
}

func (s *store) get(k string) *entry {
	sh := s.shard(k)
	sh.mu.RLock()
	e := sh.m[k]
	sh.mu.RUnlock()
	return e
}

// put stores e under k, evicting one entry when the shard is full (an
// entry past its expiry and keep, if one of the first few looked at is;
// else the first); it reports whether it evicted.
func (s *store) put(k string, e *entry, now time.Time, keep time.Duration) (evicted bool) {
	sh := s.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.m[k]; !ok {
		if len(sh.m) >= s.perShard {
			victim, looked := "", 0
			for vk, ve := range sh.m {
				if victim == "" {
					victim = vk
				}
				if now.After(ve.expires.Add(keep)) {
					victim = vk
					break
				}
				if looked++; looked >= 8 {
					break
				}
			}
			delete(sh.m, victim)
			evicted = true
		} else {
			s.n.Add(1)
			s.size.Add(1)
		}
	}
	sh.m[k] = e
	return evicted
}

func (s *store) remove(k string) {
	sh := s.shard(k)
	sh.mu.Lock()
	if _, ok := sh.m[k]; ok {
		delete(sh.m, k)
		s.n.Add(-1)
		s.size.Add(-1)
	}
	sh.mu.Unlock()
}

func (s *store) len() int { return int(s.n.Load()) }

func (s *store) clear() {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n := len(sh.m)
		clear(sh.m)
		sh.mu.Unlock()
		s.n.Add(-int64(n))
		s.size.Add(-float64(n))
	}
}
