package console_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/console"
	"github.com/mnpool/mnpool/internal/testenv"
	"github.com/mnpool/mnpool/internal/testgalera"
)

// Two contenders that both saw a dead holder's lease stale for the TTL
// take it over at the same moment, on different database nodes: exactly
// one wins (the takeover is one conditional UPDATE on the counter).
func TestLeaseConcurrentTakeoverOneWins(t *testing.T) {
	eachBackend(t, 3, func(t *testing.T, dsns []string) {
		ctx := context.Background()
		const ttl = time.Second
		dead := newTable(t, dsns[0], "sn1", ttl)
		b := newTable(t, dsns[1], "sn2", ttl)
		c := newTable(t, dsns[2], "mn1", ttl)
		nodes := []string{"cn001", "cn002", "cn003", "cn004", "cn005"}
		tokens := map[string]int64{}
		for _, node := range nodes {
			ld, err := dead.TryAcquire(ctx, node)
			require.NoError(t, err)
			tokens[node] = ld.Token()
		}
		console.Abandon(dead) // crashed: nobody renews its leases
		for _, node := range nodes {
			for _, tb := range []*console.LeaseTable{b, c} {
				_, err := tb.TryAcquire(ctx, node)
				require.ErrorIs(t, err, console.ErrLeaseHeld)
			}
		}
		time.Sleep(ttl + 100*time.Millisecond)
		for _, node := range nodes {
			var wg sync.WaitGroup
			results := make([]error, 2)
			leases := make([]console.Lease, 2)
			for i, tb := range []*console.LeaseTable{b, c} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					leases[i], results[i] = tb.TryAcquire(ctx, node)
				}()
			}
			wg.Wait()
			won := 0
			for i, err := range results {
				if err == nil {
					won++
					require.Equal(t, tokens[node]+1, leases[i].Token())
				} else {
					require.ErrorIs(t, err, console.ErrLeaseHeld, "node %s", node)
				}
			}
			require.Equal(t, 1, won, "%s: exactly one contender takes the lease", node)
		}
	})
}

// The holder's database node is cut off: its renewals fail, it gives the
// lease up on its own clock, and only after that does a member on the
// majority side take it over.
func TestGaleraPartitionedHolderStepsBack(t *testing.T) {
	env := testgalera.Open(t, testgalera.WithFaults())
	ctx := context.Background()
	// Well above Galera's failure detection in the test cluster
	// (evs.inactive_timeout 4 s): a lease must outlast it.
	const ttl = 8 * time.Second
	a, err := console.NewLeaseTable(openStore(t, env.NodeDSN(1), "sn1"), "sn1", ttl, nil)
	require.NoError(t, err)
	defer a.Close(ctx)
	b, err := console.NewLeaseTable(openStore(t, env.NodeDSN(2), "sn2"), "sn2", ttl, nil)
	require.NoError(t, err)
	defer b.Close(ctx)

	la, err := a.TryAcquire(ctx, "cn001")
	require.NoError(t, err)
	env.Isolate(t, 1)
	isolated := time.Now()

	lostAt := make(chan time.Time, 1)
	go func() {
		<-la.Done()
		lostAt <- time.Now()
	}()
	var lb console.Lease
	deadline := time.Now().Add(testenv.Timeout(60 * time.Second))
	for {
		lb, err = b.TryAcquire(ctx, "cn001")
		if err == nil {
			break
		}
		if !errors.Is(err, console.ErrLeaseHeld) {
			t.Logf("contender: %v", err) // the majority may need a moment
		}
		require.True(t, time.Now().Before(deadline), "no takeover within 60s: %v", err)
		time.Sleep(200 * time.Millisecond)
	}
	took := time.Now()
	select {
	case <-la.Done():
	default:
		t.Fatal("the contender took the lease while the partitioned holder still trusted it")
	}
	require.ErrorIs(t, la.Err(), console.ErrLeaseLost)
	lost := <-lostAt
	require.True(t, lost.Before(took), "holder stepped back at %s, contender took over at %s", lost.Sub(isolated), took.Sub(isolated))
	require.Greater(t, lb.Token(), la.Token())
	t.Logf("partitioned holder stepped back %s after isolation; contender took over %s after isolation (TTL %s)",
		lost.Sub(isolated).Round(time.Millisecond), took.Sub(isolated).Round(time.Millisecond), ttl)
}
