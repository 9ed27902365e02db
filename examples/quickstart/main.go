// Command quickstart builds a demo pool in a temporary SQLite file — an MN,
// two SNs and 1,000 compute nodes — and prints its status, the way
// `mnpool status` would; then it shows an automatic failover. It needs no
// set-up:
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
	"strings"
	"time"

	"github.com/mnpool/mnpool/agent"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/liveness"
	"github.com/mnpool/mnpool/pool/service"
	"github.com/mnpool/mnpool/pool/siteschema"
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
		if err := s.AddMember(ctx, pool.Member{Name: sn, Addresses: addr(byte(2 + i)), Services: service.All()}, false); err != nil {
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
	return failoverDemo(ctx, dsn)
}

// ---------------------------------------------------------------------
// Failover demo: an agent (package agent, what mnpoold runs) on each
// member, site autofailover=1, then sn1's agent stops as if sn1 had
// crashed: the elected failover leader moves sn1's nodes to the next
// member of each node's list. Demo timing (heartbeat 200ms, dead after
// 2s); mnpoold derives its defaults from the Galera failure detection
// (docs/AGENT.md).

func failoverDemo(ctx context.Context, dsn string) error {
	admin, err := pool.Open(ctx, dsn, pool.WithSelf("mn1"), pool.WithActor("quickstart"))
	if err != nil {
		return err
	}
	defer admin.Close()
	if err := admin.SetSite(ctx, map[string]string{siteschema.AutoFailover: "1"}); err != nil {
		return err
	}
	timing := agent.Timing{HeartbeatInterval: 200 * time.Millisecond, SuspectAfter: time.Second, DeadAfter: 2 * time.Second}
	reports := make(chan *agent.FailoverReport, 3)
	onEvent := func(e agent.Event) {
		if e.Kind == agent.EventFailover {
			reports <- e.Failover
		}
	}
	stops := map[string]func(){}
	agents := map[string]*agent.Agent{}
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	for _, m := range []string{"mn1", "sn1", "sn2"} {
		s, err := pool.Open(ctx, dsn, pool.WithSelf(m), pool.WithActor("mnpoold"))
		if err != nil {
			return err
		}
		// The demo's nodes do not exist: the failover moves them in the
		// database and leaves them alone (no SSH to their addresses).
		a, err := agent.New(s, agent.WithTiming(timing), agent.WithEvents(onEvent),
			agent.WithNodeConfig(agent.NodeConfig{Disabled: true}))
		if err != nil {
			s.Close()
			return err
		}
		actx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = a.Run(actx); close(done) }()
		stops[m] = func() { cancel(); <-done; s.Close() }
		agents[m] = a
	}
	alive := func() bool {
		v := agents["mn1"].Liveness()
		return v.LiveState("sn1") == liveness.Alive && v.LiveState("sn2") == liveness.Alive && v.LiveState("mn1") == liveness.Alive
	}
	if err := poll(ctx, 30*time.Second, alive); err != nil {
		return fmt.Errorf("agents did not see each other alive: %w", err)
	}
	fmt.Printf("\nFailover demo: agents run on mn1, sn1, sn2; site autofailover=1; dead after %v without a heartbeat.\n", timing.DeadAfter)
	fmt.Println("Stopping sn1's agent, as if sn1 had crashed ...")
	start := time.Now()
	stops["sn1"]()
	delete(stops, "sn1")
	var rep *agent.FailoverReport
	select {
	case rep = <-reports:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("no failover within 30s")
	case <-ctx.Done():
		return ctx.Err()
	}
	var to []string
	for _, m := range []string{"mn1", "sn2"} {
		to = append(to, fmt.Sprintf("%d to %s", rep.Targets[m], m))
	}
	fmt.Printf("After %v: %s failed sn1 over (lease token %d): %d nodes moved (%s); audited as agent.failover.\n\n",
		time.Since(start).Round(100*time.Millisecond), rep.Leader, rep.Token, rep.Moved, strings.Join(to, ", "))
	st, err := admin.Status(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("%-8s %-8s %8s\n", "MEMBER", "LIVENESS", "PRIMARY")
	for _, m := range st.Members {
		fmt.Printf("%-8s %-8s %8d\n", m.Name, agents["mn1"].Liveness().LiveState(m.Name), m.Primary)
	}
	fmt.Println("\nsn1 stays empty when it returns, until an admin moves nodes back (snmove).")
	return nil
}

// poll waits until cond holds, checking every 50ms.
func poll(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}
