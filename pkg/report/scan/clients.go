package scan

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
)

// DefaultQPS is the scan's request rate limit, in requests a second.
const DefaultQPS = 20

// UserAgent is the scan's User-Agent: its requests can be told apart from
// the webhook's other ones (the namespace informer, leader election).
const UserAgent = "poddns-webhook/report-scan"

// Clients are the scan's API clients, sharing one rate limit.
type Clients struct {
	Kube      kubernetes.Interface
	Dynamic   dynamic.Interface
	Discovery discovery.DiscoveryInterface
}

// NewClients makes clients from a copy of cfg whose requests, all together,
// are at most qps a second (0: DefaultQPS): each request leaves at least
// 1/qps (plus a millisecond of margin) after the one before, so that no
// one-second window holds more than qps of them. The spacing is enforced on
// the transport, where requests leave, rather than by client-go's token
// bucket, which lets the scheduling jitter between its grant and the send
// put qps+1 requests into a window.
func NewClients(cfg *rest.Config, qps float32) (*Clients, error) {
	if qps <= 0 {
		qps = DefaultQPS
	}
	c := rest.CopyConfig(cfg)
	c.UserAgent = UserAgent
	c.RateLimiter = flowcontrol.NewFakeAlwaysRateLimiter()
	sp := &spacer{interval: time.Duration(float64(time.Second)/float64(qps)) + time.Millisecond}
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper { sp.next = rt; return sp })
	// Pages of pods decode from protobuf: less garbage than JSON.
	kc := rest.CopyConfig(c)
	kc.ContentType = "application/vnd.kubernetes.protobuf"
	kc.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	kube, err := kubernetes.NewForConfig(kc)
	if err != nil {
		return nil, fmt.Errorf("scan client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(c)
	if err != nil {
		return nil, fmt.Errorf("scan client: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(c)
	if err != nil {
		return nil, fmt.Errorf("scan client: %w", err)
	}
	return &Clients{Kube: kube, Dynamic: dyn, Discovery: disc}, nil
}

// spacer sends requests at least interval apart, in the order they come.
type spacer struct {
	next     http.RoundTripper
	interval time.Duration
	mu       sync.Mutex
	last     time.Time
}

func (s *spacer) RoundTrip(r *http.Request) (*http.Response, error) {
	s.mu.Lock()
	if wait := time.Until(s.last.Add(s.interval)); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			s.mu.Unlock()
			return nil, r.Context().Err()
		}
	}
	s.last = time.Now()
	s.mu.Unlock()
	return s.next.RoundTrip(r)
}
