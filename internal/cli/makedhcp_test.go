package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mnpool/mnpool/dhcp"
	"github.com/mnpool/mnpool/internal/testgalera"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
)

// dhcpPool creates a pool in dsn: network mgmt 10.0.0.0/16 with a
// dynamic range, MN mn1, SNs sn1 (all services) and sn3 (no dhcp), and
// nodes cn001..cn004 (cn004 without a MAC).
func dhcpPool(t testing.TB, dsn string) {
	t.Helper()
	ctx := context.Background()
	s, err := pool.Open(ctx, dsn, pool.WithMigrate(), pool.WithSelf("mn1"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a := netip.MustParseAddr
	if err := s.AddNetwork(ctx, pool.Network{Name: "mgmt", Prefix: netip.MustParsePrefix("10.0.0.0/16"), Gateways: []netip.Addr{a("10.0.0.254")},
		DynamicStart: a("10.0.255.1"), DynamicEnd: a("10.0.255.100")}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Init(ctx, pool.InitOptions{MN: pool.Member{Name: "mn1", Addresses: map[string]netip.Addr{"mgmt": a("10.0.0.1")}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddMember(ctx, pool.Member{Name: "sn1", Services: service.All(), Addresses: map[string]netip.Addr{"mgmt": a("10.0.0.2")}}, false); err != nil {
		t.Fatal(err)
	}
	if err := s.AddMember(ctx, pool.Member{Name: "sn3", Services: []service.Service{service.DNS}, Addresses: map[string]netip.Addr{"mgmt": a("10.0.0.3")}}, false); err != nil {
		t.Fatal(err)
	}
	nodes := []pool.Node{
		{Name: "cn001", Groups: []string{"rack1"}, IP: a("10.0.1.1"), MACs: []string{"00:1a:2b:3c:4d:01"}, ServiceNodes: []string{"sn1", "mn1"}},
		{Name: "cn002", Groups: []string{"rack1"}, IP: a("10.0.1.2"), MACs: []string{"00:1a:2b:3c:4d:02"}, ServiceNodes: []string{"mn1", "sn1"}},
		{Name: "cn003", IP: a("10.0.1.3"), MACs: []string{"00:1a:2b:3c:4d:03"}, ServiceNodes: []string{"mn1", "sn1"}},
		{Name: "cn004", IP: a("10.0.1.4"), ServiceNodes: []string{"sn1", "mn1"}},
	}
	if err := s.AddNodes(ctx, nodes, pool.AddOptions{}); err != nil {
		t.Fatal(err)
	}
}

type runOut struct {
	code     int
	out, err string
}

func makedhcp(t testing.TB, args ...string) runOut {
	t.Helper()
	var o, e bytes.Buffer
	code := Makedhcp(context.Background(), args, IO{In: strings.NewReader(""), Out: &o, Err: &e})
	return runOut{code, o.String(), e.String()}
}

// installedNodes reads the node names of a configuration file.
func installedNodes(t testing.TB, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	in, err := dhcp.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return in.Nodes()
}

func dhcpBackends() map[string]func(t testing.TB) string {
	return map[string]func(t testing.TB) string{
		"sqlite": func(t testing.TB) string { return "sqlite:" + filepath.Join(t.TempDir(), "pool.db") },
		"galera": func(t testing.TB) string { return testgalera.Open(t).DSN() },
	}
}

// TestMakedhcpFlow walks xCAT's sequence: -n, -a, -d, NODERANGE, -q,
// and checks that nothing is rewritten when nothing changed.
func TestMakedhcpFlow(t *testing.T) {
	for name, dsnFn := range dhcpBackends() {
		t.Run(name, func(t *testing.T) {
			dsn := dsnFn(t)
			dhcpPool(t, dsn)
			out := filepath.Join(t.TempDir(), "dhcpd.conf")
			base := []string{"--db", dsn, "--self", "mn1", "--dhcp-config", out, "--hold", "0s"}
			run := func(args ...string) runOut {
				t.Helper()
				r := makedhcp(t, append(append([]string{}, base...), args...)...)
				if r.code != 0 {
					t.Fatalf("makedhcp %v: exit %d: %s%s", args, r.code, r.out, r.err)
				}
				return r
			}
			// -n writes every node the member serves: nothing was removed
			// with -d yet.
			r := run("-n")
			if !strings.Contains(r.out, "3 nodes") || !strings.Contains(r.out, "written") || !strings.Contains(r.out, "with the dynamic range") {
				t.Errorf("-n output: %s", r.out)
			}
			r = run("-a")
			if diff := cmp.Diff([]string{"cn001", "cn002", "cn003"}, installedNodes(t, out)); diff != "" {
				t.Errorf("-a (-want +got):\n%s", diff)
			}
			if !strings.Contains(r.err, "cn004: no host entry: no MAC address") {
				t.Errorf("-a did not report cn004: %q", r.err)
			}
			if !strings.Contains(r.out, "unchanged") {
				t.Errorf("second -a: %s", r.out)
			}
			run("-d", "cn001,cn003")
			if diff := cmp.Diff([]string{"cn002"}, installedNodes(t, out)); diff != "" {
				t.Errorf("-d (-want +got):\n%s", diff)
			}
			if b, err := os.ReadFile(out + ".bak"); err != nil || !strings.Contains(string(b), "host cn001 {") {
				t.Errorf("backup of the previous file: %v", err)
			}
			run("cn[002-003]")
			if diff := cmp.Diff([]string{"cn002", "cn003"}, installedNodes(t, out)); diff != "" {
				t.Errorf("NODERANGE (-want +got):\n%s", diff)
			}
			run("-n")
			if diff := cmp.Diff([]string{"cn002", "cn003"}, installedNodes(t, out)); diff != "" {
				t.Errorf("-n must keep the configured hosts (-want +got):\n%s", diff)
			}
			r = run("-q", "rack1", "--json")
			var q struct {
				Member  string `json:"member"`
				Dynamic bool   `json:"dynamic"`
				Nodes   []struct {
					Node       string               `json:"node"`
					Configured bool                 `json:"configured"`
					Hosts      []dhcp.InstalledHost `json:"hosts"`
				} `json:"nodes"`
			}
			if err := json.Unmarshal([]byte(r.out), &q); err != nil {
				t.Fatalf("-q --json: %v\n%s", err, r.out)
			}
			// rack1 is cn001 (removed above) and cn002, in natural order.
			if q.Member != "mn1" || !q.Dynamic || len(q.Nodes) != 2 || q.Nodes[0].Configured || !q.Nodes[1].Configured {
				t.Fatalf("-q: %+v", q)
			}
			h := q.Nodes[1].Hosts[0]
			want := dhcp.InstalledHost{Node: "cn002", MAC: "00:1a:2b:3c:4d:02", IP: netip.MustParseAddr("10.0.1.2"), Network: "mgmt",
				NextServer: netip.MustParseAddr("10.0.0.1"), DNS: []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")},
				NTP: []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")}}
			if diff := cmp.Diff(want, h, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("-q cn002 (-want +got):\n%s", diff)
			}
			r = run("-q", "cn001")
			if !strings.Contains(r.out, "(removed: makedhcp -d)") {
				t.Errorf("-q of an unconfigured node: %s", r.out)
			}
			// xCAT's order: the node is removed from the pool first, then
			// makedhcp -d removes its entry.
			ps, err := pool.Open(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			if err := ps.RemoveNodes(context.Background(), []string{"cn003"}); err != nil {
				t.Fatal(err)
			}
			ps.Close()
			run("-d", "cn003")
			if diff := cmp.Diff([]string{"cn002"}, installedNodes(t, out)); diff != "" {
				t.Errorf("-d of a node no longer in the pool (-want +got):\n%s", diff)
			}
			run("-d", "-a")
			if got := installedNodes(t, out); len(got) != 0 {
				t.Errorf("-d -a left %v", got)
			}
		})
	}
}

// TestMakedhcpSN: an SN renders no dynamic range and points nodes at
// itself; a member without the dhcp service is refused.
func TestMakedhcpSN(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "pool.db")
	dhcpPool(t, dsn)
	dir := t.TempDir()
	for _, f := range []string{"isc", "kea"} {
		out := filepath.Join(dir, "sn1."+f)
		r := makedhcp(t, "--db", dsn, "--self", "sn1", "--dhcp-config", out, "--dhcp-format", f, "-n", "-a", "--kea-socket", filepath.Join(dir, "none.sock"))
		if r.code != 0 {
			t.Fatalf("%s: exit %d: %s%s", f, r.code, r.out, r.err)
		}
		if !strings.Contains(r.out, "no dynamic range (the MN is mn1, epoch 1)") {
			t.Errorf("%s: %s", f, r.out)
		}
		data, _ := os.ReadFile(out)
		in, err := dhcp.Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		if in.Dynamic || in.Subnets[0].Range != "" || in.Subnets[0].NextServer != netip.MustParseAddr("10.0.0.2") {
			t.Errorf("%s: SN subnet %+v", f, in.Subnets[0])
		}
		if f == "kea" && !strings.Contains(r.err, "not reloaded") {
			t.Errorf("kea without a running daemon: %q", r.err)
		}
	}
	r := makedhcp(t, "--db", dsn, "--self", "sn3", "--dhcp-config", filepath.Join(dir, "sn3"), "-n", "-a")
	if r.code != 1 || !strings.Contains(r.err, "does not run the dhcp service") {
		t.Errorf("member without dhcp: %+v", r)
	}
}

func TestMakedhcpRefuses(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "pool.db")
	dhcpPool(t, dsn)
	dir := t.TempDir()
	out := filepath.Join(dir, "dhcpd.conf")
	base := []string{"--db", dsn, "--self", "mn1", "--dhcp-config", out, "--hold", "0s"}
	cases := map[string]struct {
		args     []string
		code     int
		contains string
	}{
		"nothing to do":      {nil, 2, "nothing to do"},
		"-a and NODERANGE":   {[]string{"-a", "cn001"}, 2, "not both"},
		"-d without nodes":   {[]string{"-d"}, 2, "-d needs"},
		"-q without nodes":   {[]string{"-q"}, 2, "-q needs"},
		"-q with -n":         {[]string{"-q", "-n", "cn001"}, 2, "-q only reads"},
		"bad format":         {[]string{"-n", "--dhcp-format", "dnsmasq"}, 2, "want isc or kea"},
		"all-members no out": {[]string{"--all-members", "--dhcp-config", ""}, 2, "needs --dhcp-config"},
		"unknown node":       {[]string{"cn001,cn999"}, 2, "unknown nodes or groups: cn999"},
		"missing checker":    {[]string{"-a", "--dhcp-check-cmd", "/nonexistent/dhcpd"}, 1, "/nonexistent/dhcpd is not installed"},
		"check contradicts":  {[]string{"-a", "--dhcp-check-cmd", "dhcpd", "--no-dhcp-check"}, 2, "contradict"},
		"negative hold":      {[]string{"-a", "--hold", "-1s"}, 2, "--hold -1s"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r := makedhcp(t, append(append([]string{}, base...), c.args...)...)
			if r.code != c.code || !strings.Contains(r.err, c.contains) {
				t.Errorf("exit %d, stderr %q; want exit %d containing %q", r.code, r.err, c.code, c.contains)
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("a file was written on bad input")
			}
		})
	}

	// A file makedhcp did not write is replaced only with -n.
	foreign := "# hand-written\nsubnet 10.0.0.0 netmask 255.255.0.0 {\n}\n"
	if err := os.WriteFile(out, []byte(foreign), 0o644); err != nil {
		t.Fatal(err)
	}
	r := makedhcp(t, append(base, "-a")...)
	if r.code != 1 || !strings.Contains(r.err, "use -n to replace it") {
		t.Errorf("-a over a foreign file: %+v", r)
	}
	r = makedhcp(t, append(base, "-n", "-a")...)
	if r.code != 0 {
		t.Fatalf("-n -a over a foreign file: %+v", r)
	}
	if b, _ := os.ReadFile(out + ".bak"); string(b) != foreign {
		t.Error("the foreign file was not kept as .bak")
	}
	// A file written for another member is not taken over silently.
	r = makedhcp(t, "--db", dsn, "--self", "sn1", "--dhcp-config", out, "cn001")
	if r.code != 1 || !strings.Contains(r.err, "written for member mn1") {
		t.Errorf("another member's file: %+v", r)
	}
}

func TestMakedhcpCheckOnly(t *testing.T) {
	if _, ok := (dhcp.Checker{}).Program(dhcp.FormatISC); !ok {
		t.Skip("dhcpd is not installed")
	}
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "pool.db")
	dhcpPool(t, dsn)
	out := filepath.Join(t.TempDir(), "dhcpd.conf")
	r := makedhcp(t, "--db", dsn, "--self", "mn1", "--dhcp-config", out, "-n", "-a", "--check", "--hold", "0s")
	if r.code != 0 || !strings.Contains(r.out, "would change (--check: nothing written)") || !strings.Contains(r.out, "accepted by") {
		t.Fatalf("--check: %+v", r)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("--check wrote the file")
	}
}

func TestMakedhcpAllMembers(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "pool.db")
	dhcpPool(t, dsn)
	dir := filepath.Join(t.TempDir(), "all")
	for _, f := range []string{"isc", "kea"} {
		r := makedhcp(t, "--db", dsn, "--all-members", "--dhcp-config", dir, "--dhcp-format", f, "--json")
		if r.code != 0 {
			t.Fatalf("%s: %+v", f, r)
		}
		var rows []struct {
			Config dhcp.Config `json:"config"`
		}
		if err := json.Unmarshal([]byte(r.out), &rows); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, row := range rows {
			got = append(got, row.Config.Member+"/"+yesNo(row.Config.Dynamic))
		}
		if diff := cmp.Diff([]string{"mn1/yes", "sn1/no"}, got); diff != "" {
			t.Errorf("%s members (-want +got):\n%s", f, diff)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 4 {
		t.Errorf("files: %v", files)
	}
}

// The old flag names still work, with a warning on stderr only (stdout
// stays valid JSON).
func TestMakedhcpDeprecatedFlagNames(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "pool.db")
	dhcpPool(t, dsn)
	out := filepath.Join(t.TempDir(), "dhcpd.conf")
	r := makedhcp(t, "--db", dsn, "--self", "sn1", "--out", out, "--format", "isc", "--no-check", "-n", "-a", "--json")
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	for _, w := range []string{"--out is deprecated; use --dhcp-config", "--format is deprecated; use --dhcp-format", "--no-check is deprecated; use --no-dhcp-check"} {
		if !strings.Contains(r.err, w) {
			t.Errorf("stderr %q lacks %q", r.err, w)
		}
	}
	var rep dhcp.MakeReport
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil || rep.Result.Path != out || rep.Result.Checked != "" {
		t.Errorf("--json: %v %+v\n%s", err, rep.Result, r.out)
	}
}
