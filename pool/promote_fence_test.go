package pool_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/storetest"
	"github.com/mnpool/mnpool/locking"
	"github.com/mnpool/mnpool/pool"
)

// TestPromoteFencedByLockToken: a promotion fenced by a lock token that
// is no longer current (another holder took the lock since) writes
// nothing; with the current token it promotes.
func TestPromoteFencedByLockToken(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t, "sqlite:"+filepath.Join(t.TempDir(), "pool.db"))
	storetest.Seed(t, s, 0)
	lk, err := locking.New(s)
	require.NoError(t, err)
	old, err := lk.TryLock(ctx, "makemn")
	require.NoError(t, err)
	require.NoError(t, old.Unlock(ctx))
	cur, err := lk.TryLock(ctx, "makemn")
	require.NoError(t, err)
	defer cur.Unlock(ctx)

	v0, err := s.Version(ctx)
	require.NoError(t, err)
	_, err = s.Promote(ctx, "sn1", pool.PromoteOptions{Fence: old.Guard})
	require.ErrorIs(t, err, locking.ErrStaleToken)
	m, err := s.Master(ctx)
	require.NoError(t, err)
	require.Equal(t, pool.Master{Member: "mn1", Epoch: 1}, m)
	v1, err := s.Version(ctx)
	require.NoError(t, err)
	require.Equal(t, v0, v1, "nothing written")

	p, err := s.Promote(ctx, "sn1", pool.PromoteOptions{Fence: cur.Guard})
	require.NoError(t, err)
	require.Equal(t, pool.Master{Member: "sn1", Epoch: 2}, p.Master)
}
