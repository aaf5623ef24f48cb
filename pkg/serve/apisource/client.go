package apisource

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
)

// dnsd reads four kinds of two API groups, list and watch only. It talks to
// the API server through REST clients over a scheme of those two groups,
// not through client-go's clientset: the clientset's scheme registers every
// built-in API group at start, which links the code of every kind (their
// protobuf, conversion and apply-configuration code) into dnsd and maps
// most of it into memory — about 20 MB of the node-local dnsd's resident
// memory (issue 11), for kinds it never reads.

// scheme knows core/v1, discovery.k8s.io/v1 and the options and watch
// events of meta/v1.
var (
	scheme     = runtime.NewScheme()
	codecs     = serializer.NewCodecFactory(scheme)
	parameters = runtime.NewParameterCodec(scheme)
)

func init() {
	utilruntime.Must(corev1.AddToScheme(scheme))
	utilruntime.Must(discoveryv1.AddToScheme(scheme))
	// ListOptions and the other query parameters, as client-go's scheme
	// registers them.
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"})
}

// groupClient is a REST client of one API group version (core/v1 under
// /api, the others under /apis).
func groupClient(cfg *rest.Config, gv schema.GroupVersion) (rest.Interface, error) {
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &gv
	c.APIPath = "/apis"
	if gv.Group == "" {
		c.APIPath = "/api"
	}
	c.NegotiatedSerializer = codecs.WithoutConversion()
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("%s client: %w", gv, err)
	}
	return rc, nil
}

// resource lists and watches one cluster-wide resource (as client-go's
// typed clients do), with tweak applied to the options of both.
type resource[L runtime.Object] struct {
	client  rest.Interface
	name    string
	newList func() L
	tweak   func(*metav1.ListOptions) // nil: none
}

func (r resource[L]) request(opts *metav1.ListOptions) *rest.Request {
	if r.tweak != nil {
		r.tweak(opts)
	}
	var timeout time.Duration
	if opts.TimeoutSeconds != nil {
		timeout = time.Duration(*opts.TimeoutSeconds) * time.Second
	}
	return r.client.Get().Resource(r.name).VersionedParams(opts, parameters).Timeout(timeout)
}

func (r resource[L]) list(ctx context.Context, opts metav1.ListOptions) (L, error) {
	l := r.newList()
	err := r.request(&opts).Do(ctx).Into(l)
	return l, err
}

func (r resource[L]) watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return r.request(&opts).Watch(ctx)
}
