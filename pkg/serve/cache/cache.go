package cache

import (
	"context"
	"net"
	"slices"
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

// Cache is the caching handler.
type Cache struct {
	Next serve.Handler

	succ, deny  *table
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
	flights     [numShards]flightShard
	// Metric handles of the hot path, resolved once.
	hitS, hitD, missC, reqC, evictS, evictD, coalC interface{ Inc() }
}

func secs(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	return uint32(min(d/time.Second, 1<<31))
}

// New checks c and returns the cache.
func New(c Config, d Deps) (*Cache, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	h := &Cache{Next: d.Next, m: d.Metrics, now: d.Now, prefetchSem: make(chan struct{}, maxPrefetching),
		succMax: secs(c.SuccessTTL.D()), denyMax: secs(c.DenialTTL.D()), succMin: secs(c.MinTTL.D()), denyMin: secs(c.MinTTL.D()),
		servfail: secs(c.ServfailTTL.D()), prefetch: int32(c.Prefetch), window: c.PrefetchWindow.D(), percent: c.PrefetchPercent,
		stale: c.ServeStale.D(), staleTTL: secs(c.StaleTTL.D())}
	if h.now == nil {
		h.now = time.Now
	}
	if h.m == nil {
		h.m, _ = NewMetrics(nil)
	}
	perShard := c.Capacity / numShards
	h.succ = newTable(perShard, h.m.entries.WithLabelValues("success"))
	h.deny = newTable(perShard, h.m.entries.WithLabelValues("denial"))
	h.hitS, h.hitD = h.m.hits.WithLabelValues("success"), h.m.hits.WithLabelValues("denial")
	h.evictS, h.evictD = h.m.evictions.WithLabelValues("success"), h.m.evictions.WithLabelValues("denial")
	h.missC, h.reqC, h.coalC = h.m.misses, h.m.requests, h.m.coalesced
	for i := range h.flights {
		h.flights[i].m = make(map[string]*flight)
	}
	return h, nil
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
	msg         *dns.Msg     // never modified
	packed      *serve.Wires // nil for a SERVFAIL
	kind        int
	ttl         uint32
	stored      time.Time
	expires     time.Time
	hits        atomic.Int32
	lastHit     atomic.Int64 // unix nanoseconds
	prefetching atomic.Bool
}

// keyBuf fits the key of a name of any length (names are at most 255
// octets in wire form; their text with escapes is longer).
const keyBuf = 320

// appendKey appends the cache key of r to dst: the question's name
// lower-cased, its type and class, and the CD and DO bits. A hit looks
// the key up as bytes (no string made per query); a miss makes it a string.
func appendKey(dst []byte, r *dns.Msg) []byte {
	q := r.Question[0]
	var flags byte
	if r.CheckingDisabled {
		flags |= 1
	}
	if opt := r.IsEdns0(); opt != nil && opt.Do() {
		flags |= 2
	}
	for i := 0; i < len(q.Name); i++ {
		ch := q.Name[i]
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		dst = append(dst, ch)
	}
	return append(dst, byte(q.Qtype>>8), byte(q.Qtype), byte(q.Qclass>>8), byte(q.Qclass), flags)
}

// ServeDNS answers from the cache or hands on, caching the reply.
func (c *Cache) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	switch r.Question[0].Qtype {
	case dns.TypeAXFR, dns.TypeIXFR:
		return serve.NextOrFailure(ctx, c.Name(), c.Next, w, r)
	}
	c.reqC.Inc()
	var kb [keyBuf]byte
	kbytes := appendKey(kb[:0], r)
	now := c.now()
	e := c.getBytes(kbytes)
	if e != nil && now.Before(e.expires) {
		if e.kind == kindSuccess {
			c.hitS.Inc()
		} else {
			c.hitD.Inc()
		}
		if c.prefetch > 0 && e.kind != kindServfail {
			c.maybePrefetch(e, kbytes, w, r, now)
		}
		if e.kind == kindServfail {
			return dns.RcodeServerFailure, nil
		}
		serve.SetSource(ctx, serve.SourceCache)
		if err := c.writeHit(w, e, r, now, false); err != nil {
			return dns.RcodeServerFailure, err
		}
		return e.msg.Rcode, nil
	}
	c.missC.Inc()
	k := string(kbytes)
	if e != nil && e.kind != kindServfail && c.stale > 0 && now.Before(e.expires.Add(c.stale)) {
		return c.serveStale(ctx, e, k, w, r)
	}
	f := c.fetch(ctx, k, w, r)
	if f == nil {
		return dns.RcodeServerFailure, ctx.Err()
	}
	if !f.wrote() {
		return f.rcode, f.err
	}
	if err := w.WriteMsg(f.reply(c, r)); err != nil {
		return dns.RcodeServerFailure, err
	}
	return f.rcode, f.err
}

// serveStale asks the next handler first and serves the expired entry e
// when it fails.
func (c *Cache) serveStale(ctx context.Context, e *entry, k string, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	f := c.fetch(ctx, k, w, r)
	if f != nil && f.err == nil && f.wrote() && serve.ClientWrite(f.rcode) &&
		f.msgRcode() != dns.RcodeServerFailure && f.msgRcode() != dns.RcodeRefused {
		if werr := w.WriteMsg(f.reply(c, r)); werr != nil {
			return dns.RcodeServerFailure, werr
		}
		return f.rcode, nil
	}
	c.m.stale.Inc()
	serve.SetSource(ctx, serve.SourceCache)
	if werr := c.writeHit(w, e, r, c.now(), true); werr != nil {
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
	ttl := c.remainingTTL(e, now, stale)
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

// remainingTTL is the TTL of e's records at now: StaleTTL when stale.
func (c *Cache) remainingTTL(e *entry, now time.Time, stale bool) uint32 {
	if stale {
		return c.staleTTL
	}
	elapsed := uint32(now.Sub(e.stored) / time.Second)
	if elapsed < e.ttl {
		return e.ttl - elapsed
	}
	return 0
}

func servfailMsg(r *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(r, dns.RcodeServerFailure)
	return m
}

// A flight is one query to the next handler on behalf of every concurrent
// miss of its key (in-flight coalescing): the first miss (the leader) asks
// the next handler and caches the reply; the misses of the same key that
// come while it is in flight wait for it instead of asking too, then each
// writes its own reply, with its own ID and question, from the result.
//
// Without it, a burst of identical misses (a stub resolver's A and AAAA
// walks completed at once by package completion, many pods asking a name
// that just expired) sends one upstream query each.
type flight struct {
	done chan struct{} // closed when the fields below are final
	// e is the entry made from the reply (nil when it was not cached, or
	// is a SERVFAIL entry); at is the time its TTLs are counted from.
	e  *entry
	at time.Time
	// msg is a private copy of the reply when it was not cached, nil
	// otherwise or when the next handler wrote nothing.
	msg   *dns.Msg
	rcode int
	err   error
}

// wrote reports whether the next handler wrote a reply.
func (f *flight) wrote() bool { return f.e != nil || f.msg != nil }

// msgRcode is the rcode of the reply written.
func (f *flight) msgRcode() int {
	if f.e != nil {
		return f.e.msg.Rcode
	}
	return f.msg.Rcode
}

// reply is the reply to r, one of the flight's callers: from the entry
// when cached (so the first reply already has the capped or floored TTL,
// as later ones), else a copy of the reply as the next handler wrote it,
// with r's ID, question and spelling of the question's name.
func (f *flight) reply(c *Cache, r *dns.Msg) *dns.Msg {
	if f.e != nil {
		return c.reply(f.e, r, f.at, false)
	}
	m := f.msg.Copy()
	m.Id = r.Id
	m.Question = r.Question
	qname := r.Question[0].Name
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			if h := rr.Header(); h.Name != qname && strings.EqualFold(h.Name, qname) {
				h.Name = qname
			}
		}
	}
	return m
}

// flightShard holds the flights of the keys of one shard.
type flightShard struct {
	mu sync.Mutex
	m  map[string]*flight
}

// fetch asks the next handler for r (key k) and caches what it writes, or
// waits for the flight of k already under way; it returns the flight once
// done, or nil when ctx ended first. The leader's query runs with its ctx
// stripped of cancellation (the forwarder's deadline bounds it), so a
// caller that gives up never fails the others.
func (c *Cache) fetch(ctx context.Context, k string, w dns.ResponseWriter, r *dns.Msg) *flight {
	fs := &c.flights[shardIndex(k)]
	fs.mu.Lock()
	if f, ok := fs.m[k]; ok {
		fs.mu.Unlock()
		c.coalC.Inc()
		serve.Blocking(ctx) // nothing waits behind this query while it waits
		select {
		case <-f.done:
			serve.SetSource(ctx, serve.SourceCache) // another query's flight answered
			return f
		case <-ctx.Done():
			return nil
		}
	}
	f := &flight{done: make(chan struct{}), rcode: dns.RcodeServerFailure}
	fs.m[k] = f
	fs.mu.Unlock()
	// The entry is in the cache before the flight is gone (even if the
	// next handler panics, the waiters are released), so a miss either
	// finds the flight or, re-checking below, the entry.
	defer func() {
		fs.mu.Lock()
		delete(fs.m, k)
		fs.mu.Unlock()
		close(f.done)
	}()
	if e := c.get(k); e != nil && e.kind != kindServfail {
		if now := c.now(); now.Before(e.expires) {
			// A flight of k ended between this caller's miss and now.
			f.e, f.at, f.rcode, f.err = e, now, e.msg.Rcode, nil
			serve.SetSource(ctx, serve.SourceCache)
			return f
		}
	}
	capture := serve.NewCapture(w)
	f.rcode, f.err = serve.NextOrFailure(context.WithoutCancel(ctx), c.Name(), c.Next, capture, r)
	switch m := capture.Msg; {
	case m == nil:
		if f.rcode == dns.RcodeServerFailure {
			c.add(k, servfailMsg(r))
		}
	default:
		if e := c.add(k, m); e != nil && e.kind != kindServfail {
			f.e, f.at = e, e.stored
		} else {
			f.msg = m.Copy()
		}
	}
	return f
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
	if kind != kindServfail {
		e.packed = serve.PackWires(cp, serve.WireOptions{ClearAA: true})
	}
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

// getBytes is get of a key in bytes.
func (c *Cache) getBytes(k []byte) *entry {
	if e := c.succ.getBytes(k); e != nil {
		return e
	}
	return c.deny.getBytes(k)
}

// maybePrefetch counts a hit on e and refreshes it in the background when
// it is popular and about to expire.
func (c *Cache) maybePrefetch(e *entry, kbytes []byte, w dns.ResponseWriter, r *dns.Msg, now time.Time) {
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
	q, k := r.Copy(), string(kbytes)
	// The writer's addresses are the server's (reused after this query):
	// the refresh outlives the query, so it gets copies.
	aw := &addrWriter{local: cloneAddr(w.LocalAddr()), remote: cloneAddr(w.RemoteAddr())}
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

// cloneAddr copies a UDP or TCP address; other addresses are returned as
// they are.
func cloneAddr(a net.Addr) net.Addr {
	switch a := a.(type) {
	case *net.UDPAddr:
		c := *a
		c.IP = slices.Clone(a.IP)
		return &c
	case *net.TCPAddr:
		c := *a
		c.IP = slices.Clone(a.IP)
		return &c
	}
	return a
}

func (a *addrWriter) LocalAddr() net.Addr  { return a.local }
func (a *addrWriter) RemoteAddr() net.Addr { return a.remote }

// table is one sharded, bounded map of entries: the success cache or the
// denial cache.
type table struct {
	shards   [numShards]shard
	perShard int
	size     interface{ Add(float64) }
	n        atomic.Int64
}

type shard struct {
	mu sync.RWMutex
	m  map[string]*entry
}

func newTable(perShard int, size interface{ Add(float64) }) *table {
	s := &table{perShard: perShard, size: size}
	for i := range s.shards {
		s.shards[i].m = make(map[string]*entry)
	}
	return s
}

func (s *table) shard(k string) *shard { return &s.shards[shardIndex(k)] }

// shardIndex is the shard of key k (FNV-1a).
func shardIndex[K string | []byte](k K) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(k); i++ {
		h ^= uint32(k[i])
		h *= 16777619
	}
	return h % numShards
}

func (s *table) get(k string) *entry {
	sh := s.shard(k)
	sh.mu.RLock()
	e := sh.m[k]
	sh.mu.RUnlock()
	return e
}

// getBytes is get of a key in bytes, without making a string of it.
func (s *table) getBytes(k []byte) *entry {
	sh := &s.shards[shardIndex(k)]
	sh.mu.RLock()
	e := sh.m[string(k)]
	sh.mu.RUnlock()
	return e
}

// put stores e under k, evicting one entry when the shard is full (an
// entry past its expiry and keep, if one of the first few looked at is;
// else the first); it reports whether it evicted.
func (s *table) put(k string, e *entry, now time.Time, keep time.Duration) (evicted bool) {
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

func (s *table) remove(k string) {
	sh := s.shard(k)
	sh.mu.Lock()
	if _, ok := sh.m[k]; ok {
		delete(sh.m, k)
		s.n.Add(-1)
		s.size.Add(-1)
	}
	sh.mu.Unlock()
}

func (s *table) len() int { return int(s.n.Load()) }

func (s *table) clear() {
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
