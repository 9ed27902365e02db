package makemn_test

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/locking"
	"github.com/mnpool/mnpool/makemn"
	"github.com/mnpool/mnpool/mnguard"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
)

// sqlitePool: MN mn1, SNs sn1..sn3. It returns the DSN.
func sqlitePool(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "pool.db")
	s, err := pool.Open(ctx, dsn, pool.WithMigrate(), pool.WithSelf("mn1"))
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.AddNetwork(ctx, pool.Network{Name: "mgmt", Prefix: netip.MustParsePrefix("10.0.0.0/16")}, false))
	_, err = s.Init(ctx, pool.InitOptions{MN: pool.Member{Name: "mn1", Addresses: map[string]netip.Addr{"mgmt": netip.MustParseAddr("10.0.0.1")}}})
	require.NoError(t, err)
	for i, m := range []string{"sn1", "sn2", "sn3"} {
		require.NoError(t, s.AddMember(ctx, pool.Member{Name: m, Services: service.All(),
			Addresses: map[string]netip.Addr{"mgmt": netip.AddrFrom4([4]byte{10, 0, 0, byte(2 + i)})}}, false))
	}
	return dsn
}

func open(t *testing.T, dsn, self string) *pool.Store {
	t.Helper()
	s, err := pool.Open(context.Background(), dsn, pool.WithSelf(self))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func opts(target string, hold time.Duration) makemn.Options {
	return makemn.Options{MakeMN: makemn.Request{Target: target, Guard: []mnguard.Option{mnguard.WithHold(hold)}}}
}

// While another session holds the makemn lock, Run fails at once with a
// *BusyError naming the holder and its token, and writes nothing.
func TestRunBusy(t *testing.T) {
	dsn := sqlitePool(t)
	ctx := context.Background()
	holder := open(t, dsn, "sn2")
	lk, err := locking.New(holder)
	require.NoError(t, err)
	l, err := lk.TryLock(ctx, makemn.LockName, locking.WithInfo("makemn sn2 (pid 1)"))
	require.NoError(t, err)
	s := open(t, dsn, "sn1")
	v0, err := s.Version(ctx)
	require.NoError(t, err)

	rep, err := makemn.Run(ctx, s, opts("sn1", 0))
	require.ErrorIs(t, err, makemn.ErrBusy)
	require.ErrorIs(t, err, locking.ErrLocked)
	var be *makemn.BusyError
	require.True(t, errors.As(err, &be))
	require.Equal(t, "sn2", be.Member)
	require.Equal(t, l.Token(), be.Token)
	require.Equal(t, "makemn sn2 (pid 1)", be.Info)
	require.False(t, rep.OK)
	require.Len(t, rep.Steps, 1)
	require.Equal(t, makemn.StepLock, rep.Steps[0].Name)
	require.Equal(t, makemn.StepFailed, rep.Steps[0].Status)
	v1, err := s.Version(ctx)
	require.NoError(t, err)
	require.Equal(t, v0, v1, "nothing written")

	// With Wait it waits for the holder.
	go func() { time.Sleep(300 * time.Millisecond); _ = l.Unlock(ctx) }()
	o := opts("sn1", 0)
	o.Wait = time.Minute
	rep, err = makemn.Run(ctx, s, o)
	require.NoError(t, err)
	require.Equal(t, pool.Master{Member: "sn1", Epoch: 2}, rep.Master)
	require.Greater(t, rep.Lock.Token, l.Token())
}

// Three runs at once, each through its own store: one promotes, the two
// others find the lock held; the epoch grows by one.
func TestRunConcurrentOneWins(t *testing.T) {
	dsn := sqlitePool(t)
	ctx := context.Background()
	targets := []string{"sn1", "sn2", "sn3"}
	errs := make([]error, len(targets))
	stores := make([]*pool.Store, len(targets))
	for i, m := range targets {
		stores[i] = open(t, dsn, m)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, m := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = makemn.Run(ctx, stores[i], opts(m, 2*time.Second))
		}()
	}
	close(start)
	wg.Wait()
	var winners []string
	for i, err := range errs {
		if err == nil {
			winners = append(winners, targets[i])
			continue
		}
		require.ErrorIs(t, err, makemn.ErrBusy, targets[i])
	}
	require.Len(t, winners, 1, "errors: %v", errs)
	m, err := stores[0].Master(ctx)
	require.NoError(t, err)
	require.Equal(t, pool.Master{Member: winners[0], Epoch: 2}, m)
}

// A makemn that died holding the lock (its lease stopped moving): a new
// run fails at once, and with Wait takes the lock over after the dead
// lease's TTL.
func TestRunWaitTakesOverADeadHolder(t *testing.T) {
	dsn := sqlitePool(t)
	ctx := context.Background()
	dead, err := pool.Open(ctx, dsn, pool.WithSelf("sn2"))
	require.NoError(t, err)
	lk, err := locking.New(dead)
	require.NoError(t, err)
	l, err := lk.TryLock(ctx, makemn.LockName, locking.WithTTL(time.Second))
	require.NoError(t, err)
	require.NoError(t, dead.Close()) // the holder's renewals fail from now on: it is gone

	s := open(t, dsn, "sn1")
	_, err = makemn.Run(ctx, s, opts("sn1", 0))
	require.ErrorIs(t, err, makemn.ErrBusy)

	o := opts("sn1", 0)
	o.Wait = time.Minute
	rep, err := makemn.Run(ctx, s, o)
	require.NoError(t, err)
	require.Equal(t, pool.Master{Member: "sn1", Epoch: 2}, rep.Master)
	require.Greater(t, rep.Lock.Token, l.Token())
}
