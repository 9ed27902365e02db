package pool_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/storetest"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/liveness"
)

// fakeClock is a monotonic clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func states(v liveness.View) map[string]liveness.State {
	out := map[string]liveness.State{}
	for m, l := range v {
		out[m] = l.State
	}
	return out
}

func TestObserverJudgesByLocalSilence(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	o, err := liveness.NewObserver(liveness.Config{SuspectAfter: 5 * time.Second, DeadAfter: 20 * time.Second}, liveness.WithClock(clk.now))
	require.NoError(t, err)
	require.Empty(t, o.View(), "nothing observed yet")

	// First sight proves nothing: unknown, whatever the counter says.
	o.Observe(map[string]int64{"a": 7, "b": 1_000_000})
	require.Equal(t, map[string]liveness.State{"a": liveness.Unknown, "b": liveness.Unknown}, states(o.View()))

	type step struct {
		name    string
		advance time.Duration
		counts  map[string]int64
		want    map[string]liveness.State
	}
	steps := []step{
		{"a moves, b does not", time.Second, map[string]int64{"a": 8, "b": 1_000_000},
			map[string]liveness.State{"a": liveness.Alive, "b": liveness.Unknown}},
		{"a silent 4s", 4 * time.Second, map[string]int64{"a": 8, "b": 1_000_000},
			map[string]liveness.State{"a": liveness.Alive, "b": liveness.Suspect}},
		{"a silent 5s: suspect", time.Second, map[string]int64{"a": 8, "b": 1_000_000},
			map[string]liveness.State{"a": liveness.Suspect, "b": liveness.Suspect}},
		{"b silent 20s since first sight: dead", 14 * time.Second, map[string]int64{"a": 8, "b": 1_000_000},
			map[string]liveness.State{"a": liveness.Suspect, "b": liveness.Dead}},
		{"a silent 20s: dead", time.Second, map[string]int64{"a": 8, "b": 1_000_000},
			map[string]liveness.State{"a": liveness.Dead, "b": liveness.Dead}},
		{"both move again (b reset to 0 by a re-add)", time.Second, map[string]int64{"a": 9, "b": 0},
			map[string]liveness.State{"a": liveness.Alive, "b": liveness.Alive}},
		{"c joins, a leaves", time.Second, map[string]int64{"b": 1, "c": 5},
			map[string]liveness.State{"b": liveness.Alive, "c": liveness.Unknown}},
	}
	for _, s := range steps {
		clk.advance(s.advance)
		o.Observe(s.counts)
		require.Empty(t, cmp.Diff(s.want, states(o.View())), s.name)
	}

	// Without samples, judgements stop aging: silence is measured up to
	// the last successful sample, not to now.
	clk.advance(time.Hour)
	require.Equal(t, liveness.Alive, o.View()["b"].State)
	require.Equal(t, time.Duration(0), o.View()["b"].Silent)
}

func TestLivenessConfigValidation(t *testing.T) {
	_, err := liveness.NewObserver(liveness.Config{SuspectAfter: 10 * time.Second, DeadAfter: 5 * time.Second})
	require.ErrorIs(t, err, pool.ErrInvalid)
	require.ErrorContains(t, err, "must be longer")
	o, err := liveness.NewObserver(liveness.Config{})
	require.NoError(t, err)
	require.Equal(t, liveness.Config{SuspectAfter: liveness.DefaultSuspectAfter, DeadAfter: liveness.DefaultDeadAfter}, o.Config())
	require.Greater(t, liveness.DefaultDeadAfter, 20*time.Second, "dead must exceed Galera's default failure detection (5s + 15s)")
}

func TestHeartbeatIsNotAPoolChange(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx := context.Background()
		storetest.Seed(t, s, 0)
		v0, err := s.Version(ctx)
		require.NoError(t, err)
		audit0, err := s.AuditLog(ctx, 1000)
		require.NoError(t, err)
		for i := 1; i <= 3; i++ {
			c, err := s.Heartbeat(ctx, "sn1")
			require.NoError(t, err)
			require.Equal(t, int64(i), c)
		}
		hb, err := s.Heartbeats(ctx)
		require.NoError(t, err)
		require.Equal(t, map[string]int64{"mn1": 0, "sn1": 3, "sn2": 0}, hb)
		v1, err := s.Version(ctx)
		require.NoError(t, err)
		require.Equal(t, v0, v1, "a heartbeat moved the change counter")
		audit1, err := s.AuditLog(ctx, 1000)
		require.NoError(t, err)
		require.Len(t, audit1, len(audit0), "a heartbeat was audited")
		_, err = s.Heartbeat(ctx, "nope")
		require.ErrorIs(t, err, pool.ErrNotFound)
	})
}

// TestPublishedLiveness runs three heartbeaters that publish their
// observations (driven beat by beat, with a fake clock per observer) and
// checks what a one-shot reader sees, on both backends.
func TestPublishedLiveness(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx := context.Background()
		storetest.Seed(t, s, 0)
		cfg := liveness.Config{SuspectAfter: 3 * time.Second, DeadAfter: 6 * time.Second}
		hbs := map[string]*pool.Heartbeater{}
		clocks := map[string]*fakeClock{}
		for i, m := range []string{"mn1", "sn1", "sn2"} {
			// Clocks far apart: only their own rates matter.
			clocks[m] = &fakeClock{t: time.Unix(int64(i)*1_000_000, 0)}
			o, err := liveness.NewObserver(cfg, liveness.WithClock(clocks[m].now))
			require.NoError(t, err)
			hbs[m] = &pool.Heartbeater{Store: s, Member: m, Observer: o}
		}
		round := func(who ...string) {
			for _, m := range []string{"mn1", "sn1", "sn2"} {
				clocks[m].advance(time.Second)
			}
			for _, m := range who {
				_, err := hbs[m].Beat(ctx)
				require.NoError(t, err)
			}
		}
		view := func() map[string]liveness.State {
			v, err := s.PublishedView(ctx)
			require.NoError(t, err)
			return states(v)
		}
		// Nobody published yet: every member is unknown.
		require.Equal(t, map[string]liveness.State{"mn1": liveness.Unknown, "sn1": liveness.Unknown, "sn2": liveness.Unknown}, view())

		round("mn1", "sn1", "sn2")
		round("mn1", "sn1", "sn2")
		require.Equal(t, map[string]liveness.State{"mn1": liveness.Alive, "sn1": liveness.Alive, "sn2": liveness.Alive}, view())

		// sn2 stops (paused: its rows freeze with its counter). The others
		// saw its last beat one round late (they beat before it).
		for range 4 {
			round("mn1", "sn1")
		}
		require.Equal(t, liveness.Suspect, view()["sn2"])
		for range 3 {
			round("mn1", "sn1")
		}
		got := view()
		require.Equal(t, map[string]liveness.State{"mn1": liveness.Alive, "sn1": liveness.Alive, "sn2": liveness.Dead}, got)
		obs, err := s.Observations(ctx)
		require.NoError(t, err)
		for _, o := range obs {
			if o.Observer == "sn2" {
				// Its frozen words still look current by its own
				// counter, but the others call it dead: not credible.
				require.True(t, o.Current, "%+v", o)
				require.False(t, o.Credible, "%+v", o)
			} else {
				require.True(t, o.Credible, "%+v", o)
			}
		}
		full, err := s.PublishedView(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{"mn1", "sn1"}, full["sn2"].Observers)

		// sn2 resumes: alive again at the next round of observations.
		round("mn1", "sn1", "sn2")
		round("mn1", "sn1", "sn2")
		require.Equal(t, map[string]liveness.State{"mn1": liveness.Alive, "sn1": liveness.Alive, "sn2": liveness.Alive}, view())

		// Status carries the published liveness.
		st, err := s.Status(ctx)
		require.NoError(t, err)
		for _, m := range st.Members {
			require.NotNil(t, m.Liveness, m.Name)
			require.Equal(t, liveness.Alive, m.Liveness.State, m.Name)
		}
	})
}

func TestHeartbeaterRunAndWatch(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		storetest.Seed(t, s, 0)
		h := &pool.Heartbeater{Store: s, Member: "sn1", Interval: 20 * time.Millisecond}
		done := make(chan error, 1)
		go func() { done <- h.Run(ctx) }()
		o, err := liveness.NewObserver(liveness.Config{SuspectAfter: 150 * time.Millisecond, DeadAfter: 300 * time.Millisecond})
		require.NoError(t, err)
		v, err := o.Watch(ctx, s, 400*time.Millisecond, 20*time.Millisecond)
		require.NoError(t, err)
		require.Equal(t, map[string]liveness.State{"mn1": liveness.Dead, "sn1": liveness.Alive, "sn2": liveness.Dead}, states(v))
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
	})
}
