package pool_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/storetest"
	"github.com/mnpool/mnpool/internal/testgalera"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
	"github.com/mnpool/mnpool/pool/siteschema"
)

// The local test cluster runs Galera node N on 127.0.0.(10+N). The pool
// below puts member i's database address on network "db" accordingly:
// mn1 on node 1, sn1 on node 2, sn2 on node 3 (sn3 has no database).
var galeraMembers = []struct {
	name string
	node int // 0: no database replica
	mgmt string
}{
	{"mn1", 1, "10.0.0.1"},
	{"sn1", 2, "10.0.0.2"},
	{"sn2", 3, "10.0.0.3"},
	{"sn3", 0, "10.0.0.4"},
}

// galeraPool seeds the pool in env's database and returns a store that
// knows every node.
func galeraPool(t testing.TB, env *testgalera.Env) *pool.Store {
	t.Helper()
	ctx := context.Background()
	s := storetest.Open(t, env.DSN(), pool.WithLoopbackNetworks())
	storetest.Seed(t, s, 30)
	require.NoError(t, s.AddNetwork(ctx, pool.Network{Name: "db", Prefix: netip.MustParsePrefix("127.0.0.0/24")}, false))
	for _, gm := range galeraMembers {
		m := pool.Member{Name: gm.name, Services: service.All(), Addresses: map[string]netip.Addr{"mgmt": netip.MustParseAddr(gm.mgmt)}}
		if gm.node > 0 {
			m.Addresses["db"] = netip.AddrFrom4([4]byte{127, 0, 0, byte(10 + gm.node)})
		}
		_, err := s.Member(ctx, gm.name)
		require.NoError(t, s.AddMember(ctx, m, err == nil))
	}
	return s
}

func openMemberStore(t testing.TB, dsn, member string, opts ...pool.Option) *pool.Store {
	t.Helper()
	s, err := pool.Open(context.Background(), dsn, append([]pool.Option{pool.WithSelf(member), pool.WithHealthInterval(200*time.Millisecond, time.Second)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// masterOnEveryNode reads the master record through each node alone.
func masterOnEveryNode(t *testing.T, env *testgalera.Env, skip ...int) []pool.Master {
	t.Helper()
	var out []pool.Master
	for n := 1; n <= env.N(); n++ {
		if hasInt(skip, n) {
			continue
		}
		s := openMemberStore(t, env.NodeDSN(n), "reader")
		m, err := s.Master(context.Background())
		require.NoError(t, err, "node %d", n)
		out = append(out, m)
	}
	return out
}

func hasInt(list []int, n int) bool {
	for _, v := range list {
		if v == n {
			return true
		}
	}
	return false
}

// TestGaleraThreeConcurrentPromotions races three members, each through
// its own Galera node, from the same epoch, for several rounds.
func TestGaleraThreeConcurrentPromotions(t *testing.T) {
	env := testgalera.Open(t)
	ctx := context.Background()
	s := galeraPool(t, env)
	stores := map[string]*pool.Store{}
	for i, gm := range galeraMembers {
		// sn3 has no database node of its own; it uses node 1.
		stores[gm.name] = openMemberStore(t, env.NodeDSN(i%env.N()+1), gm.name)
	}
	cur, err := s.Master(ctx)
	require.NoError(t, err)
	for round := 1; round <= 4; round++ {
		var racers []string
		for _, gm := range galeraMembers {
			if gm.name != cur.Member {
				racers = append(racers, gm.name)
			}
		}
		errs := promoteAtOnce(t, ctx, racers, func(i int) *pool.Store { return stores[racers[i]] }, cur.Epoch)
		winner := checkOneWinner(t, racers, errs, cur)
		require.Equal(t, []pool.Master{winner, winner, winner}, masterOnEveryNode(t, env), "round %d: every node has epoch+1", round)
		site, err := s.Site(ctx)
		require.NoError(t, err)
		require.Equal(t, winner.Member, site[siteschema.Master])
		cur = winner
	}
	epochs, err := s.Epochs(ctx, 0)
	require.NoError(t, err)
	require.Len(t, epochs, 5, "one row per epoch: 1 (closed by the first promotion) and 2..5")
	require.Len(t, promoteAudits(t, s), 4, "one audit record per round")
}
