package dhcp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/mnpool/mnpool/dhcp"
	"github.com/mnpool/mnpool/internal/cli"
	"github.com/mnpool/mnpool/internal/netns"
	"github.com/mnpool/mnpool/internal/testenv"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
)

// TestExchange runs the MN's and an SN's configurations, written by
// makedhcp, in real daemons in two network namespaces on one bridge, and
// asks them with a DHCP client (nclient4) from a third: a known MAC gets
// its reserved IP and the answering member as next-server from both; an
// unknown MAC gets an offer only from the MN; after the MN role moves to
// the SN, only the new MN offers one.
func TestExchange(t *testing.T) {
	for _, f := range []dhcp.Format{dhcp.FormatISC, dhcp.FormatKea} {
		t.Run(string(f), func(t *testing.T) { testExchange(t, f) })
	}
}

// labMember is a pool member running a daemon in a namespace.
type labMember struct {
	name, host string
	addr       netip.Addr
	dir        string
	proc       *netns.Proc
}

func (m *labMember) conf() string   { return filepath.Join(m.dir, "dhcp.conf") }
func (m *labMember) sock() string   { return filepath.Join(m.dir, "kea.sock") }
func (m *labMember) leases() string { return filepath.Join(m.dir, "leases") }

func testExchange(t *testing.T, f dhcp.Format) {
	requireDaemon(t, f)
	lab := netns.New(t, "mn", "sn", "cl")
	ctx := ctxT(t)
	dir := t.TempDir()
	mn := &labMember{name: "mn1", host: "mn", addr: addr("10.99.0.1"), dir: filepath.Join(dir, "mn1")}
	sn := &labMember{name: "sn1", host: "sn", addr: addr("10.99.0.2"), dir: filepath.Join(dir, "sn1")}
	for _, m := range []*labMember{mn, sn} {
		lab.IP(m.host, "addr", "add", m.addr.String()+"/24", "dev", "eth0")
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(m.leases(), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	dsn := "sqlite:" + filepath.Join(dir, "pool.db")
	s, err := pool.Open(ctx, dsn, pool.WithMigrate(), pool.WithSelf("mn1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.AddNetwork(ctx, pool.Network{Name: "lab", Prefix: netip.MustParsePrefix("10.99.0.0/24"), Gateways: addrs("10.99.0.254", "10.99.0.253"),
		DynamicStart: addr("10.99.0.200"), DynamicEnd: addr("10.99.0.220"), Domain: "lab"}, false))
	_, err = s.Init(ctx, pool.InitOptions{MN: pool.Member{Name: "mn1", Addresses: map[string]netip.Addr{"lab": mn.addr}}})
	must(err)
	must(s.AddMember(ctx, pool.Member{Name: "sn1", Services: service.All(), Addresses: map[string]netip.Addr{"lab": sn.addr}}, false))
	must(s.SetSite(ctx, map[string]string{dhcp.SiteDHCPInterfaces: "eth0"}))
	must(s.AddNodes(ctx, []pool.Node{
		{Name: "cn001", IP: addr("10.99.0.11"), MACs: []string{"02:00:00:00:01:01"}, ServiceNodes: []string{"sn1", "mn1"}},
		{Name: "cn002", IP: addr("10.99.0.12"), MACs: []string{"02:00:00:00:01:02"}, ServiceNodes: []string{"mn1", "sn1"}},
	}, pool.AddOptions{}))

	// makedhcp runs inside the member's namespace, so that its daemon
	// check sees the member's interfaces.
	makedhcp := func(m *labMember) string {
		t.Helper()
		args := []string{"--db", dsn, "--self", m.name, "--format", string(f), "--out", m.conf(), "-n", "-a",
			"--kea-socket", m.sock(), "--kea-lease-file", m.leases()}
		var out, errOut bytes.Buffer
		var code int
		must(lab.Do(m.host, func() error {
			code = cli.Makedhcp(ctx, args, cli.IO{In: strings.NewReader(""), Out: &out, Err: &errOut})
			return nil
		}))
		if code != 0 {
			t.Fatalf("makedhcp --self %s: exit %d\n%s%s", m.name, code, out.String(), errOut.String())
		}
		return out.String()
	}
	start := func(m *labMember) {
		t.Helper()
		if f == dhcp.FormatKea {
			env := []string{"KEA_PIDFILE_DIR=" + m.dir, "KEA_LOCKFILE_DIR=" + m.dir}
			m.proc = lab.Start(m.host, env, "kea-dhcp4", "-c", m.conf())
			must(m.proc.WaitFor(ctx, "DHCP4_STARTED"))
			return
		}
		m.proc = lab.Start(m.host, nil, "dhcpd", "-4", "-f", "-d", "-cf", m.conf(), "-lf", m.leases(), "-pf", filepath.Join(m.dir, "dhcpd.pid"), "eth0")
		must(m.proc.WaitFor(ctx, "Server starting service."))
	}
	for _, m := range []*labMember{mn, sn} {
		makedhcp(m)
		start(m)
	}

	// A known node: both members offer its reserved IP, each naming
	// itself as next-server and first DNS/NTP server (cn001's list is
	// sn1,mn1); the UEFI boot file goes to a UEFI client.
	checkKnown := func(phase string) {
		t.Helper()
		offers := collectOffers(t, lab, "02:00:00:00:01:01", iana.EFI_X86_64, 2, 5*time.Second)
		if len(offers) != 2 {
			t.Fatalf("%s: cn001 got %d offers, want one from each member: %v", phase, len(offers), summary(offers))
		}
		for _, o := range offers {
			sid := o.ServerIdentifier().String()
			other := map[string]string{"10.99.0.1": "10.99.0.2", "10.99.0.2": "10.99.0.1"}[sid]
			want := fmt.Sprintf("yiaddr=10.99.0.11 siaddr=%s file=xcat/xnba.efi routers=[10.99.0.254 10.99.0.253] dns=[%s %s] ntp=[%s %s]", sid, sid, other, sid, other)
			got := fmt.Sprintf("yiaddr=%s siaddr=%s file=%s routers=%v dns=%v ntp=%v", o.YourIPAddr, o.ServerIPAddr, o.BootFileName, o.Router(), o.DNS(), o.NTPServers())
			if got != want {
				t.Errorf("%s: offer from %s:\n got %s\nwant %s", phase, sid, got, want)
			}
		}
	}
	checkKnown("MN mn1")

	// The whole exchange for a BIOS client: the ACK carries the
	// reservation and the BIOS boot file.
	var c *nclient4.Client
	must(lab.Do("cl", func() error {
		var err error
		c, err = nclient4.New("eth0", nclient4.WithHWAddr(mac("02:00:00:00:01:02")), nclient4.WithTimeout(testenv.Timeout(3*time.Second)), nclient4.WithRetry(2))
		return err
	}))
	lease, err := c.Request(ctx, dhcpv4.WithBroadcast(true), dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC)))
	c.Close()
	must(err)
	if ack := lease.ACK; ack.YourIPAddr.String() != "10.99.0.12" || ack.BootFileName != "xcat/xnba.kpxe" || !ack.ServerIPAddr.Equal(ack.ServerIdentifier()) {
		t.Errorf("cn002 ACK: yiaddr=%s file=%q siaddr=%s from %s", ack.YourIPAddr, ack.BootFileName, ack.ServerIPAddr, ack.ServerIdentifier())
	}

	// An unknown MAC: only the MN offers, from the dynamic range.
	checkUnknown := func(phase, hw string, want netip.Addr) {
		t.Helper()
		offers := collectOffers(t, lab, hw, iana.INTEL_X86PC, 0, 4*time.Second)
		if len(offers) != 1 || offers[0].ServerIdentifier().String() != want.String() {
			t.Fatalf("%s: unknown MAC %s got offers %v, want exactly one from %s", phase, hw, summary(offers), want)
		}
		if ip, _ := netip.AddrFromSlice(offers[0].YourIPAddr.To4()); ip.Less(addr("10.99.0.200")) || addr("10.99.0.220").Less(ip) {
			t.Errorf("%s: dynamic offer %s is outside 10.99.0.200-10.99.0.220", phase, ip)
		}
	}
	checkUnknown("MN mn1", "02:00:00:00:09:01", mn.addr)

	// makemn: the MN role moves to sn1; both members render again.
	if _, err := s.Promote(context.Background(), "sn1", pool.PromoteOptions{Reason: "exchange test"}); err != nil {
		t.Fatalf("promote sn1: %v", err)
	}
	for _, m := range []*labMember{mn, sn} {
		out := makedhcp(m)
		if !strings.Contains(out, "written") {
			t.Errorf("makedhcp --self %s after the move: %s", m.name, out)
		}
		if f == dhcp.FormatKea {
			if !strings.Contains(out, "config-reload") {
				t.Errorf("Kea of %s was not reloaded: %s", m.name, out)
			}
			continue
		}
		m.proc.Stop() // dhcpd has no reload: restart it
		start(m)
	}
	checkUnknown("MN sn1", "02:00:00:00:09:02", sn.addr)
	// The client that got a dynamic lease from the old MN too.
	checkUnknown("MN sn1, old client", "02:00:00:00:09:01", sn.addr)
	checkKnown("MN sn1")
}

func mac(s string) net.HardwareAddr {
	hw, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return hw
}

// collectOffers broadcasts one DISCOVER for hw from the client namespace
// and returns every OFFER that arrives within window, or as soon as want
// (> 0) have arrived.
func collectOffers(t *testing.T, lab *netns.Lab, hw string, arch iana.Arch, want int, window time.Duration) []*dhcpv4.DHCPv4 {
	t.Helper()
	var c *nclient4.Client
	err := lab.Do("cl", func() error {
		var err error
		c, err = nclient4.New("eth0", nclient4.WithHWAddr(mac(hw)), nclient4.WithTimeout(window), nclient4.WithRetry(1))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	disc, err := dhcpv4.NewDiscovery(mac(hw), dhcpv4.WithBroadcast(true), dhcpv4.WithOption(dhcpv4.OptClientArch(arch)),
		dhcpv4.WithRequestedOptions(dhcpv4.OptionNTPServers, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer))
	if err != nil {
		t.Fatal(err)
	}
	var offers []*dhcpv4.DHCPv4
	_, err = c.SendAndRead(context.Background(), nclient4.DefaultServers, disc, func(m *dhcpv4.DHCPv4) bool {
		if m.MessageType() == dhcpv4.MessageTypeOffer {
			offers = append(offers, m)
		}
		return want > 0 && len(offers) >= want
	})
	if err != nil && !errors.Is(err, nclient4.ErrNoResponse) {
		t.Fatal(err)
	}
	return offers
}

func summary(offers []*dhcpv4.DHCPv4) []string {
	var out []string
	for _, o := range offers {
		out = append(out, fmt.Sprintf("%s from %s", o.YourIPAddr, o.ServerIdentifier()))
	}
	return out
}
