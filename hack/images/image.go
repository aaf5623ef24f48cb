package main

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// caPath is where the CA bundle goes in an image: Debian's (and distroless's)
// path, which Go's crypto/x509 reads on Linux.
const caPath = "/etc/ssl/certs/ca-certificates.crt"

// options says where and how `make images` builds.
type options struct {
	root     string // the repository root (go build runs there)
	out      string // output directory: <out>/<target>.tar
	registry string // image names are <registry>/<target>:<tag>
	tag      string
	caFile   string // the build machine's CA bundle
	arch     string // GOARCH of the binaries and the image platform
	goCmd    string
	created  time.Time // every timestamp in the image, for reproducible digests
}

// built is one written archive.
type built struct {
	path, ref string
	digest    v1.Hash
}

// run builds the targets' Go binaries in one go build (and the test
// clients' C programs) and writes one OCI image archive per target.
func run(ctx context.Context, o options, sel []target) ([]built, error) {
	bins, err := os.MkdirTemp("", "poddns-images-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(bins)
	var goTargets []target
	for _, t := range sel {
		if t.pkg != "" {
			goTargets = append(goTargets, t)
		}
	}
	if len(goTargets) > 0 {
		if err := goBuild(ctx, o, bins, goTargets); err != nil {
			return nil, err
		}
	}
	var ca []byte
	for _, t := range sel {
		if t.caCerts && ca == nil {
			if ca, err = os.ReadFile(o.caFile); err != nil {
				return nil, fmt.Errorf("CA certificates (Debian: apt-get install ca-certificates): %w", err)
			}
		}
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return nil, fmt.Errorf("output directory: %w", err)
	}
	var out []built
	for _, t := range sel {
		files, err := content(ctx, t, o, bins, ca)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
		img, err := image(t, o, files)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
		b := built{path: filepath.Join(o.out, t.name+".tar"), ref: o.registry + "/" + t.name + ":" + o.tag}
		if b.digest, err = img.Digest(); err != nil {
			return nil, fmt.Errorf("%s: digest: %w", t.name, err)
		}
		if err := writeArchive(b.path, img, b.ref); err != nil {
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// file is a regular file of an image's layer.
type file struct {
	path string // absolute, inside the image
	mode int64
	data []byte
}

// content lists the files of t's image: the CA bundle and the Go binary
// built into bins, or the test clients (clients.go).
func content(ctx context.Context, t target, o options, bins string, ca []byte) ([]file, error) {
	if t.libc != "" {
		return clientFiles(ctx, o, t.libc)
	}
	var files []file
	if t.caCerts {
		files = append(files, file{caPath, 0o644, ca})
	}
	src := filepath.Join(bins, path.Base(t.pkg))
	if t.prebuilt != "" {
		src = filepath.Join(o.root, t.prebuilt)
	}
	bin, err := os.ReadFile(src)
	if err != nil {
		return nil, fmt.Errorf("binary: %w", err)
	}
	if dir := path.Dir(t.binary); dir != "/" {
		return nil, fmt.Errorf("binary %s: only a top-level path is supported", t.binary)
	}
	return append(files, file{t.binary, 0o755, bin}), nil
}

func selectTargets(names []string) ([]target, error) {
	if len(names) == 0 {
		return targets, nil
	}
	var sel []target
next:
	for _, n := range names {
		for _, t := range targets {
			if t.name == n {
				sel = append(sel, t)
				continue next
			}
		}
		return nil, fmt.Errorf("unknown target %q (have %s)", n, strings.Join(targetNames(), ", "))
	}
	return sel, nil
}

func targetNames() []string {
	var n []string
	for _, t := range targets {
		n = append(n, t.name)
	}
	return n
}

// goBuild builds static binaries for linux/<arch> into dir, named after the
// last element of each package path.
func goBuild(ctx context.Context, o options, dir string, sel []target) error {
	args := append([]string{"build"}, goBuildFlags...)
	args = append(args, "-o", dir+string(filepath.Separator))
	for _, t := range sel {
		args = append(args, t.pkg)
	}
	cmd := exec.CommandContext(ctx, o.goCmd, args...)
	cmd.Dir = o.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+o.arch)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, msg)
	}
	return nil
}

// image assembles t's image: one layer with files, OCI media types, and t's
// container config.
func image(t target, o options, files []file) (v1.Image, error) {
	layerTar, err := rootfs(o.created, files)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: o.created}, CreatedBy: "hack/images " + t.name, Comment: t.pkg},
	})
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", o.arch
	cf.Created = v1.Time{Time: o.created}
	cf.Config.User = t.user
	cf.Config.Entrypoint = t.entrypoint
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	if t.caCerts {
		cf.Config.Env = append(cf.Config.Env, "SSL_CERT_FILE="+caPath)
	}
	if len(t.exposed) > 0 {
		cf.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range t.exposed {
			cf.Config.ExposedPorts[p] = struct{}{}
		}
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return img, nil
}

// rootfs is the layer's content as a tar stream (the one thing
// go-containerregistry leaves to its callers, as ko builds its own): /tmp,
// then each file after the directories above it, all owned by root.
func rootfs(created time.Time, files []file) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := func(name string, typ byte, mode int64, size int) error {
		return tw.WriteHeader(&tar.Header{
			Typeflag: typ, Name: name, Mode: mode, Size: int64(size),
			ModTime: created, Format: tar.FormatPAX,
		})
	}
	if err := hdr("tmp/", tar.TypeDir, 0o1777, 0); err != nil {
		return nil, err
	}
	dirs := map[string]bool{}
	for _, f := range files {
		name := strings.TrimPrefix(f.path, "/")
		var parents []string
		for d := path.Dir(name); d != "." && !dirs[d]; d = path.Dir(d) {
			parents = append(parents, d)
			dirs[d] = true
		}
		for i := len(parents) - 1; i >= 0; i-- {
			if err := hdr(parents[i]+"/", tar.TypeDir, 0o755, 0); err != nil {
				return nil, err
			}
		}
		if err := hdr(name, tar.TypeReg, f.mode, len(f.data)); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer tar: %w", err)
	}
	return buf.Bytes(), nil
}

// writeArchive writes img as an OCI image layout (go-containerregistry's
// layout package) packed into one tar, the form `ctr images import` reads; ref
// names the image there (containerd's and OCI's name annotations).
func writeArchive(dst string, img v1.Image, ref string) error {
	dir, err := os.MkdirTemp("", "poddns-layout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("OCI layout: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	if err := p.AppendImage(img,
		layout.WithAnnotations(map[string]string{
			"io.containerd.image.name":          ref,
			"org.opencontainers.image.ref.name": ref,
		}),
		layout.WithPlatform(v1.Platform{OS: cf.OS, Architecture: cf.Architecture}),
	); err != nil {
		return fmt.Errorf("OCI layout: %w", err)
	}
	tmp := dst + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	tw := tar.NewWriter(f)
	if err := tw.AddFS(os.DirFS(dir)); err != nil {
		f.Close()
		return fmt.Errorf("pack %s: %w", dst, err)
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return fmt.Errorf("pack %s: %w", dst, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}
