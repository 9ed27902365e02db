package xcat_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/golden"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
	"github.com/mnpool/mnpool/pool/siteschema"
	"github.com/mnpool/mnpool/xcat"
)

const xcatFixture = "testdata/cluster"

func TestReadTabdump(t *testing.T) {
	cases := map[string]struct {
		in      string
		cols    []string
		rows    [][]string
		wantErr string
	}{
		"tabdump output": {
			in:   "#key,value,comments,disable\n\"master\",\"10.0.0.1\",,\n\"motd\",\"say \"\"hi\"\"\",\"a, comment\",\n",
			cols: []string{"key", "value", "comments", "disable"},
			rows: [][]string{{"master", "10.0.0.1", "", ""}, {"motd", `say "hi"`, "a, comment", ""}},
		},
		"comment lines, CRLF, BOM, no final newline": {
			in:   "\ufeff#node,groups\r\n#\"cn0\",\"x\"\r\n\"cn1\",\"compute,all\"",
			cols: []string{"node", "groups"},
			rows: [][]string{{"cn1", "compute,all"}},
		},
		"multi-line value": {
			in:   "#key,value\n\"k\",\"a\nb\"\n",
			cols: []string{"key", "value"},
			rows: [][]string{{"k", "a\nb"}},
		},
		"header only": {in: "#node,groups\n", cols: []string{"node", "groups"}},
		"empty":       {in: "", wantErr: "empty"},
		"no header":   {in: "\"cn1\",\"x\"\n", wantErr: "line 1"},
		"bad column":  {in: "#node,gr oups\n", wantErr: `"gr oups"`},
		"dup column":  {in: "#node,node\n", wantErr: "twice"},
		"short row":   {in: "#a,b,c\n\"1\",\"2\",\"3\"\n\"1\",\"2\"\n", wantErr: "line 3: 2 fields, but the header names 3"},
		"bad quote":   {in: "#a,b\n\"1\",\"2\n", wantErr: "line 2"},
		"binary":      {in: "#a\n\"\x00\"\n", wantErr: "not text"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			tab, err := xcat.ReadTabdump(strings.NewReader(c.in))
			if c.wantErr != "" {
				require.ErrorIs(t, err, xcat.ErrInvalid)
				require.ErrorContains(t, err, c.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.cols, tab.Columns)
			var rows [][]string
			for _, r := range tab.Rows {
				rows = append(rows, r.Fields)
			}
			require.Empty(t, cmp.Diff(c.rows, rows, cmpopts.EquateEmpty()))
		})
	}
}

func FuzzReadTabdump(f *testing.F) {
	for _, name := range xcat.Tables() {
		b, err := os.ReadFile(filepath.Join(xcatFixture, name+".csv"))
		if errors.Is(err, fs.ErrNotExist) && strings.HasPrefix(name, "mnpool_") {
			continue // an export's own tables; the xCAT dump has none
		}
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("#a,b\n\"1\",\"2\n"))
	f.Add([]byte("#a\n\"\"\"\"\n#x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := xcat.ReadTabdump(bytes.NewReader(data))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "xcat: invalid value: tabdump") {
				t.Fatalf("unclear error %q", err)
			}
			require.ErrorIs(t, err, xcat.ErrInvalid)
			return
		}
		for _, r := range tab.Rows {
			if len(r.Fields) != len(tab.Columns) || r.Line < 2 {
				t.Fatalf("row %+v does not fit columns %v", r, tab.Columns)
			}
		}
	})
}

// FuzzPlanXCATImport feeds fuzzed tables to the whole planner: it must
// not panic, and its errors must name the xCAT import.
func FuzzPlanXCATImport(f *testing.F) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(xcatFixture, name+".csv"))
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	f.Add(read("nodelist"), read("hosts"), read("noderes"), read("mac"))
	f.Add([]byte("#node,groups\n\"cn1\",\"g\"\n"), []byte("#node,ip\n\"g\",\"/x/y/\"\n"), []byte("#node,servicenode\n\"g\",\"mn1,mn1\"\n"), []byte("#node,mac\n\"cn1\",\"!\"\n"))
	site, nets, sn := read("site"), read("networks"), read("servicenode")
	f.Fuzz(func(t *testing.T, nodelist, hosts, noderes, mac []byte) {
		fsys := fstest.MapFS{
			"site.csv": {Data: site}, "networks.csv": {Data: nets}, "servicenode.csv": {Data: sn},
			"nodelist.csv": {Data: nodelist}, "hosts.csv": {Data: hosts}, "noderes.csv": {Data: noderes}, "mac.csv": {Data: mac},
		}
		x, err := xcat.Plan(fsys, xcat.Options{})
		if err != nil {
			require.ErrorIs(t, err, xcat.ErrInvalid)
			require.Contains(t, err.Error(), "xCAT import")
			return
		}
		for _, n := range x.Nodes {
			require.NoError(t, pool.ValidateName("node", n.Name))
		}
	})
}

func TestPlanXCATImportGolden(t *testing.T) {
	x, err := xcat.Plan(os.DirFS(xcatFixture), xcat.Options{})
	require.NoError(t, err)
	got, err := json.MarshalIndent(x, "", "  ")
	require.NoError(t, err)
	golden.Check(t, filepath.Join("testdata", "cluster.plan.json"), append(got, '\n'))
}

func TestPlanXCATImportMapsTheDump(t *testing.T) {
	x, err := xcat.Plan(os.DirFS(xcatFixture), xcat.Options{})
	require.NoError(t, err)
	// site.master is an address: the hosts table names the MN.
	require.Equal(t, "mn1", x.MN.Name)
	require.Equal(t, service.All(), x.MN.Services)
	require.Equal(t, "cluster.example.com", x.Site[siteschema.Domain])
	require.Equal(t, `Managed by xCAT "cluster-a"; do not edit`, x.Site["motd"])
	require.NotContains(t, x.Site, siteschema.Master)
	// The disabled network row is skipped; <xcatmaster> is reported.
	require.Len(t, x.Networks, 2)
	// Members from the servicenode table (group row "service" + sn3's own).
	var names []string
	for _, m := range x.Members {
		names = append(names, m.Name)
	}
	require.Equal(t, []string{"sn1", "sn2", "sn3"}, names)
	require.Equal(t, []service.Service{service.DHCP, service.DNS, service.NTP, service.TFTP, service.Console}, x.Members[0].Services)
	require.Equal(t, []service.Service{service.DHCP, service.DNS, service.NTP, service.TFTP}, x.Members[2].Services)
	require.Equal(t, netip.MustParseAddr("10.1.0.2"), x.Members[0].Addresses["10_1_0_0-255_255_0_0"])

	byName := map[string]pool.Node{}
	for _, n := range x.Nodes {
		byName[n.Name] = n
	}
	require.NotContains(t, byName, "fsp01", "hidden nodes are not compute nodes")
	require.NotContains(t, byName, "cn099", "disabled rows are skipped")
	require.NotContains(t, byName, "sn1", "members are not nodes")
	cases := map[string]pool.Node{
		// Group row compute -> sn1,sn2.
		"cn001": {Name: "cn001", Groups: []string{"compute", "rack1"}, IP: netip.MustParseAddr("10.0.1.1"), Network: "10_0_0_0-255_255_0_0",
			MACs: []string{"42:00:0a:00:01:01"}, ServiceNodes: []string{"sn1", "sn2"}, Manual: true},
		// MAC!otherhost dropped.
		"cn002": {Name: "cn002", Groups: []string{"compute", "rack1"}, IP: netip.MustParseAddr("10.0.1.2"), Network: "10_0_0_0-255_255_0_0",
			MACs: []string{"42:00:0a:00:01:02"}, ServiceNodes: []string{"sn1", "sn2"}, Manual: true},
		// Own row; an SN given by address.
		"cn003": {Name: "cn003", Groups: []string{"compute", "rack1"}, IP: netip.MustParseAddr("10.0.1.3"), Network: "10_0_0_0-255_255_0_0",
			MACs: []string{"42:00:0a:00:01:03"}, ServiceNodes: []string{"sn2", "sn3", "mn1"}, Manual: true},
		// One servicenode: automatic, for assign to complete.
		"cn004": {Name: "cn004", Groups: []string{"compute", "rack1"}, IP: netip.MustParseAddr("10.0.1.4"), Network: "10_0_0_0-255_255_0_0",
			MACs: []string{"42:00:0a:00:01:04"}, ServiceNodes: []string{"sn3"}},
		// Unknown sn9 dropped.
		"cn005": {Name: "cn005", Groups: []string{"compute", "rack1"}, IP: netip.MustParseAddr("10.0.1.5"), Network: "10_0_0_0-255_255_0_0",
			MACs: []string{"42:00:0a:00:01:05", "42:00:0a:00:01:15"}, ServiceNodes: []string{"sn1"}},
		// rack2's regex comes first in xCAT's group order? No: compute is
		// the node's first group, so its row applies.
		"cn007": {Name: "cn007", Groups: []string{"compute", "rack2"}, IP: netip.MustParseAddr("10.0.1.7"), Network: "10_0_0_0-255_255_0_0",
			MACs: []string{"42:00:0a:00:01:07"}, ServiceNodes: []string{"sn1", "sn2"}, Manual: true},
		// rack2 is its first group: its regular expression
		// |\D+(\d+)|sn(($1%3)+1)| gives sn1 (9%3+1), one member: an
		// automatic list for assign to complete.
		"cn009": {Name: "cn009", Groups: []string{"rack2", "compute"}, IP: netip.MustParseAddr("10.0.1.9"), Network: "10_0_0_0-255_255_0_0",
			MACs: []string{"42:00:0a:00:01:09"}, ServiceNodes: []string{"sn1"}},
		// Internal group __Unmanaged dropped; no hosts row of its own:
		// the group's regular expression gives the address.
		"cn011": {Name: "cn011", Groups: []string{"compute"}, IP: netip.MustParseAddr("10.0.1.11"), Network: "10_0_0_0-255_255_0_0",
			MACs: []string{"42:00:0a:00:01:0b"}, ServiceNodes: []string{"sn1", "sn2"}, Manual: true},
	}
	for name, want := range cases {
		require.Empty(t, cmp.Diff(want, byName[name], cmpopts.EquateComparable(netip.Addr{}), cmpopts.EquateEmpty()), name)
	}

	reported := map[string]bool{}
	for _, is := range x.Issues {
		reported[is.Table+"."+is.Column] = true
	}
	for _, want := range []string{"hosts.otherinterfaces", "hosts.hostnames", "networks.gateway", "networks.mtu", "networks.disable",
		"noderes.servicenode", "noderes.xcatmaster", "noderes.netboot", "mac.mac", "mac.interface", "nodelist.hidden", "nodelist.groups",
		"nodelist.disable", "servicenode.nfsserver", "servicenode.dhcpinterfaces", "servicenode.", "nodehm."} {
		require.True(t, reported[want], "no issue for %s; issues: %+v", want, x.Issues)
	}
}

func TestPlanXCATImportErrors(t *testing.T) {
	base := func() fstest.MapFS {
		fsys := fstest.MapFS{}
		for _, name := range []string{"site", "networks", "nodelist"} {
			b, err := os.ReadFile(filepath.Join(xcatFixture, name+".csv"))
			require.NoError(t, err)
			fsys[name+".csv"] = &fstest.MapFile{Data: b}
		}
		fsys["hosts.csv"] = &fstest.MapFile{Data: []byte("#node,ip,hostnames,otherinterfaces,comments,disable\n\"mn1\",\"10.0.0.1\",,,,\n")}
		return fsys
	}
	cases := map[string]struct {
		edit func(fstest.MapFS)
		opt  xcat.Options
		want string
	}{
		"no site":           {edit: func(f fstest.MapFS) { delete(f, "site.csv") }, want: "site.csv is missing"},
		"broken csv":        {edit: func(f fstest.MapFS) { f["mac.csv"] = &fstest.MapFile{Data: []byte("#node,mac\n\"cn1\n")} }, want: "mac.csv: tabdump line 2"},
		"no key column":     {edit: func(f fstest.MapFS) { f["noderes.csv"] = &fstest.MapFile{Data: []byte("#name,servicenode\n")} }, want: "noderes.csv has no node column"},
		"master unresolved": {edit: func(f fstest.MapFS) { delete(f, "hosts.csv") }, want: "site.master is the address 10.0.0.1"},
		"bad mask": {edit: func(f fstest.MapFS) {
			f["networks.csv"] = &fstest.MapFile{Data: []byte("#netname,net,mask\n\"n\",\"10.0.0.0\",\"255.0.255.0\"\n")}
		}, want: "contiguous mask"},
		"bad ip": {edit: func(f fstest.MapFS) {
			f["hosts.csv"] = &fstest.MapFile{Data: []byte("#node,ip\n\"mn1\",\"10.0.0.1\"\n\"cn001\",\"10.0.1.300\"\n")}
		}, want: `node cn001: ip "10.0.1.300"`},
		"bad mac": {edit: func(f fstest.MapFS) { f["mac.csv"] = &fstest.MapFile{Data: []byte("#node,mac\n\"cn001\",\"zz:00\"\n")} }, want: `"zz:00" is not a MAC`},
		"bad node name": {edit: func(f fstest.MapFS) {
			f["nodelist.csv"] = &fstest.MapFile{Data: []byte("#node,groups\n\"mn1\",\"\"\n\"cn_1\",\"compute\"\n")}
		}, want: `"cn_1"`},
		"mn override": {opt: xcat.Options{MN: "bad name"}, want: `"bad name"`},
		"ip in no network": {edit: func(f fstest.MapFS) {
			f["hosts.csv"] = &fstest.MapFile{Data: []byte("#node,ip\n\"mn1\",\"10.0.0.1\"\n\"cn001\",\"192.168.9.9\"\n")}
		}, want: "192.168.9.9 is in no network"},
		"duplicate node row": {edit: func(f fstest.MapFS) {
			f["nodelist.csv"] = &fstest.MapFile{Data: []byte("#node,groups\n\"mn1\",\"\"\n\"cn1\",\"\"\n\"cn1\",\"\"\n")}
		}, want: "cn1 is listed twice"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			fsys := base()
			if c.edit != nil {
				c.edit(fsys)
			}
			_, err := xcat.Plan(fsys, c.opt)
			require.ErrorIs(t, err, xcat.ErrInvalid)
			require.ErrorContains(t, err, c.want)
		})
	}
}

func TestImportXCAT(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx := context.Background()
		x, err := xcat.Plan(os.DirFS(xcatFixture), xcat.Options{})
		require.NoError(t, err)
		require.NoError(t, xcat.Apply(ctx, s, x))
		st, err := s.LoadState(ctx)
		require.NoError(t, err)
		require.Equal(t, pool.Master{Member: "mn1", Epoch: 1}, st.Master)
		require.Len(t, st.Members, 4)
		require.Len(t, st.Nodes, len(x.Nodes))
		require.Equal(t, "cluster.example.com", st.Site[siteschema.Domain])
		require.Equal(t, "mn1", st.Site[siteschema.Master])
		require.Empty(t, cmp.Diff(x.Nodes, st.Nodes, cmpopts.EquateComparable(netip.Addr{}), cmpopts.EquateEmpty(), cmpopts.IgnoreFields(pool.Node{}, "Revision")))

		// Running it again finishes or repeats an import: nothing changes.
		require.NoError(t, xcat.Apply(ctx, s, x))
		st2, err := s.LoadState(ctx)
		require.NoError(t, err)
		require.Empty(t, cmp.Diff(st.Nodes, st2.Nodes, cmpopts.EquateComparable(netip.Addr{}), cmpopts.IgnoreFields(pool.Node{}, "Revision")))

		// Assign completes the imported pool: every node gets 2 members.
		_, err = s.Assign(ctx, pool.AssignOptions{})
		require.NoError(t, err)

		// Another dump's MN: refused.
		y := *x
		y.MN.Name = "other"
		require.ErrorIs(t, xcat.Apply(ctx, s, &y), pool.ErrConflict)
	})
}

func TestImportXCATValidatesBeforeWriting(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx := context.Background()
		x, err := xcat.Plan(os.DirFS(xcatFixture), xcat.Options{})
		require.NoError(t, err)
		// A node on a member's address: only the database checks catch it.
		x.Nodes[len(x.Nodes)-1].IP = netip.MustParseAddr("10.0.0.3")
		x.Nodes[len(x.Nodes)-1].Network = ""
		err = xcat.Apply(ctx, s, x)
		require.ErrorIs(t, err, pool.ErrExists)
		require.ErrorContains(t, err, "nothing was written")
		m, err := s.Master(ctx)
		require.NoError(t, err)
		require.Empty(t, m.Member, "the pool was initialized")
		nets, err := s.Networks(ctx)
		require.NoError(t, err)
		require.Empty(t, nets)
	})
}
