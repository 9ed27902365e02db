package dispatch

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"

	"golang.org/x/crypto/ssh"
)

// Defaults of SSH.
const (
	// DefaultUser is the login user when a request names none.
	DefaultUser = "root"
	// DefaultMaxIdle is how many connections SSH keeps open for reuse.
	DefaultMaxIdle = 128
)

// SSH is the Transport over SSH (golang.org/x/crypto/ssh). Compute nodes
// are logged into with NodeAuth (the compute key, then the pool key),
// members with MemberAuth (the pool key only: members never accept the
// compute key). Host keys are checked with HostKeyCallback, as snmove
// does (knownhosts.New over the known_hosts files).
//
// Connections are kept open for reuse by later Execs to the same user and
// address (a relay member, a second command) up to MaxIdle; Close closes
// them. The zero value is not usable: Auth and HostKeyCallback are
// required.
type SSH struct {
	NodeAuth        []ssh.AuthMethod
	MemberAuth      []ssh.AuthMethod
	HostKeyCallback ssh.HostKeyCallback
	// MaxIdle bounds the connections kept open (0: DefaultMaxIdle; -1:
	// none).
	MaxIdle int
	// Dial opens the TCP connection (default: net.Dialer).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu    sync.Mutex
	conns map[string]*ssh.Client
}

// Close implements Transport.
func (s *SSH) Close() error {
	s.mu.Lock()
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	return nil
}

// Exec implements Transport.
func (s *SSH) Exec(ctx context.Context, e Exec) (int, error) {
	user := e.User
	if user == "" {
		user = DefaultUser
	}
	key := user + "@" + e.Target.Addr
	c, cached := s.cached(key)
	if c == nil {
		var err error
		if c, err = s.connect(ctx, e, user); err != nil {
			return -1, err
		}
	}
	sess, err := c.NewSession()
	if err != nil && cached {
		// The kept connection died: drop it and connect again once.
		s.drop(key, c)
		if c, err = s.connect(ctx, e, user); err != nil {
			return -1, err
		}
		sess, err = c.NewSession()
	}
	if err != nil {
		c.Close()
		return -1, errorf(ErrConnect, "%s (%s): opening a session: %v", e.Target.Name, e.Target.Addr, err)
	}
	kept := cached || s.keep(key, c)
	if !kept {
		defer c.Close()
	}
	code, err := runSession(ctx, sess, e)
	if err != nil && kept && ctx.Err() != nil {
		s.drop(key, c) // the connection may carry a killed session
	}
	return code, err
}

func (s *SSH) cached(key string) (*ssh.Client, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conns[key]
	return c, c != nil
}

func (s *SSH) drop(key string, c *ssh.Client) {
	s.mu.Lock()
	if s.conns[key] == c {
		delete(s.conns, key)
	}
	s.mu.Unlock()
	c.Close()
}

// keep stores c for reuse when there is room.
func (s *SSH) keep(key string, c *ssh.Client) bool {
	limit := s.MaxIdle
	if limit == 0 {
		limit = DefaultMaxIdle
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if limit < 0 || len(s.conns) >= limit || s.conns[key] != nil {
		return false
	}
	if s.conns == nil {
		s.conns = map[string]*ssh.Client{}
	}
	s.conns[key] = c
	return true
}

// connect dials and logs in within the connect timeout.
func (s *SSH) connect(ctx context.Context, e Exec, user string) (*ssh.Client, error) {
	t := e.Target
	auth := s.NodeAuth
	if t.Kind == KindMember {
		auth = s.MemberAuth
	}
	if len(auth) == 0 {
		return nil, errorf(ErrInvalid, "no SSH credentials for %s %s", t.Kind, t.Name)
	}
	if s.HostKeyCallback == nil {
		return nil, errorf(ErrInvalid, "SSH transport has no host key check")
	}
	timeout := e.ConnectTimeout
	if timeout <= 0 {
		timeout = DefaultConnectTimeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dial := s.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	failed := func(step string, err error) error {
		if ctx.Err() != nil {
			return errorf(ErrTimeout, "%s (%s) while %s: %v", t.Name, t.Addr, step, ctx.Err())
		}
		if cctx.Err() != nil {
			return errorf(ErrConnect, "%s (%s): no answer within %s while %s", t.Name, t.Addr, timeout, step)
		}
		return errorf(ErrConnect, "%s (%s): %v", t.Name, t.Addr, err)
	}
	conn, err := dial(cctx, "tcp", t.Addr)
	if err != nil {
		return nil, failed("connecting", err)
	}
	stop := context.AfterFunc(cctx, func() { conn.Close() })
	var hostKeyErr error
	cfg := &ssh.ClientConfig{User: user, Auth: auth, HostKeyCallback: func(h string, r net.Addr, k ssh.PublicKey) error {
		if err := s.HostKeyCallback(h, r, k); err != nil {
			hostKeyErr = err
			return err
		}
		return nil
	}}
	c, chans, reqs, err := ssh.NewClientConn(conn, t.Addr, cfg)
	if !stop() {
		// The timeout closed the connection during the handshake.
		if err == nil {
			c.Close()
		}
		return nil, failed("logging in", cctx.Err())
	}
	if err != nil {
		conn.Close()
		if hostKeyErr != nil {
			return nil, errorf(ErrHostKey, "%s (%s): %v", t.Name, t.Addr, hostKeyErr)
		}
		return nil, failed("logging in", err)
	}
	return ssh.NewClient(c, chans, reqs), nil
}

// runSession runs the command of e in sess and returns its exit status.
func runSession(ctx context.Context, sess *ssh.Session, e Exec) (int, error) {
	defer sess.Close()
	if e.Stdin != nil {
		sess.Stdin = bytes.NewReader(e.Stdin)
	}
	sess.Stdout, sess.Stderr = orDiscard(e.Stdout), orDiscard(e.Stderr)
	stop := context.AfterFunc(ctx, func() {
		sess.Signal(ssh.SIGKILL)
		sess.Close()
	})
	defer stop()
	err := sess.Run(e.Command)
	if ctx.Err() != nil {
		return -1, errorf(ErrTimeout, "%s (%s): %v", e.Target.Name, e.Target.Addr, ctx.Err())
	}
	if err == nil {
		return 0, nil
	}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		if ee.Signal() != "" {
			return 128 + signalNumber(ee.Signal()), nil
		}
		return ee.ExitStatus(), nil
	}
	return -1, errorf(ErrConnect, "%s (%s): the command ended without an exit status: %v", e.Target.Name, e.Target.Addr, err)
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// signalNumber maps the SSH signal names to Linux numbers (for the
// shell's 128+N convention); unknown names give 0.
func signalNumber(name string) int {
	switch ssh.Signal(name) {
	case ssh.SIGHUP:
		return 1
	case ssh.SIGINT:
		return 2
	case ssh.SIGQUIT:
		return 3
	case ssh.SIGABRT:
		return 6
	case ssh.SIGKILL:
		return 9
	case ssh.SIGSEGV:
		return 11
	case ssh.SIGPIPE:
		return 13
	case ssh.SIGALRM:
		return 14
	case ssh.SIGTERM:
		return 15
	}
	return 0
}
