package dispatch_test

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/dispatch"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/liveness"
)

func planState() *pool.State {
	m := func(name, ip string) pool.Member {
		return pool.Member{Name: name, Addresses: map[string]netip.Addr{"mgmt": netip.MustParseAddr(ip)}}
	}
	n := func(name, ip string, sns ...string) pool.Node {
		return pool.Node{Name: name, IP: netip.MustParseAddr(ip), Network: "mgmt", ServiceNodes: sns, Groups: []string{"compute"}}
	}
	return &pool.State{
		Members: []pool.Member{m("mn1", "10.0.0.1"), m("sn1", "10.0.0.2"), m("sn10", "10.0.0.10"), m("sn2", "10.0.0.3")},
		Nodes: []pool.Node{
			n("cn1", "10.0.1.1", "sn1", "sn2"),
			n("cn2", "10.0.1.2", "sn10", "sn2"),
			n("cn3", "10.0.1.3", "mn1", "sn1"),
			n("cn4", "10.0.1.4", "sn2", "sn10"),
			{Name: "cn5", Network: "mgmt", ServiceNodes: []string{"sn1", "mn1"}, Groups: []string{"compute"}},
		},
	}
}

// routes summarises a plan as target -> first hop ("" for direct,
// "failed" for targets that cannot run).
func routes(p dispatch.Plan) map[string]string {
	out := map[string]string{}
	for _, t := range p.Direct {
		out[t.Name] = ""
	}
	for _, g := range p.Relays {
		for _, t := range g.Targets {
			out[t.Name] = dispatch.ViaChain(g)
		}
	}
	for _, r := range p.Failed {
		out[r.Node] = "failed"
	}
	return out
}

func TestPlanRouting(t *testing.T) {
	st := planState()
	all := []string{"cn1", "cn2", "cn3", "cn4", "cn5", "sn10"}
	dead := liveness.Static{"sn1": liveness.Dead, "sn2": liveness.Dead}
	cases := []struct {
		name string
		o    dispatch.PlanOptions
		want map[string]string
	}{
		{"auto from mn1", dispatch.PlanOptions{Self: "mn1"},
			map[string]string{"cn1": "sn1", "cn2": "sn10", "cn3": "", "cn4": "sn2", "cn5": "failed", "sn10": ""}},
		{"auto from sn1", dispatch.PlanOptions{Self: "sn1"},
			map[string]string{"cn1": "", "cn2": "sn10", "cn3": "mn1", "cn4": "sn2", "cn5": "failed", "sn10": ""}},
		{"auto with sn1 and sn2 dead", dispatch.PlanOptions{Self: "mn1", Liveness: dead},
			// cn1: every member dead, run from here; cn4 fails over to sn10.
			map[string]string{"cn1": "", "cn2": "sn10", "cn3": "", "cn4": "sn10", "cn5": "failed", "sn10": ""}},
		{"direct", dispatch.PlanOptions{Self: "mn1", Via: dispatch.ViaDirect},
			map[string]string{"cn1": "", "cn2": "", "cn3": "", "cn4": "", "cn5": "failed", "sn10": ""}},
		{"via sn2", dispatch.PlanOptions{Self: "mn1", Via: "sn2"},
			map[string]string{"cn1": "sn2", "cn2": "sn2", "cn3": "sn2", "cn4": "sn2", "cn5": "failed", "sn10": "sn2"}},
		{"via sn1 then sn2", dispatch.PlanOptions{Self: "mn1", Via: "sn1,sn2"},
			map[string]string{"cn1": "sn1,sn2", "cn2": "sn1,sn2", "cn3": "sn1,sn2", "cn4": "sn1,sn2", "cn5": "failed", "sn10": "sn1,sn2"}},
		{"via self is direct", dispatch.PlanOptions{Self: "sn2", Via: "sn2"},
			map[string]string{"cn1": "", "cn2": "", "cn3": "", "cn4": "", "cn5": "failed", "sn10": ""}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := dispatch.NewPlan(st, all, c.o)
			require.NoError(t, err)
			if d := cmp.Diff(c.want, routes(p)); d != "" {
				t.Fatalf("routes (-want +got):\n%s", d)
			}
			require.Equal(t, len(all), p.Len())
		})
	}
	p, err := dispatch.NewPlan(st, []string{"cn1"}, dispatch.PlanOptions{Self: "mn1", Port: 2222})
	require.NoError(t, err)
	require.Equal(t, "10.0.0.2:2222", p.Relays[0].Via[0].Addr)
	require.Equal(t, "10.0.1.1:2222", p.Relays[0].Targets[0].Addr)
	require.Equal(t, dispatch.KindMember, p.Relays[0].Via[0].Kind)

	_, err = dispatch.NewPlan(st, all, dispatch.PlanOptions{Via: "sn"})
	require.ErrorIs(t, err, dispatch.ErrInvalid)
	require.ErrorContains(t, err, "sn1, sn10, sn2")
}

func TestSelectMatchesMembersExactly(t *testing.T) {
	st := planState()
	got, err := dispatch.Select(st, "sn1,cn[1-2]")
	require.NoError(t, err)
	require.Equal(t, []string{"cn1", "cn2", "sn1"}, got)
	got, err = dispatch.Select(st, "compute,-cn5")
	require.NoError(t, err)
	require.Equal(t, []string{"cn1", "cn2", "cn3", "cn4"}, got)
	_, err = dispatch.Select(st, "cn1,sn3,cn9")
	require.ErrorIs(t, err, dispatch.ErrUnknown)
	require.ErrorContains(t, err, "unknown nodes or groups: cn9, sn3")
	_, err = dispatch.Select(st, " ")
	require.ErrorIs(t, err, dispatch.ErrInvalid)
}

func TestEnvFileAndCollate(t *testing.T) {
	env, err := dispatch.ParseEnvFile("f", []byte("# c\n\nexport A='x y'\nB=\"q\"\nC=plain=1\n"))
	require.NoError(t, err)
	require.Equal(t, map[string]string{"A": "x y", "B": "q", "C": "plain=1"}, env)
	_, err = dispatch.ParseEnvFile("f", []byte("A=1\n$(reboot)\n"))
	require.ErrorIs(t, err, dispatch.ErrInvalid)
	require.ErrorContains(t, err, "f line 2")

	rs := []dispatch.Result{
		{Node: "cn2", Stdout: []byte("ok\n")}, {Node: "cn1", Stdout: []byte("ok\n")},
		{Node: "cn3", Stdout: []byte("ok\n"), ExitCode: 1}, {Node: "cn4", ExitCode: -1, Err: dispatch.ErrTimeout},
	}
	gs := dispatch.CollateResults(rs)
	require.Len(t, gs, 3)
	require.Equal(t, "cn[1-2]", gs[0].Range)
	require.Equal(t, "cn3", gs[1].Range)
	require.Equal(t, "timeout", gs[2].Error)
}
