package dns

import (
	"net"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// oobSize is room for the control messages of one received datagram.
const oobSize = 128

// enablePktinfo asks the kernel, on a socket bound to a wildcard
// address, for each datagram's destination address, so that the answer
// leaves from the address the client asked (a host with several
// addresses on one network, a virtual address). It reports whether the
// socket needs that.
func enablePktinfo(c *net.UDPConn) bool {
	la, ok := c.LocalAddr().(*net.UDPAddr)
	if !ok || !la.IP.IsUnspecified() {
		return false
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	on := false
	rc.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1) == nil {
			on = true
		}
		if unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1) == nil {
			on = true
		}
	})
	return on
}

// dstFromOOB returns the destination address in the control messages of
// a received datagram.
func dstFromOOB(oob []byte) netip.Addr {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			return netip.Addr{}
		}
		data := oob[unix.CmsgLen(0):l]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			// struct in_pktinfo: ifindex, spec_dst, addr (the
			// header's destination).
			return netip.AddrFrom4([4]byte(data[8:12]))
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			return netip.AddrFrom16([16]byte(data[0:16])).Unmap()
		}
		oob = oob[min(unix.CmsgSpace(l-unix.CmsgLen(0)), len(oob)):]
	}
	return netip.Addr{}
}

// srcOOB writes into buf the control message that sends a datagram from
// src, and returns it (nil when src is not valid). IPv4 takes
// IP_PKTINFO on IPv6 sockets too (v4-mapped clients), as Linux accepts.
func srcOOB(buf []byte, src netip.Addr) []byte {
	if !src.IsValid() {
		return nil
	}
	clear(buf)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&buf[0]))
	if src.Is4() {
		n := unix.CmsgSpace(unix.SizeofInet4Pktinfo)
		h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
		h.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
		a := src.As4()
		copy(buf[unix.CmsgLen(0)+4:], a[:]) // ipi_spec_dst
		return buf[:n]
	}
	n := unix.CmsgSpace(unix.SizeofInet6Pktinfo)
	h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
	a := src.As16()
	copy(buf[unix.CmsgLen(0):], a[:])
	return buf[:n]
}
