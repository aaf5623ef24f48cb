package scan

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/poddns/poddns/pkg/policy"
	"github.com/poddns/poddns/pkg/report"
)

// DefaultPageSize is the limit of every list request.
const DefaultPageSize = 500

// Lister lists what a report needs, page by page.
type Lister struct {
	Client kubernetes.Interface
	// PageSize is the limit of each list request (0: DefaultPageSize).
	PageSize int64
}

func (l *Lister) limit() int64 {
	if l.PageSize <= 0 {
		return DefaultPageSize
	}
	return l.PageSize
}

// pages calls list with limit and continue until the list ends.
func (l *Lister) pages(ctx context.Context, what string, list func(metav1.ListOptions) (string, error)) error {
	opts := metav1.ListOptions{Limit: l.limit()}
	for {
		next, err := list(opts)
		if err != nil {
			return fmt.Errorf("list %s: %w", what, err)
		}
		if next == "" {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		opts.Continue = next
	}
}

// Namespaces returns every namespace's labels (policy.NamespaceLabels), by
// name.
func (l *Lister) Namespaces(ctx context.Context) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	err := l.pages(ctx, "namespaces", func(o metav1.ListOptions) (string, error) {
		list, err := l.Client.CoreV1().Namespaces().List(ctx, o)
		if err != nil {
			return "", err
		}
		for i := range list.Items {
			out[list.Items[i].Name] = policy.NamespaceLabels(&list.Items[i])
		}
		return list.Continue, nil
	})
	return out, err
}

// Owners lists the workloads that own pods. Of a workload owned by another
// (a Deployment's ReplicaSet, a CronJob's Job) only the reference is kept:
// pods are compared with the top workload's template. ReplicaSets without
// replicas (a Deployment's old revisions) are left out.
func (l *Lister) Owners(ctx context.Context) (*report.Owners, error) {
	x := report.NewOwners()
	add := func(kind, apiVersion string, om *metav1.ObjectMeta, t *corev1.PodTemplateSpec) {
		o := report.Owner{
			Ref:    report.Ref{APIVersion: apiVersion, Kind: kind, Namespace: om.Namespace, Name: om.Name, UID: om.UID},
			Owners: om.OwnerReferences,
		}
		if t != nil && len(om.OwnerReferences) == 0 {
			p := &corev1.Pod{ObjectMeta: t.ObjectMeta, Spec: t.Spec}
			p.Namespace = om.Namespace
			o.Template = report.SlimPod(p)
		}
		x.Add(o)
	}
	apps, batch, core := l.Client.AppsV1(), l.Client.BatchV1(), l.Client.CoreV1()
	steps := []struct {
		what string
		list func(metav1.ListOptions) (string, error)
	}{
		{"deployments", func(o metav1.ListOptions) (string, error) {
			list, err := apps.Deployments("").List(ctx, o)
			if err != nil {
				return "", err
			}
			for i := range list.Items {
				it := &list.Items[i]
				add("Deployment", "apps/v1", &it.ObjectMeta, &it.Spec.Template)
			}
			return list.Continue, nil
		}},
		{"replicasets", func(o metav1.ListOptions) (string, error) {
			list, err := apps.ReplicaSets("").List(ctx, o)
			if err != nil {
				return "", err
			}
			for i := range list.Items {
				it := &list.Items[i]
				if it.Status.Replicas == 0 && (it.Spec.Replicas == nil || *it.Spec.Replicas == 0) {
					continue
				}
				add("ReplicaSet", "apps/v1", &it.ObjectMeta, &it.Spec.Template)
			}
			return list.Continue, nil
		}},
		{"statefulsets", func(o metav1.ListOptions) (string, error) {
			list, err := apps.StatefulSets("").List(ctx, o)
			if err != nil {
				return "", err
			}
			for i := range list.Items {
				it := &list.Items[i]
				add("StatefulSet", "apps/v1", &it.ObjectMeta, &it.Spec.Template)
			}
			return list.Continue, nil
		}},
		{"daemonsets", func(o metav1.ListOptions) (string, error) {
			list, err := apps.DaemonSets("").List(ctx, o)
			if err != nil {
				return "", err
			}
			for i := range list.Items {
				it := &list.Items[i]
				add("DaemonSet", "apps/v1", &it.ObjectMeta, &it.Spec.Template)
			}
			return list.Continue, nil
		}},
		{"jobs", func(o metav1.ListOptions) (string, error) {
			list, err := batch.Jobs("").List(ctx, o)
			if err != nil {
				return "", err
			}
			for i := range list.Items {
				it := &list.Items[i]
				add("Job", "batch/v1", &it.ObjectMeta, &it.Spec.Template)
			}
			return list.Continue, nil
		}},
		{"cronjobs", func(o metav1.ListOptions) (string, error) {
			list, err := batch.CronJobs("").List(ctx, o)
			if err != nil {
				return "", err
			}
			for i := range list.Items {
				it := &list.Items[i]
				add("CronJob", "batch/v1", &it.ObjectMeta, &it.Spec.JobTemplate.Spec.Template)
			}
			return list.Continue, nil
		}},
		{"replicationcontrollers", func(o metav1.ListOptions) (string, error) {
			list, err := core.ReplicationControllers("").List(ctx, o)
			if err != nil {
				return "", err
			}
			for i := range list.Items {
				it := &list.Items[i]
				add("ReplicationController", "v1", &it.ObjectMeta, it.Spec.Template)
			}
			return list.Continue, nil
		}},
	}
	for _, s := range steps {
		if err := l.pages(ctx, s.what, s.list); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// EachPod calls fn for every running pod of namespace ("": all), one page
// in memory at a time; pods that are done (Succeeded, Failed) or being
// deleted are left out. fn must not keep the pod.
func (l *Lister) EachPod(ctx context.Context, namespace string, fn func(*corev1.Pod)) error {
	return l.pages(ctx, "pods", func(o metav1.ListOptions) (string, error) {
		list, err := l.Client.CoreV1().Pods(namespace).List(ctx, o)
		if err != nil {
			return "", err
		}
		for i := range list.Items {
			p := &list.Items[i]
			if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				continue
			}
			fn(p)
		}
		return list.Continue, nil
	})
}
