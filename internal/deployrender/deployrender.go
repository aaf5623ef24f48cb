// Package deployrender renders a kustomization of deploy/ as `kubectl apply
// -k` does (kustomize's Go API, its legacy object order) into objects, and
// can point the rendered pods at other images.
//
// It exists so that `make manifests` and the one-node cluster test render
// deploy/ the same way, and the test changes nothing of it but image
// references: the images written by `make images` are imported into the
// node's containerd, which has no registry to pull from.
package deployrender

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Options are kustomize's as `kubectl apply -k` and `kustomize build` use
// them: objects in kustomize's legacy order (Namespace first, webhook
// configurations last) unless a kustomization sets sortOptions.
func Options() *krusty.Options {
	o := krusty.MakeDefaultOptions()
	o.Reorder = krusty.ReorderOptionUnspecified
	return o
}

// Kustomize renders the kustomization in dir.
func Kustomize(dir string) (resmap.ResMap, error) {
	m, err := krusty.MakeKustomizer(Options()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", dir, err)
	}
	return m, nil
}

// Render renders the kustomization in dir into objects, in order. Every
// container (init containers included) of a pod template or Pod whose image
// is named in images (by its name without tag or digest) gets the mapped
// reference and imagePullPolicy Never; nothing else changes.
func Render(dir string, images map[string]string) ([]*unstructured.Unstructured, error) {
	m, err := Kustomize(dir)
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for _, r := range m.Resources() {
		// Through JSON, so numbers are int64 as the API machinery's
		// unstructured helpers want.
		j, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("kustomize %s: %s: %w", dir, r.CurId(), err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(j); err != nil {
			return nil, fmt.Errorf("kustomize %s: %s: %w", dir, r.CurId(), err)
		}
		if err := SetImages(u, images); err != nil {
			return nil, fmt.Errorf("%s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
		out = append(out, u)
	}
	return out, nil
}

// podSpecPaths are where a pod spec sits in the kinds that hold one.
var podSpecPaths = map[string][]string{
	"Pod":         {"spec"},
	"Deployment":  {"spec", "template", "spec"},
	"DaemonSet":   {"spec", "template", "spec"},
	"StatefulSet": {"spec", "template", "spec"},
	"ReplicaSet":  {"spec", "template", "spec"},
	"Job":         {"spec", "template", "spec"},
	"CronJob":     {"spec", "jobTemplate", "spec", "template", "spec"},
}

// SetImages points u's containers at images (see Render).
func SetImages(u *unstructured.Unstructured, images map[string]string) error {
	path, ok := podSpecPaths[u.GetKind()]
	if !ok || len(images) == 0 {
		return nil
	}
	for _, field := range []string{"initContainers", "containers"} {
		p := append(append([]string(nil), path...), field)
		cs, found, err := unstructured.NestedSlice(u.Object, p...)
		if err != nil {
			return err
		}
		if !found {
			continue
		}
		for _, c := range cs {
			c, ok := c.(map[string]any)
			if !ok {
				continue
			}
			image, _ := c["image"].(string)
			if ref, ok := images[imageName(image)]; ok {
				c["image"] = ref
				c["imagePullPolicy"] = "Never"
			}
		}
		if err := unstructured.SetNestedSlice(u.Object, cs, p...); err != nil {
			return err
		}
	}
	return nil
}

// imageName is an image reference without its tag and digest.
func imageName(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return ref
}
