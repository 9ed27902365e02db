package console

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// DefaultSocket is the broker's local Unix socket.
const DefaultSocket = "/run/mnpool/console.sock"

// ListenUnix listens on the Unix socket path for local administrators.
// A stale socket file is replaced (any other file is an error). The file
// is 0660 with group gid when gid >= 0, else 0600; the broker checks each
// peer's credentials anyway (SO_PEERCRED).
func ListenUnix(path string, gid int) (*net.UnixListener, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("%w: socket path %q: want an absolute path", ErrInvalid, path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("%w: %s exists and is not a socket", ErrInvalid, path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("console: %s: another broker is listening on it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	// A new socket is created 0777 less the umask; connecting needs
	// write permission, which the usual umask (022) leaves to the owner
	// only. The mode is set right after; the peer check is what counts.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("console: listening on %s: %w", path, err)
	}
	mode := os.FileMode(0o600)
	if gid >= 0 {
		mode = 0o660
		err = os.Chown(path, -1, gid)
	}
	if err == nil {
		err = os.Chmod(path, mode)
	}
	if err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// LookupGroup returns the gid of a group name (or number).
func LookupGroup(name string) (int, error) {
	if g, err := user.LookupGroup(name); err == nil {
		return strconv.Atoi(g.Gid)
	}
	if g, err := user.LookupGroupId(name); err == nil {
		return strconv.Atoi(g.Gid)
	}
	return -1, fmt.Errorf("%w: group %q: no such group", ErrInvalid, name)
}

// errPeerCred: the peer's credentials could not be read.
var errPeerCred = errors.New("console: reading the peer's credentials")

// unixPeer authenticates a Unix socket peer by SO_PEERCRED: root, or a
// user whose primary or supplementary group (as the system's group
// database says) is gid.
func (b *Broker) unixPeer(c *net.UnixConn) (peer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return peer{}, fmt.Errorf("%w: %v", errPeerCred, err)
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return peer{}, fmt.Errorf("%w: %v", errPeerCred, errors.Join(err, cerr))
	}
	id := Identity{User: "uid:" + strconv.Itoa(int(cred.Uid)), Auth: AuthUnixSocket, On: b.self, UID: int(cred.Uid)}
	gids := []string{strconv.Itoa(int(cred.Gid))}
	if u, err := user.LookupId(strconv.Itoa(int(cred.Uid))); err == nil {
		if validIdentName(u.Username) {
			id.User = u.Username
		}
		if more, err := u.GroupIds(); err == nil {
			gids = append(gids, more...)
		}
	}
	admitted := cred.Uid == 0
	for _, g := range gids {
		if b.o.socketGID >= 0 && g == strconv.Itoa(b.o.socketGID) {
			admitted = true
		}
		if gr, err := user.LookupGroupId(g); err == nil && validIdentName(gr.Name) && !containsStr(id.Groups, gr.Name) {
			id.Groups = append(id.Groups, gr.Name)
		}
	}
	p := peer{id: id, addr: "unix:uid=" + strconv.Itoa(int(cred.Uid)) + ",pid=" + strconv.Itoa(int(cred.Pid))}
	if !admitted {
		return p, fmt.Errorf("%w: uid %d (%s) is neither root nor in the console socket group", ErrForbidden, cred.Uid, id.User)
	}
	return p, nil
}

func containsStr(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
