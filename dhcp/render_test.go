package dhcp_test

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mnpool/mnpool/dhcp"
	"github.com/mnpool/mnpool/internal/golden"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/siteschema"
)

// goldenCases are the golden files: the MN and an SN of one pool, both
// formats, both disjointdhcps values. The dynamic range follows the
// master record here (the MN serves it).
func goldenCases() []struct {
	name, member, disjoint string
	format                 dhcp.Format
} {
	var out []struct {
		name, member, disjoint string
		format                 dhcp.Format
	}
	for _, m := range []string{"mn1", "sn1"} {
		for _, d := range []string{"0", "1"} {
			for _, f := range []dhcp.Format{dhcp.FormatISC, dhcp.FormatKea} {
				ext := "dhcpd.conf"
				if f == dhcp.FormatKea {
					ext = "kea-dhcp4.json"
				}
				out = append(out, struct {
					name, member, disjoint string
					format                 dhcp.Format
				}{fmt.Sprintf("%s-disjoint%s.%s", m, d, ext), m, d, f})
			}
		}
	}
	return out
}

func TestGolden(t *testing.T) {
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			st := fixture(c.disjoint)
			cfg, err := dhcp.Render(st, c.member, dhcp.Options{Format: c.format, ServeDynamic: st.IsMN(c.member)})
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", c.name), cfg.Data)
			again, err := dhcp.Render(fixture(c.disjoint), c.member, dhcp.Options{Format: c.format, ServeDynamic: st.IsMN(c.member)})
			if err != nil {
				t.Fatal(err)
			}
			if string(again.Data) != string(cfg.Data) {
				t.Error("two renders of the same state differ")
			}
		})
	}
}

// TestGoldenAcceptedByDaemons runs the real daemons' checks on every
// golden file.
func TestGoldenAcceptedByDaemons(t *testing.T) {
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			chk := requireDaemon(t, c.format)
			if err := chk.CheckFile(ctxT(t), c.format, filepath.Join("testdata", c.name)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCheckRejects proves the daemon check can fail: a configuration the
// renderer would never write is rejected with ErrCheck.
func TestCheckRejects(t *testing.T) {
	bad := map[dhcp.Format]string{
		dhcp.FormatISC: "subnet 10.0.0.0 netmask 255.255.0.0 {\n  range 10.1.0.1 10.1.0.9;\n}\n",
		dhcp.FormatKea: `{"Dhcp4": {"subnet4": [{"id": 1, "subnet": "10.0.0.0/16", "reservations": [{"hw-address": "00:1a:2b:3c:4d:01", "ip-address": "11.0.0.1"}]}]}}`,
	}
	for f, data := range bad {
		t.Run(string(f), func(t *testing.T) {
			chk := requireDaemon(t, f)
			err := chk.Check(ctxT(t), f, []byte(data), t.TempDir())
			if !errors.Is(err, dhcp.ErrCheck) {
				t.Fatalf("Check of a bad file = %v, want ErrCheck", err)
			}
		})
	}
}

// TestRenderContent asserts, per member and setting, what each node gets,
// by reading the rendered file back.
func TestRenderContent(t *testing.T) {
	mgmtSubnet := func(self string) dhcp.InstalledSubnet {
		return dhcp.InstalledSubnet{Network: "mgmt", Prefix: netip.MustParsePrefix("10.0.0.0/16"), Routers: addrs("10.0.0.254", "10.0.0.253"),
			NextServer: addr(self), DNS: addrs(self), NTP: addrs(self)}
	}
	type hostWant struct {
		ip, next string
		dns, ntp []string
	}
	cases := map[string]struct {
		member, disjoint string
		dynamic          bool
		wantSubnets      []string
		wantRange        string
		wantHosts        map[string]hostWant // node -> values (first MAC)
		wantSkipped      []dhcp.Skipped
	}{
		"MN serves all nodes and the range": {
			member: "mn1", disjoint: "0", dynamic: true, wantSubnets: []string{"mgmt", "svc"}, wantRange: "10.0.255.1-10.0.255.200",
			wantHosts: map[string]hostWant{
				"cn001": {"10.0.1.1", "10.0.0.1", []string{"10.0.0.1", "10.0.0.2"}, []string{"10.0.0.1", "10.0.0.2"}},
				"cn002": {"10.0.1.2", "10.0.0.1", []string{"10.0.0.1", "10.0.0.2"}, []string{"10.0.0.1", "10.0.0.2"}},
				"cn003": {"10.0.1.3", "10.0.0.1", []string{"10.0.0.3", "10.0.0.2"}, []string{"10.0.0.2"}},
				"cn004": {"10.0.1.4", "10.0.0.1", []string{"10.0.0.1", "10.0.0.3"}, []string{"10.0.0.1"}},
				"cn006": {"172.16.1.6", "172.16.0.10", []string{"172.16.0.10", "172.16.0.12"}, []string{"172.16.0.10"}},
				"cn008": {"10.0.1.8", "10.0.0.1", []string{"10.0.0.1"}, []string{"10.0.0.1"}},
				// sn3 runs no dhcp but is cn009's first DNS server.
				"cn009": {"10.0.1.9", "10.0.0.1", []string{"10.0.0.4", "10.0.0.3"}, []string{"10.0.0.4"}},
			},
			wantSkipped: []dhcp.Skipped{{Node: "cn005", Reason: "no MAC address"}, {Node: "cn007", Reason: "no IP address"}},
		},
		"SN serves all nodes of its network, no range": {
			member: "sn1", disjoint: "0", wantSubnets: []string{"mgmt"},
			wantHosts: map[string]hostWant{
				"cn001": {"10.0.1.1", "10.0.0.2", []string{"10.0.0.2", "10.0.0.1"}, []string{"10.0.0.2", "10.0.0.1"}},
				"cn002": {"10.0.1.2", "10.0.0.2", []string{"10.0.0.2", "10.0.0.1"}, []string{"10.0.0.2", "10.0.0.1"}},
				"cn003": {"10.0.1.3", "10.0.0.2", []string{"10.0.0.2", "10.0.0.3"}, []string{"10.0.0.2"}},
				"cn004": {"10.0.1.4", "10.0.0.2", []string{"10.0.0.3", "10.0.0.1"}, []string{"10.0.0.1"}},
				"cn008": {"10.0.1.8", "10.0.0.2", []string{"10.0.0.2"}, []string{"10.0.0.2"}},
				"cn009": {"10.0.1.9", "10.0.0.2", []string{"10.0.0.4", "10.0.0.3"}, []string{"10.0.0.4"}},
			},
			wantSkipped: []dhcp.Skipped{{Node: "cn005", Reason: "no MAC address"}, {Node: "cn007", Reason: "no IP address"}},
		},
		"disjoint SN serves only its nodes": {
			member: "sn1", disjoint: "1", wantSubnets: []string{"mgmt"},
			wantHosts: map[string]hostWant{
				"cn001": {"10.0.1.1", "10.0.0.2", []string{"10.0.0.2", "10.0.0.1"}, []string{"10.0.0.2", "10.0.0.1"}},
				"cn002": {"10.0.1.2", "10.0.0.2", []string{"10.0.0.2", "10.0.0.1"}, []string{"10.0.0.2", "10.0.0.1"}},
				"cn003": {"10.0.1.3", "10.0.0.2", []string{"10.0.0.2", "10.0.0.3"}, []string{"10.0.0.2"}},
			},
			wantSkipped: []dhcp.Skipped{{Node: "cn005", Reason: "no MAC address"}, {Node: "cn007", Reason: "no IP address"}},
		},
		"disjoint MN also serves nodes without a list": {
			member: "mn1", disjoint: "1", dynamic: true, wantSubnets: []string{"mgmt", "svc"}, wantRange: "10.0.255.1-10.0.255.200",
			wantHosts: map[string]hostWant{
				"cn001": {"10.0.1.1", "10.0.0.1", []string{"10.0.0.1", "10.0.0.2"}, []string{"10.0.0.1", "10.0.0.2"}},
				"cn002": {"10.0.1.2", "10.0.0.1", []string{"10.0.0.1", "10.0.0.2"}, []string{"10.0.0.1", "10.0.0.2"}},
				"cn004": {"10.0.1.4", "10.0.0.1", []string{"10.0.0.1", "10.0.0.3"}, []string{"10.0.0.1"}},
				"cn006": {"172.16.1.6", "172.16.0.10", []string{"172.16.0.10", "172.16.0.12"}, []string{"172.16.0.10"}},
				"cn008": {"10.0.1.8", "10.0.0.1", []string{"10.0.0.1"}, []string{"10.0.0.1"}},
			},
			wantSkipped: []dhcp.Skipped{{Node: "cn007", Reason: "no IP address"}},
		},
		"SN without tftp points nodes at their first tftp servicenode": {
			member: "sn2", disjoint: "0", wantSubnets: []string{"mgmt", "svc"},
			wantHosts: map[string]hostWant{
				"cn001": {"10.0.1.1", "10.0.0.2", []string{"10.0.0.2", "10.0.0.1"}, []string{"10.0.0.2", "10.0.0.1"}},
				"cn002": {"10.0.1.2", "10.0.0.1", []string{"10.0.0.1", "10.0.0.2"}, []string{"10.0.0.1", "10.0.0.2"}},
				"cn003": {"10.0.1.3", "10.0.0.2", []string{"10.0.0.3", "10.0.0.2"}, []string{"10.0.0.2"}},
				"cn004": {"10.0.1.4", "10.0.0.1", []string{"10.0.0.3", "10.0.0.1"}, []string{"10.0.0.1"}},
				"cn006": {"172.16.1.6", "172.16.0.10", []string{"172.16.0.12", "172.16.0.10"}, []string{"172.16.0.10"}},
				"cn008": {"10.0.1.8", "", []string{"10.0.0.3"}, nil},
				"cn009": {"10.0.1.9", "", []string{"10.0.0.3", "10.0.0.4"}, []string{"10.0.0.4"}},
			},
			wantSkipped: []dhcp.Skipped{{Node: "cn005", Reason: "no MAC address"}, {Node: "cn007", Reason: "no IP address"}},
		},
	}
	for name, c := range cases {
		for _, f := range []dhcp.Format{dhcp.FormatISC, dhcp.FormatKea} {
			t.Run(name+"/"+string(f), func(t *testing.T) {
				cfg, err := dhcp.Render(fixture(c.disjoint), c.member, dhcp.Options{Format: f, ServeDynamic: c.dynamic})
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(c.wantSubnets, cfg.Networks); diff != "" {
					t.Errorf("networks (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(c.wantSkipped, cfg.Skipped); diff != "" {
					t.Errorf("skipped (-want +got):\n%s", diff)
				}
				in, err := dhcp.Parse(cfg.Data)
				if err != nil {
					t.Fatal(err)
				}
				if in.Member != c.member || in.MN != "mn1" || in.Epoch != 3 || in.Dynamic != c.dynamic || in.Format != f {
					t.Errorf("header = %+v", in)
				}
				if c.member == "mn1" || c.member == "sn1" {
					self := map[string]string{"mn1": "10.0.0.1", "sn1": "10.0.0.2"}[c.member]
					want := mgmtSubnet(self)
					want.Range = c.wantRange
					if diff := cmp.Diff(want, in.Subnets[0], cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); diff != "" {
						t.Errorf("mgmt subnet (-want +got):\n%s", diff)
					}
				}
				got := map[string]hostWant{}
				for _, h := range in.Hosts {
					if _, seen := got[h.Node]; seen {
						continue
					}
					hw := hostWant{ip: h.IP.String(), dns: strs(h.DNS), ntp: strs(h.NTP)}
					if h.NextServer.IsValid() {
						hw.next = h.NextServer.String()
					}
					got[h.Node] = hw
				}
				if diff := cmp.Diff(c.wantHosts, got, cmp.AllowUnexported(hostWant{})); diff != "" {
					t.Errorf("hosts (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func strs(a []netip.Addr) []string {
	if a == nil {
		return nil
	}
	out := make([]string, len(a))
	for i, v := range a {
		out[i] = v.String()
	}
	return out
}

// TestRenderMultiMAC: every MAC of a node gets a reservation for the
// node's IP.
func TestRenderMultiMAC(t *testing.T) {
	for _, f := range []dhcp.Format{dhcp.FormatISC, dhcp.FormatKea} {
		cfg, err := dhcp.Render(fixture("0"), "mn1", dhcp.Options{Format: f})
		if err != nil {
			t.Fatal(err)
		}
		in, err := dhcp.Parse(cfg.Data)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range in.Hosts {
			if h.Node == "cn002" {
				got = append(got, h.MAC+"="+h.IP.String())
			}
		}
		if diff := cmp.Diff([]string{"00:1a:2b:3c:4d:02=10.0.1.2", "00:1a:2b:3c:4e:02=10.0.1.2"}, got); diff != "" {
			t.Errorf("%s: cn002 (-want +got):\n%s", f, diff)
		}
		if cfg.Nodes != 7 || cfg.Hosts != 8 {
			t.Errorf("%s: nodes=%d hosts=%d, want 7 and 8", f, cfg.Nodes, cfg.Hosts)
		}
	}
}

// TestRenderSelect: Options.Select limits the reservations.
func TestRenderSelect(t *testing.T) {
	sel := map[string]bool{"cn001": true, "cn003": true, "cn006": true}
	cfg, err := dhcp.Render(fixture("0"), "sn1", dhcp.Options{Select: func(n string) bool { return sel[n] }})
	if err != nil {
		t.Fatal(err)
	}
	in, err := dhcp.Parse(cfg.Data)
	if err != nil {
		t.Fatal(err)
	}
	// cn006 is on svc, which sn1 does not serve.
	if diff := cmp.Diff([]string{"cn001", "cn003"}, in.Nodes()); diff != "" {
		t.Errorf("nodes (-want +got):\n%s", diff)
	}
}

// TestRenderInvalid: values that could break or inject into a file are
// refused with ErrInvalid (or ErrNotServer), naming the value.
func TestRenderInvalid(t *testing.T) {
	cases := map[string]struct {
		mutate func(st *pool.State)
		opts   dhcp.Options
		member string
		want   error
	}{
		"node name with a brace": {mutate: func(st *pool.State) { st.Nodes[0].Name = "cn001{" }, want: dhcp.ErrInvalid},
		"node name with a quote": {mutate: func(st *pool.State) { st.Nodes[0].Name = `cn"001` }, want: dhcp.ErrInvalid},
		"upper-case MAC":         {mutate: func(st *pool.State) { st.Nodes[0].MACs = []string{"00:1A:2B:3C:4D:01"} }, want: dhcp.ErrInvalid},
		"MAC with statement":     {mutate: func(st *pool.State) { st.Nodes[0].MACs = []string{"00:1a:2b:3c:4d:01; deny"} }, want: dhcp.ErrInvalid},
		"duplicate MAC":          {mutate: func(st *pool.State) { st.Nodes[1].MACs = []string{"00:1a:2b:3c:4d:01"} }, want: dhcp.ErrInvalid},
		"duplicate IP":           {mutate: func(st *pool.State) { st.Nodes[1].IP = addr("10.0.1.1") }, want: dhcp.ErrInvalid},
		"IP outside network":     {mutate: func(st *pool.State) { st.Nodes[0].IP = addr("10.1.0.1") }, want: dhcp.ErrInvalid},
		"IP in dynamic range":    {mutate: func(st *pool.State) { st.Nodes[0].IP = addr("10.0.255.7") }, want: dhcp.ErrInvalid},
		"IP of a gateway":        {mutate: func(st *pool.State) { st.Nodes[0].IP = addr("10.0.0.254") }, want: dhcp.ErrInvalid},
		"IP of a member":         {mutate: func(st *pool.State) { st.Nodes[0].IP = addr("10.0.0.3") }, want: dhcp.ErrInvalid},
		"broadcast IP":           {mutate: func(st *pool.State) { st.Nodes[0].IP = addr("10.0.255.255") }, want: dhcp.ErrInvalid},
		"boot file with quote":   {mutate: func(st *pool.State) { st.Site[dhcp.SiteBootUEFI] = `x.efi"; option routers 1.2.3.4; "` }, want: dhcp.ErrInvalid},
		"boot file with newline": {mutate: func(st *pool.State) { st.Site[dhcp.SiteBootBIOS] = "a\nb" }, want: dhcp.ErrInvalid},
		"domain with space":      {mutate: func(st *pool.State) { st.Site[siteschema.Domain] = "clu ster" }, want: dhcp.ErrInvalid},
		"network domain quote":   {mutate: func(st *pool.State) { st.Networks[0].Domain = `a";` }, want: dhcp.ErrInvalid},
		"bad lease time":         {mutate: func(st *pool.State) { st.Site[dhcp.SiteDHCPLease] = "12h" }, want: dhcp.ErrInvalid},
		"bad disjointdhcps":      {mutate: func(st *pool.State) { st.Site[siteschema.DisjointDHCPs] = "yes" }, want: dhcp.ErrInvalid},
		"bad interface":          {mutate: func(st *pool.State) { st.Site[dhcp.SiteDHCPInterfaces] = `eth0"]` }, want: dhcp.ErrInvalid},
		"gateway outside":        {mutate: func(st *pool.State) { st.Networks[0].Gateways = addrs("192.168.0.1") }, want: dhcp.ErrInvalid},
		"range reversed": {mutate: func(st *pool.State) {
			st.Networks[0].DynamicStart, st.Networks[0].DynamicEnd = addr("10.0.255.9"), addr("10.0.255.1")
		}, want: dhcp.ErrInvalid},
		"host bits in CIDR": {mutate: func(st *pool.State) { st.Networks[0].Prefix = netip.MustParsePrefix("10.0.0.1/16") }, want: dhcp.ErrInvalid},
		"network name newline": {mutate: func(st *pool.State) {
			st.Networks[1].Name = "svc\n"
			st.Members[0].Addresses["svc\n"] = addr("172.16.0.10")
		}, want: dhcp.ErrInvalid},
		"overlapping networks": {mutate: func(st *pool.State) {
			st.Networks[1].Prefix = netip.MustParsePrefix("10.0.128.0/20")
			st.Networks[1].Gateways = nil
			st.Members[0].Addresses["svc"] = addr("10.0.128.10")
			st.Nodes[5].IP = addr("10.0.128.6")
		}, want: dhcp.ErrInvalid},
		"kea socket relative": {opts: dhcp.Options{KeaControlSocket: "kea.sock"}, want: dhcp.ErrInvalid},
		"member without dhcp": {member: "sn3", want: dhcp.ErrNotServer},
		"unknown member":      {member: "sn9", want: dhcp.ErrNotServer},
		"unknown format":      {opts: dhcp.Options{Format: "dnsmasq"}, want: dhcp.ErrFormat},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			st := fixture("0")
			if c.mutate != nil {
				c.mutate(st)
			}
			member := c.member
			if member == "" {
				member = "mn1"
			}
			c.opts.ServeDynamic = true
			cfg, err := dhcp.Render(st, member, c.opts)
			if !errors.Is(err, c.want) {
				t.Fatalf("Render = %v, want %v", err, c.want)
			}
			if cfg != nil {
				t.Error("a config was returned with the error")
			}
		})
	}
}

// TestParseForeign: files not written by mnpool are recognised.
func TestParseForeign(t *testing.T) {
	for name, data := range map[string]string{
		"isc":      "# dhcpd.conf\nsubnet 10.0.0.0 netmask 255.0.0.0 {\n}\n",
		"kea":      `{"Dhcp4": {"subnet4": []}}`,
		"not json": `{"Dhcp4": `,
		"empty":    "",
	} {
		if _, err := dhcp.Parse([]byte(data)); !errors.Is(err, dhcp.ErrFormat) {
			t.Errorf("%s: Parse = %v, want ErrFormat", name, err)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]dhcp.Format{"isc": dhcp.FormatISC, "DHCPD": dhcp.FormatISC, "kea": dhcp.FormatKea} {
		if got, err := dhcp.ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := dhcp.ParseFormat("dnsmasq"); !errors.Is(err, dhcp.ErrFormat) {
		t.Errorf("ParseFormat(dnsmasq) = %v", err)
	}
}

func TestParseInterfaces(t *testing.T) {
	cases := map[string]struct {
		v, member string
		want      []string
	}{
		"empty":          {"", "mn1", nil},
		"all":            {"eth1, eth2", "sn1", []string{"eth1", "eth2"}},
		"per member":     {"mn1|eth1,eth2;sn1|bond0", "sn1", []string{"bond0"}},
		"other member":   {"mn1|eth1;eth0", "sn1", []string{"eth0"}},
		"member overall": {"eth0;mn1|eth1", "mn1", []string{"eth1"}},
	}
	for name, c := range cases {
		got, err := dhcp.ParseInterfaces(c.v, c.member)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
	if _, err := dhcp.ParseInterfaces("mn1|eth0|x", "mn1"); !errors.Is(err, dhcp.ErrInvalid) {
		t.Errorf("bad value: %v", err)
	}
}

var _ = os.Getenv

// TestRenderOrderIndependent: the same pool in another order renders the
// same bytes.
func TestRenderOrderIndependent(t *testing.T) {
	for _, f := range []dhcp.Format{dhcp.FormatISC, dhcp.FormatKea} {
		want, err := dhcp.Render(fixture("0"), "sn1", dhcp.Options{Format: f})
		if err != nil {
			t.Fatal(err)
		}
		st := fixture("0")
		slices.Reverse(st.Nodes)
		slices.Reverse(st.Members)
		slices.Reverse(st.Networks)
		got, err := dhcp.Render(st, "sn1", dhcp.Options{Format: f})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(want.Data), string(got.Data)); diff != "" {
			t.Errorf("%s: output depends on input order (-sorted +reversed):\n%s", f, diff)
		}
	}
}
