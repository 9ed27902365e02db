//go:build linux

package console

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ptyConn is a command running under a pseudo-terminal: reads and writes
// go to the pty master.
type ptyConn struct {
	master *os.File
	cmd    *exec.Cmd
	exited chan struct{}
	grace  time.Duration
	once   sync.Once
	err    error
}

// openPTY allocates a pseudo-terminal pair. The master stays in the Go
// poller (non-blocking), so Close interrupts a pending Read.
func openPTY() (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	var n uint32
	var ioErr error
	rc, err := master.SyscallConn()
	if err == nil {
		err = rc.Control(func(fd uintptr) {
			if ioErr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ioErr != nil {
				return
			}
			n, ioErr = unix.IoctlGetUint32(int(fd), unix.TIOCGPTN)
		})
	}
	if err = errors.Join(err, ioErr); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("allocating a pseudo-terminal: %w", err)
	}
	slave, err = os.OpenFile("/dev/pts/"+strconv.FormatUint(uint64(n), 10), os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	return master, slave, nil
}

func startPTY(prog string, argv, env []string, grace time.Duration) (*ptyConn, error) {
	master, slave, err := openPTY()
	if err != nil {
		return nil, err
	}
	defer slave.Close()
	if rc, err := slave.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 80})
		})
	}
	cmd := &exec.Cmd{
		Path:   prog,
		Args:   argv,
		Env:    env,
		Dir:    "/",
		Stdin:  slave,
		Stdout: slave,
		Stderr: slave,
		// A session of its own with the pty as controlling terminal;
		// Ctty is the child's fd 0 (Stdin).
		SysProcAttr: &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0},
	}
	if err := cmd.Start(); err != nil {
		master.Close()
		return nil, err
	}
	c := &ptyConn{master: master, cmd: cmd, exited: make(chan struct{}), grace: grace}
	go func() {
		cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

func (c *ptyConn) Read(p []byte) (int, error) {
	n, err := c.master.Read(p)
	if err != nil && errors.Is(err, syscall.EIO) {
		// Linux returns EIO on the master once the last slave fd closed:
		// the program exited.
		err = io.EOF
	}
	return n, err
}

func (c *ptyConn) Write(p []byte) (int, error) { return c.master.Write(p) }

// Close closes the pty and ends the program: SIGHUP comes with the pty,
// then SIGTERM to its process group, SIGKILL after the grace period. It
// returns when the program has exited.
func (c *ptyConn) Close() error {
	c.once.Do(func() {
		c.err = c.master.Close()
		pid := c.cmd.Process.Pid
		select {
		case <-c.exited:
			return
		default:
		}
		syscall.Kill(-pid, syscall.SIGTERM)
		t := time.NewTimer(c.grace)
		defer t.Stop()
		select {
		case <-c.exited:
		case <-t.C:
			syscall.Kill(-pid, syscall.SIGKILL)
			<-c.exited
		}
	})
	return c.err
}
