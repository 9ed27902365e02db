package gateway_test

import (
	"context"
	"errors"
	"maps"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mnpool/mnpool/dns/dnstest"
	"github.com/mnpool/mnpool/gateway"
	"github.com/mnpool/mnpool/pool"
)

// vrrpSite are the VRRP groups of the tests: sn1, sn2 and the MN forward
// for mgmt; sn2 and the MN for v6.
var vrrpSite = map[string]string{
	"vrrp.mgmt.members": "sn1,sn2,mn1",
	"vrrp.mgmt.vips":    "10.0.255.254",
	"vrrp.v6.members":   "sn2,mn1",
	"vrrp.v6.vips":      "fd00:10::fffe",
	"vrrp.v6.vrid":      "52",
}

// state returns the dnstest pool with site set through the store.
func state(t *testing.T, site map[string]string) *pool.State {
	t.Helper()
	s := dnstest.Open(t, dnstest.SQLite(t))
	dnstest.Seed(t, s)
	if len(site) > 0 {
		if err := s.SetSite(context.Background(), site); err != nil {
			t.Fatal(err)
		}
	}
	st, err := s.LoadState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestForNode(t *testing.T) {
	st := state(t, nil)
	for _, tc := range []struct {
		node string
		want []netip.Addr
	}{
		{"cn001", []netip.Addr{netip.MustParseAddr("10.0.255.254"), netip.MustParseAddr("10.0.255.253")}},
		{"ib01", []netip.Addr{netip.MustParseAddr("10.1.0.1")}},
		{"v6n01", []netip.Addr{netip.MustParseAddr("fd00:10::fffe")}},
	} {
		got, err := gateway.ForNode(st, dnstest.Node(t, st, tc.node))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.node, diff)
		}
	}
	if _, err := gateway.ForNode(st, dnstest.Node(t, st, "spare")); !errors.Is(err, gateway.ErrNotFound) {
		t.Errorf("node without network: %v", err)
	}
}

func TestGroups(t *testing.T) {
	gs, err := gateway.Groups(state(t, vrrpSite))
	if err != nil {
		t.Fatal(err)
	}
	if len(gs) != 2 || gs[0].Network != "mgmt" || gs[1].Network != "v6" {
		t.Fatalf("groups %+v", gs)
	}
	if gs[0].VRID != gateway.DefaultVRID || gs[1].VRID != 52 {
		t.Errorf("vrids %d %d", gs[0].VRID, gs[1].VRID)
	}
	if p := []int{gs[0].Priority("sn1"), gs[0].Priority("sn2"), gs[0].Priority("mn1"), gs[0].Priority("sn4")}; !cmp.Equal(p, []int{150, 140, 130, 0}) {
		t.Errorf("priorities %v", p)
	}
}

func TestGroupsRejects(t *testing.T) {
	for name, change := range map[string]map[string]string{
		"one member":        {"vrrp.mgmt.members": "sn1"},
		"unknown member":    {"vrrp.mgmt.members": "sn1,sn9"},
		"member off net":    {"vrrp.v6.members": "sn1,mn1"},
		"member twice":      {"vrrp.mgmt.members": "sn1,sn1"},
		"vip not gateway":   {"vrrp.mgmt.vips": "10.0.255.200"},
		"vip outside":       {"vrrp.mgmt.vips": "10.9.0.1"},
		"vip is a member":   {"vrrp.mgmt.vips": "10.0.0.1"},
		"vip not an IP":     {"vrrp.mgmt.vips": "gw.cluster"},
		"no vip":            {"vrrp.mgmt.vips": ""},
		"vrid 0":            {"vrrp.v6.vrid": "0"},
		"vrid 256":          {"vrrp.v6.vrid": "256"},
		"only a vrid given": {"vrrp.ib.vrid": "7"},
	} {
		t.Run(name, func(t *testing.T) {
			// The store refuses such values (the site schema); a database
			// written before it may hold them, so the renderer checks too.
			st := state(t, vrrpSite)
			maps.Copy(st.Site, change)
			_, err := gateway.Groups(st)
			if !errors.Is(err, gateway.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestKeepalivedGolden(t *testing.T) {
	st := state(t, vrrpSite)
	for _, m := range []string{"sn1", "sn2", "mn1"} {
		t.Run(m, func(t *testing.T) {
			c, err := gateway.Keepalived(st, m, gateway.KeepalivedOptions{Interfaces: map[string]string{"v6": "eth1"}})
			if err != nil {
				t.Fatal(err)
			}
			out, err := c.Render()
			if err != nil {
				t.Fatal(err)
			}
			dnstest.Golden(t, "keepalived.conf."+m, out)
		})
	}
	if _, err := gateway.Keepalived(st, "sn3", gateway.KeepalivedOptions{}); !errors.Is(err, gateway.ErrNotFound) {
		t.Errorf("sn3 forwards nothing: err = %v, want ErrNotFound", err)
	}
	// v6 has no mgtifname: without an interface for it, sn2 cannot be
	// rendered.
	if _, err := gateway.Keepalived(st, "sn2", gateway.KeepalivedOptions{}); !errors.Is(err, gateway.ErrInvalid) || !strings.Contains(err.Error(), "v6") {
		t.Errorf("no interface for v6: err = %v, want ErrInvalid naming v6", err)
	}
	if _, err := gateway.Keepalived(st, "sn1", gateway.KeepalivedOptions{Interfaces: map[string]string{"mgmt": "eth0; rm -rf /"}}); err != nil {
		t.Fatal(err) // Keepalived only assembles; Render validates
	}
	c, _ := gateway.Keepalived(st, "sn1", gateway.KeepalivedOptions{Interfaces: map[string]string{"mgmt": "eth0\nvrrp_script x"}})
	if _, err := c.Render(); !errors.Is(err, gateway.ErrInvalid) {
		t.Errorf("interface with newline: err = %v, want ErrInvalid", err)
	}
}

// hostInterface returns a non-loopback interface of this host
// (keepalived -t wants interfaces that exist and refuses lo).
func hostInterface(t *testing.T) string {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagLoopback == 0 && ifc.Flags&net.FlagUp != 0 {
			return ifc.Name
		}
	}
	t.Skip("no non-loopback interface to check keepalived.conf against")
	return ""
}

// TestKeepalivedCheck gives rendered files to keepalived -t, the
// interfaces mapped to one this host has.
func TestKeepalivedCheck(t *testing.T) {
	bin := dnstest.Tool(t, "keepalived", "keepalived")
	st := state(t, vrrpSite)
	ifc := hostInterface(t)
	lo := gateway.KeepalivedOptions{Interfaces: map[string]string{"mgmt": ifc, "v6": ifc}}
	for _, m := range []string{"sn1", "sn2", "mn1"} {
		c, err := gateway.Keepalived(st, m, lo)
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.Render()
		if err != nil {
			t.Fatal(err)
		}
		if err := gateway.CheckConfig(context.Background(), bin, out); err != nil {
			t.Errorf("%s: %v\n%s", m, err, out)
		}
	}
	// keepalived does reject a bad file.
	if err := gateway.CheckConfig(context.Background(), bin, []byte("vrrp_instance x {\n interface nosuchif0\n virtual_router_id 1\n priority 300\n}\n")); !errors.Is(err, gateway.ErrInvalid) {
		t.Errorf("bad file: err = %v, want ErrInvalid", err)
	}
}

func TestWarnings(t *testing.T) {
	st := state(t, vrrpSite)
	// The fixture's ib network goes out only through the MN.
	ws := gateway.Warnings(st)
	if len(ws) != 1 || !errors.Is(ws[0], gateway.ErrOnlyMN) || !strings.Contains(ws[0].Error(), "ib") {
		t.Fatalf("warnings %v, want one ErrOnlyMN for ib", ws)
	}
	// A second gateway on ib fixes it.
	cp := *st
	cp.Networks = nil
	for _, n := range st.Networks {
		if n.Name == "ib" {
			n.Gateways = append(n.Gateways, netip.MustParseAddr("10.1.255.254"))
		}
		cp.Networks = append(cp.Networks, n)
	}
	if ws := gateway.Warnings(&cp); len(ws) != 0 {
		t.Errorf("warnings %v, want none", ws)
	}
	// A broken group is reported too.
	bad := state(t, vrrpSite)
	bad.Site["vrrp.mgmt.members"] = "sn1"
	if ws := gateway.Warnings(bad); len(ws) != 2 || !errors.Is(ws[0], gateway.ErrInvalid) {
		t.Errorf("warnings %v, want ErrInvalid then ErrOnlyMN", ws)
	}
}
