package ntp_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mnpool/mnpool/dns/dnstest"
	"github.com/mnpool/mnpool/ntp"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/siteschema"
)

// seeded returns the dnstest pool with site.extntpservers set to ext.
func seeded(t *testing.T, ext string) *pool.State {
	t.Helper()
	s := dnstest.Open(t, dnstest.SQLite(t))
	dnstest.Seed(t, s)
	if ext != "" {
		if err := s.SetSite(context.Background(), map[string]string{siteschema.ExtNTPServers: ext}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := s.LoadState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func hosts(c ntp.Conf) []string {
	var out []string
	for _, s := range c.Servers {
		out = append(out, s.Host)
	}
	return out
}

func TestNodeConf(t *testing.T) {
	st := seeded(t, "")
	for _, tc := range []struct {
		node    string
		servers []string
	}{
		{"cn001", []string{"10.0.0.1", "10.0.0.2"}}, // the MN and an SN
		{"cn003", []string{"10.0.0.3"}},             // sn3 runs no ntp
		{"cn004", []string{"10.0.0.3", "10.0.0.2", "10.0.0.1", "10.0.0.5"}},
		{"ib01", []string{"10.1.0.2", "10.1.0.1"}},
		{"v6n01", []string{"fd00:10::3", "fd00:10::1"}},
	} {
		t.Run(tc.node, func(t *testing.T) {
			c, err := ntp.NodeConf(st, dnstest.Node(t, st, tc.node))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.servers, hosts(c)); diff != "" {
				t.Errorf("servers (-want +got):\n%s", diff)
			}
			out, err := c.Render()
			if err != nil {
				t.Fatal(err)
			}
			dnstest.Golden(t, "chrony.conf."+tc.node, out)
		})
	}
	if _, err := ntp.NodeConf(st, dnstest.Node(t, st, "spare")); !errors.Is(err, ntp.ErrNoServers) {
		t.Errorf("node without network: err = %v, want ErrNoServers", err)
	}
}

func TestMemberConf(t *testing.T) {
	for _, tc := range []struct {
		name, member, ext string
		servers           []string
		orphan            bool
		allow             []string
	}{
		// External servers, then the MN and two more members.
		{"sn1 ext", "sn1", "ntp1.example.org,192.0.2.123", []string{"ntp1.example.org", "192.0.2.123", "10.0.0.1", "10.0.0.3", "10.0.0.5"}, true, []string{"10.0.0.0/16", "10.1.0.0/16"}},
		// No external server: still the MN and two more members.
		{"sn1", "sn1", "", []string{"10.0.0.1", "10.0.0.3", "10.0.0.5"}, true, []string{"10.0.0.0/16", "10.1.0.0/16"}},
		// The MN takes three other members.
		{"mn1", "mn1", "ntp1.example.org", []string{"ntp1.example.org", "10.0.0.2", "10.0.0.3", "10.0.0.5"}, true, []string{"10.0.0.0/16", "fd00:10::/64", "10.1.0.0/16"}},
		// Ring order wraps around after the last member.
		{"sn4", "sn4", "", []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}, true, []string{"10.0.0.0/16"}},
		// A member without ntp takes time but serves nobody.
		{"sn3", "sn3", "", []string{"10.0.0.1", "10.0.0.5", "10.0.0.2"}, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := seeded(t, tc.ext)
			c, err := ntp.MemberConf(st, tc.member, ntp.MemberOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.servers, hosts(c)); diff != "" {
				t.Errorf("servers (-want +got):\n%s", diff)
			}
			if c.Orphan != tc.orphan || (tc.orphan && c.LocalStratum != ntp.DefaultLocalStratum) {
				t.Errorf("local stratum %d orphan %v, want orphan %v", c.LocalStratum, c.Orphan, tc.orphan)
			}
			var allow []string
			for _, p := range c.Allow {
				allow = append(allow, p.String())
			}
			if diff := cmp.Diff(tc.allow, allow); diff != "" {
				t.Errorf("allow (-want +got):\n%s", diff)
			}
			out, err := c.Render()
			if err != nil {
				t.Fatal(err)
			}
			dnstest.Golden(t, "chrony.conf.member."+strings.ReplaceAll(tc.name, " ", "-"), out)
		})
	}
	t.Run("bad extntpservers", func(t *testing.T) {
		// The store refuses this value (the site schema); a database
		// written before it may hold it, so the renderer checks too.
		st := seeded(t, "")
		st.Site[siteschema.ExtNTPServers] = "ntp1.example.org,bad host;reboot"
		if _, err := ntp.MemberConf(st, "sn1", ntp.MemberOptions{}); !errors.Is(err, ntp.ErrInvalid) {
			t.Fatalf("err = %v, want ErrInvalid", err)
		}
	})
	t.Run("unknown member", func(t *testing.T) {
		if _, err := ntp.MemberConf(seeded(t, ""), "nosuch", ntp.MemberOptions{}); !errors.Is(err, ntp.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
}

// TestChronydParses gives every rendered file to chronyd -p.
func TestChronydParses(t *testing.T) {
	chronyd := dnstest.Tool(t, "chronyd", "chrony")
	st := seeded(t, "ntp1.example.org,192.0.2.123")
	var confs []ntp.Conf
	for _, n := range []string{"cn001", "cn004", "v6n01"} {
		c, err := ntp.NodeConf(st, dnstest.Node(t, st, n))
		if err != nil {
			t.Fatal(err)
		}
		confs = append(confs, c)
	}
	for _, m := range []string{"mn1", "sn1", "sn3"} {
		c, err := ntp.MemberConf(st, m, ntp.MemberOptions{})
		if err != nil {
			t.Fatal(err)
		}
		confs = append(confs, c)
	}
	confs = append(confs, ntp.Conf{Servers: []ntp.Source{{Host: "127.0.0.1", Port: 11123}}, Port: 11124,
		BindAddress: netip.MustParseAddr("127.0.0.1"), DisableCmdPort: true, PidFile: "/tmp/x.pid", DriftFile: "/tmp/x.drift"})
	for i, c := range confs {
		out, err := c.Render()
		if err != nil {
			t.Fatal(err)
		}
		if err := ntp.CheckConfig(context.Background(), chronyd, out); err != nil {
			t.Errorf("conf %d: %v\n%s", i, err, out)
		}
	}
	// chronyd does reject what it cannot parse.
	if err := ntp.CheckConfig(context.Background(), chronyd, []byte("server 10.0.0.1 iburst\nlocal stratum 99\n")); !errors.Is(err, ntp.ErrInvalid) {
		t.Errorf("stratum 99: err = %v, want ErrInvalid", err)
	}
}

func TestConfRenderRejects(t *testing.T) {
	for name, c := range map[string]ntp.Conf{
		"host with space":   {Servers: []ntp.Source{{Host: "a b"}}},
		"host with newline": {Servers: []ntp.Source{{Host: "a\nallow all"}}},
		"port":              {Servers: []ntp.Source{{Host: "10.0.0.1", Port: 70000}}},
		"stratum":           {LocalStratum: 16},
		"orphan alone":      {Orphan: true},
		"relative drift":    {DriftFile: "chrony.drift"},
		"pidfile quote":     {PidFile: "/run/x\"y"},
		"comment newline":   {Comment: []string{"a\nallow"}},
		"multicast server":  {Servers: []ntp.Source{{Host: "224.0.1.1"}}},
	} {
		t.Run(name, func(t *testing.T) {
			if out, err := c.Render(); !errors.Is(err, ntp.ErrInvalid) {
				t.Fatalf("rendered %q, err %v; want ErrInvalid", out, err)
			}
		})
	}
}
