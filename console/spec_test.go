package console_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/console"
	"github.com/mnpool/mnpool/pool/liveness"
)

func TestSpecValidate(t *testing.T) {
	long := strings.Repeat("a", console.MaxArgLen+1)
	cases := map[string]struct {
		spec    console.Spec
		mention string // "" when valid
	}{
		"tcp ip":              {console.Spec{Node: "cn001", Kind: console.KindTCP, Address: "10.0.0.5:2001"}, ""},
		"tcp name":            {console.Spec{Node: "cn001", Kind: console.KindTCP, Address: "ts1.cluster:7001"}, ""},
		"tcp ipv6":            {console.Spec{Node: "cn001", Kind: console.KindTCP, Address: "[fd00::5]:2001"}, ""},
		"command abs":         {console.Spec{Node: "cn001", Kind: console.KindCommand, Argv: []string{"/usr/bin/ipmitool", "-I", "lanplus", "-H", "cn001-bmc", "sol", "activate"}}, ""},
		"command bare":        {console.Spec{Node: "cn001", Kind: console.KindCommand, Argv: []string{"ipmitool", "sol", "activate"}}, ""},
		"servers":             {console.Spec{Node: "cn001", Kind: console.KindTCP, Address: "ts1:7001", Servers: []string{"sn1", "sn2"}}, ""},
		"bad node":            {console.Spec{Node: "cn_1", Kind: console.KindTCP, Address: "ts1:7001"}, `"cn_1"`},
		"bad kind":            {console.Spec{Node: "cn001", Kind: "ssh", Address: "ts1:7001"}, `"ssh"`},
		"tcp no port":         {console.Spec{Node: "cn001", Kind: console.KindTCP, Address: "ts1"}, `"ts1"`},
		"tcp port 0":          {console.Spec{Node: "cn001", Kind: console.KindTCP, Address: "ts1:0"}, "1-65535"},
		"tcp bad host":        {console.Spec{Node: "cn001", Kind: console.KindTCP, Address: "ts_1;rm:70"}, `"ts_1;rm"`},
		"tcp with argv":       {console.Spec{Node: "cn001", Kind: console.KindTCP, Address: "ts1:70", Argv: []string{"x"}}, "not a command"},
		"command empty":       {console.Spec{Node: "cn001", Kind: console.KindCommand}, "empty"},
		"command relative":    {console.Spec{Node: "cn001", Kind: console.KindCommand, Argv: []string{"bin/ipmitool"}}, `"bin/ipmitool"`},
		"command dotdot":      {console.Spec{Node: "cn001", Kind: console.KindCommand, Argv: []string{"/usr/../tmp/x"}}, `"/usr/../tmp/x"`},
		"command shell line":  {console.Spec{Node: "cn001", Kind: console.KindCommand, Argv: []string{"ipmitool sol activate"}}, `"ipmitool sol activate"`},
		"command newline arg": {console.Spec{Node: "cn001", Kind: console.KindCommand, Argv: []string{"ipmitool", "a\nb"}}, "control character"},
		"command long arg":    {console.Spec{Node: "cn001", Kind: console.KindCommand, Argv: []string{"ipmitool", long}}, "at most 1024"},
		"command address":     {console.Spec{Node: "cn001", Kind: console.KindCommand, Argv: []string{"ipmitool"}, Address: "x:1"}, "not an address"},
		"servers dup":         {console.Spec{Node: "cn001", Kind: console.KindTCP, Address: "ts1:70", Servers: []string{"sn1", "sn1"}}, "twice"},
		"servers bad":         {console.Spec{Node: "cn001", Kind: console.KindTCP, Address: "ts1:70", Servers: []string{"sn 1"}}, `"sn 1"`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			err := c.spec.Validate()
			if c.mention == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, console.ErrInvalid)
			require.Contains(t, err.Error(), c.mention)
		})
	}
}

func TestSpecExpandAndEndpoint(t *testing.T) {
	tmpl := console.Spec{Kind: console.KindCommand, Argv: []string{"ipmitool", "-H", "{node}-bmc", "-f", "/etc/pw file"}, Servers: []string{"sn2"}}
	got := tmpl.Expand("cn007")
	want := console.Spec{Node: "cn007", Kind: console.KindCommand, Argv: []string{"ipmitool", "-H", "cn007-bmc", "-f", "/etc/pw file"}, Servers: []string{"sn2"}}
	require.Empty(t, cmp.Diff(want, got))
	require.Equal(t, []string{"ipmitool", "-H", "{node}-bmc", "-f", "/etc/pw file"}, tmpl.Argv, "the template is unchanged")
	require.Equal(t, `command ipmitool -H cn007-bmc -f "/etc/pw file"`, got.Endpoint())
	require.Equal(t, "tcp ts1:7007", console.Spec{Kind: console.KindTCP, Address: "ts1:7{node}"}.Expand("007").Endpoint())
}

func TestSetListRemoveSpecs(t *testing.T) {
	eachBackend(t, 1, func(t *testing.T, dsns []string) {
		ctx := context.Background()
		s := openStore(t, dsns[0], "mn1")
		seedPool(t, s, "10.0.0.5:2001", "10.0.0.5:2002")
		cmd := console.Spec{Node: "cn002", Kind: console.KindCommand, Argv: []string{"/usr/bin/ipmitool", "-H", "cn002-bmc", "sol", "activate"}, Servers: []string{"mn1", "sn1"}}
		require.NoError(t, console.SetSpecs(ctx, s, []console.Spec{cmd}))
		got, err := console.Specs(ctx, s)
		require.NoError(t, err)
		want := []console.Spec{{Node: "cn001", Kind: console.KindTCP, Address: "10.0.0.5:2001"}, cmd}
		require.Empty(t, cmp.Diff(want, got))
		one, err := console.SpecOf(ctx, s, "cn002")
		require.NoError(t, err)
		require.Empty(t, cmp.Diff(cmd, one))

		// Nothing is written when one spec is bad.
		err = console.SetSpecs(ctx, s, []console.Spec{{Node: "cn001", Kind: console.KindTCP, Address: "ts9:1"}, {Node: "cn404", Kind: console.KindTCP, Address: "ts9:2"}})
		require.ErrorIs(t, err, console.ErrNotFound)
		require.Contains(t, err.Error(), "cn404")
		err = console.SetSpecs(ctx, s, []console.Spec{{Node: "cn001", Kind: console.KindTCP, Address: "ts9:1", Servers: []string{"sn9"}}})
		require.ErrorIs(t, err, console.ErrInvalid)
		require.Contains(t, err.Error(), `"sn9"`)
		got, err = console.Specs(ctx, s)
		require.NoError(t, err)
		require.Empty(t, cmp.Diff(want, got))

		err = console.RemoveSpecs(ctx, s, []string{"cn001", "cn003"})
		require.ErrorIs(t, err, console.ErrNotFound)
		require.Contains(t, err.Error(), "cn003")
		require.NoError(t, console.RemoveSpecs(ctx, s, []string{"cn001"}))
		_, err = console.SpecOf(ctx, s, "cn001")
		require.ErrorIs(t, err, console.ErrNotFound)

		log, err := s.AuditLog(ctx, 10)
		require.NoError(t, err)
		var actions []string
		for _, e := range log {
			if strings.HasPrefix(e.Action, "console.") {
				actions = append(actions, e.Action+" "+e.Target)
			}
		}
		require.Equal(t, []string{"console.remove cn001", "console.set cn002", "console.set cn001,cn002"}, actions)
	})
}

func TestAllowedAndServerNow(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, backends()[0].dsns(t, 1)[0], "mn1")
	seedPool(t, s, "10.0.0.5:2001", "10.0.0.5:2002")
	st, err := s.LoadState(ctx)
	require.NoError(t, err)
	cn001 := st.Nodes[0]
	spec := console.Spec{Node: "cn001", Kind: console.KindTCP, Address: "ts1:1"}
	require.Equal(t, []string{"sn1", "sn2"}, console.Allowed(st, cn001, spec))
	spec.Servers = []string{"sn2", "nosuch", "mn1"}
	require.Equal(t, []string{"sn2", "mn1"}, console.Allowed(st, cn001, spec), "unknown members are dropped")

	m, _ := st.Member("sn2")
	m.Disabled = true
	require.NoError(t, s.AddMember(ctx, m, true))
	m, _ = st.Member("mn1")
	m.Services = nil
	require.NoError(t, s.AddMember(ctx, m, true))
	st, err = s.LoadState(ctx)
	require.NoError(t, err)
	require.Empty(t, console.Allowed(st, cn001, spec), "disabled members and members without the console service may not serve")

	live := liveness.Static{"sn1": liveness.Dead}
	allowed := []string{"sn1", "sn2", "mn1"}
	require.Equal(t, "sn2", console.ServerNow(allowed, console.Holder{}, live))
	require.Equal(t, "mn1", console.ServerNow(allowed, console.Holder{Member: "mn1", Token: 4}, live), "the holder serves while usable")
	require.Equal(t, "sn2", console.ServerNow(allowed, console.Holder{Member: "sn1", Token: 4}, live), "a dead holder's console goes to the next")
	require.Equal(t, "", console.ServerNow([]string{"sn1"}, console.Holder{}, live))
}

func TestBrokerAddr(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, backends()[0].dsns(t, 1)[0], "mn1")
	seedPool(t, s, "10.0.0.5:2001", "10.0.0.5:2002")
	st, err := s.LoadState(ctx)
	require.NoError(t, err)
	a, err := console.BrokerAddr(st, "sn1")
	require.NoError(t, err)
	require.Equal(t, "10.0.0.2:3016", a)
	st.Site[console.SitePort] = "4000"
	a, err = console.BrokerAddr(st, "sn2")
	require.NoError(t, err)
	require.Equal(t, "10.0.0.3:4000", a)
	st.Site[console.SiteNetwork] = "ib0"
	_, err = console.BrokerAddr(st, "sn2")
	require.ErrorIs(t, err, console.ErrNotFound)
	require.Contains(t, err.Error(), "ib0")
	st.Site[console.SitePort] = "http"
	_, err = console.BrokerAddr(st, "sn2")
	require.ErrorIs(t, err, console.ErrInvalid)
	require.Contains(t, err.Error(), `"http"`)
	_, err = console.BrokerAddr(st, "sn9")
	require.ErrorIs(t, err, console.ErrNotFound)
}
