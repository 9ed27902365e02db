package cli

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
)

// benchPool fills dsn with n nodes on one /14 network served by mn1 and
// sn1..sn4 (two-member servicenode lists, round robin).
func benchPool(b *testing.B, dsn string, n int) {
	b.Helper()
	ctx := context.Background()
	s, err := pool.Open(ctx, dsn, pool.WithMigrate(), pool.WithSelf("mn1"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	a := netip.MustParseAddr
	if err := s.AddNetwork(ctx, pool.Network{Name: "mgmt", Prefix: netip.MustParsePrefix("10.0.0.0/14"), Gateways: []netip.Addr{a("10.0.0.254")},
		DynamicStart: a("10.3.255.1"), DynamicEnd: a("10.3.255.254")}, false); err != nil {
		b.Fatal(err)
	}
	members := []string{"mn1", "sn1", "sn2", "sn3", "sn4"}
	if _, err := s.Init(ctx, pool.InitOptions{MN: pool.Member{Name: "mn1", Addresses: map[string]netip.Addr{"mgmt": a("10.0.0.1")}}}); err != nil {
		b.Fatal(err)
	}
	for i, m := range members[1:] {
		if err := s.AddMember(ctx, pool.Member{Name: m, Services: service.All(), Addresses: map[string]netip.Addr{"mgmt": netip.AddrFrom4([4]byte{10, 0, 0, byte(2 + i)})}}, false); err != nil {
			b.Fatal(err)
		}
	}
	nodes := make([]pool.Node, n)
	for i := range nodes {
		ip := uint32(10<<24|1<<8) + uint32(i)
		nodes[i] = pool.Node{Name: fmt.Sprintf("cn%06d", i+1), IP: netip.AddrFrom4([4]byte{byte(ip >> 24), byte(ip >> 16), byte(ip >> 8), byte(ip)}),
			MACs:         []string{fmt.Sprintf("02:00:%02x:%02x:%02x:%02x", byte(i>>24), byte(i>>16), byte(i>>8), byte(i))},
			ServiceNodes: []string{members[i%5], members[(i+1)%5]}}
	}
	if err := s.AddNodes(ctx, nodes, pool.AddOptions{}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkMakedhcp is `makedhcp -n -a` end to end for an SN: open the
// store, load the pool, render, check with the daemon when it is
// installed, write. The file is removed before each run, so every run
// writes it.
func BenchmarkMakedhcp(b *testing.B) {
	for name, dsnFn := range dhcpBackends() {
		for _, format := range []string{"isc", "kea"} {
			for _, n := range []int{5000, 100000} {
				for _, check := range []string{"check", "nocheck"} {
					b.Run(fmt.Sprintf("%s/%s/nodes=%d/%s", name, format, n, check), func(b *testing.B) {
						dsn := dsnFn(b)
						benchPool(b, dsn, n)
						out := filepath.Join(b.TempDir(), "dhcp.conf")
						sock := filepath.Join(b.TempDir(), "none.sock")
						for b.Loop() {
							os.Remove(out)
							os.Remove(out + ".bak")
							args := []string{"--db", dsn, "--self", "sn1", "--dhcp-format", format, "--dhcp-config", out, "-n", "-a", "--kea-socket", sock}
							if check == "nocheck" {
								args = append(args, "--no-dhcp-check")
							}
							r := makedhcp(b, args...)
							if r.code != 0 || !strings.Contains(r.out, fmt.Sprintf("%d nodes", n)) {
								b.Fatalf("makedhcp: %+v", r)
							}
						}
						b.ReportMetric(benchMaxRSSMB(), "maxRSS-MB")
					})
				}
			}
		}
	}
}

func benchMaxRSSMB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
