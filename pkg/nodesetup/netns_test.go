package nodesetup

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/poddns/poddns/internal/testenv"
)

// testNS is a network namespace the test made, held by an open file
// descriptor (no process, no name under /run/netns): it disappears with
// the test.
type testNS struct {
	fd   int
	path string // /proc/<pid>/fd/<fd>, for nsenter --net=
}

// newTestNS makes a network namespace with lo up. It fails under CI=true
// and skips elsewhere when not root.
func newTestNS(t *testing.T) testNS {
	t.Helper()
	testenv.RequireRoot(t)
	ns, err := func() (netns.NsHandle, error) {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			return 0, err
		}
		defer orig.Close()
		ns, err := netns.New() // this thread is now in ns
		if err != nil {
			runtime.UnlockOSThread()
			return 0, err
		}
		if err := netns.Set(orig); err != nil {
			// The thread stays locked and dies with its goroutine, never
			// serving another one in the wrong namespace.
			ns.Close()
			return 0, fmt.Errorf("back to the test's namespace: %w", err)
		}
		runtime.UnlockOSThread()
		return ns, nil
	}()
	if err != nil {
		t.Fatalf("new network namespace: %v", err)
	}
	t.Cleanup(func() { ns.Close() })
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	return testNS{fd: int(ns), path: fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(ns))}
}

// do runs f with the calling goroutine's thread in the namespace: sockets
// made in f belong to it.
func (n testNS) do(t *testing.T, f func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(netns.NsHandle(n.fd)); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			t.Errorf("back to the test's namespace: %v (thread left locked)", err)
			return
		}
		runtime.UnlockOSThread()
	}()
	f()
}

// handle is a netlink handle in the namespace.
func (n testNS) handle(t *testing.T) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(netns.NsHandle(n.fd))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// run runs a command in the namespace (nsenter) and returns its output.
func (n testNS) run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := n.try(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (n testNS) try(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + n.path, "--", name}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// echoServer answers every UDP datagram on addr with tag, inside the
// namespace, until the test ends.
func (n testNS) echoServer(t *testing.T, addr, tag string) {
	t.Helper()
	var pc net.PacketConn
	n.do(t, func() {
		var err error
		if pc, err = net.ListenPacket("udp", addr); err != nil {
			t.Fatalf("listen %s: %v", addr, err)
		}
	})
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(tag), from)
		}
	}()
}

// ask sends a datagram to addr from inside the namespace and returns the
// answer ("" when none came within a second).
func (n testNS) ask(t *testing.T, addr string) string {
	t.Helper()
	var c net.Conn
	n.do(t, func() {
		var err error
		if c, err = net.Dial("udp", addr); err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
	})
	defer c.Close()
	if _, err := c.Write([]byte("q")); err != nil {
		return ""
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 64)
	k, err := c.Read(buf)
	if err != nil {
		return ""
	}
	return string(buf[:k])
}
