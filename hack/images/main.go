// Command images writes OCI image archives of poddns's programs without a
// container engine (`make images`: bin/images/webhook.tar, dnsd.tar,
// pause.tar, coredns.tar, client-glibc.tar and client-musl.tar), with
// go-containerregistry as ko does: a static binary (CGO_ENABLED=0,
// -trimpath), the build machine's CA bundle, a numeric non-root USER, and
// the ENTRYPOINT and EXPOSE build/Dockerfile declares.
//
// It exists because the one-node test cluster has no registry and no Docker:
// an archive is an OCI image layout in a tar, which
// `ctr -n k8s.io images import` loads for pods with imagePullPolicy: Never.
// pause is the sandbox image for that cluster (hack/images/pause);
// client-glibc and client-musl are its test pods' DNS clients (clients.go),
// coredns packages bin/coredns for it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"time"
)

// The image names deploy/base/kustomization.yaml gives the programs
// (images_test.go checks them).
const (
	defaultRegistry = "ghcr.io/poddns"
	defaultTag      = "v0.1.0"
)

func main() {
	o := options{root: ".", goCmd: "go", created: time.Unix(0, 0).UTC()}
	flag.StringVar(&o.out, "o", "bin/images", "output directory (<target>.tar)")
	flag.StringVar(&o.registry, "registry", defaultRegistry, "image names are <registry>/<target>:<tag> (deploy/base/kustomization.yaml's)")
	flag.StringVar(&o.tag, "tag", defaultTag, "image tag")
	flag.StringVar(&o.caFile, "ca", "/etc/ssl/certs/ca-certificates.crt", "CA bundle copied into the images (Debian's ca-certificates)")
	flag.StringVar(&o.arch, "arch", runtime.GOARCH, "GOARCH of the images")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: images [flags] [target...]   (targets: %v; default all)\n", targetNames())
		flag.PrintDefaults()
	}
	flag.Parse()
	if g := os.Getenv("GO"); g != "" {
		o.goCmd = g
	}
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			fmt.Fprintln(os.Stderr, "images: SOURCE_DATE_EPOCH:", err)
			os.Exit(2)
		}
		o.created = time.Unix(sec, 0).UTC()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	sel, err := selectTargets(flag.Args())
	if err == nil {
		var out []built
		if out, err = run(ctx, o, sel); err == nil {
			for _, b := range out {
				fmt.Printf("%s: %s %s\n", b.path, b.ref, b.digest)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}
