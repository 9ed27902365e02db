package console_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/console"
	"github.com/mnpool/mnpool/internal/testenv"
	"github.com/mnpool/mnpool/pool"
)

var members3 = []string{"mn1", "sn1", "sn2"}

func holderOf(t testing.TB, c *cluster, node string) console.Holder {
	t.Helper()
	lt, err := console.LeaseHolders(context.Background(), c.members["mn1"].store, []string{node})
	require.NoError(t, err)
	return lt[node]
}

// A user attaches through the member that holds the console and through a
// member that only proxies; the endpoint sees one connection.
func TestConsoleThroughHolderAndProxy(t *testing.T) {
	eachBackend(t, 3, func(t *testing.T, dsns []string) {
		ep1, ep2 := newFakeEndpoint(t, "cn001"), newFakeEndpoint(t, "cn002")
		seedPool(t, openStore(t, dsns[0], "mn1"), ep1.Addr(), ep2.Addr())
		c := startCluster(t, dsns, members3, console.WithLeaseTTL(2*time.Second))

		// sn1 is first in cn001's servicenode list: it takes the lease.
		w := dialConsole(t, c.addrs["sn1"], console.Hello{Node: "cn001", Mode: console.ModeWrite, User: "alice"})
		require.Equal(t, "sn1", w.reply.Server)
		require.Equal(t, console.ModeWrite, w.reply.Mode)
		require.Positive(t, w.reply.Token)
		w.expect("banner cn001 #1")
		w.write("hello\r\n")
		w.expect("hello\r\n")

		// mn1 is not in the list: it proxies to the holder. The new
		// watcher first sees the recent output (the last screen).
		p := dialConsole(t, c.addrs["mn1"], console.Hello{Node: "cn001", Mode: console.ModeWatch, User: "bob"})
		require.Equal(t, "sn1", p.reply.Server)
		require.Equal(t, w.reply.Token, p.reply.Token)
		require.Equal(t, console.ModeWatch, p.reply.Mode)
		require.Equal(t, "alice", p.reply.Writer)
		p.expect("banner cn001 #1\r\nhello\r\n")
		w.write("second\r\n")
		p.expect("second\r\n")

		// sn2 may serve cn001 too, but sn1 holds the lease: proxied.
		q := dialConsole(t, c.addrs["sn2"], console.Hello{Node: "cn001", Mode: console.ModeWatch})
		require.Equal(t, "sn1", q.reply.Server)
		q.expect("second\r\n")

		// cn002 lists sn2 first: asked at sn1, it is held by sn2.
		r := dialConsole(t, c.addrs["sn1"], console.Hello{Node: "cn002", Mode: console.ModeWrite})
		require.Equal(t, "sn2", r.reply.Server)
		r.expect("banner cn002 #1")
		r.write("via proxy\r\n")
		r.expect("via proxy\r\n")

		conns, _, maxActive, received := ep1.stats()
		require.Equal(t, 1, conns, "cn001's console was opened once")
		require.Equal(t, 1, maxActive)
		require.Equal(t, "hello\r\nsecond\r\n", received, "only the writer's input reaches the console")
		require.Equal(t, "sn1", holderOf(t, c, "cn001").Member)
		require.Equal(t, "sn2", holderOf(t, c, "cn002").Member)
		infos := c.members["sn1"].broker.Consoles()
		require.Len(t, infos, 1)
		require.Equal(t, "cn001", infos[0].Node)
		require.Equal(t, 3, infos[0].Clients, "alice, and the proxies of mn1 and sn2")
		require.Equal(t, "alice", infos[0].Writer)
	})
}

// Several users watch one console; one writes; a second writer is a
// watcher unless it forces, and then the first becomes a watcher.
func TestTwoWatchersOneWriter(t *testing.T) {
	ep1, ep2 := newFakeEndpoint(t, "cn001"), newFakeEndpoint(t, "cn002")
	dsns := backends()[0].dsns(t, 3)
	seedPool(t, openStore(t, dsns[0], "mn1"), ep1.Addr(), ep2.Addr())
	c := startCluster(t, dsns, members3)

	a := dialConsole(t, c.addrs["sn1"], console.Hello{Node: "cn001", Mode: console.ModeWatch, User: "watcher-a"})
	b := dialConsole(t, c.addrs["mn1"], console.Hello{Node: "cn001", Mode: console.ModeWatch, User: "watcher-b"})
	w := dialConsole(t, c.addrs["sn2"], console.Hello{Node: "cn001", Mode: console.ModeWrite, User: "writer"})
	require.Equal(t, console.ModeWrite, w.reply.Mode)
	w.write("typed by the writer\r\n")
	for _, x := range []*conn{a, b, w} {
		if !x.contains("typed by the writer\r\n") {
			waitFor(t, 20*time.Second, func() bool { return x.contains("typed by the writer\r\n") },
				"%s (reply %+v) to see the writer's input; it has %q; consoles on sn1: %+v; endpoint: %v",
				x.reply.Writer, x.reply, x.text(), c.members["sn1"].broker.Consoles(), fmt.Sprint(ep1.stats()))
		}
	}
	a.write("watchers cannot type\r\n")

	// A second writer without force watches and is told who writes.
	w2 := dialConsole(t, c.addrs["sn1"], console.Hello{Node: "cn001", Mode: console.ModeWrite, User: "second"})
	require.Equal(t, console.ModeWatch, w2.reply.Mode)
	require.Equal(t, "writer", w2.reply.Writer)
	w2.write("ignored too\r\n")
	w.write("still the writer\r\n")
	w2.expect("still the writer\r\n")

	// With force it takes write access; the old writer is told.
	w3 := dialConsole(t, c.addrs["mn1"], console.Hello{Node: "cn001", Mode: console.ModeWrite, Force: true, User: "forcer"})
	require.Equal(t, console.ModeWrite, w3.reply.Mode)
	w.expect("forcer took write access (force); you are watching now")
	w.write("old writer now ignored\r\n")
	w3.write("forced input\r\n")
	a.expect("forced input\r\n")

	waitFor(t, 5*time.Second, func() bool {
		_, _, _, rec := ep1.stats()
		return strings.Contains(rec, "forced input")
	}, "forced input at the endpoint")
	_, _, _, received := ep1.stats()
	require.Equal(t, "typed by the writer\r\nstill the writer\r\nforced input\r\n", received)
}

// A watcher that stops reading is disconnected; the console and the other
// watchers are not held up.
func TestSlowWatcherIsDisconnected(t *testing.T) {
	ep1, ep2 := newFakeEndpoint(t, "cn001"), newFakeEndpoint(t, "cn002")
	ep1.floodBytes = 16 << 20
	dsns := backends()[0].dsns(t, 1)
	seedPool(t, openStore(t, dsns[0], "mn1"), ep1.Addr(), ep2.Addr())
	c := startCluster(t, dsns, []string{"sn1"}, console.WithWriteTimeout(time.Second))

	fast := dialConsole(t, c.addrs["sn1"], console.Hello{Node: "cn001", Mode: console.ModeWrite, User: "fast"})
	fast.expect("banner cn001 #1")
	// The slow watcher never reads.
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Timeout(10*time.Second))
	defer cancel()
	slow, _, err := console.Dial(ctx, nil, c.addrs["sn1"], console.Hello{Node: "cn001", Mode: console.ModeWatch, User: "slow"}, nil)
	require.NoError(t, err)
	defer slow.Close()
	waitFor(t, 5*time.Second, func() bool { return c.members["sn1"].broker.Consoles()[0].Clients == 2 }, "two clients")

	start := time.Now()
	fast.write("flood\r\n")
	fast.expect("FLOOD-END")
	elapsed := time.Since(start)
	require.GreaterOrEqual(t, fast.size(), 16<<20, "the fast watcher got every byte")
	waitFor(t, 5*time.Second, func() bool { return c.members["sn1"].broker.Consoles()[0].Clients == 1 }, "the slow watcher to be dropped")
	t.Logf("16 MiB to the fast watcher in %s with a stalled watcher attached", elapsed)

	// The slow watcher's connection was closed by the broker: after
	// draining what the socket holds, it reads EOF.
	slow.SetReadDeadline(time.Now().Add(testenv.Timeout(10 * time.Second)))
	buf := make([]byte, 1<<20)
	var rerr error
	for rerr == nil {
		_, rerr = slow.Read(buf)
	}
	require.NotErrorIs(t, rerr, context.DeadlineExceeded)
	require.NotContains(t, rerr.Error(), "timeout")
}

// "First alive": a member the liveness view calls dead is skipped, even
// when it is first in the node's list and its broker still answers.
func TestDeadMemberIsSkipped(t *testing.T) {
	ep1, ep2 := newFakeEndpoint(t, "cn001"), newFakeEndpoint(t, "cn002")
	dsns := backends()[0].dsns(t, 3)
	seedPool(t, openStore(t, dsns[0], "mn1"), ep1.Addr(), ep2.Addr())
	c := startCluster(t, dsns, members3, console.WithLiveness(pool.StaticLiveness{"sn1": pool.LiveDead, "sn2": pool.LiveAlive}))
	w := dialConsole(t, c.addrs["mn1"], console.Hello{Node: "cn001", Mode: console.ModeWatch})
	require.Equal(t, "sn2", w.reply.Server)
	w.expect("banner cn001 #1")
	require.Empty(t, c.members["sn1"].broker.Consoles())
}
