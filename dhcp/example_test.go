package dhcp_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/mnpool/mnpool/dhcp"
	"github.com/mnpool/mnpool/mnguard"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
)

// makedhcp -n -a, then makedhcp -d cn001, through the library, on the MN
// of a pool in a temporary SQLite database. The removal of cn001 is kept
// in the pool: makemn's sync and the agent leave it out too.
func ExampleMake() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "dhcp-example-")
	defer os.RemoveAll(dir)
	s, err := pool.Open(ctx, "sqlite:"+filepath.Join(dir, "pool.db"), pool.WithMigrate(), pool.WithSelf("mn1"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	a := netip.MustParseAddr
	_ = s.AddNetwork(ctx, pool.Network{Name: "mgmt", Prefix: netip.MustParsePrefix("10.0.0.0/16"), DynamicStart: a("10.0.255.1"), DynamicEnd: a("10.0.255.100")}, false)
	_, _ = s.Init(ctx, pool.InitOptions{MN: pool.Member{Name: "mn1", Addresses: map[string]netip.Addr{"mgmt": a("10.0.0.1")}}})
	_ = s.AddMember(ctx, pool.Member{Name: "sn1", Services: service.All(), Addresses: map[string]netip.Addr{"mgmt": a("10.0.0.2")}}, false)
	_ = s.AddNodes(ctx, []pool.Node{
		{Name: "cn001", IP: a("10.0.1.1"), MACs: []string{"00:1a:2b:3c:4d:01"}, ServiceNodes: []string{"mn1", "sn1"}},
		{Name: "cn002", IP: a("10.0.1.2"), MACs: []string{"00:1a:2b:3c:4d:02"}, ServiceNodes: []string{"mn1", "sn1"}},
	}, pool.AddOptions{})

	applier := dhcp.ApplierConfig{Format: dhcp.FormatISC, Path: filepath.Join(dir, "dhcpd.conf"), Check: dhcp.CheckNever}
	guard := []mnguard.Option{mnguard.WithHold(0)} // nobody served the range before
	rep, err := dhcp.Make(ctx, s, dhcp.MakeOptions{Self: "mn1", Applier: applier, New: true, All: true, Guard: guard})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("-n -a: %d host entries, written %v, dynamic range %v (%s)\n", rep.Config.Hosts, rep.Result.Changed, rep.Dynamic.Served, rep.Dynamic.Why)

	rep, err = dhcp.Make(ctx, s, dhcp.MakeOptions{Self: "mn1", Applier: applier, Delete: true, Noderange: "cn001", Guard: guard})
	if err != nil {
		fmt.Println(err)
		return
	}
	excluded, _ := dhcp.Excluded(ctx, s)
	fmt.Printf("-d cn001: %d host entries, removed %v, kept in the pool: %v\n", rep.Config.Hosts, rep.Removed, excluded["cn001"])
	// Output:
	// -n -a: 2 host entries, written true, dynamic range true (confirmed MN of epoch 1 (after the hold of 0s))
	// -d cn001: 1 host entries, removed [cn001], kept in the pool: true
}
