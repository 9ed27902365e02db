package console_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/console"
	"github.com/mnpool/mnpool/internal/testenv"
)

// fakeClock is a monotonic clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_000_000, 0)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTable(t *testing.T, dsn, member string, ttl time.Duration) (*console.LeaseTable, *fakeClock) {
	t.Helper()
	lt, err := console.NewLeaseTable(openStore(t, dsn, member), member, ttl, nil)
	require.NoError(t, err)
	t.Cleanup(func() { lt.Close(context.Background()) })
	clk := newFakeClock()
	console.SetClock(lt, clk.now)
	return lt, clk
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
		a, _ := newTable(t, dsns[0], "sn1", time.Hour)
		b, _ := newTable(t, dsns[1], "sn2", time.Hour)

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
// unchanged for the whole TTL on its own clock; a renewal in between
// starts its wait again; the old holder learns it lost the lease.
func TestLeaseTakeoverOnlyAfterTTLOnOwnClock(t *testing.T) {
	eachBackend(t, 2, func(t *testing.T, dsns []string) {
		ctx := context.Background()
		const ttl = time.Hour // real tickers never fire during the test
		a, _ := newTable(t, dsns[0], "sn1", ttl)
		b, clk := newTable(t, dsns[1], "sn2", ttl)
		la, err := a.TryAcquire(ctx, "cn001")
		require.NoError(t, err)

		_, err = b.TryAcquire(ctx, "cn001") // first observation
		require.ErrorIs(t, err, console.ErrLeaseHeld)
		clk.advance(ttl - time.Second)
		_, err = b.TryAcquire(ctx, "cn001")
		require.ErrorIs(t, err, console.ErrLeaseHeld, "not stale before the TTL")

		console.Renew(a) // the holder is alive: the counter moves
		clk.advance(2 * time.Second)
		_, err = b.TryAcquire(ctx, "cn001")
		require.ErrorIs(t, err, console.ErrLeaseHeld, "a renewal restarts the contender's wait")
		clk.advance(ttl - time.Second)
		_, err = b.TryAcquire(ctx, "cn001")
		require.ErrorIs(t, err, console.ErrLeaseHeld)

		clk.advance(time.Second)
		lb, err := b.TryAcquire(ctx, "cn001")
		require.NoError(t, err, "unchanged for the TTL: taken over")
		require.Equal(t, la.Token()+1, lb.Token())

		// The old holder's next renewal finds the lease gone.
		console.Renew(a)
		require.True(t, closedWithin(la.Done(), time.Second))
		require.ErrorIs(t, la.Err(), console.ErrLeaseLost)
		require.Empty(t, a.Leases())
		// Its release is a no-op and does not free the new holder's lease.
		require.NoError(t, la.Release(ctx))
		h, err := a.Holders(ctx, nil)
		require.NoError(t, err)
		require.Equal(t, "sn2", h["cn001"].Member)
	})
}

// A holder whose renewals fail gives the lease up on its own clock before
// any contender may take it (4/5 of the TTL).
func TestLeaseExpiresLocallyWhenRenewalsFail(t *testing.T) {
	dsn := backends()[0].dsns(t, 1)[0]
	ctx := context.Background()
	const ttl = 300 * time.Millisecond
	s := openStore(t, dsn, "sn1")
	lt, err := console.NewLeaseTable(s, "sn1", ttl, nil)
	require.NoError(t, err)
	defer lt.Close(ctx)
	clk := newFakeClock()
	console.SetClock(lt, clk.now)
	l, err := lt.TryAcquire(ctx, "cn001")
	require.NoError(t, err)
	require.NoError(t, s.Close()) // every renewal fails from now on

	clk.advance(ttl*4/5 - 10*time.Millisecond)
	require.False(t, closedWithin(l.Done(), 3*ttl), "still valid just before 4/5 of the TTL")
	clk.advance(20 * time.Millisecond)
	require.True(t, closedWithin(l.Done(), 3*ttl), "gone after 4/5 of the TTL")
	require.ErrorIs(t, l.Err(), console.ErrLeaseLost)
}

// A crashed holder's lease stays in the database, renewed by nobody, and
// a contender with a real clock takes it after the TTL.
func TestLeaseAbandonedIsTakenAfterTTL(t *testing.T) {
	dsns := backends()[0].dsns(t, 2)
	ctx := context.Background()
	const ttl = 200 * time.Millisecond
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
	require.GreaterOrEqual(t, time.Since(crashed), ttl)
	require.Equal(t, la.Token()+1, lb.Token())
}
