package locking_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/mnpool/mnpool/internal/testenv"
	"github.com/mnpool/mnpool/locking"
	"github.com/mnpool/mnpool/pool"
)

// The paused-holder test runs the holder in a copy of the test binary so
// it can be stopped with SIGSTOP like a real member process.
const (
	helperEnv    = "LOCKING_TEST_HELPER"
	helperDSN    = "LOCKING_TEST_DSN"
	helperName   = "LOCKING_TEST_NAME"
	helperTTL    = "LOCKING_TEST_TTL"
	helperHolder = "holder"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == helperHolder {
		os.Exit(runHolder())
	}
	os.Exit(m.Run())
}

// runHolder takes the lock, prints its token, and once the lease is lost
// reports what Err, Guard and Unlock say.
func runHolder() int {
	ctx := context.Background()
	ttl, err := time.ParseDuration(os.Getenv(helperTTL))
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	s, err := pool.Open(ctx, os.Getenv(helperDSN), pool.WithMigrate(locking.Schema()), pool.WithSelf("paused"))
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	defer s.Close()
	lk, err := locking.New(s, locking.WithTTL(ttl), locking.WithPollInterval(testPoll))
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	l, err := lk.Lock(ctx, os.Getenv(helperName))
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("token", l.Token())
	<-l.Done()
	fmt.Println("lost", l.Err())
	fmt.Println("guard", s.Tx(ctx, func(tx *sqlx.Tx) error { return l.Guard(ctx, tx) }))
	fmt.Println("unlock", l.Unlock(ctx))
	return 0
}

// TestPausedHolder: a holder stopped with SIGSTOP stops renewing; a
// contender takes over after seeing the lease stand still for the TTL;
// the holder, resumed, finds its lease lost, its token refused by Guard,
// and Unlock reporting the loss.
func TestPausedHolder(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		const name = "paused"
		ttl := testTTL
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"="+helperHolder, helperDSN+"="+e.dsn(1), helperName+"="+name, helperTTL+"="+ttl.String())
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Signal(syscall.SIGCONT)
			cmd.Process.Kill()
			cmd.Wait()
		})
		lines := make(chan string, 8)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		next := func(prefix string) string {
			t.Helper()
			select {
			case l, ok := <-lines:
				if !ok || !strings.HasPrefix(l, prefix+" ") {
					t.Fatalf("holder said %q (open %v), want %q ...", l, ok, prefix)
				}
				return strings.TrimPrefix(l, prefix+" ")
			case <-time.After(testenv.Timeout(20 * time.Second)):
				t.Fatalf("holder said nothing, want %q ...", prefix)
			}
			return ""
		}
		token, err := strconv.ParseInt(next("token"), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		// The holder just committed its lock and renews only after TTL/3:
		// it is not inside a database transaction when it stops.
		if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		contender := e.locker(t, 2)
		start := time.Now()
		l := mustLock(t, contender, name)
		took := time.Since(start)
		if took < ttl {
			t.Errorf("takeover after %v, want at least the TTL %v", took, ttl)
		}
		if l.Token() <= token {
			t.Errorf("takeover token %d, want above the paused holder's %d", l.Token(), token)
		}
		if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		for _, want := range []struct{ prefix, text string }{
			{"lost", locking.ErrLeaseLost.Error()},
			{"guard", locking.ErrStaleToken.Error()},
			{"unlock", locking.ErrLeaseLost.Error()},
		} {
			if got := next(want.prefix); !strings.Contains(got, want.text) {
				t.Errorf("resumed holder: %s %q, want it to contain %q", want.prefix, got, want.text)
			}
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("holder exited: %v", err)
		}
		if !l.Held() || !lockInfo(t, contender, name).Held {
			t.Error("the new holder lost the lock when the old one resumed")
		}
		mustUnlock(t, l)
	})
}
