package rig

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// inNetns runs fn on an OS thread switched into the network namespace
// open as nsFile, then switches the thread back. Sockets fn opens stay in
// that namespace for their whole life, which is how the test process (in
// the machine's namespace) reaches servers inside the rig. If the thread
// cannot be switched back it is left locked, so the Go runtime ends it
// instead of reusing it.
func inNetns(nsFile *os.File, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer self.Close()
		if err := unix.Setns(int(nsFile.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("entering the rig's network namespace: %w", err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			// Stay locked: the thread dies with this goroutine.
			errc <- fmt.Errorf("leaving the rig's network namespace: %w", err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// netnsDialer dials from inside a network namespace: the socket is made
// there, then connects through the netpoller like any other.
func netnsDialer(nsFile *os.File) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := inNetns(nsFile, func() error {
			var d net.Dialer
			var err error
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// DialContext connects from inside the rig's network namespace: to the
// API server, a pod, a Service's ClusterIP (through kube-proxy's rules).
func (c *Cluster) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return netnsDialer(c.netns)(ctx, network, addr)
}

// InNetns runs fn on a thread inside the rig's network namespace: sockets
// it opens (listeners, packet connections) live there.
func (c *Cluster) InNetns(fn func() error) error { return inNetns(c.netns, fn) }
