package pool_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/storetest"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/liveness"
	"github.com/mnpool/mnpool/pool/service"
)

// rows returns name -> "servicenodes@revision" of every node.
func rows(t testing.TB, s *pool.Store) map[string]string {
	t.Helper()
	nodes, err := s.Nodes(context.Background())
	require.NoError(t, err)
	out := make(map[string]string, len(nodes))
	for _, n := range nodes {
		out[n.Name] = fmt.Sprintf("%s@%d", strings.Join(n.ServiceNodes, ","), n.Revision)
	}
	return out
}

func version(t testing.TB, s *pool.Store) int64 {
	t.Helper()
	v, err := s.Version(context.Background())
	require.NoError(t, err)
	return v
}

func auditCount(t testing.TB, s *pool.Store, action string) int {
	t.Helper()
	log, err := s.AuditLog(context.Background(), 10000)
	require.NoError(t, err)
	n := 0
	for _, e := range log {
		if e.Action == action {
			n++
		}
	}
	return n
}

// addSN3 adds a third SN, sn3 (10.0.0.5), running every service.
func addSN3(t testing.TB, s *pool.Store, disabled bool) {
	t.Helper()
	m := pool.Member{Name: "sn3", Services: service.All(), Disabled: disabled,
		Addresses: map[string]netip.Addr{"mgmt": netip.MustParseAddr("10.0.0.5")}}
	require.NoError(t, s.AddMember(context.Background(), m, true))
}

// summary is the part of a NodeMove the tests compare.
type summary struct {
	Status  pool.MoveStatus
	Old     string
	New     string
	Changes []pool.SettingChange
}

func summarize(r *pool.MoveResult) map[string]summary {
	out := map[string]summary{}
	for _, n := range r.Nodes {
		out[n.Node] = summary{n.Status, strings.Join(n.Old, ","), strings.Join(n.New, ","), n.Changes}
	}
	return out
}

// seedAddr is each seeded member's address on mgmt.
var seedAddr = map[string]string{"mn1": "10.0.0.1", "sn1": "10.0.0.2", "sn2": "10.0.0.3", "sn3": "10.0.0.5"}

// changes is what moving a node from list old (first member from) to
// list new (first member to) reports, every member running every
// service.
func changes(old, new, from, to string) []pool.SettingChange {
	return []pool.SettingChange{
		{Setting: "servicenode", Old: old, New: new},
		{Setting: "tftpserver", Old: seedAddr[from], New: seedAddr[to]},
		{Setting: "nfsserver", Old: seedAddr[from], New: seedAddr[to]},
		{Setting: "conserver", Old: from, New: to},
	}
}

func TestMoveBySourceWhenSourceIsDead(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx := context.Background()
		storetest.Seed(t, s, 6)
		before := rows(t, s)
		v0 := version(t, s)
		res, err := s.Move(ctx, pool.MoveRequest{Source: "sn1", Liveness: liveness.Static{"sn1": liveness.Dead}})
		require.NoError(t, err)
		// cn00001 and cn00004 start with sn1; the next alive member is sn2.
		want := map[string]summary{
			"cn00001": {pool.MoveMoved, "sn1,sn2", "sn2,sn1", changes("sn1,sn2", "sn2,sn1", "sn1", "sn2")},
		}
		want["cn00004"] = want["cn00001"]
		if d := cmp.Diff(want, summarize(res)); d != "" {
			t.Fatalf("result (-want +got):\n%s", d)
		}
		require.True(t, res.OK())
		require.Equal(t, pool.MoveCounts{Moved: 2}, res.Counts)
		require.Equal(t, "sn1", res.Nodes[0].Source)
		require.Equal(t, "sn2", res.Nodes[0].Target)
		require.Equal(t, res.Nodes[0].OldRevision+1, res.Nodes[0].Revision)

		after := rows(t, s)
		for name, r := range before {
			switch name {
			case "cn00001", "cn00004":
				require.Equal(t, "sn2,sn1@1", after[name], name)
			default:
				require.Equal(t, r, after[name], "node %s not on the source must not change", name)
			}
		}
		// The move is audited, which moves the change feed.
		require.Equal(t, 1, auditCount(t, s, "node.move"))
		require.Greater(t, version(t, s), v0)
		log, err := s.AuditLog(ctx, 1)
		require.NoError(t, err)
		require.Equal(t, "cn00001..cn00004 (2 nodes)", log[0].Target)
		var detail struct {
			Source string           `json:"source"`
			Count  int              `json:"count"`
			Moves  []pool.MoveGroup `json:"moves"`
		}
		require.NoError(t, json.Unmarshal([]byte(log[0].Detail), &detail))
		require.Equal(t, "sn1", detail.Source)
		require.Equal(t, []pool.MoveGroup{{Old: "sn1,sn2", New: "sn2,sn1", Nodes: []string{"cn00001", "cn00004"}}}, detail.Moves)

		// Running it again changes nothing, not even the change counter.
		v1 := version(t, s)
		res, err = s.Move(ctx, pool.MoveRequest{Source: "sn1", Liveness: liveness.Static{"sn1": liveness.Dead}})
		require.NoError(t, err)
		require.Empty(t, res.Nodes)
		require.Equal(t, after, rows(t, s))
		require.Equal(t, v1, version(t, s))
		require.Equal(t, 1, auditCount(t, s, "node.move"))
	})
}

func TestMoveNoderangeToTargetIsIdempotent(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx := context.Background()
		storetest.Seed(t, s, 3)
		req := pool.MoveRequest{Nodes: []string{"cn00003", "cn00001", "cn00002"}, Target: "sn2"}
		res, err := s.Move(ctx, req)
		require.NoError(t, err)
		want := map[string]summary{
			"cn00001": {pool.MoveMoved, "sn1,sn2", "sn2,sn1", changes("sn1,sn2", "sn2,sn1", "sn1", "sn2")},
			"cn00002": {Status: pool.MoveUnchanged, Old: "sn2,mn1"},
			// A target that is not in the list is put first; the source
			// goes last.
			"cn00003": {pool.MoveMoved, "mn1,sn1", "sn2,sn1,mn1", changes("mn1,sn1", "sn2,sn1,mn1", "mn1", "sn2")},
		}
		if d := cmp.Diff(want, summarize(res)); d != "" {
			t.Fatalf("result (-want +got):\n%s", d)
		}
		require.Equal(t, []string{"cn00001", "cn00002", "cn00003"}, []string{res.Nodes[0].Node, res.Nodes[1].Node, res.Nodes[2].Node}, "sorted by name")
		require.Contains(t, res.Nodes[1].Reason, "already served by sn2")
		after := rows(t, s)
		v := version(t, s)
		res, err = s.Move(ctx, req)
		require.NoError(t, err)
		require.Equal(t, pool.MoveCounts{Unchanged: 3}, res.Counts)
		require.Equal(t, after, rows(t, s))
		require.Equal(t, v, version(t, s))
	})
}

func TestMoveNoderangeWithoutTarget(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx := context.Background()
		storetest.Seed(t, s, 3)
		addSN3(t, s, false)
		// cn00002 is [sn2 mn1]; with sn2 suspect and mn1 dead it has no
		// target; cn00001 [sn1 sn2] is served by a usable member.
		live := liveness.Static{"sn2": liveness.Suspect, "mn1": liveness.Dead}
		res, err := s.Move(ctx, pool.MoveRequest{Nodes: []string{"cn00001", "cn00002", "cn00003"}, Liveness: live})
		require.NoError(t, err)
		got := summarize(res)
		require.Equal(t, pool.MoveUnchanged, got["cn00001"].Status)
		require.Equal(t, pool.MoveNoTarget, got["cn00002"].Status)
		require.Equal(t, "no usable member after sn2 in its list (mn1: dead)", res.Nodes[1].Reason)
		// cn00003 [mn1 sn1]: mn1 is dead, sn1 takes it.
		require.Equal(t, summary{pool.MoveMoved, "mn1,sn1", "sn1,mn1", changes("mn1,sn1", "sn1,mn1", "mn1", "sn1")}, got["cn00003"])
		require.False(t, res.OK())
		require.Equal(t, []string{"cn00002"}, res.Names(pool.MoveNoTarget))
		r := rows(t, s)
		require.Equal(t, "sn2,mn1@0", r["cn00002"], "a node without a target is not touched")
		require.Equal(t, "sn1,mn1@1", r["cn00003"])
	})
}

func TestMoveSkipsDisabledAndDeadCandidates(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx := context.Background()
		storetest.Seed(t, s, 0)
		addSN3(t, s, true)
		nodes := storetest.MakeNodes(1)
		nodes[0].ServiceNodes = []string{"sn1", "sn3", "mn1", "sn2"}
		require.NoError(t, s.AddNodes(ctx, nodes, pool.AddOptions{}))
		res, err := s.Move(ctx, pool.MoveRequest{Source: "sn1", Liveness: liveness.Static{"sn1": liveness.Dead, "mn1": liveness.Dead}})
		require.NoError(t, err)
		require.Equal(t, []string{"sn2", "sn3", "mn1", "sn1"}, res.Nodes[0].New, "sn3 is disabled and mn1 dead; sn2 is next")
		require.Equal(t, pool.MoveMoved, res.Nodes[0].Status)
	})
}

func TestMoveRefusesUnusableTargetUnlessForced(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx := context.Background()
		storetest.Seed(t, s, 3)
		addSN3(t, s, true)
		before := rows(t, s)
		for name, c := range map[string]struct {
			req  pool.MoveRequest
			want string
		}{
			"disabled": {pool.MoveRequest{Source: "sn1", Target: "sn3"}, "sn3 is disabled"},
			"dead":     {pool.MoveRequest{Source: "sn1", Target: "sn2", Liveness: liveness.Static{"sn2": liveness.Dead}}, "sn2 is dead"},
			"suspect":  {pool.MoveRequest{Nodes: []string{"cn00001"}, Target: "sn2", Liveness: liveness.Static{"sn2": liveness.Suspect}}, "sn2 is suspect"},
		} {
			t.Run(name, func(t *testing.T) {
				_, err := s.Move(ctx, c.req)
				require.ErrorIs(t, err, pool.ErrTargetUnusable)
				require.ErrorContains(t, err, c.want)
				require.Equal(t, before, rows(t, s), "nothing written")
			})
		}
		res, err := s.Move(ctx, pool.MoveRequest{Source: "sn1", Target: "sn3", Force: true})
		require.NoError(t, err)
		require.True(t, res.Force)
		require.Equal(t, []string{"sn3", "sn2", "sn1"}, res.Nodes[0].New)
		require.Equal(t, "sn3,sn2,sn1@1", rows(t, s)["cn00001"])
	})
}

func TestMoveTargetAddress(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx := context.Background()
		storetest.Seed(t, s, 1)
		_, err := s.Move(ctx, pool.MoveRequest{Nodes: []string{"cn00001"}, Target: "sn2", TargetAddr: netip.MustParseAddr("10.0.0.2")})
		require.ErrorIs(t, err, pool.ErrInvalid)
		require.ErrorContains(t, err, "10.0.0.2 is not an address of sn2 (its addresses: 10.0.0.3 (mgmt))")
		res, err := s.Move(ctx, pool.MoveRequest{Nodes: []string{"cn00001"}, Target: "sn2", TargetAddr: netip.MustParseAddr("10.0.0.3"), DryRun: true})
		require.NoError(t, err)
		require.Equal(t, netip.MustParseAddr("10.0.0.3"), res.TargetAddr)
		require.Equal(t, pool.MovePlanned, res.Nodes[0].Status)
	})
}

func TestMoveRequestErrors(t *testing.T) {
	s := storetest.Open(t, storetest.Backends()[0].DSN(t))
	storetest.Seed(t, s, 3)
	ctx := context.Background()
	before := rows(t, s)
	for name, c := range map[string]struct {
		req  pool.MoveRequest
		is   error
		want string
	}{
		"nothing selected":   {pool.MoveRequest{Target: "sn1"}, pool.ErrInvalid, "needs nodes (a noderange) or a source member"},
		"same member":        {pool.MoveRequest{Source: "sn1", Target: "sn1"}, pool.ErrInvalid, "source and target are both sn1"},
		"address, no target": {pool.MoveRequest{Source: "sn1", TargetAddr: netip.MustParseAddr("10.0.0.3")}, pool.ErrInvalid, "needs a destination member"},
		"bad node name":      {pool.MoveRequest{Nodes: []string{"cn_1"}}, pool.ErrInvalid, `"cn_1"`},
		"unknown nodes":      {pool.MoveRequest{Nodes: []string{"cn00001", "nope2", "nope1"}, Target: "sn2"}, pool.ErrNotFound, "nodes nope1, nope2"},
		"unknown source":     {pool.MoveRequest{Source: "sn9"}, pool.ErrNotFound, "source member sn9 (members: mn1, sn1, sn2)"},
		"unknown target":     {pool.MoveRequest{Source: "sn1", Target: "sn9"}, pool.ErrNotFound, "target member sn9"},
	} {
		t.Run(name, func(t *testing.T) {
			res, err := s.Move(ctx, c.req)
			require.ErrorIs(t, err, c.is)
			require.ErrorContains(t, err, c.want)
			require.Nil(t, res)
		})
	}
	require.Equal(t, before, rows(t, s))
}

func TestMoveDryRunWritesNothingAndMatchesPlanMove(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx := context.Background()
		storetest.Seed(t, s, 30)
		before, v := rows(t, s), version(t, s)
		req := pool.MoveRequest{Source: "sn2", Liveness: liveness.Static{"sn2": liveness.Dead}, DryRun: true}
		res, err := s.Move(ctx, req)
		require.NoError(t, err)
		require.True(t, res.DryRun)
		require.Equal(t, pool.MoveCounts{Planned: 10}, res.Counts)
		require.Equal(t, before, rows(t, s))
		require.Equal(t, v, version(t, s))
		for _, n := range res.Nodes {
			require.Equal(t, []string{"mn1", "sn2"}, n.New, n.Node)
		}
		st, err := s.LoadState(ctx)
		require.NoError(t, err)
		plan, err := pool.PlanMove(st, req)
		require.NoError(t, err)
		if d := cmp.Diff(res, plan, cmpopts.EquateComparable(netip.Addr{})); d != "" {
			t.Fatalf("PlanMove differs from the dry run (-dry +plan):\n%s", d)
		}
		// The real move does what the dry run said.
		req.DryRun = false
		done, err := s.Move(ctx, req)
		require.NoError(t, err)
		for i, n := range done.Nodes {
			require.Equal(t, plan.Nodes[i].New, n.New)
			require.Equal(t, plan.Nodes[i].Changes, n.Changes)
			require.Equal(t, pool.MoveMoved, n.Status)
		}
	})
}

func TestMoveBatchesAuditsAndProgress(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			s := storetest.Open(t, b.DSN(t), pool.WithBatchSize(7))
			storetest.Seed(t, s, 60) // 20 nodes start with sn1
			ctx := context.Background()
			var calls [][2]int
			res, err := s.Move(ctx, pool.MoveRequest{Source: "sn1", Target: "mn1", Progress: func(d, t int) { calls = append(calls, [2]int{d, t}) }})
			require.NoError(t, err)
			require.Equal(t, 20, res.Counts.Moved)
			require.Equal(t, [][2]int{{7, 20}, {14, 20}, {20, 20}}, calls)
			require.Equal(t, 3, auditCount(t, s, "node.move"), "one audit record per batch")
			for name, r := range rows(t, s) {
				require.NotRegexp(t, `^sn1,`, r, name)
			}
		})
	}
}

// TestMoveReplansNodeChangedUnderIt changes a node after the move planned
// it: the move reads the node again and plans it from its current list.
func TestMoveReplansNodeChangedUnderIt(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			s := storetest.Open(t, b.DSN(t), pool.WithBatchSize(1))
			storetest.Seed(t, s, 4) // cn00001, cn00004 are [sn1 sn2]
			ctx := context.Background()
			var changed bool
			req := pool.MoveRequest{Source: "sn1", Liveness: liveness.Static{"sn1": liveness.Dead}}
			req.Progress = func(done, total int) {
				if changed {
					return
				}
				changed = true
				n := storetest.MakeNodes(4)[3]
				n.ServiceNodes = []string{"sn1", "mn1"}
				require.NoError(t, s.AddNodes(ctx, []pool.Node{n}, pool.AddOptions{Replace: true}))
			}
			res, err := s.Move(ctx, req)
			require.NoError(t, err)
			require.Equal(t, "cn00004", res.Nodes[1].Node)
			require.Equal(t, 1, res.Nodes[1].Replans)
			require.Equal(t, []string{"sn1", "mn1"}, res.Nodes[1].Old, "planned from the current list")
			require.Equal(t, []string{"mn1", "sn1"}, res.Nodes[1].New)
			require.Equal(t, "mn1,sn1@2", rows(t, s)["cn00004"])
		})
	}
}

// TestMoveLosesRaceBetweenReadAndWrite changes rows between the batch's
// read and its conditional update: the update must not match them, and
// the next round plans them again.
func TestMoveLosesRaceBetweenReadAndWrite(t *testing.T) {
	for _, mode := range []struct {
		name string
		m    pool.MoveWrite
	}{{"case", pool.MoveWriteCase}, {"rows", pool.MoveWriteRows}, {"join", pool.MoveWriteJoin}, {"values", pool.MoveWriteValues}} {
		t.Run(mode.name, func(t *testing.T) {
			storetest.EachBackend(t, func(t *testing.T, s *pool.Store) {
				ctx := context.Background()
				storetest.Seed(t, s, 6)
				hooked := 0
				hook := func(ctx context.Context, tx *sqlx.Tx, names []string) error {
					hooked++
					require.Contains(t, names, "cn00004")
					// Someone puts cn00004 on mn1 first (again, if the
					// transaction that did it was rolled back).
					var cur string
					if err := tx.GetContext(ctx, &cur, "SELECT servicenodes FROM nodes WHERE name = 'cn00004'"); err != nil {
						return err
					}
					if cur != "sn1,sn2" {
						return nil
					}
					_, err := tx.ExecContext(ctx, "UPDATE nodes SET servicenodes = 'sn1,mn1,sn2', revision = revision + 1 WHERE name = 'cn00004'")
					return err
				}
				res, err := s.MoveWith(ctx, pool.MoveRequest{Source: "sn1", Target: "sn2"}, mode.m, hook)
				require.NoError(t, err)
				require.GreaterOrEqual(t, hooked, 2, "a second round for the loser")
				require.Equal(t, pool.MoveCounts{Moved: 2}, res.Counts)
				require.Equal(t, 1, res.Nodes[1].Replans)
				require.Equal(t, []string{"sn2", "mn1", "sn1"}, res.Nodes[1].New)
				r := rows(t, s)
				require.Equal(t, "sn2,sn1@1", r["cn00001"])
				require.Equal(t, "sn2,mn1,sn1@2", r["cn00004"])
			})
		})
	}
}

func TestDeriveSettings(t *testing.T) {
	mgmt := "mgmt"
	st := &pool.State{Members: []pool.Member{
		{Name: "a", Addresses: map[string]netip.Addr{mgmt: netip.MustParseAddr("10.0.0.1")}, Services: []service.Service{service.DHCP}},
		{Name: "b", Addresses: map[string]netip.Addr{mgmt: netip.MustParseAddr("10.0.0.2")}, Services: []service.Service{service.TFTP, service.Console}},
		{Name: "c", Addresses: map[string]netip.Addr{}, Services: []service.Service{service.Console}},
	}}
	for name, c := range map[string]struct {
		node pool.Node
		want pool.NodeSettings
	}{
		"services follow the first member running them": {
			pool.Node{Network: mgmt, ServiceNodes: []string{"a", "b"}},
			pool.NodeSettings{ServiceNodes: []string{"a", "b"}, NFSServer: "10.0.0.1", TFTPServer: "10.0.0.2", ConServer: "b"},
		},
		"no address on the network: the member name": {
			pool.Node{Network: mgmt, ServiceNodes: []string{"c", "a"}},
			pool.NodeSettings{ServiceNodes: []string{"c", "a"}, NFSServer: "c", ConServer: "c"},
		},
		"empty list": {pool.Node{Network: mgmt}, pool.NodeSettings{}},
	} {
		t.Run(name, func(t *testing.T) {
			if d := cmp.Diff(c.want, pool.DeriveSettings(st, c.node)); d != "" {
				t.Fatal(d)
			}
		})
	}
}

// TestMoveFailureMidwayReportsPartialResult fails the second batch: the
// first batch stays moved, the rest is reported failed and unchanged.
func TestMoveFailureMidwayReportsPartialResult(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			s := storetest.Open(t, b.DSN(t), pool.WithBatchSize(2))
			storetest.Seed(t, s, 12) // cn00001, 04, 07, 10 start with sn1
			ctx := context.Background()
			calls := 0
			boom := errors.New("boom")
			hook := func(context.Context, *sqlx.Tx, []string) error {
				calls++
				if calls == 2 {
					return boom
				}
				return nil
			}
			res, err := s.MoveWith(ctx, pool.MoveRequest{Source: "sn1", Target: "sn2"}, pool.MoveWriteAuto, hook)
			require.ErrorIs(t, err, boom)
			require.NotNil(t, res)
			require.Equal(t, pool.MoveCounts{Moved: 2, Failed: 2}, res.Counts)
			require.Equal(t, []string{"cn00001", "cn00004"}, res.Names(pool.MoveMoved))
			require.Contains(t, res.Nodes[2].Reason, "not written: boom")
			r := rows(t, s)
			require.Equal(t, "sn2,sn1@1", r["cn00004"])
			require.Equal(t, "sn1,sn2@0", r["cn00007"])
			require.Equal(t, 1, auditCount(t, s, "node.move"))
		})
	}
}
