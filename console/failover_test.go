package console_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/console"
	"github.com/mnpool/mnpool/internal/testenv"
)

// attachClient runs console.Attach with reconnection in the background
// and collects what it prints.
type attachClient struct {
	out  *syncBuffer
	stop context.CancelFunc
	done chan error
	in   *pipeInput
}

// pipeInput is keyboard input the test types into.
type pipeInput struct{ ch chan []byte }

func (p *pipeInput) Read(b []byte) (int, error) {
	v, ok := <-p.ch
	if !ok {
		return 0, errors.New("input closed")
	}
	return copy(b, v), nil
}

func startAttach(t *testing.T, addrs []string, h console.Hello) *attachClient {
	ctx, cancel := context.WithCancel(context.Background())
	a := &attachClient{out: &syncBuffer{}, stop: cancel, done: make(chan error, 1), in: &pipeInput{ch: make(chan []byte)}}
	go func() {
		a.done <- console.Attach(ctx, console.AttachOptions{Addrs: addrs, Hello: h, Dial: userDial(t, h.User), In: a.in, Out: a.out, Escape: true, Reconnect: true, MaxBackoff: 200 * time.Millisecond})
	}()
	t.Cleanup(func() {
		cancel()
		<-a.done
	})
	return a
}

func (a *attachClient) typeIn(s string) { a.in.ch <- []byte(s) }

func (a *attachClient) expect(t *testing.T, want string) {
	t.Helper()
	waitFor(t, 30*time.Second, func() bool { return strings.Contains(a.out.String(), want) }, "client output to contain %q; have %q", want, tail(a.out.String()))
}

// When the member holding a console dies, the next member of the node's
// list takes the lease once it saw it unchanged for the TTL on its own
// clock, reopens the console, and watchers reconnect and see its output.
func TestFailoverWhenHolderDies(t *testing.T) {
	eachBackend(t, 3, func(t *testing.T, dsns []string) {
		const ttl = 1500 * time.Millisecond
		ep1, ep2 := newFakeEndpoint(t, "cn001"), newFakeEndpoint(t, "cn002")
		seedPool(t, openStore(t, dsns[0], "mn1"), ep1.Addr(), ep2.Addr())
		c := startCluster(t, dsns, members3, console.WithLeaseTTL(ttl))

		// A watcher through mn1 (proxying) and a writer attached to the
		// holder sn1 itself, that falls back to the other members.
		watcher := startAttach(t, []string{c.addrs["mn1"]}, console.Hello{Node: "cn001", Mode: console.ModeWatch, User: "watcher"})
		writer := startAttach(t, []string{c.addrs["sn1"], c.addrs["sn2"], c.addrs["mn1"]}, console.Hello{Node: "cn001", Mode: console.ModeWrite, User: "writer"})
		watcher.expect(t, "banner cn001 #1")
		writer.expect(t, "served by sn1")
		writer.typeIn("before\r\n")
		watcher.expect(t, "before\r\n")
		before := holderOf(t, c, "cn001")
		require.Equal(t, "sn1", before.Member)

		crashed := time.Now()
		c.crash("sn1")

		// sn2, next in cn001's list, takes over and reopens the console;
		// both clients reconnect on their own and see the new banner.
		watcher.expect(t, "banner cn001 #2")
		writer.expect(t, "banner cn001 #2")
		took := time.Since(crashed)
		after := holderOf(t, c, "cn001")
		require.Equal(t, "sn2", after.Member)
		require.Greater(t, after.Token, before.Token, "the fencing token grew")
		require.GreaterOrEqual(t, took, ttl, "no takeover before the TTL")
		t.Logf("console reopened by %s %s after the holder died (TTL %s)", after.Member, took.Round(time.Millisecond), ttl)
		require.Contains(t, watcher.out.String(), "served by sn2")

		writer.expect(t, "served by sn2")
		writer.typeIn("after\r\n")
		watcher.expect(t, "after\r\n")
		conns, active, maxActive, received := ep1.stats()
		require.Equal(t, 2, conns)
		require.Equal(t, 1, active)
		require.Equal(t, 1, maxActive, "never two connections to the console at once")
		require.Equal(t, "before\r\nafter\r\n", received)

		// The writer leaves with the escape sequence.
		writer.typeIn("\x05c.")
		select {
		case err := <-writer.done:
			require.NoError(t, err)
			writer.done <- nil
		case <-time.After(testenv.Timeout(10 * time.Second)):
			t.Fatal("the client did not leave on ^Ec.")
		}
	})
}

// A broker that stops cleanly releases its leases: the next member takes
// over at once, without waiting for the TTL.
func TestGracefulStopHandsOver(t *testing.T) {
	const ttl = time.Minute
	ep1, ep2 := newFakeEndpoint(t, "cn001"), newFakeEndpoint(t, "cn002")
	dsns := backends()[0].dsns(t, 3)
	seedPool(t, openStore(t, dsns[0], "mn1"), ep1.Addr(), ep2.Addr())
	c := startCluster(t, dsns, members3, console.WithLeaseTTL(ttl))

	watcher := startAttach(t, []string{c.addrs["mn1"]}, console.Hello{Node: "cn002", Mode: console.ModeWatch})
	watcher.expect(t, "banner cn002 #1")
	require.Equal(t, "sn2", holderOf(t, c, "cn002").Member)
	start := time.Now()
	c.stop("sn2")
	watcher.expect(t, "banner cn002 #2")
	require.Less(t, time.Since(start), ttl/2)
	require.Equal(t, "sn1", holderOf(t, c, "cn002").Member)
	watcher.expect(t, "console of cn002 closed on sn2: broker on sn2 stopping")
}
