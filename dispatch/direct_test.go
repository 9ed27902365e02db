package dispatch_test

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/dispatch"
)

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestDirectExitCodesOutputAndUnreachable(t *testing.T) {
	e := startFarm(t, 12, "127.3.0.1")
	tr := e.transport()
	defer tr.Close()
	targets := e.targets()
	// Nothing listens on 127.3.9.9: connection refused.
	targets = append(targets, dispatch.Target{Name: "down1", Addr: net.JoinHostPort("127.3.9.9", "22"), Kind: dispatch.KindNode})
	r := &dispatch.Runner{Transport: tr}
	cmd := `echo "hello from ${SSH_CONNECTION##* 127.3.0.}"; echo oops >&2; case $SSH_CONNECTION in *" 127.3.0.3 "*) exit 3;; esac`
	res, s, _ := collect(t, r, dispatch.Request{Command: cmd, Fanout: 4}, dispatch.Plan{Direct: targets})
	require.Equal(t, dispatch.Summary{Total: 13, OK: 11, Failed: 1, Unreachable: 1}, dispatch.Summary{Total: s.Total, OK: s.OK, Failed: s.Failed, Unreachable: s.Unreachable})
	require.Equal(t, 3, res["cn003"].ExitCode)
	require.NoError(t, res["cn003"].Err)
	require.Equal(t, 0, res["cn001"].ExitCode)
	require.Contains(t, string(res["cn001"].Stdout), "hello from ")
	require.Equal(t, "oops\n", string(res["cn001"].Stderr))
	require.ErrorIs(t, res["down1"].Err, dispatch.ErrConnect)
	require.Equal(t, -1, res["down1"].ExitCode)
	require.False(t, res["down1"].OK())
}

func TestStdinIsEmptyAndScriptRuns(t *testing.T) {
	e := startFarm(t, 3, "127.3.1.1")
	tr := e.transport()
	defer tr.Close()
	r := &dispatch.Runner{Transport: tr}
	// A command that reads stdin gets end of file at once.
	res, _, _ := collect(t, r, dispatch.Request{Command: "cat; echo rc=$?", CommandTimeout: 20 * time.Second}, dispatch.Plan{Direct: e.targets()})
	for _, x := range res {
		require.Equal(t, "rc=0\n", string(x.Stdout))
	}
	script := []byte("#!/bin/sh\necho \"args: $1|$2\"; echo \"env: $GREETING\"; test -f \"$0\" && echo present\nexit 5\n")
	req := dispatch.Request{Script: script, Args: []string{"a b", "it's"}, Env: map[string]string{"GREETING": "hi 'there'"}}
	res, s, _ := collect(t, r, req, dispatch.Plan{Direct: e.targets()})
	require.Equal(t, 3, s.Failed)
	for _, x := range res {
		require.Equal(t, 5, x.ExitCode)
		require.Equal(t, "args: a b|it's\nenv: hi 'there'\npresent\n", string(x.Stdout))
	}
	// The temporary copy is gone afterwards.
	res, _, _ = collect(t, r, dispatch.Request{Command: "ls ${TMPDIR:-/tmp}/mnpool-xdsh.* 2>/dev/null | wc -l"}, dispatch.Plan{Direct: e.targets()[:1]})
	require.Equal(t, "0", strings.TrimSpace(string(res["cn001"].Stdout)))
}

func TestTimeouts(t *testing.T) {
	e := startFarm(t, 2, "127.3.2.1")
	tr := e.transport()
	defer tr.Close()
	// A listener that accepts and never speaks SSH.
	ln, err := net.Listen("tcp", "127.3.2.200:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	targets := append(e.targets(), dispatch.Target{Name: "mute", Addr: ln.Addr().String(), Kind: dispatch.KindNode})
	r := &dispatch.Runner{Transport: tr}
	start := time.Now()
	req := dispatch.Request{Command: `case $SSH_CONNECTION in *" 127.3.2.2 "*) sleep 60;; esac; echo done`,
		ConnectTimeout: 500 * time.Millisecond, CommandTimeout: 2 * time.Second}
	res, s, _ := collect(t, r, req, dispatch.Plan{Direct: targets})
	require.Less(t, time.Since(start), 30*time.Second)
	require.Equal(t, 1, s.OK)
	require.Equal(t, "done\n", string(res["cn001"].Stdout))
	require.ErrorIs(t, res["cn002"].Err, dispatch.ErrTimeout, "%v", res["cn002"].Err)
	require.ErrorIs(t, res["mute"].Err, dispatch.ErrConnect, "%v", res["mute"].Err)
	require.Contains(t, res["mute"].Err.Error(), "no answer within 500ms")
}

func TestStreamAndHostKey(t *testing.T) {
	e := startFarm(t, 2, "127.3.3.1")
	tr := e.transport()
	defer tr.Close()
	r := &dispatch.Runner{Transport: tr}
	res, _, lines := collect(t, r, dispatch.Request{Command: "echo one; echo two >&2; printf three", Stream: true}, dispatch.Plan{Direct: e.targets()[:1]})
	require.Nil(t, res["cn001"].Stdout)
	require.ElementsMatch(t, []string{"cn001 false one", "cn001 true two", "cn001 false three"}, lines)

	// Another farm's host key on the same address is refused.
	other := startFarm(t, 1, "127.3.3.9")
	bad := &dispatch.SSH{NodeAuth: tr.NodeAuth, HostKeyCallback: e.hostCB}
	defer bad.Close()
	res, _, _ = collect(t, &dispatch.Runner{Transport: bad}, dispatch.Request{Command: "true"}, dispatch.Plan{Direct: other.targets()})
	require.ErrorIs(t, res["cn001"].Err, dispatch.ErrHostKey)
	require.False(t, errors.Is(res["cn001"].Err, dispatch.ErrTimeout))
}

func TestBadRequests(t *testing.T) {
	r := &dispatch.Runner{Transport: &dispatch.SSH{}}
	for name, req := range map[string]dispatch.Request{
		"fanout":   {Command: "true", Fanout: -1},
		"empty":    {Command: "  "},
		"user":     {Command: "true", User: "root;rm"},
		"env name": {Command: "true", Env: map[string]string{"A-B": "x"}},
		"args":     {Command: "true", Args: []string{"x"}},
	} {
		_, err := r.Run(t.Context(), req, dispatch.Plan{}, dispatch.Handlers{})
		require.ErrorIs(t, err, dispatch.ErrInvalid, name)
	}
}
