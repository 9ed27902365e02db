package dispatch_test

import (
	"bytes"
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/dispatch"
)

// loopRelay is a Transport that reaches nodes over SSH and runs a
// member's relay in-process: the relay protocol without a second binary.
type loopRelay struct {
	*dispatch.SSH
	relays atomic.Int32
	down   map[string]bool // members that cannot be reached
}

func (l *loopRelay) Exec(ctx context.Context, e dispatch.Exec) (int, error) {
	if e.Target.Kind != dispatch.KindMember {
		return l.SSH.Exec(ctx, e)
	}
	if l.down[e.Target.Name] {
		return -1, dispatch.ErrConnect
	}
	l.relays.Add(1)
	inner := &dispatch.Runner{Transport: l}
	if err := dispatch.ServeRelay(ctx, bytes.NewReader(e.Stdin), e.Stdout, inner); err != nil {
		return 1, nil
	}
	return 0, nil
}

func TestRelayProtocol(t *testing.T) {
	e := startFarm(t, 6, "127.3.4.1")
	tr := &loopRelay{SSH: e.transport(), down: map[string]bool{"snX": true}}
	defer tr.Close()
	targets := e.targets()
	targets = append(targets, dispatch.Target{Name: "down1", Addr: net.JoinHostPort("127.3.9.9", "22"), Kind: dispatch.KindNode})
	sn1 := dispatch.Target{Name: "sn1", Addr: "127.0.0.1:1", Kind: dispatch.KindMember}
	sn2 := dispatch.Target{Name: "sn2", Addr: "127.0.0.1:2", Kind: dispatch.KindMember}
	p := dispatch.Plan{Direct: targets[:1], Relays: []dispatch.RelayGroup{
		{Via: []dispatch.Target{sn1}, Targets: targets[1:3]},
		{Via: []dispatch.Target{sn1, sn2}, Targets: append(targets[3:5:5], targets[6])},
	}}
	r := &dispatch.Runner{Transport: tr}
	res, s, _ := collect(t, r, dispatch.Request{Command: `echo "x y"; echo err >&2; exit 2`}, p)
	require.Equal(t, 5, s.Failed)
	require.Equal(t, 1, s.Unreachable)
	require.Equal(t, int32(3), tr.relays.Load(), "sn1 twice (once as first hop of the chain), sn2 once")
	for _, n := range []string{"cn002", "cn003", "cn004", "cn005"} {
		require.Equal(t, "sn1", res[n].Via, n)
		require.Equal(t, "x y\n", string(res[n].Stdout), n)
		require.Equal(t, "err\n", string(res[n].Stderr), n)
		require.Equal(t, 2, res[n].ExitCode, n)
	}
	require.Equal(t, "", res["cn001"].Via)
	// The error kind survives two hops.
	require.ErrorIs(t, res["down1"].Err, dispatch.ErrConnect)
	require.Equal(t, "sn1", res["down1"].Via)

	// Output that is not UTF-8 crosses the relay unchanged.
	res, _, _ = collect(t, r, dispatch.Request{Command: `printf '\377\376\n'`},
		dispatch.Plan{Relays: []dispatch.RelayGroup{{Via: []dispatch.Target{sn1}, Targets: targets[:1]}}})
	require.Equal(t, []byte{0xff, 0xfe, '\n'}, res["cn001"].Stdout)

	// Streaming through a relay.
	res, _, lines := collect(t, r, dispatch.Request{Command: "echo a; echo b >&2", Stream: true},
		dispatch.Plan{Relays: []dispatch.RelayGroup{{Via: []dispatch.Target{sn1}, Targets: targets[:1]}}})
	require.ElementsMatch(t, []string{"cn001 false a", "cn001 true b"}, lines)
	require.NoError(t, res["cn001"].Err)

	// A member that cannot be reached: its nodes run from here.
	snX := dispatch.Target{Name: "snX", Addr: "127.0.0.1:3", Kind: dispatch.KindMember}
	res, s, _ = collect(t, r, dispatch.Request{Command: "true", ConnectTimeout: time.Second},
		dispatch.Plan{Relays: []dispatch.RelayGroup{{Via: []dispatch.Target{snX}, Targets: targets[:2]}}})
	require.Equal(t, 2, s.OK)
	require.Equal(t, "", res["cn001"].Via)
	// ... unless told not to.
	r.NoFallback = true
	res, s, _ = collect(t, r, dispatch.Request{Command: "true"},
		dispatch.Plan{Relays: []dispatch.RelayGroup{{Via: []dispatch.Target{snX}, Targets: targets[:2]}}})
	require.Equal(t, 2, s.Unreachable)
	require.ErrorIs(t, res["cn001"].Err, dispatch.ErrRelay)
	require.Equal(t, "snX", res["cn001"].Via)
}

func TestServeRelayRefusesBadRequests(t *testing.T) {
	r := &dispatch.Runner{Transport: &dispatch.SSH{}}
	for name, in := range map[string]string{
		"garbage":    "{",
		"version":    `{"version":9,"request":{"command":"true"},"targets":[{"name":"a","addr":"127.0.0.1:22","kind":"node"}]}`,
		"no targets": `{"version":1,"request":{"command":"true"}}`,
		"bad name":   `{"version":1,"request":{"command":"true"},"targets":[{"name":"a;b","addr":"127.0.0.1:22","kind":"node"}]}`,
		"bad addr":   `{"version":1,"request":{"command":"true"},"targets":[{"name":"a","addr":"nohost","kind":"node"}]}`,
		"bad kind":   `{"version":1,"request":{"command":"true"},"targets":[{"name":"a","addr":"127.0.0.1:22","kind":"x"}]}`,
	} {
		var out bytes.Buffer
		err := dispatch.ServeRelay(context.Background(), bytes.NewBufferString(in), &out, r)
		require.ErrorIs(t, err, dispatch.ErrInvalid, name)
		require.Contains(t, out.String(), `"error"`, name)
	}
}
