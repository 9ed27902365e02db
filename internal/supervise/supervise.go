// Package supervise runs a command so that it, and everything it starts,
// dies with the process that started it.
//
// A plain child of a Go program survives that program: a SIGKILL leaves it
// running, reparented to init, and its own children (which may have called
// setsid or double-forked) with it. Start therefore runs a small supervisor
// first: the program's own executable (/proc/self/exe), started again in
// supervisor mode, which
//
//   - is started with PR_SET_PDEATHSIG, so the kernel signals it the moment
//     the thread that started it dies, by any signal, SIGKILL included (it
//     also polls getppid as a second line);
//   - is a child subreaper (PR_SET_CHILD_SUBREAPER), so every orphaned
//     descendant of the command, whatever session or process group it put
//     itself in, is reparented to it instead of to init and stays findable;
//   - starts the command in a new process group with PR_SET_PDEATHSIG
//     SIGKILL, so the command dies even if the supervisor itself is killed;
//   - when its parent dies, SIGKILLs every descendant at once (found through
//     /proc) and repeats until none is left;
//   - when asked to stop (Process.Stop), sends SIGTERM to every descendant
//     and SIGKILL to what is left after the grace period;
//   - when the command ends by itself, does the same to what the command
//     left behind (a background job), then exits with the command's status:
//     the same exit code, or killed by the same signal.
//
// The program must call Main first thing in main (and in TestMain of tests
// that start commands), so that the re-executed binary becomes the
// supervisor instead of the program.
//
// What it cannot do: a process in uninterruptible sleep (D state, for
// example blocked on an NFS server) dies only when its I/O returns; and a
// SIGKILL sent to the supervisor itself leaves the command's descendants
// (not the command) running. Writers to shared storage therefore still
// check their fencing token (see docs/LOCKING.md).
package supervise

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Arg0 is the argv[0] that tells Main to act as the supervisor.
const Arg0 = "mnpool-supervisor"

// DefaultGrace is the time between SIGTERM and SIGKILL when Command.Grace
// is zero.
const DefaultGrace = 5 * time.Second

// Command is what Start runs.
type Command struct {
	// Path is the program (looked up in $PATH when it has no slash) and
	// Args its arguments, Args[0] included.
	Path string
	Args []string
	// Env is the command's environment (nil: this process's).
	Env []string
	// Stdin, Stdout and Stderr as in os/exec.Cmd.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Grace is the time between SIGTERM and SIGKILL, both when Stop is
	// called and for descendants left behind by a command that ended.
	Grace time.Duration
}

// Process is a supervised command.
type Process struct {
	cmd   *exec.Cmd
	grace time.Duration
	done  chan struct{}
	err   error // Wait's result, set before done is closed
	once  sync.Once
}

// Start starts the supervisor, which starts c. The supervisor is tied to
// the calling goroutine's OS thread (PR_SET_PDEATHSIG fires when that
// thread exits), so Start keeps a goroutine locked to it until the
// supervisor has been waited for.
func Start(c Command) (*Process, error) {
	if len(c.Args) == 0 {
		c.Args = []string{c.Path}
	}
	path, err := exec.LookPath(c.Path)
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("supervise: finding own executable: %w", err)
	}
	if c.Grace <= 0 {
		c.Grace = DefaultGrace
	}
	// The supervisor reports the command's wait status on this pipe
	// (its fd 3) before it exits.
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("supervise: %w", err)
	}
	args := append([]string{Arg0, strconv.FormatInt(int64(c.Grace/time.Millisecond), 10), strconv.Itoa(os.Getpid()), path, "--"}, c.Args...)
	cmd := &exec.Cmd{Path: self, Args: args, Env: c.Env, Stdin: c.Stdin, Stdout: c.Stdout, Stderr: c.Stderr, ExtraFiles: []*os.File{w}}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own group: a signal to our group (kill -9 -PGID) must not
		// take the supervisor down together with us.
		Setpgid:   true,
		Pdeathsig: parentDeathSignal,
	}
	p := &Process{cmd: cmd, grace: c.Grace, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// PR_SET_PDEATHSIG fires when the thread that forked the
		// supervisor exits, not the process: keep this goroutine on its
		// thread until the supervisor is gone.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer r.Close()
		err := cmd.Start()
		w.Close()
		started <- err
		if err != nil {
			return
		}
		werr := cmd.Wait()
		report, _ := io.ReadAll(io.LimitReader(r, 64))
		p.err = result(report, werr)
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("supervise: starting supervisor: %w", err)
	}
	return p, nil
}

// result turns the supervisor's report (the command's wait status in
// decimal) into Wait's error. Without a report the supervisor itself
// failed or was killed.
func result(report []byte, werr error) error {
	v, err := strconv.ParseUint(strings.TrimSpace(string(report)), 10, 32)
	if err != nil {
		if werr == nil {
			werr = errors.New("no status reported")
		}
		return fmt.Errorf("%w: %v", ErrSupervisor, werr)
	}
	ws := syscall.WaitStatus(v)
	if ws.Exited() && ws.ExitStatus() == 0 {
		return nil
	}
	return &ExitError{Status: ws}
}

// ErrSupervisor means the supervisor ended without reporting the
// command's status (it was killed, or could not start the command).
var ErrSupervisor = errors.New("supervise: supervisor failed")

// ExitError is Wait's error for a command that exited with a non-zero
// status or was killed by a signal.
type ExitError struct {
	Status syscall.WaitStatus
}

func (e *ExitError) Error() string {
	if e.Status.Signaled() {
		return fmt.Sprintf("killed by signal %v", e.Status.Signal())
	}
	return fmt.Sprintf("exit status %d", e.Status.ExitStatus())
}

// ExitCode is the exit status, or 128+N for a command killed by signal N
// (what a shell reports).
func (e *ExitError) ExitCode() int {
	if e.Status.Signaled() {
		return 128 + int(e.Status.Signal())
	}
	return e.Status.ExitStatus()
}

// Pid is the supervisor's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the supervisor (and so the command and all its
// descendants) has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait waits for the supervisor and returns nil when the command exited
// with status 0, an *ExitError carrying its exit code or the signal that
// killed it, or an error wrapping ErrSupervisor.
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// Stop asks the supervisor to end the command: SIGTERM to every
// descendant, SIGKILL after the grace period. It returns at once; Wait
// for the end. Should the supervisor not end within the grace period plus
// five seconds, it is killed.
func (p *Process) Stop() {
	p.once.Do(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		go func() {
			t := time.NewTimer(p.grace + 5*time.Second)
			defer t.Stop()
			select {
			case <-p.done:
			case <-t.C:
				p.cmd.Process.Kill()
			}
		}()
	})
}
