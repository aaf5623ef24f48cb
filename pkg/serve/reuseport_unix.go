//go:build unix

package serve

import (
	"context"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePort is a ListenConfig that sets SO_REUSEPORT.
var reusePort = net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	return serr
}}

// listenUDP binds a UDP socket with SO_REUSEPORT, so that several sockets
// share one port and the kernel spreads queries over them.
func listenUDP(addr string) (net.PacketConn, error) {
	return reusePort.ListenPacket(context.Background(), "udp", addr)
}

// listenTCP binds a TCP listener with SO_REUSEPORT, so that a second dnsd
// on the same address (a node-local instance and its successor during an
// upgrade) can listen beside the first; the kernel spreads connections
// over both.
func listenTCP(addr string) (net.Listener, error) {
	return reusePort.Listen(context.Background(), "tcp", addr)
}
