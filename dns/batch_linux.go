//go:build linux && (amd64 || arm64)

package dns

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchSize is how many datagrams one recvmmsg reads and one sendmmsg
// writes at most.
const batchSize = 32

// outArena is the room for one batch's answers: 32 answers of 512
// bytes and room for one of the largest; a batch of larger answers is
// sent in several calls.
const outArena = batchSize*512 + maxUDPOut

// batch reads and writes datagrams batchSize at a time (recvmmsg,
// sendmmsg), through the socket's RawConn so that the runtime's poller
// still waits for readiness. Every buffer and header is allocated once.
type batch struct {
	rc syscall.RawConn

	in      [batchSize][maxUDPIn]byte
	inNames [batchSize]unix.RawSockaddrInet6
	inIov   [batchSize]unix.Iovec
	inOOB   [batchSize][oobSize]byte
	inHdr   [batchSize]unix.Mmsghdr
	n       int // datagrams read by the last recvmmsg

	// out holds the queued answers back to back (a few cache lines for
	// a batch of small answers, not a page each); outLen is how much of
	// it is used.
	out      [outArena]byte
	outLen   int
	outNames [batchSize]unix.RawSockaddrInet6
	outIov   [batchSize]unix.Iovec
	outOOB   [batchSize][64]byte
	outHdr   [batchSize]unix.Mmsghdr
	queued   int
	sent     int

	errno        syscall.Errno
	readF, sendF func(fd uintptr) bool
}

func newBatch(c *net.UDPConn) *batch {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	b := &batch{rc: rc}
	for i := range b.inHdr {
		b.inIov[i].Base = &b.in[i][0]
		b.inHdr[i].Hdr.Name = (*byte)(unsafe.Pointer(&b.inNames[i]))
		b.inHdr[i].Hdr.Iov = &b.inIov[i]
		b.inHdr[i].Hdr.SetIovlen(1)
		b.outHdr[i].Hdr.Name = (*byte)(unsafe.Pointer(&b.outNames[i]))
		b.outHdr[i].Hdr.Iov = &b.outIov[i]
		b.outHdr[i].Hdr.SetIovlen(1)
	}
	b.readF = func(fd uintptr) bool {
		for i := range b.inHdr {
			h := &b.inHdr[i].Hdr
			h.Namelen = unix.SizeofSockaddrInet6
			b.inIov[i].SetLen(maxUDPIn)
			if oobSize > 0 {
				h.Control = &b.inOOB[i][0]
				h.SetControllen(oobSize)
			}
			h.Flags = 0
		}
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.inHdr[0])), batchSize, unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EAGAIN || e == unix.EINTR {
			return false
		}
		b.n, b.errno = int(n), e
		return true
	}
	b.sendF = func(fd uintptr) bool {
		for b.sent < b.queued {
			n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.outHdr[b.sent])), uintptr(b.queued-b.sent), unix.MSG_DONTWAIT, 0, 0)
			switch {
			case e == unix.EAGAIN || e == unix.EINTR:
				return false
			case e != 0:
				// The first datagram of the rest failed (a client
				// port gone, say): skip it.
				b.sent++
			default:
				b.sent += int(n)
			}
		}
		return true
	}
	return b
}

// read fills the batch; it returns how many datagrams it read.
func (b *batch) read() (int, error) {
	if err := b.rc.Read(b.readF); err != nil {
		return 0, err
	}
	if b.errno != 0 {
		return 0, b.errno
	}
	return b.n, nil
}

// datagram returns datagram i of the last read: its data, its sender and
// its control messages.
func (b *batch) datagram(i int) ([]byte, netip.AddrPort, []byte) {
	h := &b.inHdr[i]
	from := sockaddrToAddrPort(&b.inNames[i])
	var oob []byte
	if oobSize > 0 {
		oob = b.inOOB[i][:min(int(h.Hdr.Controllen), oobSize)]
	}
	return b.in[i][:min(int(h.Len), maxUDPIn)], from, oob
}

// queue adds an answer to the batch to send.
func (b *batch) queue(p []byte, to netip.AddrPort, oob []byte) {
	copy(b.slot(len(p)), p)
	b.commit(len(p), to, oob)
}

// slot returns room for an answer of up to n bytes (at most maxUDPOut)
// at the end of the batch, sending the batch first when it is full.
func (b *batch) slot(n int) []byte {
	if b.queued == batchSize || b.outLen+n > len(b.out) {
		b.flush()
	}
	return b.out[b.outLen : b.outLen+n]
}

// commit queues the n bytes written into the last slot, to be sent to
// to (with the control message oob, when not empty).
func (b *batch) commit(n int, to netip.AddrPort, oob []byte) {
	i := b.queued
	b.outIov[i].Base = &b.out[b.outLen]
	b.outIov[i].SetLen(n)
	b.outLen += n
	h := &b.outHdr[i].Hdr
	h.Namelen = addrPortToSockaddr(&b.outNames[i], to)
	if len(oob) > 0 {
		c := copy(b.outOOB[i][:], oob)
		h.Control = &b.outOOB[i][0]
		h.SetControllen(c)
	} else {
		h.Control = nil
		h.SetControllen(0)
	}
	b.queued++
}

// flush sends the queued answers.
func (b *batch) flush() {
	if b.queued == 0 {
		return
	}
	b.sent = 0
	_ = b.rc.Write(b.sendF) // only fails when the socket is closed
	b.queued, b.sent, b.outLen = 0, 0, 0
}

func sockaddrToAddrPort(sa *unix.RawSockaddrInet6) netip.AddrPort {
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port)
	}
	return netip.AddrPort{}
}

// addrPortToSockaddr writes to into sa in the family of the socket the
// batch reads (the family the sender came in) and returns its length.
func addrPortToSockaddr(sa *unix.RawSockaddrInet6, to netip.AddrPort) uint32 {
	a := to.Addr()
	if a.Is4() {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.As4()}
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:], to.Port())
		return unix.SizeofSockaddrInet4
	}
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: a.As16()}
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], to.Port())
	return unix.SizeofSockaddrInet6
}

// batchLoop serves r's socket with batches; ok is false when batching is
// not available (the caller then reads one datagram at a time).
func (r *udpReader) batchLoop() (ok bool, err error) {
	b := newBatch(r.c)
	if b == nil {
		return false, nil
	}
	r.batch = b
	for {
		n, err := b.read()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return true, nil
			}
			if errors.Is(err, unix.ENOMEM) || errors.Is(err, unix.ECONNREFUSED) {
				continue
			}
			return true, err
		}
		for i := 0; i < n; i++ {
			q, from, oob := b.datagram(i)
			if r.pktinfo {
				r.reply = srcOOB(r.replyB[:], dstFromOOB(oob))
			}
			r.serve(q, from)
		}
		b.flush()
	}
}
