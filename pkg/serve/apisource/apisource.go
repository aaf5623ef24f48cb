// Package apisource feeds the record store from the Kubernetes API server:
// one reflector (client-go's list-and-watch loop, no informer) per kind —
// Services, discovery.k8s.io/v1 EndpointSlices, Namespaces and (only for
// verified pod records or search completion) Pods — whose store is the
// record store itself. It marks the store synced once every kind has its
// initial state, so dnsd answers SERVFAIL, not NXDOMAIN, until then.
//
// It exists to keep client-go in one package: it is dnsd's only package that
// imports client-go (kubeconfig loading included; test/layout holds that),
// and the store and handlers never see an API object. Of client-go it uses
// the REST client and the reflector, not the clientset (client.go says why).
//
// Memory: dnsd keeps one slim copy of each object, the store's record
// (store.ToService and friends: names, IPs, ports, readiness, a pod's DNS
// fields). There is no informer cache beside it, no namespace index, no
// queue of deltas: each watch event is converted and written to the store
// as it is decoded. The initial state and every relist (after an API-server
// restart, or an expired watch) come as a streaming list (WatchList:
// sendInitialEvents, the client-go default) whose objects are converted one
// by one as they arrive; against an API server without it, as a paged list
// converted page by page. Either way no whole list of API objects is ever
// held, and the next state of a kind shares every unchanged record with the
// current one (Store.SharedPod...), so a relist holds only the records that
// changed, never a second copy of the cluster; it is written with one
// Store.Replace* and published once. Updates that change nothing DNS reads
// (most pod status updates) publish nothing. Once synced, the garbage of
// the initial lists is returned to the OS (debug.FreeOSMemory), and so is
// a relist's once the relists have been quiet for 2 s. While relists go on
// the Go heap is held to a soft limit 15% above what the runtime used when
// they began (relistGuard), so that the decoded objects' garbage is
// collected as it is made rather than doubling the heap first.
package apisource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/poddns/poddns/pkg/serve/store"
)

// Options configure the source.
type Options struct {
	// Config reaches the API server; see RESTConfig.
	Config *rest.Config
	// Store receives the records.
	Store *store.Store
	// Pods also watches Pods (needed for verified pod records and search
	// completion only: a pod watch costs memory and API-server load).
	Pods bool
	// NodeName, when set, limits the pod watch to the pods scheduled on
	// that node (a field selector on spec.nodeName): a node-local dnsd
	// holds its node's pods only. Services, EndpointSlices and Namespaces
	// are still watched cluster-wide.
	NodeName string
	// Logger logs sync progress; nil discards.
	Logger *slog.Logger
	// Registerer, if set, receives poddns_dns_programming_duration_seconds.
	Registerer prometheus.Registerer
}

// RESTConfig loads the API server's address and credentials from the
// kubeconfig file at path, or from the pod's service account when path is
// "".
func RESTConfig(path string) (*rest.Config, error) {
	if path == "" {
		c, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster API config (set --kubeconfig outside a cluster): %w", err)
		}
		return c, nil
	}
	c, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	return c, nil
}

// Source is a running API watch.
type Source struct {
	synced chan struct{}
	wg     sync.WaitGroup
}

// Start starts the reflectors; they stop when ctx ends. The store is marked
// synced in the background once the initial lists are in; Synced tells when.
func Start(ctx context.Context, o Options) (*Source, error) {
	if o.Config == nil || o.Store == nil {
		return nil, errors.New("apisource: Config and Store are required")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg := rest.CopyConfig(o.Config)
	cfg.UserAgent = "poddns-dnsd"
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	core, err := groupClient(cfg, corev1.SchemeGroupVersion)
	if err != nil {
		return nil, fmt.Errorf("apisource: %w", err)
	}
	disc, err := groupClient(cfg, discoveryv1.SchemeGroupVersion)
	if err != nil {
		return nil, fmt.Errorf("apisource: %w", err)
	}
	pm, err := newProgrammingMetrics(o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("apisource: metrics: %w", err)
	}
	st := o.Store
	services := resource[*corev1.ServiceList]{client: core, name: "services", newList: func() *corev1.ServiceList { return &corev1.ServiceList{} }}
	endpointSlices := resource[*discoveryv1.EndpointSliceList]{client: disc, name: "endpointslices",
		newList: func() *discoveryv1.EndpointSliceList { return &discoveryv1.EndpointSliceList{} }}
	namespaces := resource[*corev1.NamespaceList]{client: core, name: "namespaces", newList: func() *corev1.NamespaceList { return &corev1.NamespaceList{} }}
	kinds := []kind{
		newKind("services", &corev1.Service{}, store.ToService, st.SharedService, st.UpsertService, st.DeleteService, st.ReplaceServices, nil,
			services.list, func(l *corev1.ServiceList) ([]corev1.Service, metav1.ListMeta) { return l.Items, l.ListMeta }, services.watch),
		newKind("endpointslices", &discoveryv1.EndpointSlice{}, store.ToEndpointSlice, st.SharedEndpointSlice, st.UpsertEndpointSlice,
			st.DeleteEndpointSlice, st.ReplaceEndpointSlices, func(o *discoveryv1.EndpointSlice) { pm.observe(st, o) },
			endpointSlices.list, func(l *discoveryv1.EndpointSliceList) ([]discoveryv1.EndpointSlice, metav1.ListMeta) {
				return l.Items, l.ListMeta
			},
			endpointSlices.watch),
		newKind("namespaces", &corev1.Namespace{}, store.ToNamespace, nil, st.UpsertNamespace,
			func(_, name string) { st.DeleteNamespace(name) }, st.ReplaceNamespaces, nil,
			namespaces.list, func(l *corev1.NamespaceList) ([]corev1.Namespace, metav1.ListMeta) { return l.Items, l.ListMeta },
			namespaces.watch),
	}
	if o.Pods {
		pods := resource[*corev1.PodList]{client: core, name: "pods", newList: func() *corev1.PodList { return &corev1.PodList{} }}
		if o.NodeName != "" {
			sel := fields.OneTermEqualSelector("spec.nodeName", o.NodeName).String()
			pods.tweak = func(lo *metav1.ListOptions) { lo.FieldSelector = sel }
		}
		kinds = append(kinds, newKind("pods", &corev1.Pod{}, store.ToPod, st.SharedPod, st.UpsertPod, st.DeletePod, st.ReplacePods, nil,
			pods.list, func(l *corev1.PodList) ([]corev1.Pod, metav1.ListMeta) { return l.Items, l.ListMeta }, pods.watch))
	}
	s := &Source{synced: make(chan struct{})}
	rl := &relists{started: make(chan struct{}, 1), done: make(chan struct{}, 1)}
	for _, k := range kinds {
		k.onRelist(rl)
		r := cache.NewReflectorWithOptions(k.listWatch(), k.example(), k, cache.ReflectorOptions{Name: "poddns-dnsd/" + k.name()})
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			r.RunWithContext(ctx)
		}()
	}
	go func() {
		start := time.Now()
		for _, k := range kinds {
			select {
			case <-k.synced():
			case <-ctx.Done():
				return // stopped before sync
			}
		}
		st.SetSynced()
		// The initial lists are the most memory dnsd ever allocates at
		// once (every object decoded before it is converted); give what is
		// garbage now back to the OS instead of carrying it as RSS.
		debug.FreeOSMemory()
		n := st.Snapshot().Counts()
		log.Info("API objects synced", "after", time.Since(start).Round(time.Millisecond).String(), "services", n.Services,
			"endpointslices", n.EndpointSlices, "pods", n.Pods, "namespaces", n.Namespaces)
		close(s.synced)
		rl.watch(ctx, log)
	}()
	return s, nil
}

// relists tracks the kinds' relists (after an API-server restart every
// kind relists, one after the other), for the memory they take.
type relists struct {
	inflight atomic.Int32  // kinds between a relist's start and its Replace
	started  chan struct{} // a relist started (cap 1, never blocks)
	done     chan struct{} // a relist's Replace (cap 1, never blocks)
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default: // one is pending already
	}
}

// watch holds the Go heap to a relistGuard while relists go on and, once
// they have all ended and been quiet for relistQuiet, lifts it and returns
// their garbage to the OS (a relist leaves as much as the initial lists).
func (rl *relists) watch(ctx context.Context, log *slog.Logger) {
	g := newRelistGuard()
	defer g.end()
	for {
		var expire <-chan time.Time
		if g.active {
			expire = time.After(relistGuardMax)
		}
		select {
		case <-ctx.Done():
			return
		case <-rl.started:
			g.start()
			continue
		case <-expire:
			g.end() // a relist that never ended: not held any longer
			continue
		case <-rl.done:
		}
		for quiet := false; !quiet; {
			select {
			case <-ctx.Done():
				return
			case <-rl.started:
				g.start()
			case <-rl.done:
			case <-time.After(relistQuiet):
				quiet = rl.inflight.Load() == 0
			}
		}
		g.end()
		debug.FreeOSMemory()
		log.Info("API objects relisted, memory returned to the OS")
	}
}

// relistGuardMax is how long a relist that does not end keeps the heap
// held (an API server that failed again mid-relist).
const relistGuardMax = 5 * time.Minute

// relistQuiet is how long after the last relist dnsd returns the relists'
// garbage to the OS.
const relistQuiet = 2 * time.Second

// Synced is closed once the store has the initial state.
func (s *Source) Synced() <-chan struct{} { return s.synced }

// Shutdown waits for the reflectors to stop (after Start's ctx ended).
func (s *Source) Shutdown() { s.wg.Wait() }

// kind is one watched resource: the reflector's store (cache.ReflectorStore)
// that writes through to the record store.
type kind interface {
	cache.TransformingStore
	name() string
	example() runtime.Object
	listWatch() cache.ListerWatcher
	synced() <-chan struct{}
	// onRelist has the kind report its relists (every list after its
	// first Replace) to rl.
	onRelist(rl *relists)
}

// pageSize is the page of a paged list (API servers without WatchList);
// tests make it small.
var pageSize int64 = 500

// pagesListed counts the pages of paged lists, for tests to tell a
// streaming list from a paged one.
var pagesListed atomic.Int64

// sink is the kind of API objects T (a pointer type) kept as store records
// R (a pointer type). It keeps nothing itself.
type sink[T interface {
	metav1.Object
	runtime.Object
}, R comparable, L any, I any] struct {
	kindName string
	ex       T
	convert  func(T) (R, bool)
	shared   func(R) R // nil: no sharing
	upsert   func(R)
	del      func(ns, name string)
	replace  func([]R)
	after    func(T) // after an upsert from a watch event; nil: nothing
	list     func(context.Context, metav1.ListOptions) (L, error)
	items    func(L) ([]I, metav1.ListMeta)
	watch    func(context.Context, metav1.ListOptions) (watch.Interface, error)

	once    sync.Once
	done    chan struct{}
	relists *relists
	listing atomic.Bool // a relist started and its Replace has not come
}

// newKind builds a sink; I is the list's item type, whose pointer is T.
func newKind[T interface {
	metav1.Object
	runtime.Object
}, R comparable, L any, I any](name string, ex T, convert func(T) (R, bool), shared func(R) R, upsert func(R),
	del func(ns, name string), replace func([]R), after func(T),
	list func(context.Context, metav1.ListOptions) (L, error), items func(L) ([]I, metav1.ListMeta),
	watch func(context.Context, metav1.ListOptions) (watch.Interface, error)) *sink[T, R, L, I] {
	return &sink[T, R, L, I]{kindName: name, ex: ex, convert: convert, shared: shared, upsert: upsert, del: del, replace: replace,
		after: after, list: list, items: items, watch: watch, done: make(chan struct{})}
}

func (s *sink[T, R, L, I]) name() string                     { return s.kindName }
func (s *sink[T, R, L, I]) example() runtime.Object          { return s.ex }
func (s *sink[T, R, L, I]) onRelist(rl *relists)             { s.relists = rl }
func (s *sink[T, R, L, I]) synced() <-chan struct{}          { return s.done }
func (s *sink[T, R, L, I]) Resync() error                    { return nil }
func (s *sink[T, R, L, I]) Transformer() cache.TransformFunc { return s.transform }

// entry is what a list holds of an object until Replace: the store's
// record, or none when DNS has no use for the object (a pod without an IP,
// an FQDN EndpointSlice).
type entry[R any] struct {
	rec R
	ok  bool
}

func (*entry[R]) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject returns e itself: records are never modified once made.
func (e *entry[R]) DeepCopyObject() runtime.Object { return e }

// transform converts an API object into an entry, sharing the store's
// record when it is unchanged (a relist's temporary store holds entries).
func (s *sink[T, R, L, I]) transform(obj any) (any, error) {
	switch o := obj.(type) {
	case *entry[R]:
		return o, nil
	case T:
		e := &entry[R]{}
		if r, ok := s.convert(o); ok {
			if s.shared != nil {
				r = s.shared(r)
			}
			e.rec, e.ok = r, true
		}
		return e, nil
	}
	return nil, fmt.Errorf("apisource %s: unexpected object %T", s.kindName, obj)
}

// Add and Update write a watch event's object to the store.
func (s *sink[T, R, L, I]) Add(obj any) error { return s.Update(obj) }

func (s *sink[T, R, L, I]) Update(obj any) error {
	o, ok := obj.(T)
	if !ok {
		return fmt.Errorf("apisource %s: unexpected object %T", s.kindName, obj)
	}
	if r, ok := s.convert(o); ok {
		s.upsert(r)
		if s.after != nil {
			s.after(o)
		}
	} else {
		s.del(o.GetNamespace(), o.GetName()) // terminating, no IP, unusable
	}
	return nil
}

// Delete removes a watch event's object from the store.
func (s *sink[T, R, L, I]) Delete(obj any) error {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	o, ok := obj.(T)
	if !ok {
		return fmt.Errorf("apisource %s: unexpected object %T", s.kindName, obj)
	}
	s.del(o.GetNamespace(), o.GetName())
	return nil
}

// Replace makes list (entries of a streaming list or of listPaged, or API
// objects) the whole content of the kind in the store.
func (s *sink[T, R, L, I]) Replace(list []any, _ string) error {
	recs := make([]R, 0, len(list))
	for i, obj := range list {
		e, err := s.transform(obj)
		if err != nil {
			return err
		}
		if en := e.(*entry[R]); en.ok {
			recs = append(recs, en.rec)
		}
		list[i] = nil // the reflector hands the list over: let it go as it is consumed
	}
	s.replace(recs)
	first := false
	s.once.Do(func() { close(s.done); first = true })
	if !first && s.relists != nil {
		if s.listing.CompareAndSwap(true, false) {
			s.relists.inflight.Add(-1)
		}
		notify(s.relists.done)
	}
	return nil
}

// listStarting reports a relist's start: a list (paged, or a streaming
// list's watch) after the kind's first Replace.
func (s *sink[T, R, L, I]) listStarting() {
	select {
	case <-s.done:
	default:
		return // the initial list
	}
	if s.relists == nil {
		return
	}
	if s.listing.CompareAndSwap(false, true) {
		s.relists.inflight.Add(1)
	}
	notify(s.relists.started)
}

// entryList is a list of entries, what listPaged returns to the reflector.
type entryList struct {
	metav1.TypeMeta
	metav1.ListMeta
	Items []runtime.Object
}

func (l *entryList) DeepCopyObject() runtime.Object { return l }

func (s *sink[T, R, L, I]) listWatch() cache.ListerWatcher {
	return &cache.ListWatch{
		ListWithContextFunc: s.listPaged,
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			if o.SendInitialEvents != nil && *o.SendInitialEvents {
				s.listStarting() // a streaming list
			}
			return s.watch(ctx, o)
		},
	}
}

// listPaged lists the kind a page at a time, converting each page before
// the next is fetched: only one page of API objects is ever held. (The
// reflector's own pager would gather every page into one list first.)
func (s *sink[T, R, L, I]) listPaged(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	s.listStarting()
	out := &entryList{}
	opts.Limit = pageSize
	switch {
	case opts.ResourceVersion == "0":
		// The API server's watch cache answers a list at "any version"
		// whole, ignoring the limit; the reflector asks for that on its
		// first list. Ask for the current state instead, which is paged.
		opts.ResourceVersion = ""
	case opts.ResourceVersion != "" && opts.ResourceVersionMatch == "":
		// A relist asks for a state not older than the last one seen; with
		// a limit and no match, a resourceVersion means exactly that
		// version (the legacy rule), an old state whose watch the API
		// server may refuse as too old, relisting forever (seen across a
		// restart, whose watch cache starts at etcd's current revision).
		opts.ResourceVersionMatch = metav1.ResourceVersionMatchNotOlderThan
	}
	for {
		l, err := s.list(ctx, opts)
		if err != nil {
			return nil, err
		}
		pagesListed.Add(1)
		items, meta := s.items(l)
		for i := range items {
			o, ok := any(&items[i]).(T)
			if !ok {
				return nil, fmt.Errorf("apisource %s: list item %T", s.kindName, &items[i])
			}
			e, _ := s.transform(o)
			out.Items = append(out.Items, e.(*entry[R]))
		}
		if meta.Continue == "" {
			out.ResourceVersion = meta.ResourceVersion
			return out, nil
		}
		opts.Continue = meta.Continue
		opts.ResourceVersion, opts.ResourceVersionMatch = "", "" // a continuation names its own
	}
}
