package main

// target is one image: the program it runs and the container config it
// declares. webhook and dnsd must say what build/Dockerfile's final stage of
// the same name says (images_test.go compares them).
type target struct {
	name string
	pkg  string // the Go package built into the image, relative to the repository root
	// binary is the program's path inside the image.
	binary     string
	user       string
	entrypoint []string
	// exposed are EXPOSE's ports in the image config's form (port/proto).
	exposed []string
	// caCerts puts the build machine's CA bundle into the image (distroless
	// has one; the programs make TLS connections to the API server and, for
	// dnsd, may forward over TLS).
	caCerts bool
	// libc makes a test client image instead of a Go program's (pkg and
	// binary empty): the C clients of test/e2e/testdata built against
	// glibc or musl (clients.go).
	libc libc
	// prebuilt is a static binary built elsewhere, relative to the
	// repository root, put into the image instead of building pkg.
	prebuilt string
	// shipped: a final stage of build/Dockerfile describes the image. The
	// others exist only for the test cluster.
	shipped bool
}

// nonroot is distroless/static's nonroot user and group, which
// build/Dockerfile runs both programs as.
const nonroot = "65532"

// targets lists the images `make images` writes, in order.
var targets = []target{
	{
		name: "webhook", pkg: "./cmd/webhook", binary: "/webhook",
		user: nonroot + ":" + nonroot, entrypoint: []string{"/webhook"},
		exposed: []string{"9443/tcp", "8080/tcp", "8081/tcp"},
		caCerts: true, shipped: true,
	},
	{
		name: "dnsd", pkg: "./cmd/dnsd", binary: "/dnsd",
		user: nonroot + ":" + nonroot, entrypoint: []string{"/dnsd"},
		exposed: []string{"53/udp", "53/tcp", "8080/tcp", "9153/tcp"},
		caCerts: true, shipped: true,
	},
	{
		// The sandbox image for a cluster without a registry; 65535 is
		// registry.k8s.io/pause's user. No Dockerfile stage: it is not shipped.
		name: "pause", pkg: "./hack/images/pause", binary: "/pause",
		user: "65535:65535", entrypoint: []string{"/pause"},
	},
	// CoreDNS (bin/coredns, `make coredns`: a CGO_ENABLED=0 build), the
	// cluster DNS that the test cluster's beside-coredns and
	// replace-coredns installs start from.
	{
		name: "coredns", prebuilt: "bin/coredns", binary: "/coredns",
		user: nonroot + ":" + nonroot, entrypoint: []string{"/coredns"},
		exposed: []string{"53/udp", "53/tcp"},
	},
	// The DNS clients of the test cluster's pods (clients.go): each pod
	// names the program it runs in its command.
	{name: "client-glibc", user: nonroot + ":" + nonroot, entrypoint: []string{"/gai"}, libc: glibc},
	{name: "client-musl", user: nonroot + ":" + nonroot, entrypoint: []string{"/gai"}, libc: musl},
}

// goBuildFlags are build/Dockerfile's `go build` flags (images_test.go checks
// that the Dockerfile passes each of them); the environment adds
// CGO_ENABLED=0 for a static binary.
var goBuildFlags = []string{"-trimpath", "-buildvcs=false", "-ldflags=-s -w"}
