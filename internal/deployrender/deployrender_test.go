package deployrender

import (
	"path/filepath"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/poddns/poddns/internal/testenv"
)

func TestImageName(t *testing.T) {
	for ref, want := range map[string]string{
		"ghcr.io/poddns/dnsd:v0.1.0":             "ghcr.io/poddns/dnsd",
		"localhost:5000/dnsd":                    "localhost:5000/dnsd",
		"localhost:5000/dnsd:v1":                 "localhost:5000/dnsd",
		"registry.k8s.io/pause@sha256:0123abcd":  "registry.k8s.io/pause",
		"registry.k8s.io/pause:3.10@sha256:0123": "registry.k8s.io/pause",
		"busybox":                                "busybox",
	} {
		if got := imageName(ref); got != want {
			t.Errorf("imageName(%q) = %q, want %q", ref, got, want)
		}
	}
}

// TestRenderSetsOnlyImages renders deploy/base twice, as it is and with the
// two programs' images mapped: the mapped containers get the new reference
// and imagePullPolicy Never, and nothing else of any object differs.
func TestRenderSetsOnlyImages(t *testing.T) {
	root := testenv.Root(t)
	dir := filepath.Join(root, "deploy", "base")
	plain, err := Render(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	images := map[string]string{"ghcr.io/poddns/webhook": "poddns.test/webhook:t1", "ghcr.io/poddns/dnsd": "poddns.test/dnsd:t1"}
	got, err := Render(dir, images)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(plain) || len(got) < 20 {
		t.Fatalf("%d objects with images set, %d without", len(got), len(plain))
	}
	changed := map[string]bool{}
	for i, u := range got {
		want := plain[i].DeepCopy()
		cs, found, _ := unstructured.NestedSlice(want.Object, "spec", "template", "spec", "containers")
		for _, c := range cs {
			c := c.(map[string]any)
			if ref, ok := images[imageName(c["image"].(string))]; ok && found {
				c["image"], c["imagePullPolicy"] = ref, "Never"
				changed[u.GetName()] = true
			}
		}
		if found {
			if err := unstructured.SetNestedSlice(want.Object, cs, "spec", "template", "spec", "containers"); err != nil {
				t.Fatal(err)
			}
		}
		if !reflect.DeepEqual(u.Object, want.Object) {
			t.Errorf("%s %s differs beyond its images:\n got %v\nwant %v", u.GetKind(), u.GetName(), u.Object, want.Object)
		}
	}
	for _, d := range []string{"poddns-webhook", "poddns-dnsd"} {
		if !changed[d] {
			t.Errorf("Deployment %s: no image set", d)
		}
	}
}
