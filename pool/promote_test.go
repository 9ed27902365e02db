package pool_test

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/storetest"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
	"github.com/mnpool/mnpool/pool/siteschema"
)

func TestPromoteMakesMemberMN(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx := context.Background()
		storetest.Seed(t, s, 3)
		v0, err := s.Version(ctx)
		require.NoError(t, err)

		p, err := s.Promote(ctx, "sn1", pool.PromoteOptions{Reason: "test"})
		require.NoError(t, err)
		require.Equal(t, pool.Promotion{Previous: pool.Master{Member: "mn1", Epoch: 1}, Master: pool.Master{Member: "sn1", Epoch: 2}}, p)

		m, err := s.Master(ctx)
		require.NoError(t, err)
		require.Equal(t, pool.Master{Member: "sn1", Epoch: 2}, m)
		site, err := s.Site(ctx)
		require.NoError(t, err)
		require.Equal(t, "sn1", site[siteschema.Master], "site.master follows the master record")
		v1, err := s.Version(ctx)
		require.NoError(t, err)
		require.Greater(t, v1, v0, "the change feed moved")

		audits := storetest.PromoteAudits(t, s)
		require.Len(t, audits, 1)
		require.Equal(t, "sn1", audits[0].Target)
		require.JSONEq(t, `{"from":"mn1","from_epoch":1,"epoch":2,"reason":"test"}`, audits[0].Detail)

		epochs, err := s.Epochs(ctx, 0)
		require.NoError(t, err)
		want := []pool.EpochRecord{
			{Epoch: 2, Member: "sn1", Previous: "mn1"},
			{Epoch: 1, Member: "mn1", Closed: true},
		}
		require.Empty(t, cmp.Diff(want, epochs))

		// And back: every promotion is one more epoch.
		p, err = s.Promote(ctx, "mn1", pool.PromoteOptions{})
		require.NoError(t, err)
		require.Equal(t, pool.Master{Member: "mn1", Epoch: 3}, p.Master)
		require.Len(t, storetest.PromoteAudits(t, s), 2)
	})
}

func TestPromoteRefusals(t *testing.T) {
	tests := []struct {
		name   string
		prep   func(t *testing.T, s *pool.Store)
		member string
		opts   pool.PromoteOptions
		want   error
		// winner is the master record a conflict must name.
		winner *pool.Master
		// after is the master record after the call.
		after pool.Master
	}{
		{name: "not a member", member: "sn9", want: pool.ErrNotFound, after: pool.Master{Member: "mn1", Epoch: 1}},
		{name: "bad name", member: "sn_1;drop", want: pool.ErrInvalid, after: pool.Master{Member: "mn1", Epoch: 1}},
		{name: "negative epoch", member: "sn1", opts: pool.PromoteOptions{Epoch: -1}, want: pool.ErrInvalid, after: pool.Master{Member: "mn1", Epoch: 1}},
		{
			name: "disabled member",
			prep: disable("sn2"), member: "sn2", want: pool.ErrConflict, after: pool.Master{Member: "mn1", Epoch: 1},
		},
		{
			name: "stale epoch names the winner",
			prep: func(t *testing.T, s *pool.Store) {
				_, err := s.Promote(context.Background(), "sn2", pool.PromoteOptions{})
				require.NoError(t, err)
			},
			member: "sn1", opts: pool.PromoteOptions{Epoch: 1}, want: pool.ErrConflict,
			winner: &pool.Master{Member: "sn2", Epoch: 2}, after: pool.Master{Member: "sn2", Epoch: 2},
		},
		{
			name: "stale epoch when the member itself won meanwhile",
			prep: func(t *testing.T, s *pool.Store) {
				_, err := s.Promote(context.Background(), "sn1", pool.PromoteOptions{})
				require.NoError(t, err)
			},
			member: "sn1", opts: pool.PromoteOptions{Epoch: 1}, want: pool.ErrConflict,
			winner: &pool.Master{Member: "sn1", Epoch: 2}, after: pool.Master{Member: "sn1", Epoch: 2},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := storetest.Open(t, "sqlite:"+filepath.Join(t.TempDir(), "pool.db"))
			storetest.Seed(t, s, 0)
			if tc.prep != nil {
				tc.prep(t, s)
			}
			before := len(storetest.PromoteAudits(t, s))
			_, err := s.Promote(ctx, tc.member, tc.opts)
			require.ErrorIs(t, err, tc.want)
			var ce *pool.PromoteConflictError
			if tc.winner != nil {
				require.ErrorAs(t, err, &ce)
				require.Equal(t, *tc.winner, ce.Winner)
				require.Contains(t, err.Error(), tc.winner.Member+" is the MN of epoch")
			} else {
				require.False(t, errors.As(err, &ce))
			}
			m, err := s.Master(ctx)
			require.NoError(t, err)
			require.Equal(t, tc.after, m)
			require.Len(t, storetest.PromoteAudits(t, s), before, "a refused promotion writes no audit record")
		})
	}
}

func TestPromoteDisabledWithAllowDisabled(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t, "sqlite:"+filepath.Join(t.TempDir(), "pool.db"))
	storetest.Seed(t, s, 0)
	disable("sn2")(t, s)
	p, err := s.Promote(ctx, "sn2", pool.PromoteOptions{AllowDisabled: true})
	require.NoError(t, err)
	require.Equal(t, pool.Master{Member: "sn2", Epoch: 2}, p.Master)
}

func TestPromoteCurrentMNChangesNothing(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx := context.Background()
		storetest.Seed(t, s, 0)
		v0, err := s.Version(ctx)
		require.NoError(t, err)
		p, err := s.Promote(ctx, "mn1", pool.PromoteOptions{})
		require.NoError(t, err)
		require.Equal(t, pool.Promotion{Previous: pool.Master{Member: "mn1", Epoch: 1}, Master: pool.Master{Member: "mn1", Epoch: 1}, Unchanged: true}, p)
		v1, err := s.Version(ctx)
		require.NoError(t, err)
		require.Equal(t, v0, v1, "nothing written")
		require.Empty(t, storetest.PromoteAudits(t, s))
	})
}

func TestPromoteUninitializedPool(t *testing.T) {
	s := storetest.Open(t, "sqlite:"+filepath.Join(t.TempDir(), "pool.db"))
	_, err := s.Promote(context.Background(), "sn1", pool.PromoteOptions{})
	require.ErrorIs(t, err, pool.ErrNotInitialized)
}

// TestPromoteConcurrentOneWinner starts three promotions of three members
// from the same epoch at once, each through its own store.
func TestPromoteConcurrentOneWinner(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "pool.db")
	ctx := context.Background()
	first := storetest.Open(t, dsn)
	storetest.Seed(t, first, 0)
	addMember(t, first, "sn3", "10.0.0.4")
	members := []string{"sn1", "sn2", "sn3"}
	errs := promoteAtOnce(t, ctx, members, func(i int) *pool.Store { return storetest.Open(t, dsn) }, 1)
	winner := checkOneWinner(t, members, errs, pool.Master{Member: "mn1", Epoch: 1})
	m, err := first.Master(ctx)
	require.NoError(t, err)
	require.Equal(t, winner, m)
	require.Len(t, storetest.PromoteAudits(t, first), 1)
}

func addMember(t testing.TB, s *pool.Store, name, ip string) {
	t.Helper()
	m := pool.Member{Name: name, Services: service.All(), Addresses: map[string]netip.Addr{"mgmt": netip.MustParseAddr(ip)}}
	require.NoError(t, s.AddMember(context.Background(), m, false))
}

// promoteAtOnce promotes members[i] through store(i), all released at the
// same moment, from epoch.
func promoteAtOnce(t testing.TB, ctx context.Context, members []string, store func(i int) *pool.Store, epoch int64) []error {
	t.Helper()
	stores := make([]*pool.Store, len(members))
	for i := range members {
		stores[i] = store(i)
		// Warm the connection so that the start is not spread by dialing.
		_, err := stores[i].Master(ctx)
		require.NoError(t, err)
	}
	errs := make([]error, len(members))
	var wg sync.WaitGroup
	startGate := make(chan struct{})
	for i, m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startGate
			_, errs[i] = stores[i].Promote(ctx, m, pool.PromoteOptions{Epoch: epoch, Reason: "race"})
		}()
	}
	close(startGate)
	wg.Wait()
	return errs
}

// checkOneWinner asserts exactly one nil error and a conflict naming the
// winner at from.Epoch+1 for every other one; it returns the winner.
func checkOneWinner(t testing.TB, members []string, errs []error, from pool.Master) pool.Master {
	t.Helper()
	var winner pool.Master
	wins := 0
	for i, err := range errs {
		if err == nil {
			wins++
			winner = pool.Master{Member: members[i], Epoch: from.Epoch + 1}
		}
	}
	require.Equal(t, 1, wins, "exactly one promotion wins: %v", errs)
	for i, err := range errs {
		if err == nil {
			continue
		}
		require.ErrorIs(t, err, pool.ErrConflict, "promotion of %s", members[i])
		var ce *pool.PromoteConflictError
		require.ErrorAs(t, err, &ce)
		require.Equal(t, winner, ce.Winner, "the loser %s is told the winner", members[i])
		require.Equal(t, from.Epoch, ce.From)
	}
	return winner
}

func TestTxAsMNFencesByEpoch(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx := context.Background()
		storetest.Seed(t, s, 0)
		tok, err := s.Master(ctx)
		require.NoError(t, err)
		write := func(tok pool.Master, value string) error {
			return s.TxAsMN(ctx, tok, func(tx *sqlx.Tx) error {
				_, err := tx.ExecContext(ctx, s.Dialect().Upsert("site", []string{"name"}, []string{"name", "value"}), "fenced-test", value)
				return err
			})
		}
		require.NoError(t, write(tok, "one"))
		_, err = s.Promote(ctx, "sn1", pool.PromoteOptions{})
		require.NoError(t, err)
		err = write(tok, "two")
		require.ErrorIs(t, err, pool.ErrStaleEpoch)
		require.Contains(t, err.Error(), "the MN is sn1 of epoch 2")
		require.ErrorIs(t, write(pool.Master{Member: "mn1", Epoch: 2}, "three"), pool.ErrStaleEpoch, "right epoch, wrong member")
		require.ErrorIs(t, write(pool.Master{}, "four"), pool.ErrStaleEpoch)
		site, err := s.Site(ctx)
		require.NoError(t, err)
		require.Equal(t, "one", site["fenced-test"], "only the write of the current epoch landed")

		require.NoError(t, write(pool.Master{Member: "sn1", Epoch: 2}, "five"))
		epochs, err := s.Epochs(ctx, 1)
		require.NoError(t, err)
		require.Equal(t, []pool.EpochRecord{{Epoch: 2, Member: "sn1", Previous: "mn1", FencedWrites: 1}}, epochs)
	})
}

// disable returns a prep step that disables member.
func disable(member string) func(t *testing.T, s *pool.Store) {
	return func(t *testing.T, s *pool.Store) {
		m, err := s.Member(context.Background(), member)
		require.NoError(t, err)
		m.Disabled = true
		require.NoError(t, s.AddMember(context.Background(), m, true))
	}
}
