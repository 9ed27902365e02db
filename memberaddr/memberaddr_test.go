package memberaddr_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mnpool/mnpool/memberaddr"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
	"github.com/mnpool/mnpool/pool/siteschema"
)

func a(s string) netip.Addr { return netip.MustParseAddr(s) }

// state: mn1 on mgmt and ib, sn1 on mgmt and ib, sn2 on ib only, sn3 on
// mgmt only without dns; mgmt is in site.domain, ib has its own domain.
func state() *pool.State {
	all := []service.Service{service.DNS, service.NTP}
	return &pool.State{
		Site:   map[string]string{siteschema.Domain: "cluster.example"},
		Master: pool.Master{Member: "mn1", Epoch: 1},
		Networks: []pool.Network{
			{Name: "ib", Prefix: netip.MustParsePrefix("10.1.0.0/16"), Domain: "ib.example"},
			{Name: "mgmt", Prefix: netip.MustParsePrefix("10.0.0.0/16")},
		},
		Members: []pool.Member{ // sorted by name, as the store returns them
			{Name: "mn1", Services: all, Addresses: map[string]netip.Addr{"mgmt": a("10.0.0.1"), "ib": a("10.1.0.1")}},
			{Name: "sn1", Services: all, Addresses: map[string]netip.Addr{"mgmt": a("10.0.0.11"), "ib": a("10.1.0.11")}},
			{Name: "sn2", Services: all, Addresses: map[string]netip.Addr{"ib": a("10.1.0.12")}},
			{Name: "sn3", Services: []service.Service{service.NTP}, Addresses: map[string]netip.Addr{"mgmt": a("10.0.0.13")}},
		},
	}
}

func TestForNode(t *testing.T) {
	st := state()
	for name, tc := range map[string]struct {
		node    pool.Node
		svc     service.Service
		want    []memberaddr.Server
		wantErr error
	}{
		"list order, skips non-runners": {
			node: pool.Node{Name: "cn1", Network: "mgmt", ServiceNodes: []string{"sn3", "sn1", "mn1"}},
			svc:  service.DNS,
			want: []memberaddr.Server{{Member: "sn1", Addr: a("10.0.0.11")}, {Member: "mn1", Addr: a("10.0.0.1")}},
		},
		"address on the node's network": {
			node: pool.Node{Name: "cn2", Network: "ib", ServiceNodes: []string{"sn2", "sn1"}},
			svc:  service.NTP,
			want: []memberaddr.Server{{Member: "sn2", Addr: a("10.1.0.12")}, {Member: "sn1", Addr: a("10.1.0.11")}},
		},
		"no network":        {node: pool.Node{Name: "cn3", ServiceNodes: []string{"sn1"}}, svc: service.DNS, wantErr: memberaddr.ErrNoServers},
		"not a member":      {node: pool.Node{Name: "cn4", Network: "mgmt", ServiceNodes: []string{"sn9"}}, svc: service.DNS, wantErr: memberaddr.ErrNotMember},
		"no address there":  {node: pool.Node{Name: "cn5", Network: "mgmt", ServiceNodes: []string{"sn2"}}, svc: service.DNS, wantErr: memberaddr.ErrNoServers},
		"none runs the svc": {node: pool.Node{Name: "cn6", Network: "mgmt", ServiceNodes: []string{"sn3"}}, svc: service.DNS, wantErr: memberaddr.ErrNoServers},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := memberaddr.ForNode(st, tc.node, tc.svc)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
				t.Errorf("servers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestServiceNodes(t *testing.T) {
	st := state()
	n := pool.Node{Name: "cn1", Network: "mgmt", ServiceNodes: []string{"sn2", "sn9", "sn3", "mn1"}}
	got := memberaddr.ServiceNodes(st, n)
	want := []memberaddr.Server{{Member: "sn3", Addr: a("10.0.0.13")}, {Member: "mn1", Addr: a("10.0.0.1")}}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
		t.Errorf("ServiceNodes (-want +got):\n%s", diff)
	}
	if _, ok := memberaddr.OnNetwork(st.Members[0], ""); ok {
		t.Error("OnNetwork with no network: ok, want none")
	}
}

func TestNetworksAndPeer(t *testing.T) {
	st := state()
	mn, _ := st.Member("mn1")
	sn1, _ := st.Member("sn1")
	sn2, _ := st.Member("sn2")
	sn3, _ := st.Member("sn3")
	if got := memberaddr.Networks(st, mn); !cmp.Equal(got, []string{"mgmt", "ib"}) {
		t.Errorf("Networks(mn1) = %v, want the site domain's network first: [mgmt ib]", got)
	}
	for _, tc := range []struct {
		from, to pool.Member
		addr     string
		network  string
	}{
		{sn1, mn, "10.0.0.1", "mgmt"},             // shares both: preferred network
		{sn2, mn, "10.1.0.1", "ib"},               // shares ib only
		{sn3, sn2, "10.1.0.12", "ib"},             // shares none: sn2's first network
		{pool.Member{}, sn1, "10.0.0.11", "mgmt"}, // not a member
	} {
		got, nw, ok := memberaddr.Peer(st, tc.from, tc.to)
		if !ok || got != a(tc.addr) || nw != tc.network {
			t.Errorf("Peer(%s -> %s) = %v %s %v, want %s %s", tc.from.Name, tc.to.Name, got, nw, ok, tc.addr, tc.network)
		}
	}
	if _, _, ok := memberaddr.Peer(st, mn, pool.Member{Name: "x"}); ok {
		t.Error("Peer to a member without addresses: ok, want none")
	}
}

func TestPeers(t *testing.T) {
	st := state()
	names := func(ms []pool.Member) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.Name)
		}
		return out
	}
	for self, want := range map[string][]string{
		"mn1": {"sn1", "sn2", "sn3"},
		"sn2": {"mn1", "sn3", "sn1"}, // MN first, then ring order after sn2
		"sn3": {"mn1", "sn1", "sn2"},
	} {
		if got := names(memberaddr.Peers(st, self, service.NTP)); !cmp.Equal(got, want) {
			t.Errorf("Peers(%s, ntp) = %v, want %v", self, got, want)
		}
	}
	if got := names(memberaddr.Peers(st, "sn1", service.DNS)); !cmp.Equal(got, []string{"mn1", "sn2"}) {
		t.Errorf("Peers(sn1, dns) = %v, want [mn1 sn2] (sn3 runs no dns)", got)
	}
	if d := memberaddr.Domain(st, "ib"); d != "ib.example" {
		t.Errorf("Domain(ib) = %q", d)
	}
	if d := memberaddr.Domain(st, "mgmt"); d != "cluster.example" {
		t.Errorf("Domain(mgmt) = %q, want site.domain", d)
	}
}
