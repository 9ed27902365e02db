package xcat_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/xcat"
)

// regexFixture is an xCAT tabdump set written from xCAT's documented table
// formats (not from an mnpool export): three networks, group rows with
// regular expressions in hosts (ip, otherinterfaces) and noderes
// (servicenode), node rows overriding them, xCAT's own site keys.
const regexFixture = "testdata/regex"

func exportOf(t *testing.T, s *pool.Store) map[string][]byte {
	t.Helper()
	st, err := s.LoadState(context.Background())
	require.NoError(t, err)
	files, err := xcat.ExportTables(st)
	require.NoError(t, err)
	return files
}

func asFS(files map[string][]byte) fstest.MapFS {
	m := fstest.MapFS{}
	for n, b := range files {
		m[n] = &fstest.MapFile{Data: b, Mode: 0o644}
	}
	return m
}

// TestRoundTripRegexDump: import the xCAT dump, export, import the export
// into a new pool, export again: the two exports are byte-identical, and
// the nodes got the addresses of the regular-expression rows.
func TestRoundTripRegexDump(t *testing.T) {
	eachBackend(t, func(t *testing.T, a *pool.Store) {
		ctx := context.Background()
		x, err := xcat.Plan(os.DirFS(regexFixture), xcat.Options{})
		require.NoError(t, err)
		require.Empty(t, x.Unmapped)
		require.NoError(t, xcat.Apply(ctx, a, x))

		st, err := a.LoadState(ctx)
		require.NoError(t, err)
		want := map[string]struct {
			ip  string
			sns []string
		}{
			"cn001":  {"10.10.1.1", []string{"sn02", "sn01"}},
			"cn002":  {"10.10.1.2", []string{"sn01", "sn02"}},
			"cn010":  {"10.10.1.10", []string{"sn02", "sn01", "mn01"}},
			"gpu03":  {"10.10.2.16", []string{"sn01", "mn01"}},
			"login1": {"172.30.1.101", nil},
		}
		for _, n := range st.Nodes {
			w, ok := want[n.Name]
			if !ok {
				continue
			}
			require.Equal(t, netip.MustParseAddr(w.ip), n.IP, n.Name)
			require.Equal(t, w.sns, n.ServiceNodes, n.Name)
		}
		require.Len(t, st.Nodes, 10)
		require.Len(t, st.Networks, 3)
		require.Equal(t, "/install", st.Site["installdir"], "xCAT's own site keys are kept")

		first := exportOf(t, a)
		b := openStore(t, sqliteDSN(t))
		y, err := xcat.Plan(asFS(first), xcat.Options{})
		require.NoError(t, err)
		require.Empty(t, y.Unmapped)
		require.NoError(t, xcat.Apply(ctx, b, y))
		second := exportOf(t, b)
		require.Equal(t, len(first), len(second))
		for name, data := range first {
			require.Equal(t, string(data), string(second[name]), name)
		}

		// Export writes the files; they read back the same.
		dir := t.TempDir()
		names, err := xcat.Export(ctx, b, dir)
		require.NoError(t, err)
		for _, n := range names {
			got, err := os.ReadFile(filepath.Join(dir, n))
			require.NoError(t, err)
			require.Equal(t, string(second[n]), string(got), n)
		}
	})
}

// TestUnmappedListedPerNode: a regular expression that does not match a
// node, or gives no address, is listed for that node.
func TestUnmappedListedPerNode(t *testing.T) {
	files := fstest.MapFS{}
	for _, n := range []string{"site", "networks", "nodelist", "hosts", "mac", "noderes", "servicenode"} {
		b, err := os.ReadFile(filepath.Join(regexFixture, n+".csv"))
		require.NoError(t, err)
		files[n+".csv"] = &fstest.MapFile{Data: b}
	}
	files["nodelist.csv"].Data = append(files["nodelist.csv"].Data, []byte("\"gpux\",\"gpu,all\",,,,,,,,,,,\n\"gpu200\",\"gpu,all\",,,,,,,,,,,\n")...)
	x, err := xcat.Plan(files, xcat.Options{})
	require.NoError(t, err)
	got := map[string]string{}
	for _, u := range x.Unmapped {
		got[u.Node] = u.Table + "." + u.Column
	}
	require.Equal(t, map[string]string{"gpux": "hosts.ip", "gpu200": "hosts.ip"}, got)
}

// TestMerge: an export merged into a pool that changed since shows the
// difference first and then restores what the export says, keeping what
// the export does not have.
func TestMerge(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx := context.Background()
		x, err := xcat.Plan(os.DirFS(regexFixture), xcat.Options{})
		require.NoError(t, err)
		require.NoError(t, xcat.Apply(ctx, s, x))
		backup := exportOf(t, s)

		// Changes after the backup.
		_, err = s.SetNodes(ctx, []string{"cn001"}, []pool.NodeChange{{Attr: pool.AttrIP, Op: pool.OpSet, Value: "10.10.3.1"}, {Attr: pool.AttrMAC, Op: pool.OpSet}}, pool.SetOptions{})
		require.NoError(t, err)
		require.NoError(t, s.RemoveNodes(ctx, []string{"gpu02"}))
		require.NoError(t, s.AddNodes(ctx, []pool.Node{{Name: "new01", IP: netip.MustParseAddr("10.10.9.1")}}, pool.AddOptions{}))
		require.NoError(t, s.SetSite(ctx, map[string]string{"dhcplease": "3600"}))

		y, err := xcat.Plan(asFS(backup), xcat.Options{})
		require.NoError(t, err)
		st, err := s.LoadState(ctx)
		require.NoError(t, err)
		plan := xcat.PlanMerge(st, y)
		var got []string
		for _, c := range plan.Changes {
			got = append(got, c.Op+" "+c.Kind+" "+c.Name)
		}
		require.Equal(t, []string{"change site dhcplease", "change node cn001", "add node gpu02"}, got)
		// Planning wrote nothing.
		st2, err := s.LoadState(ctx)
		require.NoError(t, err)
		require.Equal(t, st.Nodes, st2.Nodes)

		require.NoError(t, xcat.Merge(ctx, s, plan))
		after := exportOf(t, s)
		for _, f := range []string{"site.csv", "networks.csv", "servicenode.csv", xcat.TableMembers + ".csv"} {
			require.Equal(t, string(backup[f]), string(after[f]), f)
		}
		// new01 is kept; everything else is as in the backup.
		require.Contains(t, string(after["nodelist.csv"]), `"new01"`)
		require.Equal(t, strings.ReplaceAll(string(after["hosts.csv"]), "\"new01\",\"10.10.9.1\",,,,\n", ""), string(backup["hosts.csv"]))
		st3, err := s.LoadState(ctx)
		require.NoError(t, err)
		require.True(t, xcat.PlanMerge(st3, y).Empty())
	})
}

// Site values that break the schema are reported by import, naming the
// rule, and not imported.
func TestImportReportsInvalidSiteValues(t *testing.T) {
	files := fstest.MapFS{}
	for _, n := range []string{"site", "networks", "nodelist", "hosts", "mac", "noderes", "servicenode"} {
		b, err := os.ReadFile(filepath.Join(regexFixture, n+".csv"))
		require.NoError(t, err)
		files[n+".csv"] = &fstest.MapFile{Data: b}
	}
	files["site.csv"].Data = append(files["site.csv"].Data, []byte("\"consoleport\",\"99999\",,\n")...)
	files["site.csv"].Data = []byte(strings.Replace(string(files["site.csv"].Data), `"dhcplease","43200"`, `"dhcplease","abc"`, 1))
	x, err := xcat.Plan(files, xcat.Options{})
	require.NoError(t, err)
	require.NotContains(t, x.Site, "dhcplease")
	require.NotContains(t, x.Site, "consoleport")
	var reasons []string
	for _, is := range x.Issues {
		if is.Table == "site" && is.Column == "value" {
			reasons = append(reasons, is.Reason)
		}
	}
	require.Len(t, reasons, 2)
	require.Contains(t, strings.Join(reasons, "\n"), "from 60 to 2147483647")
	require.Contains(t, strings.Join(reasons, "\n"), "from 1 to 65535")
}
