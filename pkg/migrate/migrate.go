// Package migrate translates a cluster's CoreDNS configuration — its
// Corefile, the coredns-custom extensions it imports (AKS and k3s style
// `*.override` and `*.server` keys) and an old kube-dns ConfigMap's
// stubDomains and upstreamNameservers — into a DNSDConfig, for
// `dnsd migrate`.
//
// A translation is faithful or it is reported: every directive either maps
// onto a field of dnsd's configuration with CoreDNS's meaning (defaults
// included: a Corefile without `cache` gives a config without a cache), or
// is listed in Result.Skipped with the reason, never approximated silently.
// Differences that do not change any answer (where /ready is served, metric
// names) are listed in Result.Notes. The output is checked to load and
// validate as dnsd would load it.
package migrate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/poddns/poddns/pkg/corefile"
	"github.com/poddns/poddns/pkg/nodeprofile"
	"github.com/poddns/poddns/pkg/serve/daemon"
)

// Input names what to translate.
type Input struct {
	// Corefile is the path of the Corefile. Required.
	Corefile string
	// KubeDNSConfigMap is the path of a kube-dns ConfigMap (YAML or JSON)
	// whose stubDomains and upstreamNameservers are added.
	KubeDNSConfigMap string
	// Custom is the coredns-custom extension: a ConfigMap file whose data
	// keys are file names, or a directory of such files. Imports whose
	// directory is named custom (import custom/*.server, import
	// /etc/coredns/custom/*.override) read it instead of the file system.
	Custom string
	// NodeProfile is the node profile file (kind NodeProfile) that lets
	// autopath be translated into search completion.
	NodeProfile string
	// Getenv reads the environment for {$VAR} (default os.Getenv).
	Getenv func(string) string
}

// Item is one directive of the input and what became of it.
type Item struct {
	// Pos is where the directive is (file:line; line 0 for a ConfigMap
	// key).
	Pos corefile.Pos
	// Directive is its name (kubernetes, forward, ...; stubDomains and
	// upstreamNameservers for a kube-dns ConfigMap), with the sub-directive
	// after a dot when only that part is concerned (forward.except).
	Directive string
	// Text is the line as written.
	Text string
	// Reason says why it was not translated (Skipped) or what differs
	// (Notes); empty in Translated.
	Reason string
}

func (i Item) String() string {
	s := fmt.Sprintf("%s: %s", i.Pos, i.Text)
	if i.Pos.Line == 0 {
		s = fmt.Sprintf("%s: %s", i.Pos.File, i.Text)
	}
	if i.Reason != "" {
		s += ": " + i.Reason
	}
	return s
}

// Result is a translation.
type Result struct {
	// Config is the translated configuration (defaults for what the input
	// does not say).
	Config daemon.Config
	// YAML is Config as a DNSDConfig file, with only the fields that differ
	// from dnsd's defaults.
	YAML []byte
	// Translated are the directives carried over.
	Translated []Item
	// Skipped are the directives (or parts) not translated, with the
	// reason.
	Skipped []Item
	// Notes are translated directives that behave differently in a way
	// worth knowing, with what differs.
	Notes []Item
}

// Report is what dnsd migrate writes on stderr: a line per directive not
// translated ("not translated: file:line: directive: reason"), then a line
// per note ("note: ...").
func (r *Result) Report() string {
	var b strings.Builder
	for _, s := range r.Skipped {
		fmt.Fprintf(&b, "not translated: %s\n", s)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	return b.String()
}

// Complete reports whether everything was translated.
func (r *Result) Complete() bool { return len(r.Skipped) == 0 }

// Translate reads the inputs and translates them. An error means an input
// could not be read or parsed (with file and line); everything that could
// be read but not translated is in Result.Skipped.
func Translate(in Input) (*Result, error) {
	if in.Corefile == "" {
		return nil, errors.New("no Corefile given")
	}
	resolve := corefile.FSResolver
	if in.Custom != "" {
		custom, err := readCustom(in.Custom)
		if err != nil {
			return nil, err
		}
		resolve = custom.resolver
	}
	return translate(in, resolve)
}

// translate is Translate with the resolver of imports given.
func translate(in Input, resolve corefile.Resolver) (*Result, error) {
	f, err := corefile.ParseFile(in.Corefile, corefile.Options{Resolve: resolve, Getenv: in.Getenv})
	if err != nil {
		return nil, err
	}
	if in.NodeProfile != "" {
		// dnsd would refuse to start with a node profile it cannot read.
		if _, err := nodeprofile.ReadFile(in.NodeProfile); err != nil {
			return nil, err
		}
	}
	var kd *kubeDNS
	if in.KubeDNSConfigMap != "" {
		if kd, err = readKubeDNS(in.KubeDNSConfigMap); err != nil {
			return nil, err
		}
	}
	t := &translator{in: in, res: &Result{Config: daemon.Defaults()}}
	t.file(f)
	if kd != nil {
		t.kubeDNS(kd)
	}
	t.finish()
	if err := t.res.Config.Validate(); err != nil {
		return nil, fmt.Errorf("the translated configuration does not validate (a value of the input is out of dnsd's range?): %w", err)
	}
	y, err := render(t.res.Config, in)
	if err != nil {
		return nil, err
	}
	t.res.YAML = y
	return t.res, nil
}

// render writes c as a DNSDConfig with the fields that differ from the
// defaults, apiVersion and kind first, and checks that it loads back to c.
func render(c daemon.Config, in Input) ([]byte, error) {
	full, err := toMap(c)
	if err != nil {
		return nil, err
	}
	def, err := toMap(daemon.Defaults())
	if err != nil {
		return nil, err
	}
	pruned, _ := prune(full, def).(map[string]any)
	if pruned == nil {
		pruned = map[string]any{}
	}
	delete(pruned, "apiVersion")
	delete(pruned, "kind")
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Translated by dnsd migrate from %s", in.Corefile)
	for _, x := range []struct{ flag, v string }{{"kube-dns-configmap", in.KubeDNSConfigMap}, {"custom", in.Custom}, {"node-profile", in.NodeProfile}} {
		if x.v != "" {
			fmt.Fprintf(&b, " --%s %s", x.flag, x.v)
		}
	}
	fmt.Fprintf(&b, "\napiVersion: %s\nkind: %s\n", daemon.Identity.APIVersion, daemon.Identity.Kind)
	if len(pruned) > 0 {
		body, err := yaml.Marshal(pruned)
		if err != nil {
			return nil, err
		}
		b.Write(body)
	}
	back, err := daemon.ParseConfig(b.Bytes(), "migrated config")
	if err != nil {
		return nil, fmt.Errorf("the migrated config does not load: %w", err)
	}
	if !reflect.DeepEqual(normalize(back), normalize(c)) {
		return nil, errors.New("the migrated config does not load back to the translation (a bug in dnsd migrate)")
	}
	return b.Bytes(), nil
}

// normalize makes empty and nil slices compare equal through JSON.
func normalize(c daemon.Config) map[string]any {
	m, _ := toMap(c)
	return m
}

func toMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}

// prune drops from v what equals def, recursively through objects; lists
// are kept or dropped whole. It returns nil when nothing differs.
func prune(v, def any) any {
	vm, ok1 := v.(map[string]any)
	dm, ok2 := def.(map[string]any)
	if !ok1 || !ok2 {
		if reflect.DeepEqual(v, def) {
			return nil
		}
		return v
	}
	out := map[string]any{}
	for k, x := range vm {
		if p := prune(x, dm[k]); p != nil {
			out[k] = p
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// custom is a coredns-custom extension: file name -> content.
type custom struct {
	files map[string][]byte
	name  string
}

// readCustom reads a ConfigMap file or a directory.
func readCustom(path string) (*custom, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	c := &custom{files: map[string][]byte{}, name: path}
	if fi.IsDir() {
		es, err := os.ReadDir(path)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			// Skip kubelet's ..data and dot entries of a ConfigMap mount.
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			p := filepath.Join(path, e.Name())
			if st, err := os.Stat(p); err != nil || st.IsDir() {
				continue
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			c.files[e.Name()] = b
		}
		return c, nil
	}
	data, err := readConfigMapData(path)
	if err != nil {
		return nil, err
	}
	for k, v := range data {
		c.files[k] = []byte(v)
	}
	return c, nil
}

// resolver reads imports of a directory named custom from c; other imports
// from the file system.
func (c *custom) resolver(pattern, dir string) ([]corefile.Source, error) {
	if filepath.Base(filepath.Dir(pattern)) != "custom" {
		return corefile.FSResolver(pattern, dir)
	}
	base := filepath.Base(pattern)
	var keys []string
	for k := range c.files {
		ok, err := filepath.Match(base, k)
		if err != nil {
			return nil, err
		}
		if ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []corefile.Source
	for _, k := range keys {
		out = append(out, corefile.Source{Name: c.name + ":" + k, Data: c.files[k]})
	}
	return out, nil
}

// configMap is the part of a ConfigMap read here.
type configMap struct {
	Kind string            `json:"kind"`
	Data map[string]string `json:"data"`
}

func readConfigMapData(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cm configMap
	if err := yaml.Unmarshal(b, &cm); err != nil {
		return nil, fmt.Errorf("%s: not a ConfigMap: %w", path, err)
	}
	if cm.Kind != "ConfigMap" {
		return nil, fmt.Errorf("%s: kind %q: want a ConfigMap", path, cm.Kind)
	}
	return cm.Data, nil
}

// kubeDNS is a kube-dns ConfigMap's configuration.
type kubeDNS struct {
	path        string
	stubs       map[string][]string
	upstreams   []string
	federations string
}

func readKubeDNS(path string) (*kubeDNS, error) {
	data, err := readConfigMapData(path)
	if err != nil {
		return nil, err
	}
	k := &kubeDNS{path: path, federations: data["federations"]}
	if s := data["stubDomains"]; s != "" {
		if err := json.Unmarshal([]byte(s), &k.stubs); err != nil {
			return nil, fmt.Errorf("%s: data.stubDomains: want a JSON object of zone to addresses: %w", path, err)
		}
	}
	if s := data["upstreamNameservers"]; s != "" {
		if err := json.Unmarshal([]byte(s), &k.upstreams); err != nil {
			return nil, fmt.Errorf("%s: data.upstreamNameservers: want a JSON list of addresses: %w", path, err)
		}
	}
	return k, nil
}
