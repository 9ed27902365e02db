package mnguard_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/storetest"
	"github.com/mnpool/mnpool/internal/testenv"
	"github.com/mnpool/mnpool/mnguard"
	"github.com/mnpool/mnpool/pool"
)

// guardClock is a clock the test moves by hand.
type guardClock struct {
	mu sync.Mutex
	t  time.Time
}

func newGuardClock() *guardClock { return &guardClock{t: time.Unix(1_000_000, 0)} }

func (c *guardClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *guardClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func serve(g *mnguard.Guard) (int64, bool) { return g.ServeDynamic() }

func TestMNGuardServesOnlyWhileConfirmed(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx := context.Background()
		storetest.Seed(t, s, 0)
		clk := newGuardClock()
		g, err := mnguard.New(s, "mn1", mnguard.WithTiming(time.Second, 3*time.Second), mnguard.WithHold(2*time.Second), mnguard.WithNow(clk.now))
		require.NoError(t, err)

		e, ok := serve(g)
		require.False(t, ok, "nothing confirmed yet")
		require.Zero(t, e)

		m, err := g.Confirm(ctx)
		require.NoError(t, err)
		require.Equal(t, pool.Master{Member: "mn1", Epoch: 1}, m)
		_, ok = serve(g)
		require.False(t, ok, "confirmed, but the hold is not over")

		clk.advance(time.Second)
		_, err = g.Confirm(ctx)
		require.NoError(t, err)
		_, ok = serve(g)
		require.False(t, ok, "hold: 1s of 2s")

		clk.advance(time.Second)
		e, ok = serve(g)
		require.True(t, ok, "hold over, last confirmation 1s old")
		require.Equal(t, int64(1), e, "the epoch is the fencing token")

		clk.advance(1900 * time.Millisecond)
		_, ok = serve(g)
		require.True(t, ok, "last confirmation 2.9s old, valid for 3s")
		clk.advance(100 * time.Millisecond)
		_, ok = serve(g)
		require.False(t, ok, "last confirmation 3s old: expired")
		st := g.Status()
		require.True(t, st.IsMN)
		require.False(t, st.ServeDynamic)
		require.Equal(t, 3*time.Second, st.SinceConfirm)

		_, err = g.Confirm(ctx)
		require.NoError(t, err)
		_, ok = serve(g)
		require.True(t, ok, "confirmed again in the same epoch: nobody else was MN meanwhile, no new hold")

		// Another member is promoted: the next confirmation ends it at once.
		_, err = s.Promote(ctx, "sn1", pool.PromoteOptions{})
		require.NoError(t, err)
		m, err = g.Confirm(ctx)
		require.NoError(t, err)
		require.Equal(t, pool.Master{Member: "sn1", Epoch: 2}, m)
		_, ok = serve(g)
		require.False(t, ok)
		require.False(t, g.Status().IsMN)

		// The new MN waits out its hold.
		g2, err := mnguard.New(s, "sn1", mnguard.WithTiming(time.Second, 3*time.Second), mnguard.WithHold(2*time.Second), mnguard.WithNow(clk.now))
		require.NoError(t, err)
		_, err = g2.Confirm(ctx)
		require.NoError(t, err)
		_, ok = serve(g2)
		require.False(t, ok)
		clk.advance(time.Second)
		_, err = g2.Confirm(ctx)
		require.NoError(t, err)
		clk.advance(time.Second)
		e, ok = serve(g2)
		require.True(t, ok)
		require.Equal(t, int64(2), e)

		// The old MN, confirming on, stays an SN: the guard never writes.
		for range 3 {
			clk.advance(time.Second)
			_, err = g.Confirm(ctx)
			require.NoError(t, err)
			_, ok = serve(g)
			require.False(t, ok)
		}
		m, err = s.Master(ctx)
		require.NoError(t, err)
		require.Equal(t, pool.Master{Member: "sn1", Epoch: 2}, m)
	})
}

func TestMNGuardStopsWhenItCannotConfirm(t *testing.T) {
	ctx := context.Background()
	s, err := pool.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "pool.db"), pool.WithMigrate())
	require.NoError(t, err)
	storetest.Seed(t, s, 0)
	clk := newGuardClock()
	g, err := mnguard.New(s, "mn1", mnguard.WithTiming(time.Second, 3*time.Second), mnguard.WithHold(0), mnguard.WithNow(clk.now))
	require.NoError(t, err)
	_, err = g.Confirm(ctx)
	require.NoError(t, err)
	_, ok := serve(g)
	require.True(t, ok, "no hold")

	require.NoError(t, s.Close()) // the database is gone
	for i := 1; i <= 2; i++ {
		clk.advance(time.Second)
		_, err = g.Confirm(ctx)
		require.Error(t, err)
		_, ok = serve(g)
		require.True(t, ok, "%ds after the last confirmation: still valid", i)
	}
	clk.advance(time.Second)
	_, err = g.Confirm(ctx)
	require.Error(t, err)
	_, ok = serve(g)
	require.False(t, ok, "3s without a confirmation: stop serving")
	st := g.Status()
	require.Equal(t, int64(1), st.Confirms)
	require.Equal(t, int64(3), st.Failures)
	require.NotEmpty(t, st.LastError)
}

// TestMNGuardRun runs the guard on the real clock: Changed fires when the
// hold ends, when another member is promoted, and when confirmations
// expire without any new read.
func TestMNGuardRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "pool.db")
	s := storetest.Open(t, dsn)
	storetest.Seed(t, s, 0)
	const every, validFor, hold = 20 * time.Millisecond, 150 * time.Millisecond, 60 * time.Millisecond

	run := func(g *mnguard.Guard) chan error {
		done := make(chan error, 1)
		go func() { done <- g.Run(ctx) }()
		return done
	}
	waitChange := func(g *mnguard.Guard, want bool) {
		t.Helper()
		deadline := time.After(testenv.Timeout(5 * time.Second))
		for {
			if _, ok := g.ServeDynamic(); ok == want {
				return
			}
			select {
			case <-g.Changed():
			case <-deadline:
				t.Fatalf("ServeDynamic did not become %v: %+v", want, g.Status())
			}
		}
	}

	g, err := mnguard.New(s, "mn1", mnguard.WithTiming(every, validFor), mnguard.WithHold(hold))
	require.NoError(t, err)
	start := time.Now()
	done := run(g)
	waitChange(g, true)
	require.GreaterOrEqual(t, time.Since(start), hold, "not before the hold")
	require.ErrorIs(t, g.Run(ctx), pool.ErrConflict, "one Run at a time")

	_, err = s.Promote(ctx, "sn1", pool.PromoteOptions{})
	require.NoError(t, err)
	waitChange(g, false)
	require.False(t, g.Status().IsMN)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)

	// A guard whose database disappears stops serving validFor after its
	// last confirmation, woken by its own timer.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	s2, err := pool.Open(ctx, dsn)
	require.NoError(t, err)
	g2, err := mnguard.New(s2, "sn1", mnguard.WithTiming(every, validFor), mnguard.WithHold(0))
	require.NoError(t, err)
	done = make(chan error, 1)
	go func() { done <- g2.Run(ctx) }()
	waitChange(g2, true)
	require.NoError(t, s2.Close())
	waitChange(g2, false)
	st := g2.Status()
	require.True(t, st.IsMN, "still the MN as far as it knows")
	require.GreaterOrEqual(t, st.SinceConfirm, validFor)
	require.Less(t, st.SinceConfirm, validFor+time.Second, "stopped promptly")
	cancel()
	<-done
}

func TestNewMNGuardValidation(t *testing.T) {
	s := storetest.Open(t, "sqlite:"+filepath.Join(t.TempDir(), "pool.db"))
	tests := map[string]struct {
		self string
		opts []mnguard.Option
	}{
		"bad name":              {self: "-x", opts: nil},
		"zero interval":         {self: "mn1", opts: []mnguard.Option{mnguard.WithTiming(0, time.Second)}},
		"validity not longer":   {self: "mn1", opts: []mnguard.Option{mnguard.WithTiming(time.Second, time.Second)}},
		"negative hold":         {self: "mn1", opts: []mnguard.Option{mnguard.WithHold(-time.Second)}},
		"timeout beyond expiry": {self: "mn1", opts: []mnguard.Option{mnguard.WithConfirmTimeout(mnguard.DefaultValidFor)}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := mnguard.New(s, tc.self, tc.opts...)
			require.ErrorIs(t, err, pool.ErrInvalid)
		})
	}
	g, err := mnguard.New(s, "mn1")
	require.NoError(t, err)
	every, validFor, hold := g.Timing()
	require.Equal(t, []time.Duration{mnguard.DefaultConfirmEvery, mnguard.DefaultValidFor, mnguard.DefaultValidFor + mnguard.DefaultConfirmEvery}, []time.Duration{every, validFor, hold})
}
