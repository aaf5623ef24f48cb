package store

import (
	"maps"
	"reflect"
	"slices"
)

// This file holds what lets a source use the store as its only cache of
// the cluster: whole-kind replacement (a source's initial list or relist,
// published once), lookups that share an unchanged record instead of
// keeping a second copy of it, and equality, so that an update that does not
// change what DNS answers publishes nothing.

// ReplaceServices makes objs the Services of the store: the ones not in
// objs are deleted, the changed ones replaced, the unchanged ones kept (not
// republished). Like every write it is published at once after sync.
func (s *Store) ReplaceServices(objs []*Service) {
	s.mu.Lock()
	defer s.mu.Unlock()
	replace(s.services, objs, EqualService,
		func(k svcKey, o *Service) { s.services[k] = o; s.dirtySvcs[k] = struct{}{} },
		func(k svcKey) { delete(s.services, k); s.dirtySvcs[k] = struct{}{} })
	s.publish()
}

// ReplaceEndpointSlices is ReplaceServices for EndpointSlices.
func (s *Store) ReplaceEndpointSlices(objs []*EndpointSlice) {
	s.mu.Lock()
	defer s.mu.Unlock()
	replace(s.slices, objs, EqualEndpointSlice,
		func(k svcKey, o *EndpointSlice) { s.removeSlice(k.ns, k.name); s.putSlice(o) },
		func(k svcKey) { s.removeSlice(k.ns, k.name) })
	s.publish()
}

// ReplacePods is ReplaceServices for Pods.
func (s *Store) ReplacePods(objs []*Pod) {
	s.mu.Lock()
	defer s.mu.Unlock()
	replace(s.pods, objs, EqualPod,
		func(k svcKey, o *Pod) { s.markPod(k); s.pods[k] = o },
		func(k svcKey) { s.markPod(k); delete(s.pods, k) })
	s.publish()
}

// replace is the Replace of one kind, whose records are cur: put stores a
// new or changed record of objs, del removes a record that objs does not
// hold; a record equal to the one stored is left alone. objs holds each key
// once (an API list does; a key twice could keep a record that objs does
// not hold). The set of objs' keys (for the deletions) is built only when some
// stored record is not in objs: a relist that deletes nothing, the common
// case, allocates nothing beside what it stores.
func replace[T any, P interface {
	*T
	key() svcKey
}](cur map[svcKey]P, objs []P, equal func(a, b P) bool, put func(svcKey, P), del func(svcKey)) {
	kept := 0 // objs' keys that were in cur before this call
	for _, o := range objs {
		k := o.key()
		old := cur[k]
		if old != nil {
			kept++
		}
		if old != nil && (old == o || equal(old, o)) {
			continue
		}
		put(k, o)
	}
	if kept == len(cur)-(len(objs)-kept) {
		return // cur holds objs' keys and no other
	}
	keep := make(map[svcKey]struct{}, len(objs))
	for _, o := range objs {
		keep[o.key()] = struct{}{}
	}
	for k := range cur {
		if _, ok := keep[k]; !ok {
			del(k)
		}
	}
}

// ReplaceNamespaces is ReplaceServices for Namespaces.
func (s *Store) ReplaceNamespaces(objs []*Namespace) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := make(map[string]struct{}, len(objs))
	for _, o := range objs {
		next[o.Name] = struct{}{}
	}
	if !maps.Equal(s.namespaces, next) {
		s.namespaces = next
		s.dirtyNS = true
	}
	s.publish()
}

// SharedService returns the store's record of o's Service if it equals o,
// else o: a source building the next state of a kind (a relist) holds only
// the records that changed, the others are the store's.
func (s *Store) SharedService(o *Service) *Service { return shared(s, s.services, o, EqualService) }

// SharedEndpointSlice is SharedService for EndpointSlices.
func (s *Store) SharedEndpointSlice(o *EndpointSlice) *EndpointSlice {
	return shared(s, s.slices, o, EqualEndpointSlice)
}

// SharedPod is SharedService for Pods.
func (s *Store) SharedPod(o *Pod) *Pod { return shared(s, s.pods, o, EqualPod) }

// shared is the Shared of one kind, whose records are cur.
func shared[T any, P interface {
	*T
	key() svcKey
}](s *Store, cur map[svcKey]P, o P, equal func(a, b P) bool) P {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := cur[o.key()]; old != nil && equal(old, o) {
		return old
	}
	return o
}

func (o *Service) key() svcKey       { return svcKey{o.Namespace, o.Name} }
func (o *EndpointSlice) key() svcKey { return svcKey{o.Namespace, o.Name} }
func (o *Pod) key() svcKey           { return svcKey{o.Namespace, o.Name} }

// EqualService reports whether a and b answer the same.
func EqualService(a, b *Service) bool {
	return a.Namespace == b.Namespace && a.Name == b.Name && a.Kind == b.Kind && a.ExternalName == b.ExternalName &&
		a.TolerateUnready == b.TolerateUnready && slices.Equal(a.ClusterIPs, b.ClusterIPs) && slices.Equal(a.Ports, b.Ports)
}

// EqualEndpointSlice reports whether a and b answer the same.
func EqualEndpointSlice(a, b *EndpointSlice) bool {
	return a.Namespace == b.Namespace && a.Name == b.Name && a.Service == b.Service && slices.Equal(a.Ports, b.Ports) &&
		slices.EqualFunc(a.Endpoints, b.Endpoints, func(x, y Endpoint) bool {
			return x.Hostname == y.Hostname && x.Ready == y.Ready && slices.Equal(x.Addresses, y.Addresses)
		})
}

// EqualPod reports whether a and b answer (and complete searches) the same.
func EqualPod(a, b *Pod) bool {
	return a.Namespace == b.Namespace && a.Name == b.Name && a.HostNetwork == b.HostNetwork && a.UID == b.UID &&
		a.Phase == b.Phase && a.DNSPolicy == b.DNSPolicy && slices.Equal(a.IPs, b.IPs) &&
		(a.DNSConfig == b.DNSConfig || reflect.DeepEqual(a.DNSConfig, b.DNSConfig))
}
