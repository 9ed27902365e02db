//go:build !linux || !(amd64 || arm64)

package dns

import "net/netip"

// batch is not available here: one datagram at a time.
type batch struct{}

func (*batch) queue([]byte, netip.AddrPort, []byte) {}
func (*batch) slot(int) []byte                      { return nil }
func (*batch) commit(int, netip.AddrPort, []byte)   {}

func (r *udpReader) batchLoop() (bool, error) { return false, nil }
