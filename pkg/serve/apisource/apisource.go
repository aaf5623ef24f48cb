// Package apisource feeds the record store from the Kubernetes API server:
// informers on Services, discovery.k8s.io/v1 EndpointSlices, Namespaces and
// (only for verified pod records or search completion) Pods, whose objects are trimmed by a
// transform before the informer caches them, and converted to the store's
// slim records by the event handlers. It marks the store synced once every
// handler has seen the initial list, so dnsd answers SERVFAIL, not NXDOMAIN,
// until then.
//
// It exists to keep client-go in one package: it is dnsd's only package that
// imports client-go (kubeconfig loading included; test/layout holds that),
// and the store and handlers never see an API object.
//
// Memory: the informers keep only the trimmed objects (names, the labels and
// annotations DNS reads, IPs, ports, endpoint hostnames and readiness), as
// CoreDNS's object package does after its scale-test OOMs; managed fields,
// pod specs and statuses are dropped before caching.
package apisource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
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
	factories []informers.SharedInformerFactory
	synced    chan struct{}
}

// Start starts the informers; they stop when ctx ends. The store is marked
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
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("apisource: client: %w", err)
	}
	pm, err := newProgrammingMetrics(o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("apisource: metrics: %w", err)
	}
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(Trim))
	st := o.Store
	var regs []cache.InformerSynced
	add := func(inf cache.SharedIndexInformer, h cache.ResourceEventHandlerFuncs) error {
		reg, err := inf.AddEventHandler(h)
		if err != nil {
			return fmt.Errorf("apisource: event handler: %w", err)
		}
		regs = append(regs, reg.HasSynced)
		return nil
	}
	errs := []error{
		add(f.Core().V1().Services().Informer(), handlers(func(o *corev1.Service) {
			if s, ok := store.ToService(o); ok {
				st.UpsertService(s)
			}
		}, func(ns, name string) { st.DeleteService(ns, name) })),
		add(f.Discovery().V1().EndpointSlices().Informer(), handlers(func(o *discoveryv1.EndpointSlice) {
			if s, ok := store.ToEndpointSlice(o); ok {
				st.UpsertEndpointSlice(s)
				pm.observe(st, o)
			} else {
				st.DeleteEndpointSlice(o.Namespace, o.Name)
			}
		}, func(ns, name string) { st.DeleteEndpointSlice(ns, name) })),
		add(f.Core().V1().Namespaces().Informer(), handlers(func(o *corev1.Namespace) {
			if n, ok := store.ToNamespace(o); ok {
				st.UpsertNamespace(n)
			}
		}, func(_, name string) { st.DeleteNamespace(name) })),
	}
	factories := []informers.SharedInformerFactory{f}
	if o.Pods {
		pf := f
		if o.NodeName != "" {
			pf = informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(Trim),
				informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
					lo.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", o.NodeName).String()
				}))
			factories = append(factories, pf)
		}
		errs = append(errs, add(pf.Core().V1().Pods().Informer(), handlers(func(e *PodEntry) {
			if e.Pod != nil {
				st.UpsertPod(e.Pod)
			} else {
				st.DeletePod(e.Namespace, e.Name) // terminating, or no IP
			}
		}, func(ns, name string) { st.DeletePod(ns, name) })))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, f := range factories {
		f.Start(ctx.Done())
	}
	s := &Source{factories: factories, synced: make(chan struct{})}
	go func() {
		start := time.Now()
		if !cache.WaitForCacheSync(ctx.Done(), regs...) {
			return // stopped before sync
		}
		st.SetSynced()
		// The initial lists are the most memory dnsd ever allocates at
		// once (every object decoded before it is trimmed); give what is
		// garbage now back to the OS instead of carrying it as RSS.
		debug.FreeOSMemory()
		n := st.Snapshot().Counts()
		log.Info("API objects synced", "after", time.Since(start).Round(time.Millisecond).String(), "services", n.Services,
			"endpointslices", n.EndpointSlices, "pods", n.Pods, "namespaces", n.Namespaces)
		close(s.synced)
	}()
	return s, nil
}

// Synced is closed once the store has the initial state.
func (s *Source) Synced() <-chan struct{} { return s.synced }

// Shutdown waits for the informers to stop (after Start's ctx ended).
func (s *Source) Shutdown() {
	for _, f := range s.factories {
		f.Shutdown()
	}
}

// handlers adapts typed upsert and delete functions to informer events.
func handlers[T metav1.Object](upsert func(T), del func(ns, name string)) cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if o, ok := obj.(T); ok {
				upsert(o)
			}
		},
		UpdateFunc: func(_, obj any) {
			if o, ok := obj.(T); ok {
				upsert(o)
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if o, ok := obj.(T); ok {
				del(o.GetNamespace(), o.GetName())
			}
		},
	}
}

// Trim is the informers' transform: it keeps only what DNS reads of each
// object (and what the informer needs: name, namespace, resourceVersion,
// deletion timestamp).
func Trim(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Service:
		out := &corev1.Service{ObjectMeta: trimMeta(o.ObjectMeta), Spec: corev1.ServiceSpec{
			Type: o.Spec.Type, ClusterIP: o.Spec.ClusterIP, ClusterIPs: o.Spec.ClusterIPs, ExternalName: o.Spec.ExternalName}}
		if v, ok := o.Annotations[store.TolerateUnreadyAnnotation]; ok {
			out.Annotations = map[string]string{store.TolerateUnreadyAnnotation: v}
		}
		for _, p := range o.Spec.Ports {
			out.Spec.Ports = append(out.Spec.Ports, corev1.ServicePort{Name: p.Name, Protocol: p.Protocol, Port: p.Port})
		}
		return out, nil
	case *discoveryv1.EndpointSlice:
		out := &discoveryv1.EndpointSlice{ObjectMeta: trimMeta(o.ObjectMeta), AddressType: o.AddressType, Ports: o.Ports}
		if v, ok := o.Labels[discoveryv1.LabelServiceName]; ok {
			out.Labels = map[string]string{discoveryv1.LabelServiceName: v}
		}
		if v, ok := o.Annotations[corev1.EndpointsLastChangeTriggerTime]; ok {
			out.Annotations = map[string]string{corev1.EndpointsLastChangeTriggerTime: v}
		}
		out.Endpoints = make([]discoveryv1.Endpoint, len(o.Endpoints))
		for i, e := range o.Endpoints {
			out.Endpoints[i] = discoveryv1.Endpoint{Addresses: e.Addresses, Hostname: e.Hostname,
				Conditions: discoveryv1.EndpointConditions{Ready: e.Conditions.Ready}}
		}
		return out, nil
	case *corev1.Pod:
		e := &PodEntry{ObjectMeta: trimMeta(o.ObjectMeta)}
		if p, ok := store.ToPod(o); ok {
			e.Pod = p
		}
		return e, nil
	case *corev1.Namespace:
		return &corev1.Namespace{ObjectMeta: trimMeta(o.ObjectMeta)}, nil
	}
	return obj, nil // tombstones and anything else pass through
}

// PodEntry is what the pod informer keeps of a Pod: the metadata the
// informer itself needs and the store's record of the pod, which the store
// shares (nil when DNS has no use for the pod: no IP yet, or terminating).
// Pods are most of a cluster's objects, and even a trimmed corev1.Pod is a
// 1.2 KB struct; an entry is about a quarter of that.
type PodEntry struct {
	metav1.ObjectMeta // name, namespace, UID, resourceVersion, deletion timestamp
	Pod               *store.Pod
}

// GetObjectKind implements runtime.Object.
func (e *PodEntry) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject implements runtime.Object. The store's record is never
// modified once made, so the copy shares it.
func (e *PodEntry) DeepCopyObject() runtime.Object {
	return &PodEntry{ObjectMeta: *e.ObjectMeta.DeepCopy(), Pod: e.Pod}
}

func trimMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		DeletionTimestamp: m.DeletionTimestamp}
}
