//go:build !linux

package serve

import (
	"net"

	"golang.org/x/net/ipv4"
)

// Elsewhere the batches go through x/net's ReadBatch and WriteBatch (one
// datagram per call where the system has no recvmmsg). See udp_linux.go.

type rawBatch struct{}

type batchIO struct{ bc batchConn }

func newBatchIO(_ *net.UDPConn, bc batchConn) (batchIO, error) { return batchIO{bc: bc}, nil }

func (io *batchIO) read(b *udpBatch) (int, error) { return io.bc.ReadBatch(b.in, 0) }

func (io *batchIO) write(_ *udpBatch, ms []ipv4.Message) (int, error) {
	return io.bc.WriteBatch(ms, 0)
}
