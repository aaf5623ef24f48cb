package scan

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
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

// each lists what page by page with list (a typed client's List) and calls
// fn for every item of every page; items returns a page's items.
func each[L metav1.ListInterface, T any](ctx context.Context, l *Lister, what string,
	list func(context.Context, metav1.ListOptions) (L, error), items func(L) []T, fn func(*T)) error {
	return l.pages(ctx, what, func(o metav1.ListOptions) (string, error) {
		page, err := list(ctx, o)
		if err != nil {
			return "", err
		}
		its := items(page)
		for i := range its {
			fn(&its[i])
		}
		return page.GetContinue(), nil
	})
}

// Namespaces returns every namespace's labels (policy.NamespaceLabels), by
// name.
func (l *Lister) Namespaces(ctx context.Context) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	err := each(ctx, l, "namespaces", l.Client.CoreV1().Namespaces().List,
		func(page *corev1.NamespaceList) []corev1.Namespace { return page.Items },
		func(ns *corev1.Namespace) { out[ns.Name] = policy.NamespaceLabels(ns) })
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
	steps := []func() error{
		func() error {
			return each(ctx, l, "deployments", apps.Deployments("").List,
				func(page *appsv1.DeploymentList) []appsv1.Deployment { return page.Items },
				func(it *appsv1.Deployment) { add("Deployment", "apps/v1", &it.ObjectMeta, &it.Spec.Template) })
		},
		func() error {
			return each(ctx, l, "replicasets", apps.ReplicaSets("").List,
				func(page *appsv1.ReplicaSetList) []appsv1.ReplicaSet { return page.Items },
				func(it *appsv1.ReplicaSet) {
					if it.Status.Replicas == 0 && (it.Spec.Replicas == nil || *it.Spec.Replicas == 0) {
						return
					}
					add("ReplicaSet", "apps/v1", &it.ObjectMeta, &it.Spec.Template)
				})
		},
		func() error {
			return each(ctx, l, "statefulsets", apps.StatefulSets("").List,
				func(page *appsv1.StatefulSetList) []appsv1.StatefulSet { return page.Items },
				func(it *appsv1.StatefulSet) { add("StatefulSet", "apps/v1", &it.ObjectMeta, &it.Spec.Template) })
		},
		func() error {
			return each(ctx, l, "daemonsets", apps.DaemonSets("").List,
				func(page *appsv1.DaemonSetList) []appsv1.DaemonSet { return page.Items },
				func(it *appsv1.DaemonSet) { add("DaemonSet", "apps/v1", &it.ObjectMeta, &it.Spec.Template) })
		},
		func() error {
			return each(ctx, l, "jobs", batch.Jobs("").List,
				func(page *batchv1.JobList) []batchv1.Job { return page.Items },
				func(it *batchv1.Job) { add("Job", "batch/v1", &it.ObjectMeta, &it.Spec.Template) })
		},
		func() error {
			return each(ctx, l, "cronjobs", batch.CronJobs("").List,
				func(page *batchv1.CronJobList) []batchv1.CronJob { return page.Items },
				func(it *batchv1.CronJob) {
					add("CronJob", "batch/v1", &it.ObjectMeta, &it.Spec.JobTemplate.Spec.Template)
				})
		},
		func() error {
			return each(ctx, l, "replicationcontrollers", core.ReplicationControllers("").List,
				func(page *corev1.ReplicationControllerList) []corev1.ReplicationController { return page.Items },
				func(it *corev1.ReplicationController) {
					add("ReplicationController", "v1", &it.ObjectMeta, it.Spec.Template)
				})
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// EachPod calls fn for every running pod of namespace ("": all), one page
// in memory at a time; pods that are done (Succeeded, Failed) or being
// deleted are left out. fn must not keep the pod.
func (l *Lister) EachPod(ctx context.Context, namespace string, fn func(*corev1.Pod)) error {
	return each(ctx, l, "pods", l.Client.CoreV1().Pods(namespace).List,
		func(page *corev1.PodList) []corev1.Pod { return page.Items },
		func(p *corev1.Pod) {
			if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				return
			}
			fn(p)
		})
}
