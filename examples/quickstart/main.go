// Command quickstart builds a demo pool in a temporary SQLite file — an MN,
// two SNs and 1,000 compute nodes — and prints its status, the way
// `mnpool status` would. It needs no set-up:
//
//	go run ./examples/quickstart
//
// Pass -keep to leave the database behind and explore it with
// `mnpool --db sqlite:PATH ...`.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/mnpool/mnpool/pool"
)

func main() {
	keep := flag.Bool("keep", false, "keep the demo database and print its path")
	nodes := flag.Int("nodes", 1000, "number of compute nodes")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *nodes, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, n int, keep bool) error {
	dir, err := os.MkdirTemp("", "mnpool-quickstart-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	dsn := "sqlite:" + filepath.Join(dir, "pool.db")
	s, err := pool.Open(ctx, dsn, pool.WithMigrate(), pool.WithSelf("mn1"), pool.WithActor("quickstart"))
	if err != nil {
		return err
	}
	defer s.Close()

	start := time.Now()
	// The management network: 10.0.0.0/16, two gateways for an HA way out,
	// a dynamic range that only the MN hands out.
	mgmt := pool.Network{
		Name: "mgmt", Prefix: netip.MustParsePrefix("10.0.0.0/16"), Domain: "cluster",
		Gateways:     []netip.Addr{netip.MustParseAddr("10.0.0.254"), netip.MustParseAddr("10.0.0.253")},
		DynamicStart: netip.MustParseAddr("10.0.255.1"), DynamicEnd: netip.MustParseAddr("10.0.255.200"),
	}
	if err := s.AddNetwork(ctx, mgmt, false); err != nil {
		return err
	}
	addr := func(last byte) map[string]netip.Addr {
		return map[string]netip.Addr{"mgmt": netip.AddrFrom4([4]byte{10, 0, 0, last})}
	}
	if _, err := s.Init(ctx, pool.InitOptions{MN: pool.Member{Name: "mn1", Addresses: addr(1)}}); err != nil {
		return err
	}
	for i, sn := range []string{"sn1", "sn2"} {
		if err := s.AddMember(ctx, pool.Member{Name: sn, Addresses: addr(byte(2 + i)), Services: pool.AllServices()}, false); err != nil {
			return err
		}
	}
	batch := make([]pool.Node, n)
	for i := range batch {
		batch[i] = pool.Node{
			Name:   fmt.Sprintf("cn%04d", i+1),
			Groups: []string{"compute", fmt.Sprintf("rack%02d", i/40+1)},
			MACs:   []string{fmt.Sprintf("02:00:00:00:%02x:%02x", byte(i>>8), byte(i))},
			IP:     netip.AddrFrom4([4]byte{10, 0, byte(1 + i/250), byte(1 + i%250)}),
		}
	}
	if err := s.AddNodes(ctx, batch, pool.AddOptions{}); err != nil {
		return err
	}
	// Give every node an ordered servicenode list of two members, the
	// first entries spread evenly over the MN and the SNs.
	if _, err := s.Assign(ctx, pool.AssignOptions{Width: 2}); err != nil {
		return err
	}
	built := time.Since(start)

	st, err := s.Status(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("Demo pool built in %v (%s)\n\n", built.Round(time.Millisecond), dsn)
	fmt.Printf("MN:       %s (epoch %d)\n", st.Master.Member, st.Master.Epoch)
	fmt.Printf("Database: %s via %s\n", st.DB.Backend, st.DB.Node)
	fmt.Printf("Nodes:    %d on %d network(s)\n\n", st.Nodes, st.Networks)
	fmt.Printf("%-8s %-4s %8s %8s  %s\n", "MEMBER", "ROLE", "PRIMARY", "LISTED", "ADDRESS")
	for _, m := range st.Members {
		role := "SN"
		if m.IsMN {
			role = "MN"
		}
		fmt.Printf("%-8s %-4s %8d %8d  %s\n", m.Name, role, m.Primary, m.Listed, m.Addresses["mgmt"])
	}
	if keep {
		fmt.Printf("\nExplore it: go run ./cmd/mnpool --db %s status\n", dsn)
	}
	return nil
}
