package console_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/console"
	"github.com/mnpool/mnpool/internal/testenv"
	"github.com/mnpool/mnpool/pki"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
)

// rawHello sends one line to a broker and returns its final reply.
func rawHello(t *testing.T, addr, line string) console.Reply {
	t.Helper()
	return rawHelloWith(t, userDial(t, ""), addr, line)
}

// rawHelloWith is rawHello over dial (TLS with some certificate, or a
// Unix socket).
func rawHelloWith(t *testing.T, dial console.DialFunc, addr, line string) console.Reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := dial(ctx, "tcp", addr)
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
	m.Services = []service.Service{service.DHCP}
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
		"hops by a user":  {`{"node":"cn001","mode":"watch","hops":2}`, console.CodeBadRequest, "hops is set by brokers only"},
		"claimed user":    {`{"node":"cn001","mode":"write","force":true,"user":"root@mn1"}`, console.CodeForbidden, `names user "root@mn1" but the connection is authenticated as tester`},
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
	err = console.Attach(ctx, console.AttachOptions{Addrs: []string{addr}, Dial: userDial(t, ""), Hello: console.Hello{Node: "cn999", Mode: console.ModeWatch}, Reconnect: true})
	var re *console.RejectError
	require.ErrorAs(t, err, &re)
	require.ErrorIs(t, err, console.ErrRejected)
	require.Equal(t, console.CodeNotFound, re.Code)

	// A member's broker proxying past the hop limit is refused (sn1's
	// certificate, hops 2: this broker would be the third).
	r := rawHelloWith(t, console.TLSDialer(nil, credsFor(t, pki.KindMember, "sn1").ClientConfig("mn1")), addr, `{"node":"cn001","mode":"watch","hops":2,"user":"alice"}`)
	require.Equal(t, console.CodeHops, r.Code, r.Error)
	require.Contains(t, r.Error, "sn1")
}
