package pool_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/storetest"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/liveness"
)

// Problem: 90 s after every agent had stopped, status and route still said
// "mn1 alive", with no age for the judgement. AgedView measures the age by
// watching the publishers' counters and calls silent publishers stale.
func TestAgedViewCallsStoppedAgentsStale(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx := context.Background()
		storetest.Seed(t, s, 0)
		const iv = 100 * time.Millisecond
		cfg := liveness.Config{SuspectAfter: 5 * iv, DeadAfter: 10 * iv}
		run := func(ctx context.Context, members ...string) *sync.WaitGroup {
			var wg sync.WaitGroup
			for _, m := range members {
				o, err := liveness.NewObserver(cfg)
				require.NoError(t, err)
				h := &pool.Heartbeater{Store: s, Member: m, Observer: o, Interval: iv}
				wg.Add(1)
				go func() { defer wg.Done(); _ = h.Run(ctx) }()
			}
			return &wg
		}
		actx, stop := context.WithCancel(ctx)
		wg := run(actx, "mn1", "sn1", "sn2")
		require.Eventually(t, func() bool {
			v, err := s.PublishedView(ctx)
			return err == nil && v.LiveState("mn1") == liveness.Alive && v.LiveState("sn1") == liveness.Alive
		}, 30*time.Second, iv)

		// Agents running: judgements are fresh and have an age.
		v, err := s.AgedView(ctx, pool.AgeOptions{Interval: iv})
		require.NoError(t, err)
		for _, m := range []string{"mn1", "sn1", "sn2"} {
			require.False(t, v[m].Stale, "%s: %+v", m, v[m])
			require.Positive(t, v[m].Age, m)
		}

		// Every agent stops.
		stop()
		wg.Wait()
		published, err := s.PublishedView(ctx)
		require.NoError(t, err)
		require.Equal(t, liveness.Alive, published.LiveState("mn1"), "the published rows alone still look alive (the bug)")
		v, err = s.AgedView(ctx, pool.AgeOptions{Interval: iv})
		require.NoError(t, err)
		for _, m := range []string{"mn1", "sn1", "sn2"} {
			require.True(t, v[m].Stale, "%s: %+v", m, v[m])
			require.GreaterOrEqual(t, v[m].Age, pool.DefaultStaleIntervalsForTest*iv, m)
		}
		st, err := s.StatusAged(ctx, pool.AgeOptions{Interval: iv})
		require.NoError(t, err)
		for _, m := range st.Members {
			require.True(t, m.Liveness.Stale, m.Name)
		}
	})
}

// PublishedLiveness follows what the agents publish (issue 14: a product
// running a console broker without the agent needs it).
func TestPublishedLivenessFollows(t *testing.T) {
	s := storetest.Open(t, storetest.Backends()[0].DSN(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	storetest.Seed(t, s, 0)
	var pl liveness.Published
	require.Equal(t, liveness.Unknown, pl.LiveState("sn1"))
	done := make(chan struct{})
	go func() { defer close(done); pl.Follow(ctx, s, 20*time.Millisecond, nil) }()
	cfg := liveness.Config{SuspectAfter: time.Second, DeadAfter: 2 * time.Second}
	o, err := liveness.NewObserver(cfg)
	require.NoError(t, err)
	h := &pool.Heartbeater{Store: s, Member: "mn1", Observer: o}
	require.Eventually(t, func() bool {
		if _, err := h.Beat(ctx); err != nil {
			return false
		}
		_, _ = s.Heartbeat(ctx, "sn1")
		return pl.LiveState("sn1") == liveness.Alive
	}, 30*time.Second, 50*time.Millisecond)
	cancel()
	<-done
}
