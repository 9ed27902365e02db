package pool_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/storetest"
	"github.com/mnpool/mnpool/internal/testgalera"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/siteschema"
)

// TestGaleraThreeConcurrentPromotions races three members, each through
// its own Galera node, from the same epoch, for several rounds.
func TestGaleraThreeConcurrentPromotions(t *testing.T) {
	env := testgalera.Open(t)
	ctx := context.Background()
	s := storetest.GaleraPool(t, env)
	stores := map[string]*pool.Store{}
	for i, gm := range storetest.GaleraMembers() {
		// sn3 has no database node of its own; it uses node 1.
		stores[gm.Name] = storetest.OpenMember(t, env.NodeDSN(i%env.N()+1), gm.Name)
	}
	cur, err := s.Master(ctx)
	require.NoError(t, err)
	for round := 1; round <= 4; round++ {
		var racers []string
		for _, gm := range storetest.GaleraMembers() {
			if gm.Name != cur.Member {
				racers = append(racers, gm.Name)
			}
		}
		errs := promoteAtOnce(t, ctx, racers, func(i int) *pool.Store { return stores[racers[i]] }, cur.Epoch)
		winner := checkOneWinner(t, racers, errs, cur)
		require.Equal(t, []pool.Master{winner, winner, winner}, storetest.MasterOnEveryNode(t, env), "round %d: every node has epoch+1", round)
		site, err := s.Site(ctx)
		require.NoError(t, err)
		require.Equal(t, winner.Member, site[siteschema.Master])
		cur = winner
	}
	epochs, err := s.Epochs(ctx, 0)
	require.NoError(t, err)
	require.Len(t, epochs, 5, "one row per epoch: 1 (closed by the first promotion) and 2..5")
	require.Len(t, storetest.PromoteAudits(t, s), 4, "one audit record per round")
}
