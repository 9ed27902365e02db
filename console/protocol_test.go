package console_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/console"
	"github.com/mnpool/mnpool/internal/testenv"
	"github.com/mnpool/mnpool/pool"
)

// rawHello sends one line to a broker and returns its final reply.
func rawHello(t *testing.T, addr, line string) console.Reply {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(testenv.Timeout(10 * time.Second)))
	_, err = c.Write([]byte(line + "\n"))
	require.NoError(t, err)
	br := bufio.NewReader(c)
	for {
		l, err := br.ReadBytes('\n')
		require.NoError(t, err)
		var r console.Reply
		require.NoError(t, json.Unmarshal(l, &r))
		if r.OK || r.Error != "" {
			return r
		}
	}
}

func TestBrokerRefusals(t *testing.T) {
	ctx := context.Background()
	ep1, ep2 := newFakeEndpoint(t, "cn001"), newFakeEndpoint(t, "cn002")
	dsns := backends()[0].dsns(t, 2)
	s := openStore(t, dsns[0], "mn1")
	seedPool(t, s, ep1.Addr(), ep2.Addr())
	require.NoError(t, s.AddNodes(ctx, []pool.Node{
		{Name: "cn003", IP: netip.MustParseAddr("10.0.1.3"), Network: "mgmt", ServiceNodes: []string{"sn1", "sn2"}},
		{Name: "cn004", IP: netip.MustParseAddr("10.0.1.4"), Network: "mgmt", ServiceNodes: []string{"sn1", "sn2"}},
	}, pool.AddOptions{}))
	require.NoError(t, console.SetSpecs(ctx, s, []console.Spec{{Node: "cn004", Kind: console.KindTCP, Address: ep1.Addr(), Servers: []string{"mn1"}}}))
	m, err := s.Member(ctx, "mn1")
	require.NoError(t, err)
	m.Services = []pool.Service{pool.ServiceDHCP}
	require.NoError(t, s.AddMember(ctx, m, true))
	c := startCluster(t, dsns, []string{"mn1", "sn1"})
	addr := c.addrs["mn1"]

	cases := map[string]struct {
		line, code, mention string
	}{
		"not json":        {"hello", console.CodeBadRequest, "bad protocol line"},
		"unknown field":   {`{"node":"cn001","mode":"watch","x":1}`, console.CodeBadRequest, `unknown field "x"`},
		"bad mode":        {`{"node":"cn001","mode":"admin"}`, console.CodeBadRequest, `"admin"`},
		"bad node name":   {`{"node":"cn 1","mode":"watch"}`, console.CodeBadRequest, `"cn 1"`},
		"unknown node":    {`{"node":"cn999","mode":"watch"}`, console.CodeNotFound, "cn999 is not a node"},
		"no console":      {`{"node":"cn003","mode":"watch"}`, console.CodeNotFound, "cn003 has no console"},
		"no server":       {`{"node":"cn004","mode":"watch"}`, console.CodeNoServer, "mn1"},
		"too many hops":   {`{"node":"cn001","mode":"watch","hops":2}`, console.CodeHops, "sn1"},
		"hops over limit": {`{"node":"cn001","mode":"watch","hops":9}`, console.CodeBadRequest, "hops 9"},
	}
	for name, cs := range cases {
		t.Run(name, func(t *testing.T) {
			r := rawHello(t, addr, cs.line)
			require.False(t, r.OK)
			require.Equal(t, cs.code, r.Code, r.Error)
			require.Contains(t, r.Error, cs.mention)
		})
	}

	// A refusal reaches a client as a *RejectError; Attach gives up at
	// once on a permanent one even with Reconnect.
	err = console.Attach(ctx, console.AttachOptions{Addrs: []string{addr}, Hello: console.Hello{Node: "cn999", Mode: console.ModeWatch}, Reconnect: true})
	var re *console.RejectError
	require.ErrorAs(t, err, &re)
	require.ErrorIs(t, err, console.ErrRejected)
	require.Equal(t, console.CodeNotFound, re.Code)

	// Peers: loopback and members' addresses only.
	b := c.members["mn1"].broker
	require.True(t, b.Trusted("127.0.0.9:5000"))
	require.True(t, b.Trusted("10.0.0.3:5000"), "sn2's address")
	require.False(t, b.Trusted("10.0.1.1:5000"), "a compute node")
	require.False(t, b.Trusted("192.0.2.1:5000"))
}
