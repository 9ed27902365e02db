//go:build !linux

package dns

import "net"

// listenUDP opens one UDP socket on addr (SO_REUSEPORT spreading is
// Linux only).
func listenUDP(addr string, _ int) ([]*net.UDPConn, error) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, err
	}
	return []*net.UDPConn{pc.(*net.UDPConn)}, nil
}
