//go:build !unix

package serve

import "net"

// listenUDP binds a plain UDP socket: without SO_REUSEPORT a second socket
// on the same port fails, so use Options.UDPSockets = 1 here.
func listenUDP(addr string) (net.PacketConn, error) {
	return net.ListenPacket("udp", addr)
}

func listenTCP(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
