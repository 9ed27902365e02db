package pool_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/dhcp"
	"github.com/mnpool/mnpool/internal/storetest"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/siteschema"
)

// The tests of this file reproduce the problems of issue 18 ("node data an
// administrator can live with") one by one.

func nodeByName(t *testing.T, s *pool.Store, name string) pool.Node {
	t.Helper()
	ns, err := s.Nodes(context.Background())
	require.NoError(t, err)
	for _, n := range ns {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("node %s not found", name)
	return pool.Node{}
}

func chg(t *testing.T, kv ...string) []pool.NodeChange {
	t.Helper()
	var out []pool.NodeChange
	for _, s := range kv {
		c, err := pool.ParseNodeChange(s)
		require.NoError(t, err, s)
		out = append(out, c)
	}
	return out
}

// Problem: there was no way to change a node, and `node import --replace`
// of a node,ip file wiped the MAC, groups and servicenode list and was
// audited as node.add.
func TestNodeChangeKeepsOtherAttributes(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx := context.Background()
		storetest.Seed(t, s, 3)
		before := nodeByName(t, s, "cn00001")
		require.NotEmpty(t, before.MACs)
		// What `printf 'node,ip\ncn00001,10.1.9.9\n' | node import - --replace` does now.
		rep, err := s.ApplyNodes(ctx, []pool.NodeUpdate{{Name: "cn00001", Changes: chg(t, "ip=10.1.9.9")}}, pool.SetOptions{Create: true})
		require.NoError(t, err)
		require.Len(t, rep.Changed, 1)
		require.Equal(t, []pool.NodeAttr{pool.AttrIP}, rep.Changed[0].Changed)
		after := nodeByName(t, s, "cn00001")
		require.Equal(t, netip.MustParseAddr("10.1.9.9"), after.IP)
		require.Equal(t, before.MACs, after.MACs)
		require.Equal(t, before.Groups, after.Groups)
		require.Equal(t, before.ServiceNodes, after.ServiceNodes)
		require.Equal(t, before.Manual, after.Manual)
		require.Equal(t, before.Revision+1, after.Revision)

		log, err := s.AuditLog(ctx, 1)
		require.NoError(t, err)
		require.Equal(t, "node.set", log[0].Action)
		var d struct {
			Before, After pool.Node
		}
		require.NoError(t, json.Unmarshal([]byte(log[0].Detail), &d))
		require.Equal(t, before.IP, d.Before.IP)
		require.Equal(t, after.IP, d.After.IP)
	})
}

func TestSetNodesOperations(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx := context.Background()
		storetest.Seed(t, s, 3)
		names := []string{"cn00001", "cn00002"}
		_, err := s.SetNodes(ctx, names, chg(t, "groups+=gpu,Compute", "groups-=rack1"), pool.SetOptions{})
		require.NoError(t, err)
		require.Equal(t, []string{"compute", "gpu"}, nodeByName(t, s, "cn00002").Groups)

		// Dry run: reported, not written.
		rev := nodeByName(t, s, "cn00001").Revision
		rep, err := s.SetNodes(ctx, names, chg(t, "mac="), pool.SetOptions{DryRun: true})
		require.NoError(t, err)
		require.Len(t, rep.Changed, 2)
		require.NotEmpty(t, nodeByName(t, s, "cn00001").MACs)
		require.Equal(t, rev, nodeByName(t, s, "cn00001").Revision)

		// KEY= clears; servicenodes= makes the list automatic again.
		_, err = s.SetNodes(ctx, names[:1], chg(t, "mac=", "servicenodes="), pool.SetOptions{})
		require.NoError(t, err)
		n := nodeByName(t, s, "cn00001")
		require.Empty(t, n.MACs)
		require.Empty(t, n.ServiceNodes)
		require.False(t, n.Manual)
		_, err = s.SetNodes(ctx, names[:1], chg(t, "mac+=02:AA:00:00:00:01", "servicenodes=sn2,sn1"), pool.SetOptions{})
		require.NoError(t, err)
		n = nodeByName(t, s, "cn00001")
		require.Equal(t, []string{"02:aa:00:00:00:01"}, n.MACs)
		require.Equal(t, []string{"sn2", "sn1"}, n.ServiceNodes)
		require.True(t, n.Manual)

		// Invalid results are refused with nothing written.
		for _, bad := range [][]string{{"ip=10.1.0.2"}, {"servicenodes=sn9"}, {"ip=192.0.2.1"}, {"mac=" + nodeByName(t, s, "cn00003").MACs[0]}, {"groups=sn1"}} {
			_, err := s.SetNodes(ctx, names[:1], chg(t, bad...), pool.SetOptions{})
			require.Error(t, err, bad)
		}
		require.Equal(t, n.Revision, nodeByName(t, s, "cn00001").Revision)
		_, err = s.SetNodes(ctx, []string{"nosuch"}, chg(t, "ip="), pool.SetOptions{})
		require.ErrorIs(t, err, pool.ErrNotFound)
		_, err = pool.ParseNodeChange("ip+=10.0.0.1")
		require.ErrorIs(t, err, pool.ErrInvalid)
	})
}

// Problem: member add cn001 (a node), member add compute (a group), node
// add SN1 and CN001 (case), node add grpx (a group) and node add all were
// accepted.
func TestOneNameSpace(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx := context.Background()
		storetest.Seed(t, s, 2)
		_, err := s.SetNodes(ctx, []string{"cn00002"}, chg(t, "groups+=grpx"), pool.SetOptions{})
		require.NoError(t, err)
		mgmt := func(ip string) map[string]netip.Addr { return map[string]netip.Addr{"mgmt": netip.MustParseAddr(ip)} }
		for _, name := range []string{"cn00001", "CN00001", "compute", "Grpx", "all", "ALL"} {
			err := s.AddMember(ctx, pool.Member{Name: name, Addresses: mgmt("10.0.0.50")}, false)
			require.Error(t, err, "member add %s", name)
		}
		for i, name := range []string{"SN1", "CN00001", "grpx", "Compute", "all", "Mn1"} {
			n := pool.Node{Name: name, IP: netip.AddrFrom4([4]byte{10, 2, 0, byte(i + 1)})}
			err := s.AddNodes(ctx, []pool.Node{n}, pool.AddOptions{})
			require.Error(t, err, "node add %s", name)
		}
		for _, g := range []string{"sn1", "CN00002", "All", "GRPX"} {
			n := pool.Node{Name: "cn99999", Groups: []string{g}}
			require.Error(t, s.AddNodes(ctx, []pool.Node{n}, pool.AddOptions{}), "group %s", g)
		}
		// Two spellings of one name in one batch.
		err = s.AddNodes(ctx, []pool.Node{{Name: "cn90001"}, {Name: "CN90001"}}, pool.AddOptions{})
		require.ErrorIs(t, err, pool.ErrInvalid)
		r, err := s.Check(ctx)
		require.NoError(t, err)
		require.True(t, r.OK(), "%+v", r)
	})
}

// An existing database that breaks the rule is reported, not changed.
func TestCheckReportsLegacyNames(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx := context.Background()
		storetest.Seed(t, s, 1)
		require.NoError(t, s.Tx(ctx, func(tx *sqlx.Tx) error {
			for _, name := range []string{"SN1", "all"} {
				if _, err := tx.ExecContext(ctx, "INSERT INTO nodes (name, network, ip, grouplist, servicenodes, manual, revision) VALUES (?, '', NULL, '', '', 0, 0)", name); err != nil {
					return err
				}
			}
			_, err := tx.ExecContext(ctx, "INSERT INTO site (name, value) VALUES ('dhcplease', 'abc')")
			return err
		}))
		r, err := s.Check(ctx)
		require.NoError(t, err)
		require.False(t, r.OK())
		var names []string
		for _, p := range r.Names {
			names = append(names, p.Name+": "+strings.Join(p.Kinds, ","))
		}
		require.Equal(t, []string{"all: node all", "sn1: member sn1,node SN1"}, names)
		require.Len(t, r.Site, 1)
		require.Equal(t, "dhcplease", r.Site[0].Key)
		// Nothing was changed.
		nodeByName(t, s, "SN1")
	})
}

// Problem: the store accepted networks the renderer rejects, and a
// gateway inside the dynamic range passed both.
func TestNetworkRulesShared(t *testing.T) {
	a := netip.MustParseAddr
	base := func() pool.Network {
		return pool.Network{Name: "net2", Prefix: netip.MustParsePrefix("10.32.0.0/16"), Gateways: []netip.Addr{a("10.32.0.254")},
			DynamicStart: a("10.32.200.1"), DynamicEnd: a("10.32.200.254")}
	}
	cases := map[string]func(n *pool.Network){
		"gateway is the network address":   func(n *pool.Network) { n.Gateways = []netip.Addr{a("10.32.0.0")} },
		"gateway is the broadcast address": func(n *pool.Network) { n.Gateways = []netip.Addr{a("10.32.255.255")} },
		"duplicate gateways":               func(n *pool.Network) { n.Gateways = []netip.Addr{a("10.32.0.254"), a("10.32.0.254")} },
		"gateway in the dynamic range":     func(n *pool.Network) { n.Gateways = []netip.Addr{a("10.32.200.7")} },
		"range holds the network address":  func(n *pool.Network) { n.DynamicStart = a("10.32.0.0") },
		"range holds the broadcast":        func(n *pool.Network) { n.DynamicEnd = a("10.32.255.255") },
		"IPv4-mapped IPv6": func(n *pool.Network) {
			*n = pool.Network{Name: "net2", Prefix: netip.MustParsePrefix("::ffff:10.0.0.0/112")}
		},
		"multicast": func(n *pool.Network) { *n = pool.Network{Name: "net2", Prefix: netip.MustParsePrefix("224.0.0.0/24")} },
		"loopback":  func(n *pool.Network) { *n = pool.Network{Name: "net2", Prefix: netip.MustParsePrefix("127.0.0.0/8")} },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			n := base()
			mutate(&n)
			require.ErrorIs(t, pool.CheckNetwork(n), pool.ErrInvalid)
			s := storetest.Open(t, storetest.Backends()[0].DSN(t))
			storetest.Seed(t, s, 0)
			require.ErrorIs(t, s.AddNetwork(context.Background(), n, false), pool.ErrInvalid)
			// The DHCP renderer refuses the same network (a database
			// written before the rule may hold it).
			if n.Prefix.Addr().Is4() && !n.Prefix.Addr().IsLoopback() && !n.Prefix.Addr().IsMulticast() {
				st, err := s.LoadState(context.Background())
				require.NoError(t, err)
				st.Networks = append(st.Networks, n)
				for i := range st.Members {
					if st.Members[i].Name == "mn1" {
						st.Members[i].Addresses["net2"] = a("10.32.0.1")
					}
				}
				_, err = dhcp.Render(st, "mn1", dhcp.Options{})
				require.True(t, errors.Is(err, dhcp.ErrInvalid), "dhcp.Render: %v", err)
			}
		})
	}
	t.Run("valid", func(t *testing.T) {
		require.NoError(t, pool.CheckNetwork(base()))
	})
}

// Problem: dhcplease=abc, dhcplease=-1, vrrp.mgmt.vrid=999,
// consoleport=99999 and nosuchkey=1 were stored; a key could not be
// removed.
func TestSiteSchema(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx := context.Background()
		storetest.Seed(t, s, 0)
		for k, v := range map[string]string{"dhcplease": "abc", "consoleport": "99999", "vrrp.mgmt.vrid": "999", "dnsallow": "10.0.0.1/8", "disjointdhcps": "yes"} {
			err := s.SetSite(ctx, map[string]string{k: v})
			require.ErrorIs(t, err, pool.ErrInvalid, "%s=%s", k, v)
			require.Contains(t, err.Error(), k)
		}
		err := s.SetSite(ctx, map[string]string{"dhcplease": "-1"})
		require.ErrorContains(t, err, "from 60 to")
		err = s.SetSite(ctx, map[string]string{"dhcplese": "3600"})
		require.ErrorContains(t, err, "did you mean dhcplease?")
		require.ErrorIs(t, s.SetSite(ctx, map[string]string{"nosuchkey": "1"}), pool.ErrInvalid)
		require.NoError(t, s.SetSiteWith(ctx, map[string]string{"nosuchkey": "1"}, pool.SiteOptions{Custom: true}))
		require.NoError(t, s.SetSite(ctx, map[string]string{"dhcplease": "3600", "dnsallow": "10.0.0.0/8,192.0.2.0/24", "consoleacl": "admins:rw", "vrrp.mgmt.vrid": "77"}))
		site, err := s.Site(ctx)
		require.NoError(t, err)
		require.Equal(t, "3600", site["dhcplease"])
		require.NoError(t, s.UnsetSite(ctx, []string{"nosuchkey", "dhcplease"}))
		require.ErrorIs(t, s.UnsetSite(ctx, []string{"dhcplease"}), pool.ErrNotFound)
		require.ErrorIs(t, s.UnsetSite(ctx, []string{"master"}), pool.ErrInvalid)
		site, err = s.Site(ctx)
		require.NoError(t, err)
		require.NotContains(t, site, "dhcplease")
		require.NotContains(t, site, "nosuchkey")
	})
}

func TestSiteKeysCoverTheReaders(t *testing.T) {
	for _, k := range []string{siteschema.Domain, dhcp.SiteDHCPLease, dhcp.SiteDHCPInterfaces, dhcp.SiteBootBIOS, dhcp.SiteBootUEFI, dhcp.SiteBootARM64,
		siteschema.Forwarders, siteschema.ExtNTPServers, siteschema.AutoFailover, "consoleport", "consolenetwork", "consoleacl", "dnsallow", "vrrp.ib.members", "vrrp.ib.vips", "vrrp.ib.vrid"} {
		_, ok := siteschema.Lookup(k)
		require.True(t, ok, k)
	}
}

// Problem: makedhcp skipped nodes with a MAC but no IP without a word.
func TestAddressWarnings(t *testing.T) {
	ws := pool.AddressWarnings([]pool.Node{
		{Name: "a", MACs: []string{"02:00:00:00:00:01"}},
		{Name: "b", IP: netip.MustParseAddr("10.1.0.1")},
		{Name: "c", IP: netip.MustParseAddr("10.1.0.2"), MACs: []string{"02:00:00:00:00:02"}},
		{Name: "d"},
	})
	require.Equal(t, []pool.AddressWarning{{Node: "a", Problem: pool.AddrMACNoIP}, {Node: "b", Problem: pool.AddrIPNoMAC}}, ws)
}
