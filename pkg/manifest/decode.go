package manifest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// deserializer decodes any kind of the client-go scheme into its typed Go
// object, strictly, without conversion or defaulting.
var deserializer = sync.OnceValue(func() runtime.Decoder {
	return serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
})

// MaxInputSize is the most Decode reads of one input (a file or stdin).
const MaxInputSize = 256 << 20

// maxInput is MaxInputSize, lowered by tests.
var maxInput int64 = MaxInputSize

// Decode reads the manifests in r, YAML documents or a JSON stream, naming
// them file in locations and errors. The returned error joins a
// *DocumentError for every document that could not be decoded; the Set still
// holds everything else. Only a read error of r stops the decoding.
func Decode(r io.Reader, file string) (*Set, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxInput+1))
	if err != nil {
		return &Set{}, fmt.Errorf("read %s: %w", file, err)
	}
	if int64(len(data)) > maxInput {
		return &Set{}, fmt.Errorf("read %s: larger than %d bytes, the most one manifest input may hold (split it, e.g. one file per namespace)", file, maxInput)
	}
	// YAML and JSON manifests are text: a NUL byte means a binary file (or a
	// file of zeros), which the YAML reader would otherwise take for an
	// empty stream.
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return &Set{}, fmt.Errorf("read %s: NUL byte at offset %d: not a YAML or JSON manifest", file, i)
	}
	d := decoder{set: &Set{}}
	if isJSON(data) {
		d.decodeJSONStream(bytes.NewReader(data), file, nil)
	} else {
		d.decodeYAMLStream(bufio.NewReader(bytes.NewReader(data)), file, nil)
	}
	return d.set, errors.Join(d.errs...)
}

type decoder struct {
	set  *Set
	errs []error
	// each, when set, is given the set after every document (Stream).
	each func(*Set)
}

func (d *decoder) fail(loc Location, err error) {
	d.errs = append(d.errs, &DocumentError{Location: loc, Err: err})
}

func (d *decoder) note(loc Location, format string, args ...any) {
	d.set.Notes = append(d.set.Notes, Note{Location: loc, Message: fmt.Sprintf(format, args...)})
}

// isJSON tells a JSON stream from YAML as kubectl does: by an opening brace.
func isJSON(data []byte) bool {
	return bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("{"))
}

func (d *decoder) decodeJSONStream(r io.Reader, file string, g *guard) {
	lim := &docLimit{r: r, limit: maxDocument + 1}
	dec := json.NewDecoder(lim)
	for n := 1; ; n++ {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) || err != nil && g.failed() {
			return
		}
		loc := Location{File: file, Document: n}
		if errors.Is(err, errDocumentTooLarge) {
			d.fail(loc, fmt.Errorf("%w (the rest of the file is not read)", documentTooLarge()))
			return
		}
		if err != nil {
			// A broken JSON stream cannot be resynchronised.
			d.fail(loc, fmt.Errorf("invalid JSON (the rest of the file is not read): %w", err))
			return
		}
		d.decodeObject(raw, loc)
		d.flush()
		lim.limit = max(lim.limit, dec.InputOffset()+maxDocument+1)
	}
}

func (d *decoder) decodeYAMLStream(r *bufio.Reader, file string, g *guard) {
	y := yamlDocuments{r: r}
	n := 0 // documents with content so far
	for {
		doc, err := y.next()
		if errors.Is(err, io.EOF) || err != nil && g.failed() {
			return
		}
		var sep separatorError
		switch {
		case errors.Is(err, errDocumentTooLarge):
			n++
			d.fail(Location{File: file, Document: n}, documentTooLarge())
			d.flush()
			continue
		case errors.As(err, &sep):
			// A bad separator: the document it ends is dropped and the
			// reading goes on after it.
			n++
			d.fail(Location{File: file, Document: n}, err)
			continue
		case err != nil:
			d.errs = append(d.errs, fmt.Errorf("read %s: %w", file, err))
			return
		}
		j, err := yaml.YAMLToJSONStrict(doc)
		if err == nil && isNull(j) {
			continue // an empty or comment-only document is not counted
		}
		n++
		loc := Location{File: file, Document: n}
		if err != nil {
			d.fail(loc, err)
			continue
		}
		d.decodeObject(j, loc)
		d.flush()
	}
}

func isNull(j []byte) bool {
	j = bytes.TrimSpace(j)
	return len(j) == 0 || string(j) == "null"
}

// header is what every Kubernetes object has, read before typed decoding to
// name what was skipped.
type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
}

// decodeObject decodes one JSON object and files it.
func (d *decoder) decodeObject(j []byte, loc Location) {
	if !bytes.HasPrefix(bytes.TrimSpace(j), []byte("{")) {
		d.fail(loc, errors.New("not an object: a manifest is a mapping with apiVersion, kind and metadata"))
		return
	}
	obj, _, err := deserializer().Decode(j, nil, nil)
	if err != nil {
		if runtime.IsNotRegisteredError(err) {
			var h header
			_ = json.Unmarshal(j, &h) // best effort: the decoder has already read it as an object
			d.note(loc, "skipped %s %s %q: not a kind poddns reads", h.APIVersion, h.Kind, h.Metadata.Name)
			return
		}
		d.fail(loc, err)
		return
	}
	d.add(obj, loc)
}

// add files a decoded object: a pod-bearing object as an Item, a Namespace,
// the items of a list, or a note for anything else.
func (d *decoder) add(obj runtime.Object, loc Location) {
	if item, ok, note := podItem(obj); note != "" {
		d.note(loc, "%s", note)
		return
	} else if ok {
		item.Location = loc
		d.set.Pods = append(d.set.Pods, item)
		return
	}
	switch o := obj.(type) {
	case *corev1.Namespace:
		d.set.Namespaces = append(d.set.Namespaces, Namespace{Location: loc, Namespace: o.DeepCopy()})
		return
	case *corev1.List:
		for i, raw := range o.Items {
			itemLoc := loc
			itemLoc.Path = joinPath(loc.Path, fmt.Sprintf("items[%d]", i))
			if isNull(raw.Raw) {
				d.fail(itemLoc, errors.New("empty list item"))
				continue
			}
			d.decodeObject(raw.Raw, itemLoc)
		}
		return
	}
	if meta.IsListType(obj) {
		d.addTypedList(obj, loc)
		return
	}
	gvk := objectKind(obj)
	d.note(loc, "skipped %s %s %q: not a kind poddns reads", gvk.GroupVersion().String(), gvk.Kind, objectName(obj))
}

// addTypedList files the items of a typed list (PodList, DeploymentList, ...),
// whose items carry no apiVersion and kind of their own. A list of a kind that
// carries no pod is one note, not one per item.
func (d *decoder) addTypedList(list runtime.Object, loc Location) {
	gvk := objectKind(list)
	items, err := meta.ExtractList(list)
	if err != nil {
		d.fail(loc, fmt.Errorf("read items of %s: %w", gvk.Kind, err))
		return
	}
	itemKind := strings.TrimSuffix(gvk.Kind, "List")
	if _, ok := podKinds[gvk.GroupVersion().WithKind(itemKind).String()]; !ok && itemKind != "Namespace" {
		d.note(loc, "skipped %s %s with %d items: not a kind poddns reads", gvk.GroupVersion().String(), gvk.Kind, len(items))
		return
	}
	for i, item := range items {
		itemLoc := loc
		itemLoc.Path = joinPath(loc.Path, fmt.Sprintf("items[%d]", i))
		d.add(item, itemLoc)
	}
}

func joinPath(parent, child string) string {
	if parent == "" {
		return child
	}
	return parent + "." + child
}

// objectKind is the group, version and kind of obj's Go type in the scheme.
func objectKind(obj runtime.Object) schema.GroupVersionKind {
	if gvks, _, err := scheme.Scheme.ObjectKinds(obj); err == nil && len(gvks) > 0 {
		return gvks[0]
	}
	return obj.GetObjectKind().GroupVersionKind()
}

func objectName(obj runtime.Object) string {
	if m, err := meta.Accessor(obj); err == nil {
		return m.GetName()
	}
	return ""
}

// podKinds are the kinds that carry a pod, keyed by GroupVersionKind.String().
var podKinds = map[string]bool{
	corev1.SchemeGroupVersion.WithKind("Pod").String():                   true,
	corev1.SchemeGroupVersion.WithKind("PodTemplate").String():           true,
	corev1.SchemeGroupVersion.WithKind("ReplicationController").String(): true,
	appsv1.SchemeGroupVersion.WithKind("Deployment").String():            true,
	appsv1.SchemeGroupVersion.WithKind("StatefulSet").String():           true,
	appsv1.SchemeGroupVersion.WithKind("DaemonSet").String():             true,
	appsv1.SchemeGroupVersion.WithKind("ReplicaSet").String():            true,
	batchv1.SchemeGroupVersion.WithKind("Job").String():                  true,
	batchv1.SchemeGroupVersion.WithKind("CronJob").String():              true,
}

// podItem returns the Item of a pod-bearing object (ok), or a note when the
// object is of such a kind but holds no pod template; neither for any other
// object. The Location is left to the caller.
func podItem(obj runtime.Object) (item Item, ok bool, note string) {
	templatePath := field.NewPath("spec", "template")
	var (
		om       *metav1.ObjectMeta
		template *corev1.PodTemplateSpec
		path     *field.Path
		kind     string
		version  = appsv1.SchemeGroupVersion.String()
	)
	switch o := obj.(type) {
	case *corev1.Pod:
		pod := o.DeepCopy()
		pod.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
		if pod.Namespace == "" {
			pod.Namespace = DefaultNamespace
		}
		return Item{
			APIVersion: "v1", Kind: "Pod",
			Name: pod.Name, Namespace: pod.Namespace,
			SpecPath: field.NewPath("spec"),
			Pod:      pod,
			Owners:   pod.OwnerReferences,
		}, true, ""
	case *corev1.PodTemplate:
		om, template, path, kind, version = &o.ObjectMeta, &o.Template, field.NewPath("template"), "PodTemplate", "v1"
	case *corev1.ReplicationController:
		om, template, path, kind, version = &o.ObjectMeta, o.Spec.Template, templatePath, "ReplicationController", "v1"
	case *appsv1.Deployment:
		om, template, path, kind = &o.ObjectMeta, &o.Spec.Template, templatePath, "Deployment"
	case *appsv1.StatefulSet:
		om, template, path, kind = &o.ObjectMeta, &o.Spec.Template, templatePath, "StatefulSet"
	case *appsv1.DaemonSet:
		om, template, path, kind = &o.ObjectMeta, &o.Spec.Template, templatePath, "DaemonSet"
	case *appsv1.ReplicaSet:
		om, template, path, kind = &o.ObjectMeta, &o.Spec.Template, templatePath, "ReplicaSet"
	case *batchv1.Job:
		om, template, path, kind, version = &o.ObjectMeta, &o.Spec.Template, templatePath, "Job", batchv1.SchemeGroupVersion.String()
	case *batchv1.CronJob:
		om, template, path, kind, version = &o.ObjectMeta, &o.Spec.JobTemplate.Spec.Template,
			field.NewPath("spec", "jobTemplate", "spec", "template"), "CronJob", batchv1.SchemeGroupVersion.String()
	default:
		return Item{}, false, ""
	}
	if template == nil {
		return Item{}, false, fmt.Sprintf("skipped %s %s %q: no pod template (%s)", version, kind, om.Name, path)
	}
	namespace := om.Namespace
	if namespace == "" {
		namespace = DefaultNamespace
	}
	t := template.DeepCopy()
	pod := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        om.Name,
			Namespace:   namespace,
			UID:         om.UID,
			Labels:      t.Labels,
			Annotations: t.Annotations,
		},
		Spec: t.Spec,
	}
	return Item{
		APIVersion: version, Kind: kind,
		Name: om.Name, Namespace: namespace,
		SpecPath: path.Child("spec"),
		Pod:      pod,
		Owners:   slices.Clone(om.OwnerReferences),
	}, true, ""
}
