package console_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/console"
	"github.com/mnpool/mnpool/internal/testenv"
)

func newTable(t *testing.T, dsn, member string, ttl time.Duration) *console.LeaseTable {
	t.Helper()
	lt, err := console.NewLeaseTable(openStore(t, dsn, member), member, ttl, nil)
	require.NoError(t, err)
	t.Cleanup(func() { lt.Close(context.Background()) })
	return lt
}

func closedWithin(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(testenv.Timeout(d)):
		return false
	}
}

func TestLeaseAcquireHeldRelease(t *testing.T) {
	eachBackend(t, 2, func(t *testing.T, dsns []string) {
		ctx := context.Background()
		a := newTable(t, dsns[0], "sn1", time.Hour)
		b := newTable(t, dsns[1], "sn2", time.Hour)

		la, err := a.TryAcquire(ctx, "cn001")
		require.NoError(t, err)
		require.Equal(t, int64(1), la.Token())
		again, err := a.TryAcquire(ctx, "cn001")
		require.NoError(t, err)
		require.Same(t, la, again, "the holder gets its own lease back")

		_, err = b.TryAcquire(ctx, "cn001")
		require.ErrorIs(t, err, console.ErrLeaseHeld)
		var he *console.HeldError
		require.ErrorAs(t, err, &he)
		require.Equal(t, console.HeldError{Node: "cn001", Holder: "sn1", Token: 1}, *he)

		h, err := b.Holders(ctx, []string{"cn001", "cn002"})
		require.NoError(t, err)
		require.Equal(t, map[string]console.Holder{"cn001": {Node: "cn001", Member: "sn1", Token: 1}}, h)

		// Released: the next member takes it at once; the token grows.
		require.NoError(t, la.Release(ctx))
		require.True(t, closedWithin(la.Done(), time.Second))
		require.NoError(t, la.Err())
		lb, err := b.TryAcquire(ctx, "cn001")
		require.NoError(t, err)
		require.Equal(t, int64(2), lb.Token())

		// Close releases everything the table holds.
		require.NoError(t, b.Close(ctx))
		require.True(t, closedWithin(lb.Done(), time.Second))
		la2, err := a.TryAcquire(ctx, "cn001")
		require.NoError(t, err)
		require.Equal(t, int64(3), la2.Token())
		require.Equal(t, []string{"cn001"}, a.Leases())
	})
}

// A contender takes a lease over only after it saw the renewal counter
// unchanged for the whole TTL on its own clock: while the holder renews,
// it never does. When the holder's renewals fail, the holder gives the
// lease up (4/5 of the TTL after its last renewal) before the contender
// takes it over, and learns that it lost it.
func TestLeaseTakeoverOnlyAfterTTLOnOwnClock(t *testing.T) {
	eachBackend(t, 2, func(t *testing.T, dsns []string) {
		ctx := context.Background()
		const ttl = 3 * time.Second
		sa := openStore(t, dsns[0], "sn1")
		a, err := console.NewLeaseTable(sa, "sn1", ttl, nil)
		require.NoError(t, err)
		defer a.Close(ctx)
		b := newTable(t, dsns[1], "sn2", ttl)
		la, err := a.TryAcquire(ctx, "cn001")
		require.NoError(t, err)

		for end := time.Now().Add(2 * ttl); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			_, err = b.TryAcquire(ctx, "cn001")
			require.ErrorIs(t, err, console.ErrLeaseHeld, "a renewed lease is never stale")
		}
		require.NoError(t, la.Err())

		require.NoError(t, sa.Close()) // every renewal of the holder fails from now on
		cut := time.Now()
		lostAt := make(chan time.Time, 1)
		go func() {
			<-la.Done()
			lostAt <- time.Now()
		}()
		var lb console.Lease
		waitFor(t, 10*ttl, func() bool {
			lb, err = b.TryAcquire(ctx, "cn001")
			if err != nil {
				require.ErrorIs(t, err, console.ErrLeaseHeld)
			}
			return err == nil
		}, "the lease to be taken over")
		took := time.Now()
		require.Equal(t, la.Token()+1, lb.Token())
		lost := <-lostAt
		require.True(t, lost.Before(took), "holder gave up %s after the cut, contender took over %s after it", lost.Sub(cut), took.Sub(cut))
		require.Less(t, lost.Sub(cut), ttl, "the holder gives up within 4/5 of the TTL after its last renewal")
		require.ErrorIs(t, la.Err(), console.ErrLeaseLost)
		require.Empty(t, a.Leases())
		// Its release is a no-op and does not free the new holder's lease.
		require.NoError(t, la.Release(ctx))
		h, err := b.Holders(ctx, nil)
		require.NoError(t, err)
		require.Equal(t, "sn2", h["cn001"].Member)
	})
}

// A crashed holder's lease stays in the database, renewed by nobody, and
// a contender with a real clock takes it after the TTL.
func TestLeaseAbandonedIsTakenAfterTTL(t *testing.T) {
	dsns := backends()[0].dsns(t, 2)
	ctx := context.Background()
	const ttl = time.Second
	a, err := console.NewLeaseTable(openStore(t, dsns[0], "sn1"), "sn1", ttl, nil)
	require.NoError(t, err)
	b, err := console.NewLeaseTable(openStore(t, dsns[1], "sn2"), "sn2", ttl, nil)
	require.NoError(t, err)
	defer b.Close(ctx)
	la, err := a.TryAcquire(ctx, "cn001")
	require.NoError(t, err)
	time.Sleep(2 * ttl) // the holder renews meanwhile
	_, err = b.TryAcquire(ctx, "cn001")
	require.ErrorIs(t, err, console.ErrLeaseHeld, "a renewed lease is not stale")
	require.Nil(t, la.Err())

	console.Abandon(a)
	crashed := time.Now()
	require.True(t, closedWithin(la.Done(), time.Second))
	var lb console.Lease
	waitFor(t, 10*time.Second, func() bool {
		lb, err = b.TryAcquire(ctx, "cn001")
		return err == nil
	}, "the lease to be taken over")
	// The contender waits the TTL from when it first saw the last renewal,
	// which came before the crash: at most TTL - margin before it, or the
	// holder would have given the lease up. So the takeover comes at least
	// the margin (TTL/5) after the crash.
	require.GreaterOrEqual(t, time.Since(crashed), ttl/5)
	require.Equal(t, la.Token()+1, lb.Token())
}
