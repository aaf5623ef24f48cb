package main

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"sigs.k8s.io/yaml"

	"github.com/poddns/poddns/internal/testenv"
)

// stage is what a Dockerfile stage declares that an image config carries.
type stage struct {
	from       string
	user       string
	entrypoint []string
	expose     []string
	copies     [][3]string // --from stage, source, destination
	runs       []string
}

// parseDockerfile reads the instructions images_test compares (FROM ... AS,
// USER, ENTRYPOINT in exec form, EXPOSE, COPY, RUN), joining continuation
// lines. It is no general Dockerfile parser: anything else it does not need
// is ignored, and a form it cannot read is an error.
func parseDockerfile(text string) (map[string]*stage, []string, error) {
	stages := map[string]*stage{}
	var order []string
	var cur *stage
	var logical []string
	var acc string
	for _, line := range strings.Split(text, "\n") {
		trim := strings.TrimSpace(line)
		if acc == "" && (trim == "" || strings.HasPrefix(trim, "#")) {
			continue
		}
		if strings.HasSuffix(trim, "\\") {
			acc += strings.TrimSuffix(trim, "\\") + " "
			continue
		}
		logical = append(logical, acc+trim)
		acc = ""
	}
	for _, l := range logical {
		instr, rest, _ := strings.Cut(l, " ")
		rest = strings.TrimSpace(rest)
		fields := strings.Fields(rest)
		switch strings.ToUpper(instr) {
		case "FROM":
			var name string
			for i, f := range fields {
				if strings.EqualFold(f, "AS") && i+1 < len(fields) {
					name = fields[i+1]
				}
			}
			if name == "" {
				return nil, nil, fmt.Errorf("FROM without AS: %q", l)
			}
			cur = &stage{from: fields[len(fields)-3]}
			stages[name] = cur
			order = append(order, name)
		case "USER", "ENTRYPOINT", "EXPOSE", "COPY", "RUN":
			if cur == nil {
				return nil, nil, fmt.Errorf("%s before FROM", instr)
			}
			switch strings.ToUpper(instr) {
			case "USER":
				cur.user = rest
			case "ENTRYPOINT":
				cur.entrypoint = nil
				if err := json.Unmarshal([]byte(rest), &cur.entrypoint); err != nil {
					return nil, nil, fmt.Errorf("ENTRYPOINT is not in exec form: %q: %w", rest, err)
				}
			case "EXPOSE":
				for _, p := range fields {
					if !strings.Contains(p, "/") {
						p += "/tcp"
					}
					cur.expose = append(cur.expose, p)
				}
			case "COPY":
				var from string
				var args []string
				for _, f := range fields {
					if v, ok := strings.CutPrefix(f, "--from="); ok {
						from = v
					} else {
						args = append(args, f)
					}
				}
				if len(args) < 2 {
					return nil, nil, fmt.Errorf("COPY without a destination: %q", l)
				}
				// Several sources are kept as one string: a final stage's
				// COPY must have exactly one.
				cur.copies = append(cur.copies, [3]string{from, strings.Join(args[:len(args)-1], " "), args[len(args)-1]})
			case "RUN":
				cur.runs = append(cur.runs, rest)
			}
		}
	}
	return stages, order, nil
}

// compareDockerfile lists every difference between the Dockerfile's final
// stages (those no other stage copies from) and the targets.
func compareDockerfile(text string, ts []target) ([]string, error) {
	stages, order, err := parseDockerfile(text)
	if err != nil {
		return nil, err
	}
	copiedFrom := map[string]bool{}
	for _, s := range stages {
		for _, c := range s.copies {
			copiedFrom[c[0]] = true
		}
	}
	var diffs []string
	byName := map[string]target{}
	for _, t := range ts {
		byName[t.name] = t
	}
	var finals []string
	for _, name := range order {
		if copiedFrom[name] {
			continue
		}
		finals = append(finals, name)
		s := stages[name]
		t, ok := byName[name]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("stage %s: no target in hack/images", name))
			continue
		}
		if s.user != t.user {
			diffs = append(diffs, fmt.Sprintf("%s: USER %q, target %q", name, s.user, t.user))
		}
		if !slices.Equal(s.entrypoint, t.entrypoint) {
			diffs = append(diffs, fmt.Sprintf("%s: ENTRYPOINT %q, target %q", name, s.entrypoint, t.entrypoint))
		}
		if !slices.Equal(s.expose, t.exposed) {
			diffs = append(diffs, fmt.Sprintf("%s: EXPOSE %q, target %q", name, s.expose, t.exposed))
		}
		if strings.Contains(s.from, "distroless/static") && !t.caCerts {
			diffs = append(diffs, fmt.Sprintf("%s: FROM %s has CA certificates, the target has none", name, s.from))
		}
		if len(s.copies) != 1 {
			diffs = append(diffs, fmt.Sprintf("%s: %d COPY instructions, the image has one binary", name, len(s.copies)))
			continue
		}
		c := s.copies[0]
		if c[2] != t.binary || path.Base(c[1]) != path.Base(t.pkg) {
			diffs = append(diffs, fmt.Sprintf("%s: COPY %s %s, target builds %s into %s", name, c[1], c[2], t.pkg, t.binary))
		}
		build, ok := stages[c[0]]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("%s: COPY --from=%s: no such stage", name, c[0]))
			continue
		}
		var goBuild string
		for _, r := range build.runs {
			if strings.Contains(r, "go build") {
				goBuild = strings.ReplaceAll(r, `"`, "")
			}
		}
		want := append([]string{"CGO_ENABLED=0", t.pkg, "-o " + path.Dir(c[1]) + "/"}, goBuildFlags...)
		for _, w := range want {
			if !strings.Contains(goBuild, w) {
				diffs = append(diffs, fmt.Sprintf("%s: stage %s's go build lacks %q: %s", name, c[0], w, goBuild))
			}
		}
	}
	for _, t := range ts {
		if t.shipped && !slices.Contains(finals, t.name) {
			diffs = append(diffs, fmt.Sprintf("target %s: no final stage in the Dockerfile", t.name))
		}
	}
	return diffs, nil
}

func repoFile(t *testing.T, name string) string {
	t.Helper()
	root := testenv.Root(t)
	b, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTargetsMatchDockerfile(t *testing.T) {
	real := repoFile(t, "build/Dockerfile")
	tests := []struct {
		name       string
		old, new   string // replaced once in build/Dockerfile
		wantDiffOn string // "" = no difference
	}{
		{name: "as is"},
		{name: "user", old: "USER 65532:65532\nEXPOSE 53", new: "USER 65533:65532\nEXPOSE 53", wantDiffOn: "dnsd: USER"},
		{name: "expose", old: "EXPOSE 9443 8080 8081", new: "EXPOSE 9443 8080", wantDiffOn: "webhook: EXPOSE"},
		{name: "expose proto", old: "53/udp 53/tcp", new: "53 53/tcp", wantDiffOn: "dnsd: EXPOSE"},
		{name: "entrypoint", old: `ENTRYPOINT ["/dnsd"]`, new: `ENTRYPOINT ["/dnsd", "--config", "/c"]`, wantDiffOn: "dnsd: ENTRYPOINT"},
		{name: "copy destination", old: "/out/webhook /webhook", new: "/out/webhook /bin/webhook", wantDiffOn: "webhook: COPY"},
		{name: "build flag", old: "-trimpath ", new: "", wantDiffOn: `lacks "-trimpath"`},
		{name: "cgo", old: "CGO_ENABLED=0 GOOS", new: "CGO_ENABLED=1 GOOS", wantDiffOn: `lacks "CGO_ENABLED=0"`},
		{name: "new stage", old: "# The cluster DNS daemon", new: "FROM scratch AS extra\n# The cluster DNS daemon", wantDiffOn: "stage extra: no target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := real
			if tt.old != "" {
				if !strings.Contains(text, tt.old) {
					t.Fatalf("build/Dockerfile no longer contains %q; update the case", tt.old)
				}
				text = strings.Replace(text, tt.old, tt.new, 1)
			}
			diffs, err := compareDockerfile(text, targets)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantDiffOn == "" {
				if len(diffs) != 0 {
					t.Fatalf("build/Dockerfile and hack/images/targets.go differ:\n%s", strings.Join(diffs, "\n"))
				}
				return
			}
			if !slices.ContainsFunc(diffs, func(d string) bool { return strings.Contains(d, tt.wantDiffOn) }) {
				t.Fatalf("want a difference on %q, got %q", tt.wantDiffOn, diffs)
			}
		})
	}
}

// TestDefaultNamesMatchKustomization: the archives are named as deploy/'s
// pods reference them, so an imported image needs no retagging.
func TestDefaultNamesMatchKustomization(t *testing.T) {
	var k struct {
		Images []struct{ Name, NewName, NewTag string }
	}
	if err := yaml.Unmarshal([]byte(repoFile(t, "deploy/base/kustomization.yaml")), &k); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, i := range k.Images {
		got[i.NewName] = i.NewTag
	}
	for _, name := range []string{"webhook", "dnsd"} {
		ref := defaultRegistry + "/" + name
		if tag, ok := got[ref]; !ok || tag != defaultTag {
			t.Errorf("deploy/base/kustomization.yaml: %s has tag %q, hack/images writes %s:%s", ref, tag, ref, defaultTag)
		}
	}
}

// TestArchive builds the dnsd image as `make images` does and reads it back
// with go-containerregistry from the OCI layout inside the tar. The binary in
// it is the small pause program (built with the same flags): a -trimpath,
// CGO_ENABLED=0 build of dnsd's dependencies takes minutes on a cold cache,
// and the image's config and layout are dnsd's all the same.
func TestArchive(t *testing.T) {
	dnsd, err := selectTargets([]string{"dnsd"})
	if err != nil {
		t.Fatal(err)
	}
	dnsd[0].pkg = "./hack/images/pause"
	const ca = "/etc/ssl/certs/ca-certificates.crt"
	caBytes, err := os.ReadFile(ca)
	testenv.RequireOrSkip(t, fmt.Sprintf("%s (Debian's ca-certificates; run `make deps`): %v", ca, err), err == nil)
	o := testOptions(t)
	o.caFile = ca
	out, err := run(context.Background(), o, dnsd)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].path != filepath.Join(o.out, "dnsd.tar") || out[0].ref != "poddns.test/dnsd:t1" {
		t.Fatalf("run: %+v", out)
	}

	desc, img := readArchive(t, out[0].path)
	if desc.MediaType != types.OCIManifestSchema1 || desc.Digest != out[0].digest {
		t.Errorf("index.json: %s %s, want %s %s", desc.MediaType, desc.Digest, types.OCIManifestSchema1, out[0].digest)
	}
	for _, a := range []string{"io.containerd.image.name", "org.opencontainers.image.ref.name"} {
		if desc.Annotations[a] != "poddns.test/dnsd:t1" {
			t.Errorf("index.json: annotation %s = %q", a, desc.Annotations[a])
		}
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("image does not validate: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("User %q", cf.Config.User)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{"/dnsd"}) || len(cf.Config.Cmd) != 0 {
		t.Errorf("Entrypoint %q Cmd %q", cf.Config.Entrypoint, cf.Config.Cmd)
	}
	wantPorts := map[string]struct{}{"53/udp": {}, "53/tcp": {}, "8080/tcp": {}, "9153/tcp": {}}
	if !reflect.DeepEqual(cf.Config.ExposedPorts, wantPorts) {
		t.Errorf("ExposedPorts %v", cf.Config.ExposedPorts)
	}
	if !slices.Contains(cf.Config.Env, "SSL_CERT_FILE="+ca) {
		t.Errorf("Env %q", cf.Config.Env)
	}

	files, content := layerFiles(t, img)
	check := func(name string, typ byte, mode int64) {
		t.Helper()
		h, ok := files[name]
		if !ok {
			t.Errorf("%s: not in the image", name)
			return
		}
		if h.Typeflag != typ || h.Mode != mode || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: type %c mode %o owner %d:%d, want %c %o 0:0", name, h.Typeflag, h.Mode, h.Uid, h.Gid, typ, mode)
		}
	}
	check("dnsd", tar.TypeReg, 0o755)
	check("etc/ssl/certs/ca-certificates.crt", tar.TypeReg, 0o644)
	check("tmp", tar.TypeDir, 0o1777)
	if !bytes.Equal(content["etc/ssl/certs/ca-certificates.crt"], caBytes) {
		t.Errorf("CA bundle differs from %s", ca)
	}
	bin, err := elf.NewFile(bytes.NewReader(content["dnsd"]))
	if err != nil {
		t.Fatalf("dnsd: not an ELF binary: %v", err)
	}
	for _, prog := range bin.Progs {
		if prog.Type == elf.PT_INTERP || prog.Type == elf.PT_DYNAMIC {
			t.Errorf("dnsd: dynamically linked (%s)", prog.Type)
		}
	}
	if strings.Contains(string(content["dnsd"]), o.root) {
		t.Errorf("dnsd: contains the build path %s (built without -trimpath?)", o.root)
	}
}

// testOptions are run's options for a test: the repository, an output
// directory of the test's, and fixed names.
func testOptions(t *testing.T) options {
	t.Helper()
	root := testenv.Root(t)
	o := options{
		root: root, out: t.TempDir(), registry: "poddns.test", tag: "t1",
		arch: runtime.GOARCH, goCmd: "go", created: time.Unix(0, 0).UTC(),
	}
	if g := os.Getenv("GO"); g != "" {
		o.goCmd = g
	}
	return o
}

// buildImage builds the target name as `make images` does and reads its
// image back from the archive.
func buildImage(t *testing.T, o options, name string) (v1.Image, *v1.ConfigFile) {
	t.Helper()
	sel, err := selectTargets([]string{name})
	if err != nil {
		t.Fatal(err)
	}
	out, err := run(context.Background(), o, sel)
	if err != nil {
		t.Fatal(err)
	}
	_, img := readArchive(t, out[0].path)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return img, cf
}

// readArchive reads an archive back with go-containerregistry from the OCI
// layout inside the tar: the index's one manifest and its image, validated.
func readArchive(t *testing.T, archive string) (v1.Descriptor, v1.Image) {
	t.Helper()
	p, err := layout.FromPath(untar(t, archive))
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("index.json: %d manifests, want 1", len(im.Manifests))
	}
	desc := im.Manifests[0]
	img, err := idx.Image(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("image does not validate: %v", err)
	}
	return desc, img
}

// layerFiles reads the flattened file system of img: each entry's header
// and content by its name (without a trailing slash).
func layerFiles(t *testing.T, img v1.Image) (map[string]*tar.Header, map[string][]byte) {
	t.Helper()
	files := map[string]*tar.Header{}
	content := map[string][]byte{}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, content
		}
		if err != nil {
			t.Fatal(err)
		}
		// Extract writes directories without the trailing slash.
		h.Name = strings.TrimSuffix(h.Name, "/")
		files[h.Name] = h
		if content[h.Name], err = io.ReadAll(tr); err != nil {
			t.Fatal(err)
		}
	}
}

// untar unpacks an archive into a new directory.
func untar(t *testing.T, archive string) string {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := t.TempDir()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return dir
		}
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(dst, dir+string(filepath.Separator)) {
			t.Fatalf("%s: entry %q outside the archive", archive, h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(dst, 0o755)
		case tar.TypeReg:
			var b []byte
			if b, err = io.ReadAll(tr); err == nil {
				if err = os.MkdirAll(filepath.Dir(dst), 0o755); err == nil {
					err = os.WriteFile(dst, b, 0o644)
				}
			}
		default:
			err = fmt.Errorf("entry %q: type %c", h.Name, h.Typeflag)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestPrebuiltImage packages a binary built elsewhere (CoreDNS from
// `make coredns`) as it is.
func TestPrebuiltImage(t *testing.T) {
	o := testOptions(t)
	const prebuilt = "bin/coredns"
	want, err := os.ReadFile(filepath.Join(o.root, prebuilt))
	testenv.RequireOrSkip(t, fmt.Sprintf("%s (%v); run `make coredns`", prebuilt, err), err == nil)
	img, cf := buildImage(t, o, "coredns")
	if !slices.Equal(cf.Config.Entrypoint, []string{"/coredns"}) || cf.Config.User != "65532:65532" {
		t.Errorf("Entrypoint %q User %q", cf.Config.Entrypoint, cf.Config.User)
	}
	_, content := layerFiles(t, img)
	if !bytes.Equal(content["coredns"], want) {
		t.Errorf("/coredns (%d bytes) is not %s (%d bytes)", len(content["coredns"]), prebuilt, len(want))
	}
}
