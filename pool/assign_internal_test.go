package pool

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/testgalera"
	"github.com/mnpool/mnpool/pool/service"
)

// TestAssignBatchConditionalWrites checks the conditional update of a
// batch: a node changed since planning is reported and left alone, and a
// second run of the same transaction (as after a commit of unknown
// outcome) finds its own writes done and audits nothing more.
func TestAssignBatchConditionalWrites(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testAssignBatch(t, "sqlite:"+filepath.Join(t.TempDir(), "pool.db")) })
	t.Run("galera", func(t *testing.T) { testAssignBatch(t, testgalera.Open(t).DSN()) })
}

func testAssignBatch(t *testing.T, dsn string) {
	ctx := context.Background()
	s, err := Open(ctx, dsn, WithMigrate())
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.AddNetwork(ctx, Network{Name: "mgmt", Prefix: netip.MustParsePrefix("10.0.0.0/16")}, false))
	_, err = s.Init(ctx, InitOptions{MN: Member{Name: "mn1", Addresses: map[string]netip.Addr{"mgmt": netip.MustParseAddr("10.0.0.1")}}})
	require.NoError(t, err)
	require.NoError(t, s.AddMember(ctx, Member{Name: "sn1", Services: service.All(), Addresses: map[string]netip.Addr{"mgmt": netip.MustParseAddr("10.0.0.2")}}, false))
	require.NoError(t, s.AddNodes(ctx, []Node{{Name: "cn1"}, {Name: "cn2"}, {Name: "cn3"}}, AddOptions{}))

	st, err := s.LoadState(ctx)
	require.NoError(t, err)
	p, err := PlanAssignment(st, AssignOptions{})
	require.NoError(t, err)
	require.Len(t, p.Changes, 3)

	// cn2 changes behind the planner's back.
	cn2 := st.Nodes[1]
	cn2.ServiceNodes, cn2.Manual = []string{"sn1", "mn1"}, true
	require.NoError(t, s.AddNodes(ctx, []Node{cn2}, AddOptions{Replace: true}))

	v0, err := s.Version(ctx)
	require.NoError(t, err)
	var written int
	var lost []string
	for run := 0; run < 2; run++ {
		err = s.Tx(ctx, func(tx *sqlx.Tx) error {
			written, lost, err = s.writeAssignBatch(ctx, tx, p.Changes)
			return err
		})
		require.NoError(t, err)
		require.Equal(t, 2, written, "run %d", run)
		require.Equal(t, []string{"cn2"}, lost, "run %d", run)
	}
	v1, err := s.Version(ctx)
	require.NoError(t, err)
	require.Equal(t, v0+1, v1, "the second run audited again")

	nodes, err := s.Nodes(ctx)
	require.NoError(t, err)
	require.Equal(t, p.Changes[0].New, nodes[0].ServiceNodes)
	require.Equal(t, []string{"sn1", "mn1"}, nodes[1].ServiceNodes)
	require.True(t, nodes[1].Manual)
	require.Equal(t, p.Changes[2].New, nodes[2].ServiceNodes)
}
