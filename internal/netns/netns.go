// Package netns builds small networks of Linux network namespaces for
// tests: hosts on one Ethernet segment (a bridge), daemons run inside a
// host with `ip netns exec`, and Go code run inside a host on a locked OS
// thread. Everything it creates is removed when the test ends, failed or
// not.
package netns

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// EnvRequire, set to 1 (CI sets it), turns the skip of Require into a
// failure.
const EnvRequire = "MNPOOL_REQUIRE_NETNS"

// Require skips t unless it can build namespaces: it runs as root and the
// ip command is installed. With MNPOOL_REQUIRE_NETNS=1 that is a failure.
func Require(t testing.TB) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "network namespace tests need root"
	} else if _, err := exec.LookPath("ip"); err != nil {
		why = "network namespace tests need the ip command (iproute2)"
	}
	if why == "" {
		return
	}
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("%s (%s=1)", why, EnvRequire)
	}
	t.Skip(why)
}

// Lab is a set of hosts (one network namespace each) whose eth0 are
// plugged into one bridge, itself in a namespace of its own.
type Lab struct {
	t      testing.TB
	prefix string
	hosts  map[string]bool
}

// New creates the lab: the namespace PREFIX-sw holding bridge br0, and
// per host the namespace PREFIX-HOST with eth0 (up, no address) on the
// bridge and lo up. PREFIX is random, so labs of parallel tests do not
// meet. Host names are short: the bridge ports are called p-HOST (at most
// 15 characters).
func New(t testing.TB, hosts ...string) *Lab {
	t.Helper()
	Require(t)
	b := make([]byte, 3)
	rand.Read(b)
	l := &Lab{t: t, prefix: "mnp" + hex.EncodeToString(b), hosts: map[string]bool{}}
	var created []string
	t.Cleanup(func() {
		for i := len(created) - 1; i >= 0; i-- {
			if out, err := exec.Command("ip", "netns", "del", created[i]).CombinedOutput(); err != nil {
				t.Logf("netns: removing %s: %v: %s", created[i], err, out)
			}
		}
	})
	addNS := func(name string) {
		t.Helper()
		l.run("ip", "netns", "add", name)
		created = append(created, name)
	}
	sw := l.prefix + "-sw"
	addNS(sw)
	l.run("ip", "-n", sw, "link", "add", "br0", "type", "bridge")
	l.run("ip", "-n", sw, "link", "set", "br0", "up")
	for _, h := range hosts {
		if len("p-"+h) > 15 {
			t.Fatalf("netns: host name %q is too long", h)
		}
		ns := l.NS(h)
		addNS(ns)
		l.hosts[h] = true
		l.run("ip", "-n", sw, "link", "add", "p-"+h, "type", "veth", "peer", "name", "eth0", "netns", ns)
		l.run("ip", "-n", sw, "link", "set", "p-"+h, "master", "br0", "up")
		l.run("ip", "-n", ns, "link", "set", "lo", "up")
		l.run("ip", "-n", ns, "link", "set", "eth0", "up")
	}
	return l
}

// NS returns the namespace name of host.
func (l *Lab) NS(host string) string { return l.prefix + "-" + host }

func (l *Lab) run(name string, args ...string) {
	l.t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		l.t.Fatalf("netns: %s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// IP runs `ip -n NS ARGS...` for host and fails the test on error.
func (l *Lab) IP(host string, args ...string) {
	l.t.Helper()
	l.run("ip", append([]string{"-n", l.NS(host)}, args...)...)
}

// Do runs fn inside host's network namespace, on an OS thread of its own
// that is thrown away afterwards. Sockets fn opens stay in the namespace
// after Do returns; child processes fn starts run in it.
func (l *Lab) Do(host string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// The thread is never unlocked: when this goroutine ends the
		// runtime ends the thread, so no other goroutine ever runs in
		// the namespace by accident.
		runtime.LockOSThread()
		fd, err := unix.Open("/run/netns/"+l.NS(host), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("netns: %w", err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("netns: entering %s: %w", l.NS(host), err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Proc is a process started in a host.
type Proc struct {
	cmd     *exec.Cmd
	mu      sync.Mutex
	out     bytes.Buffer
	changed chan struct{}
	done    chan struct{}
	err     error
}

func (p *Proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out.Write(b)
	close(p.changed)
	p.changed = make(chan struct{})
	return len(b), nil
}

// Start runs name with args inside host (`ip netns exec`), with env added
// to this process's environment, and stops it when the test ends.
func (l *Lab) Start(host string, env []string, name string, args ...string) *Proc {
	l.t.Helper()
	p := &Proc{changed: make(chan struct{}), done: make(chan struct{})}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", l.NS(host), name}, args...)...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		l.t.Fatalf("netns: starting %s in %s: %v", name, host, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	l.t.Cleanup(func() {
		p.Stop()
		if l.t.Failed() {
			l.t.Logf("output of %s in %s:\n%s", name, host, p.Output())
		}
	})
	return p
}

// Output returns what the process printed so far.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// WaitFor waits until the output contains s. It fails when the process
// ends first or ctx ends.
func (p *Proc) WaitFor(ctx context.Context, s string) error {
	for {
		p.mu.Lock()
		found := strings.Contains(p.out.String(), s)
		ch := p.changed
		p.mu.Unlock()
		if found {
			return nil
		}
		select {
		case <-ch:
		case <-p.done:
			if strings.Contains(p.Output(), s) {
				return nil
			}
			return fmt.Errorf("netns: process ended (%v) before printing %q", p.err, s)
		case <-ctx.Done():
			return fmt.Errorf("netns: waiting for %q: %w", s, ctx.Err())
		}
	}
}

// Stop ends the process (SIGTERM, then SIGKILL after 5 s) and waits for
// it. It is safe to call more than once.
func (p *Proc) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}
