// Package metrics is the outermost handler of dnsd's chain: it counts every
// query and its reply and times it, under the Prometheus namespace poddns,
// subsystem dns, with CoreDNS's label names so that dashboards built for
// coredns_dns_* port by renaming the metric:
//
//	poddns_dns_requests_total{zone,proto,family,type}   queries received
//	poddns_dns_responses_total{zone,rcode}               replies by rcode
//	poddns_dns_request_duration_seconds{zone,type}       time in the chain
//	                                                     (buckets 0.25ms..8s)
//	poddns_dns_errors_total{handler}                     errors handlers returned
//	poddns_dns_store_objects{kind}                       objects in the record
//	                                                     store (services,
//	                                                     endpointslices,
//	                                                     endpoints, pods,
//	                                                     namespaces)
//	poddns_dns_store_synced                              1 once the store synced
//	poddns_dns_programming_duration_seconds{service_kind}
//	                                                     EndpointSlice change to
//	                                                     servable (registered by
//	                                                     package apisource)
//
// Queries that never reach the chain (malformed, not a standard query:
// answered by serve.Handle itself) are not counted yet; CoreDNS counts them
// under zone "dropped".
//
// zone is the served zone the name is in (a cluster zone, in-addr.arpa.,
// ip6.arpa.) or "." for anything else; type is one of the common qtypes or
// "other", so label values stay a small fixed set. Metrics go to an injected
// prometheus.Registerer, never to a global one.
package metrics

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/poddns/poddns/pkg/promopts"
	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/store"
)

// subsystem is the handler's metrics' (the namespace is promopts's).
const subsystem = "dns"

// Config is the handler's configuration. It has no field: dnsd puts the
// handler outermost in its chain, labelled with the zones it serves.
type Config struct{}

// Deps are what the handler is given besides its configuration.
type Deps struct {
	// Next gets every query.
	Next serve.Handler
	// Metrics are the series the handler counts in; required. They are made
	// once (NewMetrics) and outlive the handlers a reload replaces.
	Metrics *Metrics
	// Zones are the zones used as label values, fully qualified lower case.
	Zones []string
}

// Store is what the store metrics read of the record store.
type Store interface {
	Snapshot() *store.Snapshot
	Synced() bool
}

// Metrics are the handler's series.
type Metrics struct {
	requests  *prometheus.CounterVec
	responses *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	errors    *prometheus.CounterVec
}

// NewMetrics makes the metrics and registers them with reg (none when reg
// is nil: tests); st, if not nil, is exported as poddns_dns_store_objects
// and _synced.
func NewMetrics(reg prometheus.Registerer, st Store) (*Metrics, error) {
	m := &Metrics{
		requests:  prometheus.NewCounterVec(promopts.Counter(subsystem, "requests_total", "DNS queries received, by zone, transport, client address family and query type."), []string{"zone", "proto", "family", "type"}),
		responses: prometheus.NewCounterVec(promopts.Counter(subsystem, "responses_total", "DNS replies sent, by zone and rcode."), []string{"zone", "rcode"}),
		duration:  prometheus.NewHistogramVec(promopts.Histogram(subsystem, "request_duration_seconds", "Time to answer a DNS query, by zone and query type.", prometheus.ExponentialBuckets(0.00025, 2, 16)), []string{"zone", "type"}),
		errors:    prometheus.NewCounterVec(promopts.Counter(subsystem, "errors_total", "Errors returned by DNS handlers, by handler."), []string{"handler"}),
	}
	cs := []prometheus.Collector{m.requests, m.responses, m.duration, m.errors}
	if st != nil {
		objects := prometheus.NewDesc(promopts.Name(subsystem, "store_objects"),
			"Objects in the record store, by kind.", []string{"kind"}, nil)
		synced := prometheus.NewDesc(promopts.Name(subsystem, "store_synced"),
			"1 once the record store has synced with its source.", nil, nil)
		cs = append(cs, storeCollector{st, objects, synced})
	}
	if err := promopts.Register(reg, subsystem, cs...); err != nil {
		return nil, err
	}
	return m, nil
}

// Handler is the metrics handler.
type Handler struct {
	Next  serve.Handler
	m     *Metrics
	zones []string

	// The series of the hot path, looked up once: label lookups hash the
	// values and take a lock shared by every core.
	reqCells  []cell[prometheus.Counter]  // [zone][proto][family][type]
	respCells []cell[prometheus.Counter]  // [zone][rcode 0..maxRcode]
	durCells  []cell[prometheus.Observer] // [zone][type]
}

// cell holds one series, created on first use.
type cell[T any] struct{ p atomic.Pointer[T] }

func (c *cell[T]) get(create func() T) T {
	if p := c.p.Load(); p != nil {
		return *p
	}
	v := create()
	c.p.Store(&v) // a race creates the same series twice: harmless
	return v
}

// Label value sets, as indexes.
var (
	protos   = []string{"udp", "tcp"}
	families = []string{"1", "2"}
	types    = []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeSOA, dns.TypeCNAME, dns.TypePTR,
		dns.TypeTXT, dns.TypeNS, dns.TypeSRV, dns.TypeDS, dns.TypeDNSKEY, dns.TypeRRSIG, dns.TypeNSEC,
		dns.TypeNSEC3, dns.TypeHTTPS, dns.TypeIXFR, dns.TypeAXFR, dns.TypeANY} // CoreDNS's list; then "other"
	maxRcode = 23 // BADCOOKIE; larger rcodes are looked up each time
)

func typeIndex(t uint16) int {
	for i, k := range types {
		if k == t {
			return i
		}
	}
	return len(types)
}

func typeLabelAt(i int) string {
	if i == len(types) {
		return "other"
	}
	return dns.TypeToString[types[i]]
}

// New returns the handler.
func New(_ Config, d Deps) (*Handler, error) {
	if d.Metrics == nil {
		return nil, errors.New("metrics: no metrics")
	}
	h := &Handler{Next: d.Next, m: d.Metrics, zones: d.Zones}
	nz := len(h.zones) + 1 // the zones, then "."
	nt := len(types) + 1
	h.reqCells = make([]cell[prometheus.Counter], nz*len(protos)*len(families)*nt)
	h.respCells = make([]cell[prometheus.Counter], nz*(maxRcode+1))
	h.durCells = make([]cell[prometheus.Observer], nz*nt)
	return h, nil
}

// Name implements serve.Handler.
func (h *Handler) Name() string { return "metrics" }

// ServeDNS counts and times the query, then hands it to Next.
func (h *Handler) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	start := time.Now()
	req := serve.NewRequest(w, r)
	zone := h.zoneIndex(req.Name())
	qtype := typeIndex(req.QType())
	proto := 0
	if req.Proto() == "tcp" {
		proto = 1
	}
	family := req.Family() - 1
	nt := len(types) + 1
	i := ((zone*len(protos)+proto)*len(families)+family)*nt + qtype
	h.reqCells[i].get(func() prometheus.Counter {
		return h.m.requests.WithLabelValues(h.zoneLabel(zone), protos[proto], families[family], typeLabelAt(qtype))
	}).Inc()

	rec := recorders.Get().(*recorder)
	*rec = recorder{ResponseWriter: w, h: h, zone: zone, qtype: qtype, start: start}
	defer func() {
		*rec = recorder{}
		recorders.Put(rec)
	}()
	rcode, err := serve.NextOrFailure(ctx, h.Name(), h.Next, rec, r)
	if err != nil {
		h.m.countError(err)
	}
	if !rec.written {
		// serve.Handle writes the reply after this returns.
		written := rcode
		if serve.ClientWrite(rcode) {
			written = dns.RcodeServerFailure // what serve.Handle writes for a broken handler
		}
		rec.done(written)
	}
	return rcode, err
}

// countError counts an error a handler returned, under the handler's name.
func (m *Metrics) countError(err error) {
	name := "unknown"
	var he *serve.Error
	if errors.As(err, &he) {
		name = he.Handler
	}
	m.errors.WithLabelValues(name).Inc()
}

// zoneIndex is the index in h.zones of the zone qname (lower case) is in,
// or len(h.zones) for ".".
func (h *Handler) zoneIndex(qname string) int {
	for i, z := range h.zones {
		if qname == z || (strings.HasSuffix(qname, z) && qname[len(qname)-len(z)-1] == '.') {
			return i
		}
	}
	return len(h.zones)
}

func (h *Handler) zoneLabel(i int) string {
	if i == len(h.zones) {
		return "."
	}
	return h.zones[i]
}

// recorders are the handler's writers, reused: the handlers below are done
// with a writer when they return (serve's handler contract).
var recorders = sync.Pool{New: func() any { return new(recorder) }}

// recorder counts the reply and the time taken when the reply is written,
// before it is sent: a client that has its answer finds it counted.
type recorder struct {
	dns.ResponseWriter
	h           *Handler
	zone, qtype int
	start       time.Time
	written     bool
}

func (r *recorder) WriteMsg(m *dns.Msg) error {
	if !r.written {
		r.written = true
		r.done(m.Rcode)
	}
	return r.ResponseWriter.WriteMsg(m)
}

// WritePacked counts a packed reply as WriteMsg counts a message.
func (r *recorder) WritePacked(p *serve.Packed) error {
	if !r.written {
		r.written = true
		r.done(p.Rcode)
	}
	return serve.WritePacked(r.ResponseWriter, p)
}

func (r *recorder) done(rcode int) {
	h := r.h
	if rcode < 0 || rcode > maxRcode {
		h.m.responses.WithLabelValues(h.zoneLabel(r.zone), rcodeLabel(rcode)).Inc()
	} else {
		h.respCells[r.zone*(maxRcode+1)+rcode].get(func() prometheus.Counter {
			return h.m.responses.WithLabelValues(h.zoneLabel(r.zone), rcodeLabel(rcode))
		}).Inc()
	}
	h.durCells[r.zone*(len(types)+1)+r.qtype].get(func() prometheus.Observer {
		return h.m.duration.WithLabelValues(h.zoneLabel(r.zone), typeLabelAt(r.qtype))
	}).Observe(time.Since(r.start).Seconds())
}

func rcodeLabel(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return strconv.Itoa(rcode)
}

type storeCollector struct {
	s               Store
	objects, synced *prometheus.Desc
}

func (c storeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.objects; ch <- c.synced }

func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.s.Snapshot().Counts()
	for _, kv := range []struct {
		kind string
		n    int
	}{{"services", n.Services}, {"endpointslices", n.EndpointSlices}, {"endpoints", n.Endpoints}, {"pods", n.Pods}, {"namespaces", n.Namespaces}} {
		ch <- prometheus.MustNewConstMetric(c.objects, prometheus.GaugeValue, float64(kv.n), kv.kind)
	}
	v := 0.0
	if c.s.Synced() {
		v = 1
	}
	ch <- prometheus.MustNewConstMetric(c.synced, prometheus.GaugeValue, v)
}
