package integration

// A server under test in private network and mount namespaces: the process
// is started through `unshare --net --mount --propagation private`, whose
// shell brings up lo with the addresses asked for, lays a tmpfs-backed
// overlay over /etc (so that /etc/coredns can exist without touching the
// host's /etc), bind-mounts the given directory on /etc/coredns and the
// given resolv.conf on /etc/resolv.conf, mounts a tmpfs on /run with the
// service-account directory in-cluster clients read
// (/var/run/secrets/kubernetes.io/serviceaccount), and waits for the test to
// open listeners in the namespace before it execs the server. The test
// process reaches into the namespace by creating sockets from a thread
// switched into it (inNetNS): loopback test upstreams, an API-server proxy,
// DNS and HTTP clients. Nothing is mounted, addressed or listened on outside
// the namespaces.

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/poddns/poddns/internal/syncbuf"
	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/serve/dnstest"
)

// nsSpec is what a namespaced server gets.
type nsSpec struct {
	// Addrs are put on lo (as /32 or /128) before the server starts.
	Addrs []string
	// Etc is mounted on /etc/coredns, Resolv on /etc/resolv.conf and SA on
	// /var/run/secrets/kubernetes.io/serviceaccount.
	Etc, Resolv, SA string
	// Env is the server's environment.
	Env []string
	// Setup runs once the namespace exists and before the server starts:
	// it opens the listeners the server needs (upstreams, API proxy).
	Setup func(ns netns.NsHandle)
}

// nsServer is a server process in namespaces of its own.
type nsServer struct {
	name string
	ns   netns.NsHandle
	out  *syncbuf.Buffer
}

const nsScript = `set -e
dir=$1; shift
ip link set lo up
for a in $ADDRS; do ip addr add "$a" dev lo; done
mount -t tmpfs tmpfs "$dir"
mkdir "$dir/upper" "$dir/work"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$dir/upper,workdir=$dir/work" /etc
mkdir -p /etc/coredns
mount --bind "$ETC" /etc/coredns
rm -f /etc/resolv.conf
touch /etc/resolv.conf
mount --bind "$RESOLV" /etc/resolv.conf
mount -t tmpfs tmpfs /run
mkdir -p /run/secrets/kubernetes.io/serviceaccount
mount --bind "$SA" /run/secrets/kubernetes.io/serviceaccount
touch "$READY"
i=0
while [ ! -e "$GO" ]; do
  i=$((i+1)); [ $i -lt 600 ] || { echo "no go from the test after 60s" >&2; exit 1; }
  sleep 0.1
done
exec "$@"
`

// startInNamespaces runs argv as described in the file comment.
func startInNamespaces(t *testing.T, name string, spec nsSpec, argv ...string) *nsServer {
	t.Helper()
	tools := testenv.RequireCommand(t, "unshare", "ip", "mount", "sh")
	testenv.RequireRoot(t)
	dir := t.TempDir()
	ready, goFile, mnt := filepath.Join(dir, "ready"), filepath.Join(dir, "go"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, a := range spec.Addrs {
		bits := "/32"
		if strings.Contains(a, ":") {
			bits = "/128"
		}
		addrs = append(addrs, a+bits)
	}
	cmd, out := startProcessOutput(t, name, tools[0], func(c *exec.Cmd) {
		c.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "ADDRS=" + strings.Join(addrs, " "), "ETC=" + spec.Etc,
			"RESOLV=" + spec.Resolv, "SA=" + spec.SA, "READY=" + ready, "GO=" + goFile}, spec.Env...)
	}, append([]string{"--net", "--mount", "--propagation", "private", tools[3], "-c", nsScript, "sh", mnt}, argv...)...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the namespace setup did not finish in 30s:\n%s", name, out.String())
		}
		time.Sleep(20 * time.Millisecond) // polling a process start, bounded above
	}
	ns, err := netns.GetFromPath(fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	host, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	if ns.Equal(host) {
		t.Fatalf("%s runs in the test's network namespace: refusing to go on", name)
	}
	if spec.Setup != nil {
		spec.Setup(ns)
	}
	if err := os.WriteFile(goFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return &nsServer{name: name, ns: ns, out: out}
}

// inNetNS runs fn on a thread switched into ns: the sockets fn creates
// belong to ns for their whole life.
func inNetNS(ns netns.NsHandle, fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// The thread stays locked and dies with the goroutine: never
		// let another goroutine run in the wrong namespace.
		panic(fmt.Sprintf("cannot switch the thread back to the test's network namespace: %v", err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// dialIn dials addr over network from inside ns.
func dialIn(ns netns.NsHandle, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := inNetNS(ns, func() error {
		var err error
		c, err = net.DialTimeout(network, addr, 5*time.Second)
		return err
	})
	return c, err
}

// exchangeIn sends q to addr inside ns over proto and returns the reply.
func exchangeIn(ns netns.NsHandle, addr, proto string, q *dns.Msg) (*dns.Msg, error) {
	c, err := dialIn(ns, proto, addr)
	if err != nil {
		return nil, err
	}
	co := &dns.Conn{Conn: c, UDPSize: dns.MaxMsgSize}
	defer co.Close()
	if err := co.SetDeadline(time.Now().Add(8 * time.Second)); err != nil {
		return nil, err
	}
	if err := co.WriteMsg(q); err != nil {
		return nil, err
	}
	for {
		r, err := co.ReadMsg()
		if err != nil {
			return nil, err
		}
		if r.Id == q.Id {
			return r, nil
		}
	}
}

// httpGetIn GETs url from inside ns and returns the status and body.
func httpGetIn(ns netns.NsHandle, url string) (int, string, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(_ context.Context, network, addr string) (net.Conn, error) { return dialIn(ns, network, addr) },
	}}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, string(b), err
}

// listenIn opens a UDP and a TCP socket on addr inside ns.
func listenIn(ns netns.NsHandle, addr string) (net.PacketConn, net.Listener, error) {
	var pc net.PacketConn
	var l net.Listener
	// SO_REUSEPORT lets the server under test bind the wildcard address
	// on the same port (as CoreDNS and dnsd do, both setting it too); the
	// kernel still gives each socket the packets of its own address.
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) }); err != nil {
			return err
		}
		return serr
	}}
	err := inNetNS(ns, func() error {
		var err error
		if pc, err = lc.ListenPacket(context.Background(), "udp", addr); err != nil {
			return err
		}
		if l, err = lc.Listen(context.Background(), "tcp", addr); err != nil {
			pc.Close()
			return err
		}
		return nil
	})
	return pc, l, err
}

// listenTCPIn listens on TCP addr inside ns.
func listenTCPIn(t *testing.T, ns netns.NsHandle, addr string) net.Listener {
	t.Helper()
	var l net.Listener
	if err := inNetNS(ns, func() error {
		var err error
		l, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatalf("listen on %s in the namespace: %v", addr, err)
	}
	return l
}

// serveDNSIn serves h on addr (UDP and TCP) inside ns until the test ends.
func serveDNSIn(t *testing.T, ns netns.NsHandle, addr string, h dns.Handler) {
	t.Helper()
	pc, l, err := listenIn(ns, addr)
	if err != nil {
		t.Fatalf("listen on %s in the namespace: %v", addr, err)
	}
	dnstest.Activate(t, &dns.Server{PacketConn: pc, Handler: h})
	dnstest.Activate(t, &dns.Server{Listener: l, Handler: h})
}

// serveDoTIn serves h over DNS over TLS on addr inside ns until the test
// ends.
func serveDoTIn(t *testing.T, ns netns.NsHandle, addr string, cert tls.Certificate, h dns.Handler) {
	t.Helper()
	l := listenTCPIn(t, ns, addr)
	dnstest.Activate(t, &dns.Server{Listener: tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}), Net: "tcp-tls", Handler: h})
}

// proxyTCPIn listens on addr inside ns and relays every connection to
// target, dialled from the test's own namespace (the API server).
func proxyTCPIn(t *testing.T, ns netns.NsHandle, addr, target string) {
	t.Helper()
	l := listenTCPIn(t, ns, addr)
	var wg sync.WaitGroup
	done := make(chan struct{})
	t.Cleanup(func() { close(done); l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.DialTimeout("tcp", target, 5*time.Second)
			if err != nil {
				in.Close()
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				relay(in, out, done)
			}()
		}
	}()
}

// relay copies both ways until one side closes or done.
func relay(a, b net.Conn, done <-chan struct{}) {
	errc := make(chan error, 2)
	go func() { _, err := io.Copy(a, b); errc <- err }()
	go func() { _, err := io.Copy(b, a); errc <- err }()
	select {
	case <-errc:
	case <-done:
	}
	a.Close()
	b.Close()
	<-errc
	if len(errc) > 0 {
		<-errc
	}
}
