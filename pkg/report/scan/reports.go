package scan

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"

	"github.com/poddns/poddns/pkg/report"
)

// Detect returns the report API the cluster serves, openreports.io first,
// or nil when it serves neither.
func Detect(d discovery.DiscoveryInterface) (*report.ReportFormat, error) {
	for _, f := range []report.ReportFormat{report.OpenReports, report.WGPolicy} {
		rl, err := d.ServerResourcesForGroupVersion(f.APIVersion())
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("discover %s: %w", f.APIVersion(), err)
		}
		for _, r := range rl.APIResources {
			if r.Name == f.Resource && r.Namespaced {
				return &f, nil
			}
		}
	}
	return nil, nil
}

// existing are poddns's reports in the cluster: by namespace, the report
// names with their hash.
type existing map[string]map[string]string

// listReports lists poddns's reports (the label LabelManagedBy), paged.
func (l *Lister) listReports(ctx context.Context, dyn dynamic.Interface, f report.ReportFormat) (existing, error) {
	res := dyn.Resource(gvr(f))
	out := existing{}
	err := l.pages(ctx, f.Resource, func(o metav1.ListOptions) (string, error) {
		o.LabelSelector = report.LabelManagedBy + "=" + report.Source
		list, err := res.Namespace("").List(ctx, o)
		if err != nil {
			return "", err
		}
		for _, it := range list.Items {
			if !strings.HasPrefix(it.GetName(), report.ReportNamePrefix) {
				continue
			}
			if out[it.GetNamespace()] == nil {
				out[it.GetNamespace()] = map[string]string{}
			}
			out[it.GetNamespace()][it.GetName()] = it.GetAnnotations()[report.AnnotationHash]
		}
		return list.GetContinue(), nil
	})
	return out, err
}

func gvr(f report.ReportFormat) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: f.Group, Version: f.Version, Resource: f.Resource}
}

// writer writes the reports of one namespace: each report created or
// replaced (server-side apply, poddns's field manager owning every field)
// when its hash differs from the one in the cluster and left alone when it
// does not; then the ones beyond deleted (finish).
type writer struct {
	res      dynamic.ResourceInterface
	kind     string
	have     map[string]string
	written  int
	requests int
	errs     []error
}

func newWriter(dyn dynamic.Interface, f report.ReportFormat, namespace string, have map[string]string) *writer {
	return &writer{res: dyn.Resource(gvr(f)).Namespace(namespace), kind: f.Kind, have: have}
}

func (w *writer) write(ctx context.Context, d report.Doc) error {
	w.written++
	if hash, ok := w.have[d.Name]; ok && hash == d.Hash {
		return nil
	}
	w.requests++
	force := true
	if _, err := w.res.Patch(ctx, d.Name, types.ApplyPatchType, d.JSON, metav1.PatchOptions{FieldManager: report.Source, Force: &force}); err != nil {
		w.errs = append(w.errs, fmt.Errorf("write %s %s: %w", w.kind, d.Name, err))
	}
	return ctx.Err()
}

// finish deletes the reports beyond the ones written.
func (w *writer) finish(ctx context.Context) error {
	var extra []string
	for name := range w.have {
		if idx, err := strconv.Atoi(strings.TrimPrefix(name, report.ReportNamePrefix)); err != nil || idx >= w.written {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	for _, name := range extra {
		w.requests++
		if err := w.res.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			w.errs = append(w.errs, fmt.Errorf("delete %s %s: %w", w.kind, name, err))
		}
	}
	return errors.Join(w.errs...)
}
