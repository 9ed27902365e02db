//go:build !linux

package console

import (
	"errors"
	"net"
)

// DefaultSocket is the broker's local Unix socket.
const DefaultSocket = "/run/mnpool/console.sock"

// ListenUnix is only supported on Linux.
func ListenUnix(path string, gid int) (*net.UnixListener, error) {
	return nil, errors.New("console: the Unix socket needs Linux (SO_PEERCRED)")
}

// LookupGroup is only supported on Linux.
func LookupGroup(name string) (int, error) { return -1, errors.New("console: groups need Linux") }

func (b *Broker) unixPeer(c *net.UnixConn) (peer, error) {
	return peer{}, errors.New("console: the Unix socket needs Linux (SO_PEERCRED)")
}
