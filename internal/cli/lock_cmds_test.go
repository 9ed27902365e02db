package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/cli"
	"github.com/mnpool/mnpool/internal/testenv"
	"github.com/mnpool/mnpool/locking"
	"github.com/mnpool/mnpool/pool"
)

// syncBuffer is a bytes.Buffer safe to read while a command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lockRun runs `mnpool lock run` in-process and returns the status the
// command asks to exit with (its error's ExitCode, else what cli.Run
// would return), stdout and stderr.
func lockRun(t *testing.T, db string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb syncBuffer
	cmd := cli.NewMnpool(cli.IO{In: strings.NewReader(""), Out: &out, Err: &errb})
	cmd.SetArgs(append([]string{"--db", db, "--self", "mn1", "lock", "run"}, args...))
	err := cmd.ExecuteContext(context.Background())
	var ec interface{ ExitCode() int }
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &ec):
		return ec.ExitCode(), out.String(), errb.String() + err.Error()
	}
	return -1, out.String(), errb.String() + err.Error()
}

func openLocker(t *testing.T, db, self string) (*pool.Store, *locking.Locker) {
	t.Helper()
	s, err := pool.Open(context.Background(), db, pool.WithMigrate(), pool.WithSelf(self))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	lk, err := locking.New(s, locking.WithTTL(time.Second), locking.WithPollInterval(20*time.Millisecond))
	require.NoError(t, err)
	return s, lk
}

func TestLockRun(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "pool.db")
	openLocker(t, db, "mn1") // creates the pool schema
	code, out, errs := lockRun(t, db, "--ttl", "2s", "nightly", "--", "sh", "-c", `echo "$MNPOOL_LOCK_NAME $MNPOOL_LOCK_TOKEN"; exit 3`)
	require.Equal(t, 3, code, errs)
	require.Equal(t, "nightly 1\n", out)
	require.Contains(t, errs, "sh exited with status 3")

	code, out, errs = lockRun(t, db, "nightly", "sh", "-c", `echo $MNPOOL_LOCK_TOKEN`)
	require.Equal(t, 0, code, errs)
	require.Equal(t, "2\n", out, "the token grows; -- is optional")

	dir := filepath.Join(t.TempDir(), "netboot")
	code, out, errs = lockRun(t, db, dir, "--", "sh", "-c", `test "$(cat "$MNPOOL_LOCK_DIR/.mnpool.lock.token")" = "$MNPOOL_LOCK_TOKEN" && echo "$MNPOOL_LOCK_NAME"`)
	require.Equal(t, 0, code, errs)
	require.Equal(t, "install:"+dir+"\n", out)

	var list []locking.Info
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, db, "lock", "list", "--json")), &list))
	require.Len(t, list, 2)
	require.Equal(t, "install:"+dir, list[0].Name)
	require.Equal(t, "nightly", list[1].Name)
	require.Equal(t, int64(2), list[1].Token)
	require.False(t, list[1].Held)
}

func TestLockRunHeld(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "pool.db")
	_, lk := openLocker(t, db, "sn7")
	l, err := lk.Lock(context.Background(), "images", locking.WithInfo("pid 42: copycds"))
	require.NoError(t, err)
	defer l.Unlock(context.Background())

	code, out, errs := lockRun(t, db, "--nonblock", "images", "--", "echo", "ran")
	require.Equal(t, -1, code)
	require.Empty(t, out, "the command must not run")
	require.Contains(t, errs, `lock "images" not acquired (--nonblock)`)
	require.Contains(t, errs, `member "sn7"`)

	start := time.Now()
	code, out, errs = lockRun(t, db, "--wait", "300ms", "images", "--", "echo", "ran")
	require.Equal(t, -1, code)
	require.Empty(t, out)
	require.Contains(t, errs, `not acquired within --wait 300ms`)
	require.Less(t, time.Since(start), testenv.Timeout(5*time.Second))

	listed := mustRun(t, db, "lock", "list", "--held")
	require.Contains(t, listed, "images")
	require.Contains(t, listed, "sn7")
	require.Contains(t, listed, "pid 42: copycds")
}

// TestLockRunLeaseLost: when the lease is lost, the command is killed and
// mnpool says so.
func TestLockRunLeaseLost(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "pool.db")
	s, lk := openLocker(t, db, "sn1")
	type result struct {
		code      int
		out, errs string
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		code, out, errs := lockRun(t, db, "--ttl", "1s", "long", "--", "sleep", "30")
		done <- result{code, out, errs}
	}()
	require.Eventually(t, func() bool {
		list, err := lk.List(context.Background())
		return err == nil && len(list) == 1 && list[0].Held
	}, testenv.Timeout(10*time.Second), 10*time.Millisecond)
	require.NoError(t, s.Tx(context.Background(), func(tx *sqlx.Tx) error {
		_, err := tx.Exec(`DELETE FROM locks WHERE name = 'long'`)
		return err
	}))
	select {
	case r := <-done:
		require.Equal(t, 128+15, r.code, r.errs)
		require.Contains(t, r.errs, `lock "long" lost`)
		require.Contains(t, r.errs, "killing sleep")
		require.Contains(t, r.errs, "sleep killed by signal terminated")
		require.Less(t, time.Since(start), testenv.Timeout(10*time.Second))
	case <-time.After(testenv.Timeout(15 * time.Second)):
		t.Fatal("lock run did not end after its lease was lost")
	}
}

func TestLockRunUsage(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "pool.db")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no command", []string{"lock", "run", "x"}, "want NAME -- COMMAND"},
		{"only dash", []string{"lock", "run", "x", "--"}, "want NAME -- COMMAND"},
		{"bad name", []string{"lock", "run", "a\tb", "--", "true"}, "control characters"},
		{"space in name", []string{"lock", "run", " /install", "--", "true"}, "leading or trailing space"},
		{"unknown command", []string{"lock", "run", "x", "--", "/nonexistent/cmd"}, `command "/nonexistent/cmd"`},
		{"wait and nonblock", []string{"lock", "run", "-n", "--wait", "1s", "x", "--", "true"}, "exclude each other"},
		{"negative wait", []string{"lock", "run", "--wait", "-1s", "x", "--", "true"}, "--wait -1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := mnpool(t, db, tc.args...)
			require.Equal(t, 2, code, errs)
			require.Empty(t, out)
			require.Contains(t, errs, tc.want)
		})
	}
}

// The mnpool program itself exits with the status of the command it ran.
func TestLockRunExitStatusThroughMain(t *testing.T) {
	db := "sqlite:" + t.TempDir() + "/pool.db"
	openLocker(t, db, "mn1") // creates the pool schema
	var out, errb syncBuffer
	code := cli.Mnpool(context.Background(), []string{"--db", db, "--self", "mn1", "lock", "run", "x", "--", "sh", "-c", "exit 7"}, cli.IO{In: strings.NewReader(""), Out: &out, Err: &errb})
	require.Equal(t, 7, code, errb.String())
	require.Contains(t, errb.String(), "sh exited with status 7")
}
