package store

import (
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ServiceRecord is a Service as DNS answers it: the Service and its ready
// endpoints, merged from all of its EndpointSlices. It is immutable.
type ServiceRecord struct {
	*Service
	// Endpoints are the ready endpoints (all endpoints when the Service
	// tolerates unready ones), each address once, in a stable order.
	Endpoints []ServiceEndpoint
}

// ServiceEndpoint is one ready endpoint address with the ports of its slice.
type ServiceEndpoint struct {
	Addr netip.Addr
	// Label is the endpoint's DNS label (EndpointLabel).
	Label string
	// Hostname is the endpoint's hostname field ("" when unset).
	Hostname string
	Ports    []Port
}

// Name is the service's name relative to the zone: "<svc>.<ns>.svc".
func (r *ServiceRecord) Name() string { return r.Service.Name + "." + r.Namespace + ".svc" }

// PTRTarget is a name a reverse lookup of an IP answers, relative to the
// zone ("web.default.svc", "web-0.web.default.svc").
type PTRTarget = string

// Counts are the sizes of a snapshot, for metrics.
type Counts struct {
	Services, EndpointSlices, Endpoints, Pods, Namespaces int
}

// Snapshot is an immutable view of the store. All methods are safe for
// concurrent use and never block.
type Snapshot struct {
	namespaces map[string]struct{}
	services   *[shards]map[svcKey]*ServiceRecord
	reverse    *[shards]map[netip.Addr][]ptrEntry
	pods       *[shards]map[netip.Addr][]*Pod
	serial     uint32
	counts     Counts
}

type svcKey struct{ ns, name string }

type ptrEntry struct {
	svc    svcKey
	target PTRTarget
}

// shards splits every index so that a write copies about 1/shards of the
// ones it touches.
const shards = 256

func shardOf(a netip.Addr) int {
	b := a.As16()
	return int(b[15] ^ b[14]<<1 ^ b[13]<<2 ^ b[11])
}

// keyShard is the shard of a Service key (FNV-1a).
func keyShard(k svcKey) int {
	h := uint32(2166136261)
	for i := 0; i < len(k.ns); i++ {
		h = (h ^ uint32(k.ns[i])) * 16777619
	}
	h = (h ^ '/') * 16777619
	for i := 0; i < len(k.name); i++ {
		h = (h ^ uint32(k.name[i])) * 16777619
	}
	return int(h % shards)
}

// HasNamespace reports whether namespace ns exists.
func (s *Snapshot) HasNamespace(ns string) bool {
	_, ok := s.namespaces[ns]
	return ok
}

// Service returns the Service ns/name, or nil.
func (s *Snapshot) Service(ns, name string) *ServiceRecord {
	k := svcKey{ns, name}
	return s.services[keyShard(k)][k]
}

// Reverse returns the names (relative to the zone) that a PTR query for ip
// answers: the Services whose cluster IP it is and the ready endpoints with
// that address (of every Service, ClusterIP ones included), each name once.
func (s *Snapshot) Reverse(ip netip.Addr) []PTRTarget {
	es := s.reverse[shardOf(ip)][ip]
	if len(es) == 0 {
		return nil
	}
	out := make([]PTRTarget, 0, len(es))
	for _, e := range es {
		if !slices.Contains(out, e.target) {
			out = append(out, e.target)
		}
	}
	return out
}

// PodsByIP returns the pods with address ip.
func (s *Snapshot) PodsByIP(ip netip.Addr) []*Pod { return s.pods[shardOf(ip)][ip] }

// Serial is the Unix time of the last published change (the SOA serial).
func (s *Snapshot) Serial() uint32 { return s.serial }

// Counts are the numbers of objects in the snapshot.
func (s *Snapshot) Counts() Counts { return s.counts }

// Store holds the cluster objects and publishes snapshots of them. Writers
// serialise on a mutex; readers call Snapshot, which never blocks.
type Store struct {
	mu         sync.Mutex
	services   map[svcKey]*Service
	slices     map[svcKey]*EndpointSlice            // by slice ns/name
	bySvc      map[svcKey]map[string]*EndpointSlice // service ns/name -> slice name -> slice
	pods       map[svcKey]*Pod
	namespaces map[string]struct{}

	endpoints int // endpoints in all slices, for Counts

	snap   atomic.Pointer[Snapshot]
	synced atomic.Bool
	now    func() time.Time

	// pending changes, published by publish.
	dirtySvcs map[svcKey]struct{}
	dirtyPods map[svcKey]*Pod // old pod (nil if none) of every changed pod
	dirtyNS   bool
}

// New returns an empty, unsynced store.
func New() *Store {
	s := &Store{now: time.Now}
	s.reset()
	empty := &Snapshot{
		namespaces: map[string]struct{}{},
		services:   new([shards]map[svcKey]*ServiceRecord),
		reverse:    new([shards]map[netip.Addr][]ptrEntry),
		pods:       new([shards]map[netip.Addr][]*Pod),
	}
	s.snap.Store(empty)
	return s
}

func (s *Store) reset() {
	s.services = map[svcKey]*Service{}
	s.slices = map[svcKey]*EndpointSlice{}
	s.bySvc = map[svcKey]map[string]*EndpointSlice{}
	s.pods = map[svcKey]*Pod{}
	s.namespaces = map[string]struct{}{}
	s.endpoints = 0
	s.dirtySvcs = map[svcKey]struct{}{}
	s.dirtyPods = map[svcKey]*Pod{}
}

// Snapshot returns the current view. It is one atomic load.
func (s *Store) Snapshot() *Snapshot { return s.snap.Load() }

// Synced reports whether the store has received the sources' complete
// initial state.
func (s *Store) Synced() bool { return s.synced.Load() }

// SetSynced marks the store synced and publishes everything written so far.
func (s *Store) SetSynced() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.synced.Store(true)
	s.rebuild()
}

// SetClock replaces the clock the SOA serial is taken from (tests).
func (s *Store) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// Objects is a complete set of cluster objects.
type Objects struct {
	Services       []*Service
	EndpointSlices []*EndpointSlice
	Pods           []*Pod
	Namespaces     []*Namespace
}

// Replace makes objs the whole content of the store, marks it synced and
// publishes it in one snapshot.
func (s *Store) Replace(objs Objects) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reset()
	for _, o := range objs.Namespaces {
		s.namespaces[o.Name] = struct{}{}
	}
	for _, o := range objs.Services {
		s.services[o.key()] = o
	}
	for _, o := range objs.EndpointSlices {
		s.putSlice(o)
	}
	for _, o := range objs.Pods {
		s.pods[o.key()] = o
	}
	s.synced.Store(true)
	s.rebuild()
}

// UpsertService adds or replaces a Service.
func (s *Store) UpsertService(o *Service) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := o.key()
	if old := s.services[k]; old != nil && EqualService(old, o) {
		return // nothing DNS answers changed
	}
	s.services[k] = o
	s.dirtySvcs[k] = struct{}{}
	s.publish()
}

// DeleteService removes the Service ns/name.
func (s *Store) DeleteService(ns, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := svcKey{ns, name}
	delete(s.services, k)
	s.dirtySvcs[k] = struct{}{}
	s.publish()
}

// UpsertEndpointSlice adds or replaces an EndpointSlice.
func (s *Store) UpsertEndpointSlice(o *EndpointSlice) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.slices[o.key()]; old != nil && EqualEndpointSlice(old, o) {
		return
	}
	s.removeSlice(o.Namespace, o.Name)
	s.putSlice(o)
	s.publish()
}

// DeleteEndpointSlice removes the EndpointSlice ns/name.
func (s *Store) DeleteEndpointSlice(ns, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeSlice(ns, name)
	s.publish()
}

func (s *Store) putSlice(o *EndpointSlice) {
	s.slices[o.key()] = o
	s.endpoints += len(o.Endpoints)
	if o.Service == "" {
		return
	}
	k := svcKey{o.Namespace, o.Service}
	m := s.bySvc[k]
	if m == nil {
		m = map[string]*EndpointSlice{}
		s.bySvc[k] = m
	}
	m[o.Name] = o
	s.dirtySvcs[k] = struct{}{}
}

func (s *Store) removeSlice(ns, name string) {
	old := s.slices[svcKey{ns, name}]
	if old == nil {
		return
	}
	delete(s.slices, svcKey{ns, name})
	s.endpoints -= len(old.Endpoints)
	if old.Service == "" {
		return
	}
	k := svcKey{ns, old.Service}
	delete(s.bySvc[k], name)
	if len(s.bySvc[k]) == 0 {
		delete(s.bySvc, k)
	}
	s.dirtySvcs[k] = struct{}{}
}

// UpsertPod adds or replaces a Pod.
func (s *Store) UpsertPod(o *Pod) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := o.key()
	if old := s.pods[k]; old != nil && EqualPod(old, o) {
		return // a status update DNS does not read
	}
	s.markPod(k)
	s.pods[k] = o
	s.publish()
}

// DeletePod removes the Pod ns/name.
func (s *Store) DeletePod(ns, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := svcKey{ns, name}
	s.markPod(k)
	delete(s.pods, k)
	s.publish()
}

func (s *Store) markPod(k svcKey) {
	if _, seen := s.dirtyPods[k]; !seen {
		s.dirtyPods[k] = s.pods[k]
	}
}

// UpsertNamespace adds a Namespace.
func (s *Store) UpsertNamespace(o *Namespace) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.namespaces[o.Name] = struct{}{}
	s.dirtyNS = true
	s.publish()
}

// DeleteNamespace removes a Namespace.
func (s *Store) DeleteNamespace(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.namespaces, name)
	s.dirtyNS = true
	s.publish()
}

func (s *Store) counts() Counts {
	return Counts{Services: len(s.services), EndpointSlices: len(s.slices), Endpoints: s.endpoints, Pods: len(s.pods), Namespaces: len(s.namespaces)}
}

// rebuild publishes a snapshot built from scratch (initial sync, Replace):
// every object is a pending change to an empty snapshot.
func (s *Store) rebuild() {
	empty := &Snapshot{
		services: new([shards]map[svcKey]*ServiceRecord),
		reverse:  new([shards]map[netip.Addr][]ptrEntry),
		pods:     new([shards]map[netip.Addr][]*Pod),
	}
	for i := range shards {
		empty.services[i] = map[svcKey]*ServiceRecord{}
		empty.reverse[i] = map[netip.Addr][]ptrEntry{}
		empty.pods[i] = map[netip.Addr][]*Pod{}
	}
	s.snap.Store(empty)
	for k := range s.services {
		s.dirtySvcs[k] = struct{}{}
	}
	for k := range s.pods {
		s.dirtyPods[k] = nil // not in the empty snapshot
	}
	s.dirtyNS = true
	s.publishPending()
}

// publish publishes the pending changes. Before sync it does nothing:
// SetSynced rebuilds once.
func (s *Store) publish() {
	if s.synced.Load() {
		s.publishPending()
	}
}

// copyOnWrite returns a function that clones shard i of idx the first time
// it is called for i: a publish copies only the shards it changes and
// leaves those of the published snapshot untouched.
func copyOnWrite[K comparable, V any](idx *[shards]map[K]V) func(i int) {
	var copied [shards]bool
	return func(i int) {
		if !copied[i] {
			idx[i] = maps.Clone(idx[i])
			copied[i] = true
		}
	}
}

// publishPending publishes the pending changes, copying only the indexes
// (and index shards) they touch.
func (s *Store) publishPending() {
	old := s.snap.Load()
	snap := *old
	snap.serial = uint32(s.now().Unix())
	snap.counts = s.counts()
	if s.dirtyNS {
		snap.namespaces = maps.Clone(s.namespaces)
	}
	if len(s.dirtySvcs) > 0 {
		svcs := *old.services
		svcCow := copyOnWrite(&svcs)
		rev := *old.reverse
		cow := copyOnWrite(&rev)
		for k := range s.dirtySvcs {
			i := keyShard(k)
			svcCow(i)
			if prev := svcs[i][k]; prev != nil {
				removeReverse(&rev, k, prev, cow)
			}
			if _, ok := s.services[k]; !ok {
				delete(svcs[i], k)
				continue
			}
			rec := s.record(k)
			svcs[i][k] = rec
			addReverse(&rev, k, rec, cow)
		}
		snap.services = &svcs
		snap.reverse = &rev
	}
	if len(s.dirtyPods) > 0 {
		pods := *old.pods
		cow := copyOnWrite(&pods)
		for k, prev := range s.dirtyPods {
			if prev != nil {
				for _, ip := range prev.IPs {
					i := shardOf(ip)
					cow(i)
					rest := slices.DeleteFunc(slices.Clone(pods[i][ip]), func(p *Pod) bool { return p.Namespace == k.ns && p.Name == k.name })
					if len(rest) == 0 {
						delete(pods[i], ip)
					} else {
						pods[i][ip] = rest
					}
				}
			}
			if p := s.pods[k]; p != nil {
				for _, ip := range p.IPs {
					i := shardOf(ip)
					cow(i)
					pods[i][ip] = append(slices.Clone(pods[i][ip]), p)
				}
			}
		}
		snap.pods = &pods
	}
	s.snap.Store(&snap)
	clear(s.dirtySvcs)
	clear(s.dirtyPods)
	s.dirtyNS = false
}

// record builds the ServiceRecord of Service k from the current state.
func (s *Store) record(k svcKey) *ServiceRecord {
	svc := s.services[k]
	rec := &ServiceRecord{Service: svc}
	if svc.Kind == ExternalName {
		return rec
	}
	names := slices.Sorted(maps.Keys(s.bySvc[k]))
	seen := map[netip.Addr]bool{}
	for _, n := range names {
		sl := s.bySvc[k][n]
		for _, e := range sl.Endpoints {
			if !e.Ready && !svc.TolerateUnready {
				continue
			}
			for _, a := range e.Addresses {
				if seen[a] {
					continue
				}
				seen[a] = true
				rec.Endpoints = append(rec.Endpoints, ServiceEndpoint{Addr: a, Label: EndpointLabel(e.Hostname, a), Hostname: e.Hostname, Ports: sl.Ports})
			}
		}
	}
	return rec
}

func addReverse(rev *[shards]map[netip.Addr][]ptrEntry, k svcKey, rec *ServiceRecord, cow func(int)) {
	add := func(ip netip.Addr, target string) {
		i := shardOf(ip)
		cow(i)
		rev[i][ip] = append(slices.Clone(rev[i][ip]), ptrEntry{k, target})
	}
	for _, ip := range rec.ClusterIPs {
		add(ip, rec.Name())
	}
	for _, e := range rec.Endpoints {
		add(e.Addr, e.Label+"."+rec.Name())
	}
}

func removeReverse(rev *[shards]map[netip.Addr][]ptrEntry, k svcKey, rec *ServiceRecord, cow func(int)) {
	del := func(ip netip.Addr) {
		i := shardOf(ip)
		if _, ok := rev[i][ip]; !ok {
			return
		}
		cow(i)
		rest := slices.DeleteFunc(slices.Clone(rev[i][ip]), func(e ptrEntry) bool { return e.svc == k })
		if len(rest) == 0 {
			delete(rev[i], ip)
		} else {
			rev[i][ip] = rest
		}
	}
	for _, ip := range rec.ClusterIPs {
		del(ip)
	}
	for _, e := range rec.Endpoints {
		del(e.Addr)
	}
}
