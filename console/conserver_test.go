package console_test

import (
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/console"
	"github.com/mnpool/mnpool/internal/golden"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/liveness"
	"github.com/mnpool/mnpool/pool/service"
)

// conserverState is a pool of mn1, sn1, sn2, sn3 (sn3 does not run the
// console service) and nodes with various lists and lease holders.
func conserverState() (*pool.State, []console.Spec, map[string]console.Holder) {
	addr := func(ip string) map[string]netip.Addr { return map[string]netip.Addr{"mgmt": netip.MustParseAddr(ip)} }
	st := &pool.State{
		Site:   map[string]string{console.SitePort: "3016"},
		Master: pool.Master{Member: "mn1", Epoch: 1},
		Members: []pool.Member{
			{Name: "mn1", Addresses: addr("10.0.0.1"), Services: service.All()},
			{Name: "sn1", Addresses: addr("10.0.0.2"), Services: service.All()},
			{Name: "sn2", Addresses: addr("10.0.0.3"), Services: service.All()},
			{Name: "sn3", Addresses: addr("10.0.0.4"), Services: []service.Service{service.DHCP}},
		},
		Nodes: []pool.Node{
			{Name: "cn1", ServiceNodes: []string{"sn1", "sn2"}},
			{Name: "cn2", ServiceNodes: []string{"sn2", "sn1"}},
			{Name: "cn3", ServiceNodes: []string{"sn1", "sn2"}},
			{Name: "cn4", ServiceNodes: []string{"sn3", "sn1"}},
			{Name: "cn10", ServiceNodes: []string{"sn1", "sn2"}},
			{Name: "cn11", ServiceNodes: []string{"sn2", "mn1"}},
			{Name: "cn12", ServiceNodes: []string{"sn1", "sn2"}},
		},
	}
	var specs []console.Spec
	for _, n := range st.Nodes {
		if n.Name == "cn12" {
			continue // no console configured
		}
		specs = append(specs, console.Spec{Node: n.Name, Kind: console.KindTCP, Address: "ts1:70" + n.Name[2:]})
	}
	specs[4].Servers = []string{"mn1", "sn1"} // cn10 overrides its list
	holders := map[string]console.Holder{
		"cn3":  {Node: "cn3", Member: "sn2", Token: 7}, // sticky: sn2 holds it although sn1 is first
		"cn11": {Node: "cn11", Member: "sn2", Token: 3},
	}
	return st, specs, holders
}

func TestRenderConserverGolden(t *testing.T) {
	st, specs, holders := conserverState()
	// sn2 is dead: its consoles go to the next member of each list.
	live := liveness.Static{"sn2": liveness.Dead, "sn1": liveness.Alive}
	cases := map[string]console.ConserverOptions{
		"conserver-sn1.cf": {Member: "sn1"},
		"conserver-mn1.cf": {Member: "mn1", Program: "/opt/mnpool/bin/mnpool", Socket: "/run/mnpool/test.sock", OnDemand: true, LogDir: "/var/log/mnpool/consoles"},
		"conserver-sn3.cf": {Member: "sn3"},
	}
	for name, o := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := console.RenderConserver(st, specs, holders, live, o)
			require.NoError(t, err)
			golden.Check(t, filepath.Join("testdata", name), out)
			again, err := console.RenderConserver(st, specs, holders, live, o)
			require.NoError(t, err)
			require.Equal(t, out, again, "deterministic")
		})
	}
	// With everyone alive the sticky holder keeps its consoles.
	require.Equal(t, []string{"cn2", "cn3", "cn11"}, console.ServedBy(st, specs, holders, nil, "sn2"))
	require.Equal(t, []string{"cn1", "cn4"}, console.ServedBy(st, specs, holders, nil, "sn1"))
	require.Equal(t, []string{"cn10"}, console.ServedBy(st, specs, holders, nil, "mn1"))
}

func TestRenderConserverRejects(t *testing.T) {
	st, specs, holders := conserverState()
	cases := map[string]struct {
		o       console.ConserverOptions
		mention string
	}{
		"unknown member": {console.ConserverOptions{Member: "sn9"}, `"sn9"`},
		"bad program":    {console.ConserverOptions{Member: "sn1", Program: "mnpool; rm -rf /"}, `"mnpool; rm -rf /"`},
		"relative log":   {console.ConserverOptions{Member: "sn1", LogDir: "logs"}, `"logs"`},
		"bad socket":     {console.ConserverOptions{Member: "sn1", Socket: "run/x;y"}, `"run/x;y"`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := console.RenderConserver(st, specs, holders, nil, c.o)
			require.Error(t, err)
			require.Contains(t, err.Error(), c.mention)
		})
	}
}
