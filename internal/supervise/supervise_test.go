package supervise_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/supervise"
)

// envParent makes the test binary a parent that starts a supervised
// command and waits for it (the process the tests kill -9).
const envParent = "SUPERVISE_TEST_PARENT"

func TestMain(m *testing.M) {
	supervise.Main()
	if cmd := os.Getenv(envParent); cmd != "" {
		p, err := supervise.Start(supervise.Command{Path: "sh", Args: []string{"sh", "-c", cmd}, Stdout: os.Stdout, Stderr: os.Stderr})
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(3)
		}
		p.Wait()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestExitStatus(t *testing.T) {
	var out bytes.Buffer
	p, err := supervise.Start(supervise.Command{Path: "sh", Args: []string{"sh", "-c", "echo hello; exit 7"}, Stdout: &out})
	require.NoError(t, err)
	var ee *supervise.ExitError
	require.ErrorAs(t, p.Wait(), &ee)
	require.Equal(t, 7, ee.ExitCode())
	require.Equal(t, "hello\n", out.String())

	p, err = supervise.Start(supervise.Command{Path: "sh", Args: []string{"sh", "-c", "kill -USR1 $$"}})
	require.NoError(t, err)
	require.ErrorAs(t, p.Wait(), &ee)
	require.True(t, ee.Status.Signaled())
	require.Equal(t, syscall.SIGUSR1, ee.Status.Signal())
	require.Equal(t, 128+int(syscall.SIGUSR1), ee.ExitCode())

	p, err = supervise.Start(supervise.Command{Path: "true"})
	require.NoError(t, err)
	require.NoError(t, p.Wait())

	_, err = supervise.Start(supervise.Command{Path: "/nonexistent/cmd"})
	require.Error(t, err)
}

// tree is a command whose descendants escape the usual ways: a child in
// a new session (setsid), and an orphan (double fork). Each writes its
// pid into dir.
func tree(dir string) string {
	return `cd ` + dir + ` || exit 1
setsid sh -c 'echo $$ > setsid.pid; exec sleep 1000' &
(sh -c 'echo $$ > orphan.pid; exec sleep 1000' &)
while [ ! -s setsid.pid ] || [ ! -s orphan.pid ]; do sleep 0.01; done
echo $$ > cmd.pid
wait`
}

func readPids(t *testing.T, dir string) []int {
	t.Helper()
	var pids []int
	for _, f := range []string{"cmd.pid", "setsid.pid", "orphan.pid"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return nil
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return nil
		}
		pids = append(pids, pid)
	}
	return pids
}

// alive: the process exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && !strings.HasPrefix(strings.TrimSpace(s[i+1:]), "Z")
}

func waitPids(t *testing.T, dir string) []int {
	t.Helper()
	var pids []int
	require.Eventually(t, func() bool {
		pids = readPids(t, dir)
		return pids != nil
	}, 30*time.Second, 10*time.Millisecond, "the command tree did not start")
	return pids
}

func requireAllDead(t *testing.T, pids []int) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, p := range pids {
			if alive(p) {
				return false
			}
		}
		return true
	}, 30*time.Second, 10*time.Millisecond, "processes %v outlived their parent", pids)
}

// TestParentKilled: kill -9 of the process that started the supervisor
// kills the command and every descendant, setsid and orphaned ones too.
func TestParentKilled(t *testing.T) {
	dir := t.TempDir()
	parent := exec.Command(os.Args[0])
	parent.Env = append(os.Environ(), envParent+"="+tree(dir))
	require.NoError(t, parent.Start())
	pids := waitPids(t, dir)
	for _, p := range pids {
		require.True(t, alive(p), "pid %d", p)
	}
	require.NoError(t, parent.Process.Signal(syscall.SIGKILL))
	parent.Wait()
	requireAllDead(t, pids)
}

// TestStop: Stop sends SIGTERM to every descendant, and SIGKILL after the
// grace period to one that ignores it.
func TestStop(t *testing.T) {
	dir := t.TempDir()
	cmd := tree(dir) + "\n"
	cmd = strings.Replace(cmd, "cd "+dir+" || exit 1", "cd "+dir+" || exit 1\ntrap '' TERM", 1)
	p, err := supervise.Start(supervise.Command{Path: "sh", Args: []string{"sh", "-c", cmd}, Grace: 300 * time.Millisecond})
	require.NoError(t, err)
	pids := waitPids(t, dir)
	p.Stop()
	err = p.Wait()
	var ee *supervise.ExitError
	require.ErrorAs(t, err, &ee, "%v", err)
	require.True(t, ee.Status.Signaled())
	require.Equal(t, syscall.SIGKILL, ee.Status.Signal(), "the shell ignores SIGTERM")
	requireAllDead(t, pids)
}

// TestLeftovers: a command that ends leaves nothing running behind it.
func TestLeftovers(t *testing.T) {
	dir := t.TempDir()
	cmd := strings.Replace(tree(dir), "\nwait", "", 1)
	p, err := supervise.Start(supervise.Command{Path: "sh", Args: []string{"sh", "-c", cmd}})
	require.NoError(t, err)
	require.NoError(t, p.Wait())
	pids := readPids(t, dir)
	require.Len(t, pids, 3)
	requireAllDead(t, pids)
}

func TestSupervisorKilled(t *testing.T) {
	p, err := supervise.Start(supervise.Command{Path: "sleep", Args: []string{"sleep", "1000"}})
	require.NoError(t, err)
	require.NoError(t, syscall.Kill(p.Pid(), syscall.SIGKILL))
	err = p.Wait()
	require.True(t, errors.Is(err, supervise.ErrSupervisor), "%v", err)
}
