package pool_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/storetest"
	"github.com/mnpool/mnpool/internal/testenv"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/dsn"
	"github.com/mnpool/mnpool/pool/service"
	"github.com/mnpool/mnpool/pool/siteschema"
)

func TestInitIsIdempotentAndNamesTheMN(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx := context.Background()
		storetest.Seed(t, s, 0)
		m, err := s.Master(ctx)
		require.NoError(t, err)
		require.Equal(t, pool.Master{Member: "mn1", Epoch: 1}, m)
		// Again with the same MN: nothing changes.
		m2, err := s.Init(ctx, pool.InitOptions{MN: pool.Member{Name: "mn1"}})
		require.NoError(t, err)
		require.Equal(t, m, m2)
		// Another MN: refused, naming the current one.
		_, err = s.Init(ctx, pool.InitOptions{MN: pool.Member{Name: "sn1"}})
		require.ErrorIs(t, err, pool.ErrConflict)
		require.Contains(t, err.Error(), "mn1")
		site, err := s.Site(ctx)
		require.NoError(t, err)
		require.Equal(t, "mn1", site[siteschema.Master])
		require.Equal(t, "0", site[siteschema.DisjointDHCPs])
		v, err := s.SchemaVersion(ctx)
		require.NoError(t, err)
		require.GreaterOrEqual(t, v, 1)
		require.NoError(t, s.Migrate(ctx), "migrating twice is a no-op")
	})
}

func TestValidationWritesNothing(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx := context.Background()
		storetest.Seed(t, s, 3)
		before, err := s.LoadState(ctx)
		require.NoError(t, err)
		good := func() pool.Node {
			return pool.Node{Name: "cnx", MACs: []string{"0A-0B-0C-0D-0E-0F"}, IP: netip.MustParseAddr("10.2.0.10"), ServiceNodes: []string{"sn1", "sn2"}}
		}
		cases := []struct {
			name    string
			mutate  func(n *pool.Node)
			is      error
			mention string
		}{
			{"bad name", func(n *pool.Node) { n.Name = "cn_1" }, pool.ErrInvalid, `"cn_1"`},
			{"leading dash", func(n *pool.Node) { n.Name = "-cn1" }, pool.ErrInvalid, `"-cn1"`},
			{"bad mac", func(n *pool.Node) { n.MACs = []string{"zz:00:00:00:00:00"} }, pool.ErrInvalid, "zz:00"},
			{"ip outside every network", func(n *pool.Node) { n.IP = netip.MustParseAddr("192.168.1.1") }, pool.ErrInvalid, "192.168.1.1"},
			{"ip outside named network", func(n *pool.Node) { n.Network = "mgmt"; n.IP = netip.MustParseAddr("192.168.1.1") }, pool.ErrInvalid, "outside network mgmt"},
			{"ip in dynamic range", func(n *pool.Node) { n.IP = netip.MustParseAddr("10.15.255.7") }, pool.ErrInvalid, "dynamic range"},
			{"ip is gateway", func(n *pool.Node) { n.IP = netip.MustParseAddr("10.0.0.4") }, pool.ErrInvalid, "gateway"},
			{"ip of a member", func(n *pool.Node) { n.IP = netip.MustParseAddr("10.0.0.2") }, pool.ErrExists, "sn1"},
			{"ip of a node", func(n *pool.Node) { n.IP = netip.MustParseAddr("10.1.0.1") }, pool.ErrExists, "cn00001"},
			{"mac of a node", func(n *pool.Node) { n.MACs = []string{"02:00:00:00:00:00"} }, pool.ErrExists, "cn00001"},
			{"unknown servicenode", func(n *pool.Node) { n.ServiceNodes = []string{"sn1", "sn9"} }, pool.ErrInvalid, `"sn9"`},
			{"unknown network", func(n *pool.Node) { n.Network = "ib0" }, pool.ErrInvalid, `"ib0"`},
			{"existing node", func(n *pool.Node) { n.Name = "cn00002" }, pool.ErrExists, "cn00002"},
			{"node named like a member", func(n *pool.Node) { n.Name = "sn1" }, pool.ErrInvalid, "sn1"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				bad := good()
				c.mutate(&bad)
				// The bad node is the second of three; the first is valid.
				ok1 := good()
				ok1.Name, ok1.IP, ok1.MACs = "cny", netip.MustParseAddr("10.2.0.11"), nil
				err := s.AddNodes(ctx, []pool.Node{ok1, bad, {Name: "cnz"}}, pool.AddOptions{})
				require.ErrorIs(t, err, c.is)
				require.Contains(t, err.Error(), c.mention)
				var ne *pool.NodeError
				require.True(t, errors.As(err, &ne), "want a *NodeError, got %T", err)
				require.Equal(t, 1, ne.Index)
				after, err := s.LoadState(ctx)
				require.NoError(t, err)
				require.Empty(t, cmp.Diff(before.Nodes, after.Nodes, cmpopts.EquateComparable(netip.Addr{})), "a rejected add wrote something")
			})
		}
	})
}

func TestNodesRoundTrip(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx := context.Background()
		storetest.Seed(t, s, 0)
		in := storetest.MakeNodes(1200) // more than one batch
		in[5].MACs = []string{"AA-BB-CC-DD-EE-01", "aa:bb:cc:dd:ee:02"}
		in[6].Network = "" // inferred from the IP
		in[7].IP = netip.Addr{}
		in[7].Network = ""
		require.NoError(t, s.AddNodes(ctx, in, pool.AddOptions{}))
		st, err := s.LoadState(ctx)
		require.NoError(t, err)
		require.Len(t, st.Nodes, 1200)
		want := make([]pool.Node, len(in))
		copy(want, in)
		want[5].MACs = []string{"aa:bb:cc:dd:ee:01", "aa:bb:cc:dd:ee:02"}
		want[6].Network = "mgmt"
		require.Empty(t, cmp.Diff(want, st.Nodes, cmpopts.EquateComparable(netip.Addr{}), cmpopts.EquateEmpty()))

		// Replace changes a node and bumps its revision.
		upd := want[0]
		upd.ServiceNodes = []string{"sn2", "sn1"}
		upd.Manual = true
		require.NoError(t, s.AddNodes(ctx, []pool.Node{upd}, pool.AddOptions{Replace: true}))
		st, err = s.LoadState(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{"sn2", "sn1"}, st.Nodes[0].ServiceNodes)
		require.Equal(t, int64(1), st.Nodes[0].Revision)

		// Removing an unknown node removes nothing and names it.
		err = s.RemoveNodes(ctx, []string{"cn00001", "nope1", "nope2"})
		require.ErrorIs(t, err, pool.ErrNotFound)
		require.Contains(t, err.Error(), "nope1, nope2")
		n, err := s.Nodes(ctx)
		require.NoError(t, err)
		require.Len(t, n, 1200)
		require.NoError(t, s.RemoveNodes(ctx, []string{"cn00001", "cn00002"}))
		n, err = s.Nodes(ctx)
		require.NoError(t, err)
		require.Len(t, n, 1198)

		status := pool.Summarize(st)
		total := 0
		for _, m := range status.Members {
			total += m.Primary
		}
		require.Equal(t, 1200, total)
		require.True(t, status.Members[0].IsMN)
	})
}

func TestNetworksAndMembers(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx := context.Background()
		storetest.Seed(t, s, 3)
		p := netip.MustParsePrefix
		a := netip.MustParseAddr
		netCases := []struct {
			name    string
			n       pool.Network
			is      error
			mention string
		}{
			{"host bits", pool.Network{Name: "x", Prefix: p("172.16.0.1/16")}, pool.ErrInvalid, "172.16.0.0/16"},
			{"bad name", pool.Network{Name: "a b", Prefix: p("172.16.0.0/16")}, pool.ErrInvalid, `"a b"`},
			{"gateway outside", pool.Network{Name: "x", Prefix: p("172.16.0.0/16"), Gateways: []netip.Addr{a("172.17.0.1")}}, pool.ErrInvalid, "172.17.0.1"},
			{"range outside", pool.Network{Name: "x", Prefix: p("172.16.0.0/16"), DynamicStart: a("172.16.0.10"), DynamicEnd: a("172.18.0.1")}, pool.ErrInvalid, "172.18.0.1"},
			{"range reversed", pool.Network{Name: "x", Prefix: p("172.16.0.0/16"), DynamicStart: a("172.16.0.10"), DynamicEnd: a("172.16.0.5")}, pool.ErrInvalid, "ends before"},
			{"overlap", pool.Network{Name: "x", Prefix: p("10.0.0.0/8")}, pool.ErrInvalid, "overlaps network mgmt"},
			{"exists", pool.Network{Name: "mgmt", Prefix: p("10.0.0.0/12")}, pool.ErrExists, "mgmt"},
			{"range over node", pool.Network{Name: "mgmt", Prefix: p("10.0.0.0/12"), DynamicStart: a("10.1.0.1"), DynamicEnd: a("10.1.0.9")}, pool.ErrInvalid, "cn00001"},
		}
		for _, c := range netCases {
			t.Run("network/"+c.name, func(t *testing.T) {
				replace := c.name == "range over node"
				err := s.AddNetwork(ctx, c.n, replace)
				require.ErrorIs(t, err, c.is)
				require.Contains(t, err.Error(), c.mention)
			})
		}
		require.NoError(t, s.AddNetwork(ctx, pool.Network{Name: "ib0", Prefix: p("172.16.0.0/16"), Gateways: []netip.Addr{a("172.16.0.1"), a("172.16.0.2")}}, false))

		memCases := []struct {
			name    string
			m       pool.Member
			is      error
			mention string
		}{
			{"bad name", pool.Member{Name: "sn.1"}, pool.ErrInvalid, `"sn.1"`},
			{"unknown network", pool.Member{Name: "sn3", Addresses: map[string]netip.Addr{"eth9": a("10.0.0.9")}}, pool.ErrInvalid, `"eth9"`},
			{"outside", pool.Member{Name: "sn3", Addresses: map[string]netip.Addr{"ib0": a("10.0.0.9")}}, pool.ErrInvalid, "outside network ib0"},
			{"taken", pool.Member{Name: "sn3", Addresses: map[string]netip.Addr{"mgmt": a("10.0.0.2")}}, pool.ErrExists, "sn1"},
			{"bad service", pool.Member{Name: "sn3", Services: []service.Service{"httpd"}}, pool.ErrInvalid, `"httpd"`},
			{"exists", pool.Member{Name: "sn1"}, pool.ErrExists, "sn1"},
		}
		for _, c := range memCases {
			t.Run("member/"+c.name, func(t *testing.T) {
				err := s.AddMember(ctx, c.m, false)
				require.ErrorIs(t, err, c.is)
				require.Contains(t, err.Error(), c.mention)
			})
		}
		require.NoError(t, s.AddMember(ctx, pool.Member{Name: "sn3", Services: []service.Service{"ntp", "dhcp", "dhcp"},
			Addresses: map[string]netip.Addr{"mgmt": a("10.0.0.9"), "ib0": a("172.16.0.9")}}, false))
		m, err := s.Member(ctx, "sn3")
		require.NoError(t, err)
		require.Equal(t, []service.Service{service.DHCP, service.NTP}, m.Services)
		require.Equal(t, a("172.16.0.9"), m.Addresses["ib0"])

		err = s.RemoveMember(ctx, "mn1")
		require.ErrorIs(t, err, pool.ErrConflict)
		require.Contains(t, err.Error(), "makemn")
		err = s.RemoveMember(ctx, "sn1")
		require.ErrorIs(t, err, pool.ErrConflict)
		require.Contains(t, err.Error(), "snmove -s sn1")
		require.NoError(t, s.RemoveMember(ctx, "sn3"))
		require.ErrorIs(t, s.RemoveMember(ctx, "sn3"), pool.ErrNotFound)
		nets, err := s.Networks(ctx)
		require.NoError(t, err)
		require.Len(t, nets, 2)
		require.Equal(t, []netip.Addr{a("172.16.0.1"), a("172.16.0.2")}, nets[0].Gateways)
	})
}

func TestSiteAndAudit(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx := context.Background()
		storetest.Seed(t, s, 0)
		require.ErrorIs(t, s.SetSite(ctx, map[string]string{"master": "sn1"}), pool.ErrInvalid)
		err := s.SetSite(ctx, map[string]string{"domain": "ok.example", "forwarders": "a\nb"})
		require.ErrorIs(t, err, pool.ErrInvalid)
		require.Contains(t, err.Error(), "forwarders")
		site, err := s.Site(ctx)
		require.NoError(t, err)
		require.Equal(t, "cluster", site["domain"], "a rejected set wrote nothing")
		require.ErrorIs(t, s.SetSite(ctx, map[string]string{"disjointdhcps": "yes"}), pool.ErrInvalid)
		require.NoError(t, s.SetSite(ctx, map[string]string{"domain": "hpc.example", "forwarders": "192.0.2.53"}))
		site, err = s.Site(ctx)
		require.NoError(t, err)
		require.Equal(t, "hpc.example", site["domain"])
		log, err := s.AuditLog(ctx, 50)
		require.NoError(t, err)
		var actions []string
		for _, e := range log {
			actions = append(actions, e.Action)
			require.Equal(t, "mn1", e.Member)
		}
		joined := strings.Join(actions, " ")
		for _, a := range []string{"pool.init", "member.add", "network.add", "site.set"} {
			require.Contains(t, joined, a)
		}
	})
}

func TestParseDSN(t *testing.T) {
	cases := []struct {
		in      string
		kind    dsn.Kind
		addrs   []string
		wantErr string
	}{
		{in: "sqlite:/tmp/x.db", kind: dsn.SQLite},
		{in: "mysql:u:p@tcp(127.0.0.1:3306)/pool", kind: dsn.MySQL, addrs: []string{"127.0.0.1:3306"}},
		{in: "mysql:u:p@tcp(a:1)/pool,mysql:u:p@tcp(b:2)/pool", kind: dsn.MySQL, addrs: []string{"a:1", "b:2"}},
		{in: "mysql:u:p@tcp(a:1)/pool,tcp(b:2),tcp(c:3)", kind: dsn.MySQL, addrs: []string{"a:1", "b:2", "c:3"}},
		{in: "mysql:u:secret@tcp(a:1)/", wantErr: "names no database"},
		{in: "postgres://x", wantErr: "unknown scheme"},
		{in: "", wantErr: "empty"},
		{in: "sqlite:", wantErr: "no path"},
		{in: "mysql:u:p@tcp(a:1)/pool,bogus", wantErr: "element 2"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			d, err := dsn.Parse(c.in)
			if c.wantErr != "" {
				require.ErrorIs(t, err, pool.ErrInvalid)
				require.Contains(t, err.Error(), c.wantErr)
				require.NotContains(t, err.Error(), "secret")
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.kind, d.Kind)
			var got []string
			for _, m := range d.MySQL {
				got = append(got, m.Addr)
				require.Equal(t, "pool", m.DBName)
			}
			require.Equal(t, c.addrs, got)
			require.NotContains(t, d.String(), ":p@")
		})
	}
}

func TestResolveDSN(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/db"
	t.Setenv(dsn.Env, "")
	_, _, err := dsn.Resolve("", file)
	require.ErrorIs(t, err, pool.ErrInvalid)
	require.Contains(t, err.Error(), file)
	require.NoError(t, writeFile(file, "# comment\n\nsqlite:/var/lib/x.db\n"))
	d, src, err := dsn.Resolve("", file)
	require.NoError(t, err)
	require.Equal(t, "sqlite:/var/lib/x.db", d)
	require.Equal(t, file, src)
	t.Setenv(dsn.Env, "sqlite:/env.db")
	d, src, _ = dsn.Resolve("", file)
	require.Equal(t, "sqlite:/env.db", d)
	require.Equal(t, dsn.Env, src)
	d, src, _ = dsn.Resolve("sqlite:/flag.db", file)
	require.Equal(t, "sqlite:/flag.db", d)
	require.Equal(t, "--db", src)
}

func TestWatchFollowsChanges(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		storetest.Seed(t, s, 0)
		ch := s.Watch(ctx, 10*time.Millisecond)
		v0 := <-ch
		require.NoError(t, s.SetSite(ctx, map[string]string{"domain": "x.example"}))
		select {
		case v1 := <-ch:
			require.Greater(t, v1, v0)
		case <-time.After(testenv.Timeout(10 * time.Second)):
			t.Fatal("Watch did not report the change")
		}
		cancel()
		for range ch {
		}
	})
}

func TestAddNodesReportsProgressPerBatch(t *testing.T) {
	s := storetest.Open(t, "sqlite:"+t.TempDir()+"/p.db", pool.WithBatchSize(100))
	storetest.Seed(t, s, 0)
	var got []int
	require.NoError(t, s.AddNodes(context.Background(), storetest.MakeNodes(250), pool.AddOptions{Progress: func(done, total int) {
		require.Equal(t, 250, total)
		got = append(got, done)
	}}))
	require.Equal(t, []int{100, 200, 250}, got)
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }
