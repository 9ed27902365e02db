package pool_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/storetest"
	"github.com/mnpool/mnpool/internal/testenv"
	"github.com/mnpool/mnpool/internal/testgalera"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/liveness"
)

// The heartbeat helper (helper mode "heartbeat" of TestMain): the test
// binary re-executed with these variables heartbeats as a pool member until
// it is killed, so that a test can pause it (SIGSTOP) like a hung member.
const (
	envDSN      = "MNPOOL_TEST_HEARTBEAT_DSN"
	envMember   = "MNPOOL_TEST_HEARTBEAT_MEMBER"
	envInterval = "MNPOOL_TEST_HEARTBEAT_INTERVAL"
)

func heartbeatHelper() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	iv, err := time.ParseDuration(os.Getenv(envInterval))
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	s, err := pool.Open(ctx, os.Getenv(envDSN), pool.WithSelf(os.Getenv(envMember)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	defer s.Close()
	// Its clock is an hour ahead of everyone else's: it changes nothing.
	o, err := liveness.NewObserver(liveness.Config{SuspectAfter: 1 * time.Second, DeadAfter: 3 * time.Second},
		liveness.WithClock(func() time.Time { return time.Now().Add(time.Hour) }))
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	h := &pool.Heartbeater{Store: s, Member: os.Getenv(envMember), Interval: iv, Observer: o}
	// Heartbeater.Run, with a line on stdout after every committed beat:
	// the test pauses the process right after one, between transactions
	// (on SQLite a process paused inside a write would block everyone).
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		if _, err := h.Beat(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			if ctx.Err() != nil {
				return 0
			}
		} else {
			fmt.Println("beat")
		}
		select {
		case <-ctx.Done():
			return 0
		case <-t.C:
		}
	}
}

// heartbeatProc is a running helper; beats receives a value after each of
// its beats.
type heartbeatProc struct {
	cmd   *exec.Cmd
	beats chan struct{}
}

// pause stops the helper right after its next beat.
func (p *heartbeatProc) pause(t *testing.T) {
	t.Helper()
	for len(p.beats) > 0 {
		<-p.beats
	}
	select {
	case <-p.beats:
	case <-time.After(testenv.Timeout(10 * time.Second)):
		t.Fatal("the helper stopped beating")
	}
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGSTOP))
}

// startHeartbeatHelper runs the helper for member against dsn and waits
// until it has beaten once.
func startHeartbeatHelper(t *testing.T, dsn, member string, interval time.Duration) *heartbeatProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=heartbeat", envDSN+"="+dsn, envMember+"="+member, envInterval+"="+interval.String())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		cmd.Process.Kill()
		cmd.Wait()
	})
	p := &heartbeatProc{cmd: cmd, beats: make(chan struct{}, 1000)}
	first := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case first <- struct{}{}:
			default:
			}
			select {
			case p.beats <- struct{}{}:
			default:
			}
		}
	}()
	select {
	case <-first:
	case <-time.After(testenv.Timeout(30 * time.Second)):
		t.Fatal("the helper did not beat")
	}
	return p
}

// TestPausedMemberGoesSuspectThenDeadAndComesBack runs member sn1's
// heartbeat in a separate process on Galera node 1 and two observing
// members (mn1 on node 2, sn2 on node 3) in this process, each with its
// own clock offset by hours. sn1's process is paused with SIGSTOP: both
// observers, and the published view a one-shot `mnpool status` reads, see
// it suspect and then dead after the configured silences on their own
// monotonic clocks; after SIGCONT it is alive again.
//
// On SQLite the three share one database file.
func TestPausedMemberGoesSuspectThenDeadAndComesBack(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		dsn := "sqlite:" + filepath.Join(t.TempDir(), "pool.db")
		testPausedMember(t, [3]string{dsn, dsn, dsn})
	})
	t.Run("galera", func(t *testing.T) {
		env := testgalera.Open(t)
		testPausedMember(t, [3]string{env.NodeDSN(1), env.NodeDSN(2), env.NodeDSN(3)})
	})
}

func testPausedMember(t *testing.T, dsns [3]string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s2 := storetest.Open(t, dsns[1], pool.WithSelf("mn1"))
	storetest.Seed(t, s2, 0)
	s3 := storetest.Open(t, dsns[2], pool.WithSelf("sn2"))

	const interval = 100 * time.Millisecond
	cfg := liveness.Config{SuspectAfter: 1 * time.Second, DeadAfter: 3 * time.Second}
	helper := startHeartbeatHelper(t, dsns[0], "sn1", interval)

	observers := map[string]*liveness.Observer{}
	for _, o := range []struct {
		member string
		s      *pool.Store
		skew   time.Duration
	}{{"mn1", s2, -3 * time.Hour}, {"sn2", s3, 7 * time.Hour}} {
		skew := o.skew
		obs, err := liveness.NewObserver(cfg, liveness.WithClock(func() time.Time { return time.Now().Add(skew) }))
		require.NoError(t, err)
		observers[o.member] = obs
		h := &pool.Heartbeater{Store: o.s, Member: o.member, Interval: interval, Observer: obs}
		done := make(chan struct{})
		go func() { defer close(done); h.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}

	// waitFor polls until every observer and the published view agree that
	// sn1 is in state want, and returns how long that took.
	waitFor := func(want liveness.State, limit time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		deadline := time.NewTimer(testenv.Timeout(limit))
		defer deadline.Stop()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			all := true
			for _, o := range observers {
				if o.View().LiveState("sn1") != want {
					all = false
				}
			}
			if all {
				pub, err := s3.PublishedView(ctx)
				require.NoError(t, err)
				if pub.LiveState("sn1") == want {
					return time.Since(start)
				}
			}
			select {
			case <-deadline.C:
				got := map[string]liveness.State{}
				for m, o := range observers {
					got[m] = o.View().LiveState("sn1")
				}
				t.Fatalf("sn1 not %s after %s: observers say %v", want, limit, got)
			case <-tick.C:
			}
		}
	}

	waitFor(liveness.Alive, 10*time.Second)
	helper.pause(t)
	stopped := time.Now()
	waitFor(liveness.Suspect, 10*time.Second)
	toSuspect := time.Since(stopped)
	waitFor(liveness.Dead, 10*time.Second)
	toDead := time.Since(stopped)
	// Not before the configured silence (less the beat that may have been
	// on its way), and the others stay alive throughout.
	require.GreaterOrEqual(t, toSuspect, cfg.SuspectAfter-2*interval)
	require.GreaterOrEqual(t, toDead, cfg.DeadAfter-2*interval)
	for m, o := range observers {
		for _, other := range []string{"mn1", "sn2"} {
			if other != m {
				require.Equal(t, liveness.Alive, o.View().LiveState(other), "%s about %s", m, other)
			}
		}
	}
	st, err := s2.Status(ctx)
	require.NoError(t, err)
	for _, m := range st.Members {
		if m.Name == "sn1" {
			require.Equal(t, liveness.Dead, m.Liveness.State)
			require.Equal(t, []string{"mn1", "sn2"}, m.Liveness.Observers)
		}
	}

	require.NoError(t, helper.cmd.Process.Signal(syscall.SIGCONT))
	waitFor(liveness.Alive, 10*time.Second)
	t.Logf("suspect after %s, dead after %s (suspect %s, dead %s)", toSuspect.Round(time.Millisecond), toDead.Round(time.Millisecond), cfg.SuspectAfter, cfg.DeadAfter)
}
