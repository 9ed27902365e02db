package console_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/console"
	"github.com/mnpool/mnpool/internal/testenv"
	"github.com/mnpool/mnpool/pool/liveness"
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

// A watcher that stops reading is disconnected, while a watcher that
// reads keeps getting the console's output, and the writer keeps typing.
// The console streams until the broker has dropped the stalled watcher,
// however long that takes on a busy machine: the test waits for events,
// not for an amount of output in a time.
func TestSlowWatcherIsDisconnected(t *testing.T) {
	ep1, ep2 := newFakeEndpoint(t, "cn001"), newFakeEndpoint(t, "cn002")
	defer ep1.stopStream()
	dsns := backends()[0].dsns(t, 1)
	seedPool(t, openStore(t, dsns[0], "mn1"), ep1.Addr(), ep2.Addr())
	c := startCluster(t, dsns, []string{"sn1"}, console.WithWriteTimeout(2*time.Second))

	fast := dialConsole(t, c.addrs["sn1"], console.Hello{Node: "cn001", Mode: console.ModeWrite, User: "fast"})
	fast.expect("banner cn001 #1")
	// The stalled watcher comes through the Unix socket (small kernel
	// buffers) with a small receive buffer, and never reads.
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Timeout(time.Minute))
	defer cancel()
	slow, _, err := console.Dial(ctx, func(ctx context.Context, _, addr string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "unix", addr)
		if err == nil {
			conn.(*net.UnixConn).SetReadBuffer(4096)
		}
		return conn, err
	}, c.socks["sn1"], console.Hello{Node: "cn001", Mode: console.ModeWatch}, nil)
	require.NoError(t, err)
	defer slow.Close()
	clients := func() int {
		infos := c.members["sn1"].broker.Consoles()
		if len(infos) == 0 {
			return -1
		}
		return infos[0].Clients
	}
	waitFor(t, time.Minute, func() bool { return clients() == 2 }, "two clients")

	fast.write("stream\r\n")
	fast.expect("line 0 ")
	waitFor(t, testenv.Timeout(5*time.Minute), func() bool { return clients() == 1 }, "the stalled watcher to be dropped")
	require.False(t, fast.closed(), "the reading watcher was dropped")
	ep1.stopStream()
	fast.expect("STREAM-END\r\n")
	// The writer still types and sees the echo.
	fast.write("after the drop\r\n")
	fast.expect("after the drop\r\n")
	require.False(t, fast.closed())
	require.Equal(t, 1, clients())

	// The stalled watcher's connection was closed by the broker: after
	// draining what the socket holds, it reads EOF, not a timeout.
	slow.SetReadDeadline(time.Now().Add(time.Minute))
	_, err = io.Copy(io.Discard, slow)
	require.NoError(t, err, "EOF, not a timeout")
}

// "First alive": a member the liveness view calls dead is skipped, even
// when it is first in the node's list and its broker still answers.
func TestDeadMemberIsSkipped(t *testing.T) {
	ep1, ep2 := newFakeEndpoint(t, "cn001"), newFakeEndpoint(t, "cn002")
	dsns := backends()[0].dsns(t, 3)
	seedPool(t, openStore(t, dsns[0], "mn1"), ep1.Addr(), ep2.Addr())
	c := startCluster(t, dsns, members3, console.WithLiveness(liveness.Static{"sn1": liveness.Dead, "sn2": liveness.Alive}))
	w := dialConsole(t, c.addrs["mn1"], console.Hello{Node: "cn001", Mode: console.ModeWatch})
	require.Equal(t, "sn2", w.reply.Server)
	w.expect("banner cn001 #1")
	require.Empty(t, c.members["sn1"].broker.Consoles())
}
