package supervise

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// parentDeathSignal is what the kernel sends the supervisor when its
// parent dies. The supervisor checks getppid on every signal, so the
// choice only has to be catchable.
const parentDeathSignal = syscall.SIGUSR2

// poll is how often the supervisor looks at its parent and children
// between signals.
const poll = 50 * time.Millisecond

// reportFD is the supervisor's end of the status pipe (ExtraFiles[0]).
const reportFD = 3

// Main makes this process the supervisor when Start started it as one,
// and then never returns. In any other process it returns at once. Call
// it first thing in main.
func Main() {
	if len(os.Args) == 0 || os.Args[0] != Arg0 {
		return
	}
	os.Exit(supervisor(os.Args[1:], os.Stderr))
}

// supervisor runs the command named in args (GRACE_MS PARENT_PID PATH --
// ARGV...) and returns the supervisor's exit code.
func supervisor(args []string, stderr io.Writer) int {
	runtime.LockOSThread() // the command's PDEATHSIG is tied to this thread
	syscall.CloseOnExec(reportFD)
	report := os.NewFile(reportFD, "report")
	if len(args) < 5 || args[3] != "--" {
		fmt.Fprintf(stderr, "%s: internal use only (started by mnpool)\n", Arg0)
		return 125
	}
	graceMS, err1 := strconv.ParseInt(args[0], 10, 64)
	parent, err2 := strconv.Atoi(args[1])
	if err1 != nil || err2 != nil {
		fmt.Fprintf(stderr, "%s: bad arguments %q\n", Arg0, args[:2])
		return 125
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, parentDeathSignal, syscall.SIGCHLD)
	if err := setSubreaper(); err != nil {
		fmt.Fprintf(stderr, "%s: PR_SET_CHILD_SUBREAPER: %v\n", Arg0, err)
		return 125
	}
	if os.Getppid() != parent {
		return 125 // the parent died before we got going: start nothing
	}
	proc, err := os.StartProcess(args[2], args[4:], &os.ProcAttr{
		Env:   os.Environ(),
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Sys:   &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL},
	})
	if err != nil {
		fmt.Fprintf(stderr, "mnpool: starting %s: %v\n", args[2], err)
		return 127
	}
	sv := &state{self: os.Getpid(), parent: parent, cmd: proc.Pid, grace: time.Duration(graceMS) * time.Millisecond}
	proc.Release()
	ws := sv.run(sigs)
	fmt.Fprintf(report, "%d\n", uint32(ws))
	report.Close()
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return 125
}

type state struct {
	self, parent, cmd int
	grace             time.Duration
	status            syscall.WaitStatus // the command's, once cmdDone
	cmdDone           bool
	orphaned          bool      // the parent died: kill everything now
	killAt            time.Time // when stopping: SIGKILL from then on
}

// run supervises until the command and every descendant are gone, and
// returns the command's wait status.
func (s *state) run(sigs <-chan os.Signal) syscall.WaitStatus {
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for s.reap() {
		if !s.orphaned && os.Getppid() != s.parent {
			s.orphaned = true
		}
		switch {
		case s.orphaned:
			signalTree(s.self, syscall.SIGKILL)
		case !s.killAt.IsZero() && !time.Now().Before(s.killAt):
			signalTree(s.self, syscall.SIGKILL)
		case s.killAt.IsZero() && s.cmdDone:
			s.stop() // the command ended and left descendants behind
		}
		select {
		case sig := <-sigs:
			switch {
			case sig == syscall.SIGCHLD:
			case os.Getppid() != s.parent:
				s.orphaned = true
			case sig != parentDeathSignal:
				s.stop()
			}
		case <-tick.C:
		}
	}
	return s.status
}

// stop starts the graceful end: SIGTERM to every descendant now, SIGKILL
// after the grace period.
func (s *state) stop() {
	if s.killAt.IsZero() {
		s.killAt = time.Now().Add(s.grace)
		signalTree(s.self, syscall.SIGTERM)
	}
}

// reap collects every exited child (the command, and orphans reparented
// to us) and reports whether any child is left.
func (s *state) reap() bool {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.ECHILD:
			return false
		case err != nil || pid <= 0:
			return true
		case pid == s.cmd:
			s.status, s.cmdDone = ws, true
		}
	}
}

func setSubreaper() error {
	_, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
	if e != 0 {
		return e
	}
	return nil
}

// signalTree sends sig to every descendant of pid. Orphans are
// reparented to pid (a subreaper), so a descendant whose parent died is
// still found; one forked between the scan and the signal is found on the
// next call.
func signalTree(pid int, sig syscall.Signal) int {
	n := 0
	for _, d := range descendants(pid) {
		if syscall.Kill(d, sig) == nil {
			n++
		}
	}
	return n
}

// descendants lists the processes below pid, from /proc.
func descendants(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp, ok := ppidOf(p); ok {
			children[pp] = append(children[pp], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// ppidOf reads the parent pid from /proc/PID/stat ("pid (comm) state
// ppid ..."; comm may contain spaces and parentheses).
func ppidOf(pid int) (int, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0, false
	}
	pp, err := strconv.Atoi(f[1])
	return pp, err == nil
}

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER from <linux/prctl.h>.
const prSetChildSubreaper = 36
