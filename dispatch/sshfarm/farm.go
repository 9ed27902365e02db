// Package sshfarm is a test node farm: one process serving many SSH
// endpoints on loopback addresses (127.x.y.z, all on one port), each of
// which runs commands with a real shell like a compute node's sshd. It is
// built on golang.org/x/crypto/ssh and is meant for tests and benchmarks
// of parallel shells (mnpool xdsh, pdsh, clush): OpenSSH clients reach it
// through an ssh_config with Port and known_hosts lines from KnownHosts.
//
// Every address of 127.0.0.0/8 is local on Linux, so a thousand nodes
// need no setup; each endpoint takes one file descriptor, and each
// connection one more (see ulimit -n).
package sshfarm

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// DefaultFirst is the first address of a farm.
func DefaultFirst() netip.Addr { return netip.AddrFrom4([4]byte{127, 1, 0, 1}) }

// Options configure a farm.
type Options struct {
	// N is the number of endpoints (required).
	N int
	// First is the first address; the others follow it (default
	// 127.1.0.1). All must be in 127.0.0.0/8.
	First netip.Addr
	// Addrs, when set, are the endpoints' addresses instead of N
	// addresses from First.
	Addrs []netip.Addr
	// Port is the port of every endpoint (0: a free one is picked).
	Port int
	// Authorized are the client keys accepted (required).
	Authorized []ssh.PublicKey
	// HostKey is the host key of every endpoint (nil: a new ed25519 key).
	HostKey ssh.Signer
	// Shell runs each command as Shell -c COMMAND (default /bin/sh).
	Shell string
}

// Farm is a running farm.
type Farm struct {
	o     Options
	addrs []netip.Addr
	port  int
	lns   []net.Listener
	wg    sync.WaitGroup
	ctx   context.Context
	stop  context.CancelFunc
	execs atomic.Int64
	conns atomic.Int64
}

// Start opens the endpoints and serves them until Close.
func Start(o Options) (*Farm, error) {
	if len(o.Addrs) > 0 {
		o.N = len(o.Addrs)
	}
	if o.N < 1 {
		return nil, fmt.Errorf("sshfarm: N %d (want 1 or more)", o.N)
	}
	if len(o.Authorized) == 0 {
		return nil, errors.New("sshfarm: no authorized client key")
	}
	if !o.First.IsValid() {
		o.First = DefaultFirst()
	}
	if o.Shell == "" {
		o.Shell = "/bin/sh"
	}
	if o.HostKey == nil {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		if o.HostKey, err = ssh.NewSignerFromKey(priv); err != nil {
			return nil, err
		}
	}
	f := &Farm{o: o}
	f.addrs = append(f.addrs, o.Addrs...)
	for a := o.First; len(f.addrs) < o.N; a = a.Next() {
		f.addrs = append(f.addrs, a)
	}
	for _, a := range f.addrs {
		if !netip.MustParsePrefix("127.0.0.0/8").Contains(a) {
			return nil, fmt.Errorf("sshfarm: address %s is outside 127.0.0.0/8", a)
		}
	}
	var err error
	for try := 0; try < 20; try++ {
		if err = f.listen(o.Port); err == nil || o.Port != 0 {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	f.ctx, f.stop = context.WithCancel(context.Background())
	cfg := f.serverConfig()
	for _, ln := range f.lns {
		f.wg.Go(func() { f.accept(ln, cfg) })
	}
	return f, nil
}

// listen binds every address on one port (port 0: the first address
// picks it).
func (f *Farm) listen(port int) error {
	f.lns = f.lns[:0]
	for i, a := range f.addrs {
		ln, err := net.Listen("tcp", net.JoinHostPort(a.String(), strconv.Itoa(port)))
		if err != nil {
			for _, l := range f.lns {
				l.Close()
			}
			f.lns = nil
			return fmt.Errorf("sshfarm: listening on %s port %d: %w", a, port, err)
		}
		if i == 0 {
			port = ln.Addr().(*net.TCPAddr).Port
		}
		f.lns = append(f.lns, ln)
	}
	f.port = port
	return nil
}

func (f *Farm) serverConfig() *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			for _, k := range f.o.Authorized {
				if k.Type() == key.Type() && string(k.Marshal()) == string(key.Marshal()) {
					return &ssh.Permissions{}, nil
				}
			}
			return nil, fmt.Errorf("key %s not authorized", ssh.FingerprintSHA256(key))
		},
	}
	cfg.AddHostKey(f.o.HostKey)
	return cfg
}

// Addrs are the endpoints' addresses, in order.
func (f *Farm) Addrs() []netip.Addr { return f.addrs }

// Port is the port of every endpoint.
func (f *Farm) Port() int { return f.port }

// HostKey is the public host key of every endpoint.
func (f *Farm) HostKey() ssh.PublicKey { return f.o.HostKey.PublicKey() }

// Execs counts the commands run so far.
func (f *Farm) Execs() int64 { return f.execs.Load() }

// Conns counts the connections accepted so far.
func (f *Farm) Conns() int64 { return f.conns.Load() }

// KnownHosts returns known_hosts lines for every endpoint.
func (f *Farm) KnownHosts() []byte {
	var b strings.Builder
	for _, a := range f.addrs {
		b.WriteString(knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort(a.String(), strconv.Itoa(f.port)))}, f.HostKey()))
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// SSHConfig returns an OpenSSH client configuration for the farm's
// addresses: its port, the identity file and the known_hosts file.
func (f *Farm) SSHConfig(identity, knownHosts string) []byte {
	return []byte(fmt.Sprintf(`Host 127.*
  Port %d
  IdentityFile %s
  IdentitiesOnly yes
  UserKnownHostsFile %s
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  LogLevel ERROR
`, f.port, identity, knownHosts))
}

// Close stops the farm and waits for its connections to end.
func (f *Farm) Close() error {
	f.stop()
	for _, ln := range f.lns {
		ln.Close()
	}
	f.wg.Wait()
	return nil
}

func (f *Farm) accept(ln net.Listener, cfg *ssh.ServerConfig) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			if f.ctx.Err() != nil {
				return
			}
			time.Sleep(10 * time.Millisecond) // EMFILE and the like
			continue
		}
		f.conns.Add(1)
		f.wg.Go(func() { f.serve(c, cfg) })
	}
}

func (f *Farm) serve(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	stop := context.AfterFunc(f.ctx, func() { c.Close() })
	defer stop()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	c.SetDeadline(time.Time{})
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	var wg sync.WaitGroup
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "session only")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		wg.Go(func() { f.session(sc, ch, creqs) })
	}
	wg.Wait()
}

// session serves one session channel: env requests, then one exec.
func (f *Farm) session(sc *ssh.ServerConn, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	user := sc.User()
	conn := strings.NewReplacer(":", " ").Replace(sc.RemoteAddr().String() + " " + sc.LocalAddr().String())
	env := []string{"SSH_CONNECTION=" + conn, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "USER=" + user, "LOGNAME=" + user, "HOME=/root", "SHELL=" + f.o.Shell}
	for r := range reqs {
		switch r.Type {
		case "env":
			var kv struct{ Name, Value string }
			if ssh.Unmarshal(r.Payload, &kv) == nil {
				env = append(env, kv.Name+"="+kv.Value)
			}
			r.Reply(true, nil)
		case "exec":
			var cmd struct{ Command string }
			if err := ssh.Unmarshal(r.Payload, &cmd); err != nil {
				r.Reply(false, nil)
				return
			}
			r.Reply(true, nil)
			f.execs.Add(1)
			f.run(ch, reqs, cmd.Command, env)
			return
		default:
			r.Reply(false, nil)
		}
	}
}

// run runs command under the shell, wired to ch, and sends its exit
// status. The process is killed when the client closes the channel or
// sends a signal.
func (f *Farm) run(ch ssh.Channel, reqs <-chan *ssh.Request, command string, env []string) {
	cmd := exec.Command(f.o.Shell, "-c", command)
	cmd.Env = env
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = ch, ch.Stderr()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		fmt.Fprintf(ch.Stderr(), "sshfarm: %v\n", err)
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{127}))
		return
	}
	go func() { io.Copy(stdin, ch); stdin.Close() }()
	done := make(chan struct{})
	go func() {
		for {
			select {
			case r, ok := <-reqs:
				if !ok {
					syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
					return
				}
				if r.Type == "signal" {
					syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				}
				r.Reply(false, nil)
			case <-done:
				return
			case <-f.ctx.Done():
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				return
			}
		}
	}()
	err = cmd.Wait()
	close(done)
	status := 0
	if ee, ok := err.(*exec.ExitError); ok {
		status = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			status = 128 + int(ws.Signal())
		}
	} else if err != nil {
		status = 127
	}
	ch.CloseWrite()
	ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(status)}))
}

// WriteFiles writes the client side of a farm into dir: the client key
// (id_ed25519, 0600), known_hosts and ssh_config. It returns the path of
// ssh_config.
func (f *Farm) WriteFiles(dir string, clientKeyPEM []byte) (string, error) {
	id := dir + "/id_ed25519"
	kh := dir + "/known_hosts"
	cfg := dir + "/ssh_config"
	for _, w := range []struct {
		path string
		data []byte
	}{{id, clientKeyPEM}, {kh, f.KnownHosts()}, {cfg, f.SSHConfig(id, kh)}} {
		if err := os.WriteFile(w.path, w.data, 0o600); err != nil {
			return "", err
		}
	}
	return cfg, nil
}
