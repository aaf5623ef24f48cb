package apisource

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/poddns/poddns/pkg/promopts"
	"github.com/poddns/poddns/pkg/serve/store"
)

// programmingDuration is the DNS programming latency SLI of Kubernetes
// (sig-scalability dns_programming_latency.md), CoreDNS's
// coredns_kubernetes_dns_programming_duration_seconds: the time from the
// change that triggered an EndpointSlice update (its
// endpoints.kubernetes.io/last-change-trigger-time annotation, set by the
// EndpointSlice controller) to the moment the new records are servable.
type programmingMetrics struct {
	duration *prometheus.HistogramVec
}

func newProgrammingMetrics(reg prometheus.Registerer) (*programmingMetrics, error) {
	m := &programmingMetrics{duration: prometheus.NewHistogramVec(promopts.Histogram("dns", "programming_duration_seconds", "Time from the change that triggered an EndpointSlice update to the new records being served, by service kind.", prometheus.ExponentialBuckets(0.001, 2, 20)), []string{"service_kind"})}
	if err := promopts.Register(reg, "dns", m.duration); err != nil {
		return nil, err
	}
	return m, nil
}

// observe records the programming latency of slice o, just published into
// st. Slices without the annotation (hand-made ones) are not measured.
func (m *programmingMetrics) observe(st *store.Store, o *discoveryv1.EndpointSlice) {
	v, ok := o.Annotations[corev1.EndpointsLastChangeTriggerTime]
	if !ok || !st.Synced() {
		return // the initial list measures the informer start, not programming
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return
	}
	kind := "unknown"
	if svc := st.Snapshot().Service(o.Namespace, o.Labels[discoveryv1.LabelServiceName]); svc != nil {
		switch svc.Kind {
		case store.ClusterIP:
			kind = "cluster_ip"
		case store.Headless:
			kind = "headless"
		}
	}
	m.duration.WithLabelValues(kind).Observe(time.Since(t).Seconds())
}
