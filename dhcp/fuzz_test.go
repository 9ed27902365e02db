package dhcp_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mnpool/mnpool/dhcp"
	"github.com/mnpool/mnpool/internal/ctxutil"
	"github.com/mnpool/mnpool/internal/testenv"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
	"github.com/mnpool/mnpool/pool/siteschema"
)

// fuzzState builds a pool of one network, the MN mn1, the SN sn1 and two
// nodes from fuzzed values. Member and second-node addresses follow the
// fuzzed CIDR, so that many inputs render.
func fuzzState(name, macS, ipS, cidr, gws, dyn, domain, bios, uefi, arm, lease, disjoint string) *pool.State {
	pfx, _ := netip.ParsePrefix(cidr)
	base := pfx.Addr()
	at := func(n int) netip.Addr {
		a := base
		for range n {
			a = a.Next()
		}
		return a
	}
	var gw []netip.Addr
	for _, g := range strings.Split(gws, ",") {
		if g == "" {
			continue
		}
		a, _ := netip.ParseAddr(g)
		gw = append(gw, a)
	}
	var ds, de netip.Addr
	if a, b, ok := strings.Cut(dyn, "-"); ok {
		ds, _ = netip.ParseAddr(a)
		de, _ = netip.ParseAddr(b)
	}
	ip, _ := netip.ParseAddr(ipS)
	site := map[string]string{siteschema.Domain: domain, siteschema.DisjointDHCPs: disjoint,
		dhcp.SiteBootBIOS: bios, dhcp.SiteBootUEFI: uefi, dhcp.SiteBootARM64: arm, dhcp.SiteDHCPLease: lease}
	all := service.All()
	return &pool.State{
		Site:     site,
		Master:   pool.Master{Member: "mn1", Epoch: 1},
		Networks: []pool.Network{{Name: "net", Prefix: pfx, Gateways: gw, DynamicStart: ds, DynamicEnd: de, Domain: domain}},
		Members: []pool.Member{
			{Name: "mn1", Services: all, Addresses: map[string]netip.Addr{"net": at(1)}},
			{Name: "sn1", Services: all, Addresses: map[string]netip.Addr{"net": at(2)}},
		},
		Nodes: []pool.Node{
			{Name: name, Network: "net", IP: ip, MACs: []string{macS}, ServiceNodes: []string{"sn1", "mn1"}},
			{Name: "zz-fixed", Network: "net", IP: at(3), MACs: []string{"02:00:00:00:00:03"}, ServiceNodes: []string{"mn1"}},
		},
	}
}

// keaChecker is a running kea-dhcp4 (no interfaces) that checks
// configurations with its config-test command: the real daemon's parser,
// without the start-up cost of kea-dhcp4 -t per input.
func keaChecker(f *testing.F) string {
	f.Helper()
	if _, ok := (dhcp.Checker{}).Program(dhcp.FormatKea); !ok {
		return ""
	}
	dir, err := os.MkdirTemp("", "mnpool-kea-fuzz-")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "kea.sock")
	conf := filepath.Join(dir, "kea.json")
	cfg := `{"Dhcp4": {"interfaces-config": {"interfaces": []}, "control-socket": {"socket-type": "unix", "socket-name": "` + sock + `"},
  "lease-database": {"type": "memfile", "persist": false}}}`
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		f.Fatal(err)
	}
	cmd := exec.Command("kea-dhcp4", "-c", conf)
	cmd.Env = append(os.Environ(), "KEA_PIDFILE_DIR="+dir, "KEA_LOCKFILE_DIR="+dir)
	if err := cmd.Start(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Timeout(20*time.Second))
	defer cancel()
	for {
		if _, err := dhcp.KeaCommand(ctx, sock, "version-get", nil); err == nil {
			return sock
		}
		if ctxutil.Sleep(ctx, 20*time.Millisecond) != nil {
			f.Fatalf("kea-dhcp4 for the fuzz checks did not answer on %s", sock)
		}
	}
}

// FuzzRender feeds the renderer hostile values. It must never panic, and
// every configuration it does render must be read back by Parse and
// accepted by the real daemons (dhcpd -t; Kea's config-test).
func FuzzRender(f *testing.F) {
	f.Add("cn001", "00:1a:2b:3c:4d:01", "10.0.1.1", "10.0.0.0/16", "10.0.0.254,10.0.0.253", "10.0.255.1-10.0.255.9", "cluster", "x.kpxe", "x.efi", "a.efi", "3600", "0")
	f.Add("cn001", "00:1a:2b:3c:4d:01", "10.0.1.1", "10.0.0.0/16", "", "", "", "", "", "", "", "1")
	f.Add(`cn"001`, "00:1a:2b:3c:4d:01", "10.0.1.1", "10.0.0.0/16", "", "", "", "", "", "", "", "0")
	f.Add("cn001", "00:1a:2b:3c:4d:01;}", "10.0.1.1", "10.0.0.0/16", "", "", "", "", "", "", "", "0")
	f.Add("cn001", "00:1a:2b:3c:4d:01", "10.0.1.1", "10.0.0.0/16", "", "", "a\";\n}", "", "", "", "", "0")
	f.Add("cn001", "00:1a:2b:3c:4d:01", "10.0.1.1", "10.0.0.0/16", "", "", "", "x\"; }", "", "", "", "0")
	f.Add("cn001", "00:1a:2b:3c:4d:01", "10.0.1.1", "10.0.0.0/16", "", "", "", "", "", "", "-1", "0")
	f.Add("cn001", "00:1a:2b:3c:4d:01", "192.168.1.5", "192.168.1.0/24", "192.168.1.1", "192.168.1.200-192.168.1.100", "", "", "", "", "", "0")
	f.Add("cn001", "00:1a:2b:3c:4d:01", "10.0.0.3", "10.0.0.0/30", "", "", "", "", "", "", "", "0")
	f.Add("cn001", "00:1a:2b:3c:4d:01", "fd00::5", "fd00::/64", "", "", "", "", "", "", "", "0")
	f.Add("cn001", "00:1a:2b:3c:4d:01", "10.0.1.1", "0.0.0.0/0", "", "", "", "", "", "", "", "0")
	f.Add("c", "00:00:00:00:00:00", "10.255.255.254", "10.0.0.0/8", "10.255.255.253", "10.0.0.10-10.0.0.10", "a.b.c", "/", "-", "_", "60", "")

	chk := dhcp.Checker{}
	_, haveDHCPD := chk.Program(dhcp.FormatISC)
	keaSock := keaChecker(f)
	if (!haveDHCPD || keaSock == "") && (os.Getenv("CI") == "true" || os.Getenv("MNPOOL_REQUIRE_DAEMONS") == "1") {
		f.Fatal("dhcpd and kea-dhcp4 are needed for the daemon checks of the fuzz target")
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, name, macS, ipS, cidr, gws, dyn, domain, bios, uefi, arm, lease, disjoint string) {
		if _, err := dhcp.ParseInterfaces(domain, name); err != nil && !errors.Is(err, dhcp.ErrInvalid) {
			t.Errorf("ParseInterfaces error without ErrInvalid: %v", err)
		}
		st := fuzzState(name, macS, ipS, cidr, gws, dyn, domain, bios, uefi, arm, lease, disjoint)
		for _, format := range []dhcp.Format{dhcp.FormatISC, dhcp.FormatKea} {
			for _, member := range []string{"mn1", "sn1"} {
				cfg, err := dhcp.Render(st, member, dhcp.Options{Format: format, ServeDynamic: member == "mn1"})
				if err != nil {
					continue
				}
				in, err := dhcp.Parse(cfg.Data)
				if err != nil {
					t.Fatalf("%s/%s: rendered file not read back: %v\n%s", format, member, err, cfg.Data)
				}
				if len(in.Hosts) != cfg.Hosts {
					t.Fatalf("%s/%s: %d hosts rendered, %d read back", format, member, cfg.Hosts, len(in.Hosts))
				}
				ctx, cancel := context.WithTimeout(context.Background(), testenv.Timeout(time.Minute))
				switch {
				case format == dhcp.FormatISC && haveDHCPD:
					err = chk.Check(ctx, format, cfg.Data, dir)
				case format == dhcp.FormatKea && keaSock != "":
					err = keaConfigTest(ctx, keaSock, cfg.Data)
				}
				cancel()
				if err != nil {
					t.Fatalf("%s/%s: the daemon rejects a rendered file: %v\n%s", format, member, err, cfg.Data)
				}
			}
		}
	})
}

func keaConfigTest(ctx context.Context, sock string, data []byte) error {
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		return err
	}
	_, err := dhcp.KeaCommand(ctx, sock, "config-test", doc)
	return err
}
