package pool

import (
	"context"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/testgalera"
	"github.com/mnpool/mnpool/pool/service"
)

// TestNodeDiffsConditionalWrite checks node set's batch write: a node
// changed since it was read fails the whole batch with ErrConflict naming
// it, and nothing of the batch is written; a batch read afresh writes
// every column, the MACs and one node.set record per node.
func TestNodeDiffsConditionalWrite(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testNodeDiffs(t, "sqlite:"+filepath.Join(t.TempDir(), "pool.db")) })
	t.Run("galera", func(t *testing.T) { testNodeDiffs(t, testgalera.Open(t).DSN()) })
}

func testNodeDiffs(t *testing.T, dsn string) {
	ctx := context.Background()
	s, err := Open(ctx, dsn, WithMigrate())
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.AddNetwork(ctx, Network{Name: "mgmt", Prefix: netip.MustParsePrefix("10.0.0.0/16")}, false))
	require.NoError(t, s.AddNetwork(ctx, Network{Name: "ib", Prefix: netip.MustParsePrefix("10.1.0.0/16")}, false))
	addrs := func(a, b string) map[string]netip.Addr {
		return map[string]netip.Addr{"mgmt": netip.MustParseAddr(a), "ib": netip.MustParseAddr(b)}
	}
	_, err = s.Init(ctx, InitOptions{MN: Member{Name: "mn1", Addresses: addrs("10.0.0.1", "10.1.0.1")}})
	require.NoError(t, err)
	require.NoError(t, s.AddMember(ctx, Member{Name: "sn1", Services: service.All(), Addresses: addrs("10.0.0.2", "10.1.0.2")}, false))
	require.NoError(t, s.AddNodes(ctx, []Node{
		{Name: "cn1", IP: netip.MustParseAddr("10.0.1.1"), MACs: []string{"02:00:00:00:00:01"}, Groups: []string{"compute"}},
		{Name: "cn2", IP: netip.MustParseAddr("10.0.1.2"), MACs: []string{"02:00:00:00:00:02"}},
		{Name: "cn3", IP: netip.MustParseAddr("10.0.1.3"), MACs: []string{"02:00:00:00:00:03", "02:00:00:00:00:33"}, ServiceNodes: []string{"mn1", "sn1"}},
	}, AddOptions{}))

	// plan reads the nodes and changes each: cn1 moves network and
	// MACs, cn2 gets groups and servicenodes, cn3 loses its IP and MACs.
	plan := func() []NodeDiff {
		nodes, err := s.Nodes(ctx)
		require.NoError(t, err)
		var out []NodeDiff
		for _, n := range nodes {
			before := n
			before.Groups, before.MACs, before.ServiceNodes = slices.Clone(n.Groups), slices.Clone(n.MACs), slices.Clone(n.ServiceNodes)
			switch n.Name {
			case "cn1":
				n.IP, n.Network, n.MACs = netip.MustParseAddr("10.1.1.1"), "ib", []string{"02:00:00:00:00:11", "02:00:00:00:00:12"}
			case "cn2":
				n.Groups, n.ServiceNodes, n.Manual = []string{"gpu", "rack2"}, []string{"sn1", "mn1"}, true
			case "cn3":
				n.IP, n.MACs, n.ServiceNodes, n.Manual = netip.Addr{}, nil, nil, false
			}
			out = append(out, NodeDiff{Node: n.Name, Before: &before, After: n, Changed: changedAttrs(&before, n)})
		}
		return out
	}
	write := func(batch []NodeDiff) error {
		return s.Tx(ctx, func(tx *sqlx.Tx) error { return s.writeNodeDiffs(ctx, tx, batch) })
	}

	stale := plan()
	_, err = s.SetNodes(ctx, []string{"cn2"}, []NodeChange{{Attr: AttrGroups, Op: OpAdd, Value: "behind"}}, SetOptions{})
	require.NoError(t, err)
	before, err := s.Nodes(ctx)
	require.NoError(t, err)
	err = write(stale)
	require.ErrorIs(t, err, ErrConflict)
	require.ErrorContains(t, err, "node cn2 was changed")
	after, err := s.Nodes(ctx)
	require.NoError(t, err)
	require.Equal(t, before, after, "a conflict in the batch writes nothing of it")

	fresh := plan()
	require.NoError(t, write(fresh))
	got, err := s.Nodes(ctx)
	require.NoError(t, err)
	require.Len(t, got, len(fresh))
	for i, d := range fresh {
		want := d.After
		want.Revision = d.Before.Revision + 1
		if want.MACs == nil {
			want.MACs = got[i].MACs // nil and empty read back alike
		}
		require.Equal(t, want, got[i])
	}
	log, err := s.AuditLog(ctx, 3)
	require.NoError(t, err)
	var targets []string
	for _, e := range log {
		require.Equal(t, "node.set", e.Action)
		targets = append(targets, e.Target)
	}
	slices.Sort(targets)
	require.Equal(t, []string{"cn1", "cn2", "cn3"}, targets)

	// Written again, the batch finds its rows past the revisions it was
	// planned from: a conflict, even though they hold its values.
	err = write(fresh)
	require.ErrorIs(t, err, ErrConflict)
	require.ErrorContains(t, err, "a node of cn1..cn3 (3 nodes) was changed")
	again, err := s.Nodes(ctx)
	require.NoError(t, err)
	require.Equal(t, got, again)
}
