package nodecfg_test

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

// nodeMode is how a fake node behaves.
type nodeMode int

const (
	// modeOK runs every command with /bin/sh in the node's home, like sshd.
	modeOK nodeMode = iota
	// modeStall accepts TCP connections and never says a word.
	modeStall
	// modeHang logs in and accepts commands but never finishes them.
	modeHang
)

// sshNode is a fake compute node: a real SSH server (x/crypto/ssh) on
// loopback that runs commands with /bin/sh in its own home directory,
// with stub systemctl and ip commands that record their arguments in
// home/calls.
type sshNode struct {
	Addr    string
	Home    string
	HostKey ssh.PublicKey
	execs   atomic.Int32
	mode    nodeMode
	cfg     *ssh.ServerConfig
	env     []string
	wg      sync.WaitGroup
}

func newKey(t testing.TB) ssh.Signer {
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

// startNode starts a fake node that accepts user root with clientKey.
func startNode(t testing.TB, clientKey ssh.PublicKey, mode nodeMode) *sshNode {
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
	hk := newKey(t)
	n := &sshNode{Home: home, HostKey: hk.PublicKey(), mode: mode,
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
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

func (n *sshNode) serve(c net.Conn) {
	if n.mode == modeStall {
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

func (n *sshNode) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
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
		if n.mode == modeHang {
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

// calls returns what the stub commands recorded.
func (n *sshNode) calls(t testing.TB) string {
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
