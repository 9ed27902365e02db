package dns_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mnpool/mnpool/dns"
	"github.com/mnpool/mnpool/dns/dnstest"
	"github.com/mnpool/mnpool/memberaddr"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
)

func TestNodeResolvConf(t *testing.T) {
	st := dnstest.State(t)
	for _, tc := range []struct {
		node    string
		servers []string // member names, in order
	}{
		{"cn001", []string{"mn1", "sn1"}},        // the MN and an SN
		{"cn002", []string{"sn1", "sn2"}},        // two SNs
		{"cn003", []string{"sn2"}},               // sn3 runs no dns
		{"cn004", []string{"sn2", "sn1", "mn1"}}, // four listed, the resolver reads three
		{"ib01", []string{"sn1", "mn1"}},         // network domain ib.cluster
		{"v6n01", []string{"sn2", "mn1"}},        // IPv6 name servers
	} {
		t.Run(tc.node, func(t *testing.T) {
			rc, err := dns.NodeResolvConf(st, dnstest.Node(t, st, tc.node))
			checkResolv(t, rc, err, tc.servers, "resolv.conf."+tc.node)
		})
	}
	t.Run("no network", func(t *testing.T) {
		_, err := dns.NodeResolvConf(st, dnstest.Node(t, st, "spare"))
		if !errors.Is(err, dns.ErrNoServers) || !strings.Contains(err.Error(), "spare") {
			t.Fatalf("err = %v, want ErrNoServers naming spare", err)
		}
	})
	t.Run("no servicenode runs dns", func(t *testing.T) {
		n := dnstest.Node(t, st, "cn003")
		n.ServiceNodes = []string{"sn3"}
		_, err := dns.NodeResolvConf(st, n)
		if !errors.Is(err, dns.ErrNoServers) || !strings.Contains(err.Error(), "sn3") {
			t.Fatalf("err = %v, want ErrNoServers naming sn3", err)
		}
	})
}

// checkResolv checks the name servers of rc (by member) and its rendering
// against the golden file.
func checkResolv(t *testing.T, rc dns.ResolvConf, err error, servers []string, golden string) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range rc.Servers {
		got = append(got, s.Member)
	}
	if diff := cmp.Diff(servers, got); diff != "" {
		t.Errorf("name servers (-want +got):\n%s", diff)
	}
	out, err := rc.Render()
	if err != nil {
		t.Fatal(err)
	}
	dnstest.Golden(t, golden, out)
}

func TestMemberResolvConf(t *testing.T) {
	st := dnstest.State(t)
	for _, tc := range []struct {
		member  string
		servers []string
	}{
		{"mn1", []string{"mn1", "sn1", "sn2"}}, // the MN: itself, then the next members
		{"sn1", []string{"sn1", "mn1", "sn2"}}, // itself, the MN, the next member
		{"sn4", []string{"sn4", "mn1", "sn1"}}, // ring order wraps around
		{"sn3", []string{"mn1", "sn4", "sn1"}}, // runs no dns itself
	} {
		t.Run(tc.member, func(t *testing.T) {
			rc, err := dns.MemberResolvConf(st, tc.member)
			checkResolv(t, rc, err, tc.servers, "resolv.conf.member."+tc.member)
		})
	}
	t.Run("only the MN runs dns", func(t *testing.T) {
		only := onlyMNRunsDNS(st)
		_, err := dns.MemberResolvConf(only, "sn1")
		if !errors.Is(err, dns.ErrOnlyMN) {
			t.Fatalf("err = %v, want ErrOnlyMN", err)
		}
		// The MN itself may use itself alone.
		if _, err := dns.MemberResolvConf(only, "mn1"); err != nil {
			t.Fatalf("MN: %v", err)
		}
	})
	t.Run("unknown member", func(t *testing.T) {
		if _, err := dns.MemberResolvConf(st, "nosuch"); !errors.Is(err, dns.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
}

// onlyMNRunsDNS returns a copy of st where only the MN runs dns.
func onlyMNRunsDNS(st *pool.State) *pool.State {
	cp := *st
	cp.Members = nil
	for _, m := range st.Members {
		if !st.IsMN(m.Name) {
			m.Services = []service.Service{service.DHCP}
		}
		cp.Members = append(cp.Members, m)
	}
	return &cp
}

func TestResolvConfRenderRejects(t *testing.T) {
	ok := []memberaddr.Server{{Member: "mn1", Addr: netip.MustParseAddr("10.0.0.1")}}
	four := append(append(append(append([]memberaddr.Server{}, ok...), ok...), ok...), ok...)
	for name, rc := range map[string]dns.ResolvConf{
		"no server":       {},
		"four servers":    {Servers: four},
		"bad domain":      {Servers: ok, Search: []string{"bad domain"}},
		"newline option":  {Servers: ok, Options: []string{"timeout:1\nnameserver 6.6.6.6"}},
		"newline comment": {Servers: ok, Comment: []string{"x\nnameserver 6.6.6.6"}},
		"seven domains":   {Servers: ok, Search: []string{"a", "b", "c", "d", "e", "f", "g"}},
	} {
		t.Run(name, func(t *testing.T) {
			if out, err := rc.Render(); err == nil {
				t.Fatalf("rendered %q, want an error", out)
			}
		})
	}
}

func TestZonesGolden(t *testing.T) {
	st := dnstest.State(t)
	zs, err := dns.BuildZones(st, 42, dns.ZoneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var origins []string
	for _, z := range zs.List {
		origins = append(origins, z.Origin)
	}
	want := []string{
		"0.0.0.0.0.0.0.0.0.1.0.0.0.0.d.f.ip6.arpa.",
		"0.10.in-addr.arpa.",
		"1.10.in-addr.arpa.",
		"cluster.",
		"ib.cluster.",
	}
	if diff := cmp.Diff(want, origins); diff != "" {
		t.Fatalf("zones (-want +got):\n%s", diff)
	}
	for _, z := range zs.List {
		t.Run(z.Origin, func(t *testing.T) {
			dnstest.Golden(t, "zone/"+z.FileName(), z.Render())
		})
	}
	conf, err := dns.NamedConf(zs, "/var/lib/mnpool/dns")
	if err != nil {
		t.Fatal(err)
	}
	dnstest.Golden(t, "zone/named.conf.mnpool", conf)
	again, err := dns.BuildZones(st, 42, dns.ZoneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range zs.List {
		if string(zs.List[i].Render()) != string(again.List[i].Render()) {
			t.Errorf("zone %s renders differently from the same state", zs.List[i].Origin)
		}
	}
}

// TestZonesCheckzone gives every rendered zone to BIND's own checker.
func TestZonesCheckzone(t *testing.T) {
	checker := dnstest.Tool(t, "named-checkzone", "bind9-utils")
	zs, err := dns.BuildZones(dnstest.State(t), 7, dns.ZoneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, z := range zs.List {
		if err := dns.CheckZone(context.Background(), checker, z); err != nil {
			t.Errorf("%v", err)
		}
	}
	// The checker is not a rubber stamp: a zone without name servers fails.
	bad := *zs.List[0]
	bad.NS = nil
	if err := dns.CheckZone(context.Background(), checker, &bad); !errors.Is(err, dns.ErrInvalid) {
		t.Errorf("zone without NS: err = %v, want ErrInvalid", err)
	}
}

func TestBuildZonesErrors(t *testing.T) {
	st := dnstest.State(t)
	if _, err := dns.BuildZones(onlyNoDNS(st), 1, dns.ZoneOptions{}); !errors.Is(err, dns.ErrNoServers) {
		t.Errorf("no member runs dns: err = %v, want ErrNoServers", err)
	}
	if _, err := dns.NamedConf(&dns.Zones{}, "relative/dir"); !errors.Is(err, dns.ErrInvalid) {
		t.Errorf("relative zone dir: err = %v, want ErrInvalid", err)
	}
	if _, err := dns.NamedConf(&dns.Zones{}, `/x"; include "/etc/shadow`); !errors.Is(err, dns.ErrInvalid) {
		t.Errorf("quote in zone dir: err = %v, want ErrInvalid", err)
	}
}

func onlyNoDNS(st *pool.State) *pool.State {
	cp := *st
	cp.Members = nil
	for _, m := range st.Members {
		m.Services = []service.Service{service.DHCP}
		cp.Members = append(cp.Members, m)
	}
	return &cp
}

func TestReverseZones(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"10.0.0.0/8", []string{"10.in-addr.arpa."}},
		{"10.0.0.0/16", []string{"0.10.in-addr.arpa."}},
		{"192.168.5.0/24", []string{"5.168.192.in-addr.arpa."}},
		{"192.168.5.64/26", []string{"5.168.192.in-addr.arpa."}},
		{"172.16.0.0/15", []string{"16.172.in-addr.arpa.", "17.172.in-addr.arpa."}},
		{"10.16.0.0/22", []string{"0.16.10.in-addr.arpa.", "1.16.10.in-addr.arpa.", "2.16.10.in-addr.arpa.", "3.16.10.in-addr.arpa."}},
		{"fd00:10::/64", []string{"0.0.0.0.0.0.0.0.0.1.0.0.0.0.d.f.ip6.arpa."}},
		{"fd00:10::/62", []string{
			"0.0.0.0.0.0.0.0.0.1.0.0.0.0.d.f.ip6.arpa.", "1.0.0.0.0.0.0.0.0.1.0.0.0.0.d.f.ip6.arpa.",
			"2.0.0.0.0.0.0.0.0.1.0.0.0.0.d.f.ip6.arpa.", "3.0.0.0.0.0.0.0.0.1.0.0.0.0.d.f.ip6.arpa."}},
	} {
		t.Run(tc.prefix, func(t *testing.T) {
			got := dns.ReverseZones(netip.MustParsePrefix(tc.prefix))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if n := len(dns.ReverseZones(netip.MustParsePrefix("10.0.0.0/12"))); n != 16 {
		t.Errorf("10.0.0.0/12: %d zones, want 16", n)
	}
}

func TestParseForwarders(t *testing.T) {
	ap := netip.MustParseAddrPort
	for _, tc := range []struct {
		in   string
		want []netip.AddrPort
		err  bool
	}{
		{in: "", want: nil},
		{in: "192.0.2.53", want: []netip.AddrPort{ap("192.0.2.53:53")}},
		{in: "192.0.2.53,127.0.0.1:5353", want: []netip.AddrPort{ap("192.0.2.53:53"), ap("127.0.0.1:5353")}},
		{in: "2001:db8::53 [2001:db8::54]:5300", want: []netip.AddrPort{ap("[2001:db8::53]:53"), ap("[2001:db8::54]:5300")}},
		{in: "dns.example.org", err: true},
		{in: "192.0.2.53:0", err: true},
		{in: "192.0.2.53:70000", err: true},
		{in: "0.0.0.0", err: true},
		{in: "224.0.0.1", err: true},
		{in: "192.0.2.53,192.0.2.53", err: true},
		{in: "fe80::1%eth0", err: true},
		{in: "192.0.2.53;rm -rf /", err: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := dns.ParseForwarders(tc.in)
			if tc.err {
				if !errors.Is(err, dns.ErrInvalid) {
					t.Fatalf("got %v, %v; want ErrInvalid", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
