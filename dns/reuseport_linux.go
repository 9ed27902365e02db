package dns

import (
	"context"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// listenUDP opens n UDP sockets on addr with SO_REUSEPORT, so that the
// kernel spreads queries over them by client address and port; with
// port 0 they all share the port the first one got.
func listenUDP(addr string, n int) ([]*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	var out []*net.UDPConn
	fail := func(err error) ([]*net.UDPConn, error) {
		for _, c := range out {
			c.Close()
		}
		return nil, err
	}
	for i := 0; i < max(n, 1); i++ {
		pc, err := lc.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			return fail(err)
		}
		out = append(out, pc.(*net.UDPConn))
		if i == 0 {
			host, _, _ := net.SplitHostPort(addr)
			_, port, _ := net.SplitHostPort(pc.LocalAddr().String())
			addr = net.JoinHostPort(host, port)
		}
	}
	return out, nil
}
