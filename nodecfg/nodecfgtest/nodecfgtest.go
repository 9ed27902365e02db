// Package nodecfgtest runs fake compute nodes for tests: real SSH servers
// (golang.org/x/crypto/ssh) on loopback that run commands with /bin/sh in
// their own home directory, as sshd does, with stub systemctl and ip
// commands that record their arguments.
package nodecfgtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/ssh"
)

// Mode is how a fake node behaves.
type Mode int

const (
	// OK runs every command with /bin/sh in the node's home, like sshd.
	OK Mode = iota
	// Stall accepts TCP connections and never says a word.
	Stall
	// Hang logs in and accepts commands but never finishes them.
	Hang
)

// Node is a fake compute node: a real SSH server on loopback that runs
// commands with /bin/sh in Home, with stub systemctl and ip commands
// that record their arguments in Home/calls. It accepts user root with
// one client key.
type Node struct {
	Addr    string
	Home    string
	HostKey ssh.PublicKey
	execs   atomic.Int32
	mode    Mode
	cfg     *ssh.ServerConfig
	env     []string
	wg      sync.WaitGroup
}

// NewKey returns a new ed25519 signer.
func NewKey(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const stubSystemctl = `#!/bin/sh
echo "systemctl $*" >>"$HOME/calls"
case "$1 $2" in
"cat chronyd.service"|"cat rsyslog.service") exit 0 ;;
"cat "*) exit 1 ;;
esac
exit 0
`

const stubIP = `#!/bin/sh
echo "ip $*" >>"$HOME/calls"
`

// Start starts a fake node listening on listen (e.g. "127.0.0.1:0") that
// accepts user root with clientKey. It stops at the end of the test.
func Start(t testing.TB, clientKey ssh.PublicKey, mode Mode, listen string) *Node {
	t.Helper()
	home := t.TempDir()
	bin := filepath.Join(home, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"systemctl": stubSystemctl, "ip": stubIP} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	hk := NewKey(t)
	n := &Node{Home: home, HostKey: hk.PublicKey(), mode: mode,
		env: []string{"HOME=" + home, "PATH=" + bin + ":/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}}
	n.cfg = &ssh.ServerConfig{
		PublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if c.User() == "root" && bytes.Equal(k.Marshal(), clientKey.Marshal()) {
				return nil, nil
			}
			return nil, fmt.Errorf("key not authorized for %s", c.User())
		},
	}
	n.cfg.AddHostKey(hk)
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	n.Addr = ln.Addr().String()
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		n.wg.Wait()
	})
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				defer c.Close()
				n.serve(c)
			}()
		}
	}()
	return n
}

func (n *Node) serve(c net.Conn) {
	if n.mode == Stall {
		var b [512]byte
		for {
			if _, err := c.Read(b[:]); err != nil {
				return
			}
		}
	}
	_, chans, reqs, err := ssh.NewServerConn(c, n.cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "sessions only")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.session(ch, creqs)
		}()
	}
}

func (n *Node) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" {
			req.Reply(false, nil)
			continue
		}
		var p struct{ Command string }
		if err := ssh.Unmarshal(req.Payload, &p); err != nil {
			req.Reply(false, nil)
			return
		}
		req.Reply(true, nil)
		n.execs.Add(1)
		if n.mode == Hang {
			continue // never answer; the loop ends when the client goes
		}
		// What sshd does: the user's shell runs the command in $HOME.
		cmd := exec.Command("/bin/sh", "-c", p.Command)
		cmd.Dir, cmd.Env = n.Home, n.env
		cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
		status := uint32(0)
		if err := cmd.Run(); err != nil {
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				status = 255
			} else {
				status = uint32(ee.ExitCode())
			}
		}
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
		return
	}
}

// Execs counts the commands the node was asked to run.
func (n *Node) Execs() int { return int(n.execs.Load()) }

// Calls returns what the stub commands recorded.
func (n *Node) Calls(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(n.Home, "calls"))
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
