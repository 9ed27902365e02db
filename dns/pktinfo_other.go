//go:build !linux

package dns

import (
	"net"
	"net/netip"
)

const oobSize = 0

func enablePktinfo(*net.UDPConn) bool  { return false }
func dstFromOOB([]byte) netip.Addr     { return netip.Addr{} }
func srcOOB([]byte, netip.Addr) []byte { return nil }
