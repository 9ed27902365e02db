package pool_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/storetest"
	"github.com/mnpool/mnpool/internal/testgalera"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/liveness"
)

// nodesWithList returns n nodes (as makeNodes) that all have list.
func nodesWithList(n int, list ...string) []pool.Node {
	nodes := storetest.MakeNodes(n)
	for i := range nodes {
		nodes[i].ServiceNodes = list
	}
	return nodes
}

// galeraRows reads name -> "servicenodes@revision" directly from Galera
// node n, after waiting for it to apply everything committed.
func galeraRows(t *testing.T, env *testgalera.Env, n int) map[string]string {
	t.Helper()
	ctx := context.Background()
	conn, err := env.DB(t, n).Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(ctx, "SET SESSION wsrep_sync_wait = 1")
	require.NoError(t, err)
	rs, err := conn.QueryContext(ctx, "SELECT name, servicenodes, revision FROM nodes")
	require.NoError(t, err)
	defer rs.Close()
	out := map[string]string{}
	for rs.Next() {
		var name, sns string
		var rev int64
		require.NoError(t, rs.Scan(&name, &sns, &rev))
		out[name] = fmt.Sprintf("%s@%d", sns, rev)
	}
	require.NoError(t, rs.Err())
	return out
}

func names(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("cn%05d", i))
	}
	return out
}

// TestGaleraMoveConcurrentOverlap starts two moves of overlapping node
// sets to different targets at the same moment, through two different
// Galera nodes. Afterwards every node's list is exactly the result of the
// move that wrote it last, every write is counted in the node's revision
// (no lost update), and the three Galera nodes agree.
func TestGaleraMoveConcurrentOverlap(t *testing.T) {
	env := testgalera.Open(t)
	ctx := context.Background()
	retries := &countHandler{msg: "pool: retrying transaction"}
	opts := []pool.Option{pool.WithBatchSize(100), pool.WithRetry(60, 2*time.Millisecond, 200*time.Millisecond), pool.WithLogger(slog.New(retries))}
	a := storetest.Open(t, env.NodeDSN(1), opts...)
	b := storetest.Open(t, env.NodeDSN(2), opts...)
	storetest.Seed(t, a, 0)
	const total = 2000
	require.NoError(t, a.AddNodes(ctx, nodesWithList(total, "mn1", "sn1", "sn2"), pool.AddOptions{}))

	// Both start with the 400 shared nodes (moves go in name order), so
	// they write the same rows at the same time from two Galera nodes.
	reqA := pool.MoveRequest{Nodes: names(1, 1200), Target: "sn1"}
	reqB := pool.MoveRequest{Nodes: append(names(1, 400), names(1201, total)...), Target: "sn2"}
	var resA, resB *pool.MoveResult
	var errA, errB error
	start := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); <-start; resA, errA = a.Move(ctx, reqA) }()
	go func() { defer wg.Done(); <-start; resB, errB = b.Move(ctx, reqB) }()
	close(start)
	wg.Wait()
	require.NoError(t, errA)
	require.NoError(t, errB)
	require.True(t, resA.OK(), "%+v", resA.Counts)
	require.True(t, resB.OK(), "%+v", resB.Counts)

	byName := func(r *pool.MoveResult) map[string]pool.NodeMove {
		m := map[string]pool.NodeMove{}
		for _, n := range r.Nodes {
			m[n.Node] = n
		}
		return m
	}
	ma, mb := byName(resA), byName(resB)
	final := galeraRows(t, env, 1)
	require.Len(t, final, total)
	replans, lastA, lastB := 0, 0, 0
	for name, got := range final {
		na, inA := ma[name]
		nb, inB := mb[name]
		replans += na.Replans + nb.Replans
		writes := 0
		var last pool.NodeMove
		for _, m := range []pool.NodeMove{na, nb} {
			if m.Status == pool.MoveMoved {
				writes++
				if m.Revision > last.Revision {
					last = m
				}
			}
		}
		require.Equal(t, fmt.Sprintf("%s@%d", strings.Join(last.New, ","), writes), got,
			"%s: the list of the last writer, with one revision per write", name)
		if inA && inB {
			// Both moved it: the later one planned from the earlier one's
			// result, never from a stale list.
			require.Equal(t, 2, writes, name)
			first, second := na, nb
			if na.Revision == 2 {
				first, second = nb, na
			}
			require.Equal(t, first.New, second.Old, "%s: the second move started from the first one's list", name)
			require.Equal(t, first.Revision, second.OldRevision, name)
			require.Contains(t, [][]string{{"sn1", "mn1", "sn2"}, {"sn2", "mn1", "sn1"}}, last.New, name)
			if last.Target == "sn1" {
				lastA++
			} else {
				lastB++
			}
		} else {
			require.Equal(t, 1, writes, name)
		}
	}
	t.Logf("overlap: %d re-plans after lost races, %d transaction retries (1213), shared nodes last written by A %d, by B %d",
		replans, retries.n.Load(), lastA, lastB)
	for n := 2; n <= env.N(); n++ {
		require.Equal(t, final, galeraRows(t, env, n), "Galera node %d agrees with node 1", n)
	}
}

// TestGaleraMoveWhileSourceNodeIsKilled moves the nodes of sn1 while the
// Galera node the store uses (sn1's own database node) is killed after
// the first batch: the move carries on through another node, and every
// node is moved exactly once.
func TestGaleraMoveWhileSourceNodeIsKilled(t *testing.T) {
	env := testgalera.Open(t, testgalera.WithFaults())
	ctx := context.Background()
	s := storetest.Open(t, env.DSN(), pool.WithHealthInterval(200*time.Millisecond, 2*time.Second), pool.WithBatchSize(250))
	storetest.Seed(t, s, 0)
	require.NoError(t, s.AddNodes(ctx, storetest.MakeNodes(3000), pool.AddOptions{})) // 1000 start with sn1
	h, err := s.Health(ctx)
	require.NoError(t, err)
	require.Equal(t, env.Addr(1), h.Node)

	var progress []int
	req := pool.MoveRequest{Source: "sn1", Liveness: liveness.Static{"sn1": liveness.Dead}}
	req.Progress = func(done, total int) {
		if len(progress) == 0 {
			env.Kill(t, 1)
		}
		progress = append(progress, done)
	}
	res, err := s.Move(ctx, req)
	require.NoError(t, err)
	require.Equal(t, pool.MoveCounts{Moved: 1000}, res.Counts)
	require.Equal(t, []int{250, 500, 750, 1000}, progress)
	h, err = s.Health(ctx)
	require.NoError(t, err)
	require.NotEqual(t, env.Addr(1), h.Node, "the store moved to another Galera node")

	final := galeraRows(t, env, 2)
	moved := 0
	for name, r := range final {
		switch {
		case strings.HasPrefix(r, "sn2,sn1@"):
			require.Equal(t, "sn2,sn1@1", r, "%s moved exactly once", name)
			moved++
		default:
			require.True(t, strings.HasSuffix(r, "@0"), "%s was not on sn1 and is untouched: %s", name, r)
			require.False(t, strings.HasPrefix(r, "sn1,"), name)
		}
	}
	require.Equal(t, 1000, moved)
	require.Equal(t, final, galeraRows(t, env, 3))
	log, err := s.AuditLog(ctx, 100)
	require.NoError(t, err)
	require.Equal(t, 4, slices.IndexFunc(log, func(e pool.AuditEntry) bool { return e.Action != "node.move" }), "one audit record per batch")
}

// countHandler counts log records with one message.
type countHandler struct {
	msg string
	n   atomic.Int64
}

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return nil
}
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countHandler) WithGroup(string) slog.Handler      { return h }
