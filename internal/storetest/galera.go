package storetest

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/mnpool/mnpool/internal/testgalera"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
	"github.com/stretchr/testify/require"
)

// The local test cluster runs Galera node N on 127.0.0.(10+N). The pool
// below puts member i's database address on network "db" accordingly:
// mn1 on node 1, sn1 on node 2, sn2 on node 3 (sn3 has no database).

// GaleraMember is a member GaleraPool adds.
type GaleraMember struct {
	Name string
	Node int // the Galera node of its database replica; 0: none
	Mgmt string
}

// GaleraMembers are the members GaleraPool adds.
func GaleraMembers() []GaleraMember {
	return []GaleraMember{
		{"mn1", 1, "10.0.0.1"},
		{"sn1", 2, "10.0.0.2"},
		{"sn2", 3, "10.0.0.3"},
		{"sn3", 0, "10.0.0.4"},
	}
}

// GaleraPool seeds the pool in env's database and returns a store that
// knows every node.
func GaleraPool(t testing.TB, env *testgalera.Env) *pool.Store {
	t.Helper()
	ctx := context.Background()
	s := Open(t, env.DSN(), pool.WithLoopbackNetworks())
	Seed(t, s, 30)
	require.NoError(t, s.AddNetwork(ctx, pool.Network{Name: "db", Prefix: netip.MustParsePrefix("127.0.0.0/24")}, false))
	for _, gm := range GaleraMembers() {
		m := pool.Member{Name: gm.Name, Services: service.All(), Addresses: map[string]netip.Addr{"mgmt": netip.MustParseAddr(gm.Mgmt)}}
		if gm.Node > 0 {
			m.Addresses["db"] = netip.AddrFrom4([4]byte{127, 0, 0, byte(10 + gm.Node)})
		}
		_, err := s.Member(ctx, gm.Name)
		require.NoError(t, s.AddMember(ctx, m, err == nil))
	}
	return s
}

// OpenMember opens dsn as member, with quick health checks, closed when
// the test ends.
func OpenMember(t testing.TB, dsn, member string, opts ...pool.Option) *pool.Store {
	t.Helper()
	s, err := pool.Open(context.Background(), dsn, append([]pool.Option{pool.WithSelf(member), pool.WithHealthInterval(200*time.Millisecond, time.Second)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// MasterOnEveryNode reads the master record through each node alone.
func MasterOnEveryNode(t *testing.T, env *testgalera.Env, skip ...int) []pool.Master {
	t.Helper()
	var out []pool.Master
	for n := 1; n <= env.N(); n++ {
		if slices.Contains(skip, n) {
			continue
		}
		s := OpenMember(t, env.NodeDSN(n), "reader")
		m, err := s.Master(context.Background())
		require.NoError(t, err, "node %d", n)
		out = append(out, m)
	}
	return out
}
