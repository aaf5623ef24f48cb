//go:build linux

package serve

import (
	"net"
	"os"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// On Linux the batches are read and sent with recvmmsg and sendmmsg as raw
// system calls on the non-blocking socket, waiting for it through the
// runtime's poller (syscall.RawConn) as package net does, rather than with
// x/net's ReadBatch and WriteBatch (udp_other.go): those go through the
// scheduler's system-call path (entersyscall), which wakes the runtime's
// monitor thread (sysmon) whenever the process leaves idle — at a fixed
// rate below saturation that is once per query, and sysmon's wake-ups and
// 20 µs sleeps were ~16% of dnsd's CPU. Neither call can block (the socket
// is non-blocking), which is what RawSyscall requires.

// mmsghdr is struct mmsghdr.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

// rawBatch is the system calls' view of a batch: one for the reads and one
// for the replies, which a handoff may send while the next read runs.
type rawBatch struct {
	hs    [udpBatchSize]mmsghdr
	iovs  [udpBatchSize]unix.Iovec
	names [udpBatchSize]unix.RawSockaddrInet6
	// The call in progress: its arguments and results, and run (the
	// method value of r.syscall, made once) for RawConn's Read and Write.
	// A closure per call, as call had, cost four allocations per query.
	trap  uintptr
	n     int
	got   int
	errno syscall.Errno
	run   func(fd uintptr) bool
}

// batchIO reads and writes one socket's batches.
type batchIO struct {
	rc syscall.RawConn
	v6 bool // an AF_INET6 socket: IPv4 peers as v4-mapped addresses
}

func newBatchIO(conn *net.UDPConn, _ batchConn) (batchIO, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return batchIO{}, err
	}
	var sa unix.Sockaddr
	var serr error
	if err := rc.Control(func(fd uintptr) { sa, serr = unix.Getsockname(int(fd)) }); err != nil {
		return batchIO{}, err
	}
	if serr != nil {
		return batchIO{}, serr
	}
	_, v6 := sa.(*unix.SockaddrInet6)
	return batchIO{rc: rc, v6: v6}, nil
}

// read reads at least one datagram into b.in, as many as are queued.
func (io *batchIO) read(b *udpBatch) (int, error) {
	r := &b.rin
	for i := range b.in {
		m := &b.in[i]
		r.iovs[i].Base = &m.Buffers[0][0]
		r.iovs[i].SetLen(len(m.Buffers[0]))
		h := &r.hs[i]
		h.len = 0
		h.hdr = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&r.names[i])), Namelen: uint32(unsafe.Sizeof(r.names[i])),
			Iov: &r.iovs[i], Control: &m.OOB[0]}
		h.hdr.SetIovlen(1)
		h.hdr.SetControllen(len(m.OOB))
	}
	n, err := io.call(r, false, unix.SYS_RECVMMSG, len(b.in), "recvmmsg")
	for i := range n {
		m, h := &b.in[i], &r.hs[i]
		m.N, m.NN, m.Flags = int(h.len), int(h.hdr.Controllen), int(h.hdr.Flags)
		m.Addr = udpAddr(&r.names[i], &b.inAddrs[i])
	}
	return n, err
}

// write sends ms, a prefix of b.out; it returns how many were sent before
// the first one the kernel refused.
func (io *batchIO) write(b *udpBatch, ms []ipv4.Message) (int, error) {
	r := &b.rout
	for i := range ms {
		m, h := &ms[i], &r.hs[i]
		buf := m.Buffers[0]
		r.iovs[i].Base = nil
		if len(buf) > 0 {
			r.iovs[i].Base = &buf[0]
		}
		r.iovs[i].SetLen(len(buf))
		h.len = 0
		h.hdr = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&r.names[i])), Iov: &r.iovs[i]}
		h.hdr.Namelen = io.sockaddr(m.Addr, &r.names[i])
		h.hdr.SetIovlen(1)
		if len(m.OOB) > 0 {
			h.hdr.Control = &m.OOB[0]
			h.hdr.SetControllen(len(m.OOB))
		}
	}
	return io.call(r, true, unix.SYS_SENDMMSG, len(ms), "sendmmsg")
}

// call runs trap on r's headers (the first n) until it does not return
// EAGAIN, waiting for the socket with RawConn.Read (or Write) in between.
func (io *batchIO) call(r *rawBatch, write bool, trap uintptr, n int, name string) (int, error) {
	if r.run == nil {
		r.run = r.syscall
	}
	r.trap, r.n = trap, n
	var err error
	if write {
		err = io.rc.Write(r.run)
	} else {
		err = io.rc.Read(r.run)
	}
	if err != nil {
		return 0, err
	}
	if r.errno != 0 {
		return 0, os.NewSyscallError(name, r.errno)
	}
	return r.got, nil
}

// syscall makes r's call on fd: false (wait and call again) on EAGAIN.
func (r *rawBatch) syscall(fd uintptr) bool {
	for {
		r1, _, e := syscall.RawSyscall6(r.trap, fd, uintptr(unsafe.Pointer(&r.hs[0])), uintptr(r.n), 0, 0, 0)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		r.got, r.errno = int(r1), e
		return true
	}
}

// udpAddr is the peer address in raw (sockaddr_in or sockaddr_in6) as
// package net gives it (4-byte IPs from an AF_INET socket), in a; nil for
// another family.
func udpAddr(raw *unix.RawSockaddrInet6, a *peerAddr) net.Addr {
	a.Port = int(raw.Port>>8 | raw.Port<<8) // network byte order
	a.Zone = ""
	switch raw.Family {
	case unix.AF_INET:
		in4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(raw))
		a.IP = append(a.ip[:0], in4.Addr[:]...)
	case unix.AF_INET6:
		a.IP = append(a.ip[:0], raw.Addr[:]...)
		if raw.Scope_id != 0 {
			a.Zone = strconv.FormatUint(uint64(raw.Scope_id), 10)
		}
	default:
		return nil
	}
	return &a.UDPAddr
}

// sockaddr writes addr into raw for the socket's family and returns its
// length (0 when addr is not an address the socket can send to: the
// kernel then refuses that one message).
func (io *batchIO) sockaddr(addr net.Addr, raw *unix.RawSockaddrInet6) uint32 {
	a, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0
	}
	port := uint16(a.Port)
	if !io.v6 {
		ip4 := a.IP.To4()
		if ip4 == nil {
			return 0
		}
		in4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(raw))
		*in4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Port: port>>8 | port<<8}
		copy(in4.Addr[:], ip4)
		return unix.SizeofSockaddrInet4
	}
	ip16 := a.IP.To16()
	if ip16 == nil {
		return 0
	}
	*raw = unix.RawSockaddrInet6{Family: unix.AF_INET6, Port: port>>8 | port<<8}
	copy(raw.Addr[:], ip16)
	if a.Zone != "" {
		if id, err := strconv.ParseUint(a.Zone, 10, 32); err == nil {
			raw.Scope_id = uint32(id)
		} else if ifi, err := net.InterfaceByName(a.Zone); err == nil {
			raw.Scope_id = uint32(ifi.Index)
		}
	}
	return unix.SizeofSockaddrInet6
}
