package cli_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// mnpoolProcess starts `mnpool ARGS...` as a separate process (this test
// binary, see TestMain).
func mnpoolProcess(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	c := exec.Command(os.Args[0], args...)
	c.Env = append(os.Environ(), envRunMnpool+"=1")
	c.Stdout, c.Stderr = os.Stderr, os.Stderr
	require.NoError(t, c.Start())
	return c
}

// TestLockRunKill9 kills the `mnpool lock run` process with SIGKILL while
// its command, a grandchild in a new session (setsid) and an orphaned
// great-grandchild (double fork) all append to one file. The next holder
// then takes the lock over and marks its start in the same file; no line
// of the killed holder's processes may come after that mark. 20 rounds,
// half of them on a directory (install-tree) lock.
func TestLockRunKill9(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "pool.db")
	openLocker(t, db, "mn1") // creates the pool schema
	log, stop := filepath.Join(dir, "log"), filepath.Join(dir, "stop")
	// Should a process survive (the defect this test is for), it stops
	// writing when the test ends.
	t.Cleanup(func() { os.WriteFile(stop, nil, 0o600) })
	const rounds = 20
	for r := 1; r <= rounds; r++ {
		// Half the rounds use the install-tree lock of a directory.
		name := "shared"
		if r > rounds/2 {
			name = filepath.Join(dir, "install", "rhels9")
		}
		tag := fmt.Sprintf("A%d", r)
		writer := func(who string) string {
			return `while [ ! -e ` + stop + ` ]; do echo "` + tag + ` ` + who + `" >> ` + log + `; sleep 0.01; done`
		}
		script := `setsid sh -c '` + writer("setsid") + `' &
(sh -c '` + writer("orphan") + `' &)
` + writer("command")
		a := mnpoolProcess(t, "--db", db, "--self", "mn1", "lock", "run", "--ttl", "1s", name, "--", "sh", "-c", script)
		require.Eventually(t, func() bool {
			b, _ := os.ReadFile(log)
			s := string(b)
			return strings.Contains(s, tag+" command") && strings.Contains(s, tag+" setsid") && strings.Contains(s, tag+" orphan")
		}, 60*time.Second, 10*time.Millisecond, "round %d: the holder's processes did not start", r)
		require.NoError(t, a.Process.Signal(syscall.SIGKILL))
		a.Wait()

		b := mnpoolProcess(t, "--db", db, "--self", "mn2", "lock", "run", "--ttl", "1s", name, "--", "sh", "-c",
			`echo "B`+strconv.Itoa(r)+` start $MNPOOL_LOCK_TOKEN" >> `+log+`; sleep 0.3; echo "B`+strconv.Itoa(r)+` end" >> `+log)
		require.NoError(t, b.Wait(), "round %d: the next holder failed", r)
	}
	time.Sleep(300 * time.Millisecond) // a survivor would keep writing
	f, err := os.Open(log)
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	lastB, starts := 0, 0
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		var r int
		switch {
		case strings.HasPrefix(line, "B") && strings.Contains(line, " start "):
			_, err := fmt.Sscanf(line, "B%d start", &r)
			require.NoError(t, err, line)
			lastB = r
			starts++
		case strings.HasPrefix(line, "A"):
			_, err := fmt.Sscanf(line, "A%d", &r)
			require.NoError(t, err, line)
			require.Greater(t, r, lastB, "line %d %q: a process of killed holder %d wrote after holder B%d started", n, line, r, lastB)
		}
	}
	require.NoError(t, sc.Err())
	require.Equal(t, rounds, starts)
}
