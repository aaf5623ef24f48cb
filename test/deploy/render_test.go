package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	certmanagerv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/poddns/poddns/internal/testenv"
)

// scheme decodes every kind deploy/ may hold: the built-in types,
// cert-manager's, and CustomResourceDefinitions (the optional PolicyReport
// CRD of deploy/components/policyreport-crd).
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(certmanagerv1.AddToScheme(s))
	utilruntime.Must(apiextensionsv1.AddToScheme(s))
	return s
}()

// strictDecoder refuses unknown and duplicate fields, as the API server's
// strict field validation (kubectl's default) does.
var strictDecoder = serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()

// object is one rendered object, typed and as the unstructured form that is
// applied.
type object struct {
	typed runtime.Object
	u     *unstructured.Unstructured
}

func (o object) String() string {
	return fmt.Sprintf("%s %s", o.u.GetKind(), key(o.u.GetNamespace(), o.u.GetName()))
}

func key(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

// rendering is one kustomization rendered and decoded.
type rendering struct {
	name, dir string
	objects   []object
}

// target is a kustomization of deploy/ to test.
type target struct{ name, dir string }

// targets returns deploy/base and every overlay under deploy/overlays, so a
// new overlay is tested without editing this file.
func targets(t *testing.T) []target {
	t.Helper()
	root := testenv.Root(t)
	deploy := filepath.Join(root, "deploy")
	ts := []target{{"base", filepath.Join(deploy, "base")}}
	entries, err := os.ReadDir(filepath.Join(deploy, "overlays"))
	if err != nil {
		t.Fatalf("deploy/overlays: %v", err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(deploy, "overlays", e.Name())
		if _, err := os.Stat(filepath.Join(dir, "kustomization.yaml")); err != nil {
			t.Errorf("deploy/overlays/%s has no kustomization.yaml", e.Name())
			continue
		}
		ts = append(ts, target{e.Name(), dir})
	}
	sort.Slice(ts[1:], func(i, j int) bool { return ts[1+i].name < ts[1+j].name })
	return ts
}

// render runs kustomize (the Go API, as `make manifests` does) and decodes
// every object strictly into its type.
func render(t *testing.T, tg target) *rendering {
	t.Helper()
	// As kubectl apply -k and hack/manifests: kustomize's legacy order.
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionUnspecified
	m, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), tg.dir)
	if err != nil {
		t.Fatalf("kustomize %s: %v", tg.dir, err)
	}
	r := &rendering{name: tg.name, dir: tg.dir}
	for _, res := range m.Resources() {
		y, err := res.AsYAML()
		if err != nil {
			t.Fatalf("%s: %s: YAML: %v", tg.name, res.CurId(), err)
		}
		typed, gvk, err := strictDecoder.Decode(y, nil, nil)
		if err != nil {
			t.Errorf("%s: %s does not decode strictly into a known type: %v", tg.name, res.CurId(), err)
			continue
		}
		if _, ok := typed.(runtime.Unstructured); ok {
			t.Errorf("%s: %s (%s) decoded without a type: register its API group in the test scheme", tg.name, res.CurId(), gvk)
			continue
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(y, &u.Object); err != nil {
			t.Fatalf("%s: %s: %v", tg.name, res.CurId(), err)
		}
		r.objects = append(r.objects, object{typed: typed, u: u})
	}
	if len(r.objects) == 0 {
		t.Fatalf("%s: kustomize rendered no objects", tg.name)
	}
	return r
}

// all returns the rendered objects of type T.
func all[T runtime.Object](r *rendering) []T {
	var out []T
	for _, o := range r.objects {
		if v, ok := o.typed.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// find returns the rendered object of type T with that namespace and name.
func find[T interface {
	runtime.Object
	GetNamespace() string
	GetName() string
}](r *rendering, namespace, name string) (T, bool) {
	for _, v := range all[T](r) {
		if v.GetNamespace() == namespace && v.GetName() == name {
			return v, true
		}
	}
	var zero T
	return zero, false
}

// Shorthands for the kinds the checks look up.
type (
	deployment  = *appsv1.Deployment
	daemonSet   = *appsv1.DaemonSet
	service     = *corev1.Service
	configMap   = *corev1.ConfigMap
	certificate = *certmanagerv1.Certificate
	issuer      = *certmanagerv1.Issuer
	mwc         = *admissionregistrationv1.MutatingWebhookConfiguration
)

// container returns the named container of a rendered Deployment.
func container(r *rendering, namespace, deploy, name string) (*appsv1.Deployment, *corev1.Container, error) {
	d, ok := find[deployment](r, namespace, deploy)
	if !ok {
		return nil, nil, fmt.Errorf("no Deployment %s in the render", key(namespace, deploy))
	}
	for i := range d.Spec.Template.Spec.Containers {
		if c := &d.Spec.Template.Spec.Containers[i]; c.Name == name {
			return d, c, nil
		}
	}
	return d, nil, fmt.Errorf("Deployment %s has no container %q", key(namespace, deploy), name)
}

// configFile returns the key of a rendered ConfigMap that a container reads
// at path, through one of its volume mounts.
func configFile(r *rendering, d *appsv1.Deployment, c *corev1.Container, path string) (string, error) {
	for _, m := range c.VolumeMounts {
		rel, err := filepath.Rel(m.MountPath, path)
		if err != nil || strings.HasPrefix(rel, "..") || rel == "." {
			continue
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name != m.Name {
				continue
			}
			if v.ConfigMap == nil {
				return "", fmt.Errorf("%s is on volume %q, which is not a ConfigMap", path, v.Name)
			}
			cm, ok := find[configMap](r, d.Namespace, v.ConfigMap.Name)
			if !ok {
				return "", fmt.Errorf("%s: ConfigMap %s of volume %q is not in the render", path, key(d.Namespace, v.ConfigMap.Name), v.Name)
			}
			data, ok := cm.Data[rel]
			if !ok {
				return "", fmt.Errorf("%s: ConfigMap %s has no key %q", path, cm.Name, rel)
			}
			return data, nil
		}
	}
	return "", fmt.Errorf("%s is under none of container %q's volume mounts", path, c.Name)
}

// mountFor returns the volume mounted at exactly path.
func mountFor(d *appsv1.Deployment, c *corev1.Container, path string) (*corev1.Volume, error) {
	for _, m := range c.VolumeMounts {
		if filepath.Clean(m.MountPath) != filepath.Clean(path) {
			continue
		}
		for i := range d.Spec.Template.Spec.Volumes {
			if v := &d.Spec.Template.Spec.Volumes[i]; v.Name == m.Name {
				return v, nil
			}
		}
		return nil, fmt.Errorf("mount %s names volume %q, which the pod does not have", path, m.Name)
	}
	return nil, fmt.Errorf("container %q mounts nothing at %s", c.Name, path)
}

// containerPort resolves a probe's or a Service's port (a number or a name)
// to a port of the container.
func containerPort(c *corev1.Container, port string, protocol corev1.Protocol) (*corev1.ContainerPort, error) {
	if protocol == "" {
		protocol = corev1.ProtocolTCP
	}
	for i := range c.Ports {
		p := &c.Ports[i]
		pp := p.Protocol
		if pp == "" {
			pp = corev1.ProtocolTCP
		}
		if (p.Name == port || fmt.Sprint(p.ContainerPort) == port) && pp == protocol {
			return p, nil
		}
	}
	return nil, fmt.Errorf("container %q has no %s port %q", c.Name, protocol, port)
}

// gvkOf returns the object's group, version and kind.
func gvkOf(o object) schema.GroupVersionKind { return o.u.GroupVersionKind() }
