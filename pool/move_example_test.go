package pool_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
)

// ExampleOpen opens a pool in an SQLite file (a Galera cluster takes one
// mysql: DSN per node instead), creates its schema and names the first MN.
func ExampleOpen() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "mnpool-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	s, err := pool.Open(ctx, "sqlite:"+filepath.Join(dir, "pool.db"),
		pool.WithSelf("mn1"), pool.WithActor("admin"), pool.WithMigrate())
	if err != nil {
		fmt.Println("open:", err)
		return
	}
	defer s.Close()
	mgmt := netip.MustParseAddr("10.0.0.1")
	if err := s.AddNetwork(ctx, pool.Network{Name: "mgmt", Prefix: netip.MustParsePrefix("10.0.0.0/16")}, false); err != nil {
		fmt.Println("network:", err)
		return
	}
	m, err := s.Init(ctx, pool.InitOptions{MN: pool.Member{Name: "mn1", Addresses: map[string]netip.Addr{"mgmt": mgmt}}})
	if err != nil {
		fmt.Println("init:", err)
		return
	}
	fmt.Printf("%s backend, MN %s, epoch %d\n", s.Kind(), m.Member, m.Epoch)
	// Output: sqlite backend, MN mn1, epoch 1
}

// ExampleStore_Move moves the nodes of sn1 to the next member of each
// node's servicenode list, as `snmove -s sn1` does; a dry run first shows
// the plan. nodecfg.Reconfigure then points the moved nodes at their new
// servicenodes.
func ExampleStore_Move() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "mnpool-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	s, err := pool.Open(ctx, "sqlite:"+filepath.Join(dir, "pool.db"), pool.WithSelf("mn1"), pool.WithMigrate())
	if err != nil {
		fmt.Println("open:", err)
		return
	}
	defer s.Close()
	if err := examplePool(ctx, s); err != nil {
		fmt.Println("seed:", err)
		return
	}

	plan, err := s.Move(ctx, pool.MoveRequest{Source: "sn1", DryRun: true})
	if err != nil {
		fmt.Println("plan:", err)
		return
	}
	fmt.Println("would move:", plan.Names(pool.MovePlanned))
	res, err := s.Move(ctx, pool.MoveRequest{Source: "sn1"})
	if err != nil {
		fmt.Println("move:", err)
		return
	}
	for _, n := range res.Nodes {
		fmt.Printf("%s %s: %v -> %v\n", n.Node, n.Status, n.Old, n.New)
	}
	again, _ := s.Move(ctx, pool.MoveRequest{Source: "sn1"})
	fmt.Println("second run moves", again.Counts.Moved)
	// Output:
	// would move: [cn1 cn3]
	// cn1 moved: [sn1 sn2] -> [sn2 sn1]
	// cn3 moved: [sn1 mn1] -> [mn1 sn1]
	// second run moves 0
}

// examplePool: MN mn1, SNs sn1 and sn2, nodes cn1..cn3.
func examplePool(ctx context.Context, s *pool.Store) error {
	if err := s.AddNetwork(ctx, pool.Network{Name: "mgmt", Prefix: netip.MustParsePrefix("10.0.0.0/16")}, false); err != nil {
		return err
	}
	at := func(b byte) map[string]netip.Addr {
		return map[string]netip.Addr{"mgmt": netip.AddrFrom4([4]byte{10, 0, 0, b})}
	}
	if _, err := s.Init(ctx, pool.InitOptions{MN: pool.Member{Name: "mn1", Addresses: at(1), Services: service.All()}}); err != nil {
		return err
	}
	for i, sn := range []string{"sn1", "sn2"} {
		if err := s.AddMember(ctx, pool.Member{Name: sn, Addresses: at(byte(2 + i)), Services: service.All()}, false); err != nil {
			return err
		}
	}
	lists := [][]string{{"sn1", "sn2"}, {"sn2", "mn1"}, {"sn1", "mn1"}}
	var nodes []pool.Node
	for i, l := range lists {
		nodes = append(nodes, pool.Node{Name: fmt.Sprintf("cn%d", i+1), IP: netip.AddrFrom4([4]byte{10, 0, 1, byte(1 + i)}),
			MACs: []string{fmt.Sprintf("02:00:00:00:01:%02x", i+1)}, ServiceNodes: l})
	}
	return s.AddNodes(ctx, nodes, pool.AddOptions{})
}
