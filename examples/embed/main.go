// Command embed shows how a cluster-management product uses mnpool through
// its packages, never running the CLI:
//
//   - the administrator's operations as library calls, each returning a
//     report: makemn (makemn.RunUnlocked), snmove (pool.Store.Move, then
//     nodecfg.Reconfigure to point the moved nodes at their new
//     servicenodes) and makedhcp (dhcp.Make);
//   - the agent for its own member instead of mnpoold (heartbeat, MN
//     fail-safe, automatic failover when the site enables it): it renders
//     the product's own configuration for the nodes this member serves
//     whenever the pool changes, reacts to failovers, and mounts the
//     agent's /metrics and /healthz in the product's HTTP server.
//
// Without --db it builds a small demo pool in a temporary SQLite file, runs
// the three operations on it (the node reconfiguration through a fake
// pusher that prints what it would write, so no packet leaves the host),
// prints each report, runs the agent for --for (default 2s) and exits 0:
//
//	go run ./examples/embed
//
// Against an existing pool only the agent runs (with the default node
// reconfiguration: SSH with the pool key):
//
//	go run ./examples/embed --db 'mysql:...' --self sn1 --out /var/lib/product --http 127.0.0.1:8080
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mnpool/mnpool/agent"
	"github.com/mnpool/mnpool/internal/atomicfile"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
	"github.com/mnpool/mnpool/poolsync"
	"github.com/mnpool/mnpool/rolefiles"
)

func main() {
	db := flag.String("db", "", "pool database DSN (empty: a demo pool in a temporary SQLite file)")
	self := flag.String("self", "mn1", "the pool member this program runs on")
	out := flag.String("out", "", "directory of the product's files (default: a temporary directory)")
	httpAddr := flag.String("http", "127.0.0.1:0", "address of the product's HTTP server (the agent's /metrics and /healthz are mounted under /mnpool/)")
	runFor := flag.Duration("for", 0, "stop after this long (0: until SIGINT or SIGTERM; the demo pool defaults to 2s)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := run(ctx, log, *db, *self, *out, *httpAddr, *runFor); err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, dsn, self, out, httpAddr string, runFor time.Duration) error {
	if out == "" {
		dir, err := os.MkdirTemp("", "mnpool-embed-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		out = dir
	}
	var agentOpts []agent.Option
	if dsn == "" {
		var err error
		if dsn, err = demo(ctx, out); err != nil {
			return err
		}
		if runFor == 0 {
			runFor = 2 * time.Second
		}
		// The demo nodes' addresses are not real: the agent's failovers
		// would reconfigure them through the printing pusher too.
		agentOpts = append(agentOpts, agent.WithNodeConfig(agent.NodeConfig{Pusher: printPusher{w: os.Stdout}}))
	}
	if runFor > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, runFor)
		defer cancel()
	}

	// 1. Open the pool as this member and bring pool's schema up to date
	// (the agent, locking, dhcp and console make sure of their own tables
	// when they first use the store).
	s, err := pool.Open(ctx, dsn, pool.WithSelf(self), pool.WithActor("product"), pool.WithLogger(log))
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		return err
	}

	// 2. The product's own configuration, rendered on every pool change.
	nodesFile := filepath.Join(out, "served-nodes.txt")
	a, err := agent.New(s, append([]agent.Option{
		agent.WithLogger(log),
		agent.WithSteps(rolefiles.Step(out), productStep(nodesFile)),
		// 3. React to what the agent reports.
		agent.WithEvents(onEvent(log, self)),
	}, agentOpts...)...)
	if err != nil {
		return err
	}

	// 4. The agent's /metrics and /healthz inside the product's server.
	mux := http.NewServeMux()
	mux.Handle("/mnpool/", http.StripPrefix("/mnpool", a.Handler()))
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "the product's own pages") })
	ln, err := net.Listen("tcp", httpAddr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	log.Info("product: serving", "url", "http://"+ln.Addr().String()+"/mnpool/healthz", "files", out)

	// 5. Run until the context ends; Run returns its error then.
	err = a.Run(ctx)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		b, _ := os.ReadFile(nodesFile)
		fmt.Printf("%s", b)
		return nil
	}
	return err
}

// productStep is the product's own configuration, rendered on every pool
// change: here a file listing the nodes this member serves first. A step
// is idempotent and deterministic; it writes only when the bytes change.
func productStep(nodesFile string) poolsync.Step {
	return poolsync.StepFunc("product-nodes", func(ctx context.Context, in *poolsync.Input) (poolsync.Change, error) {
		var b strings.Builder
		fmt.Fprintf(&b, "# nodes served by %s (role %s, MN %s epoch %d)\n", in.Self, in.Role, in.State.Master.Member, in.State.Master.Epoch)
		n := 0
		for _, node := range in.State.Nodes {
			if len(node.ServiceNodes) > 0 && node.ServiceNodes[0] == in.Self {
				fmt.Fprintf(&b, "%s %s\n", node.Name, node.IP)
				n++
			}
		}
		changed, err := writeIfChanged(nodesFile, []byte(b.String()))
		return poolsync.Change{Changed: changed, Detail: fmt.Sprintf("%s: %d nodes", nodesFile, n)}, err
	})
}

// onEvent is how the product reacts to what the agent reports.
func onEvent(log *slog.Logger, self string) func(agent.Event) {
	return func(e agent.Event) {
		switch e.Kind {
		case agent.EventSynced:
			if len(e.Gained) > 0 {
				log.Info("product: this member now serves more nodes (a failover or a move)", "gained", len(e.Gained), "first", e.Gained[0])
			}
			if len(e.Lost) > 0 {
				log.Info("product: nodes moved away from this member", "lost", len(e.Lost))
			}
		case agent.EventFailover:
			log.Warn("product: this member failed a dead member over", "member", e.Member, "moved", e.Failover.Moved,
				"reconfigured", e.Failover.Reconfigured, "not_reconfigured", e.Failover.ReconfigFailed)
		case agent.EventLiveness:
			if e.Member != self && e.Prev != "" {
				log.Info("product: member liveness", "member", e.Member, "state", e.State, "was", e.Prev)
			}
		case agent.EventDynamic:
			log.Info("product: DHCP dynamic range on this member", "serve", e.ServeDynamic, "epoch", e.Epoch)
		}
	}
}

// demo creates the demo pool in out, runs the operations on it and
// returns its DSN.
func demo(ctx context.Context, out string) (string, error) {
	dsn := "sqlite:" + filepath.Join(out, "pool.db")
	if err := demoPool(ctx, dsn); err != nil {
		return "", fmt.Errorf("demo pool: %w", err)
	}
	return dsn, operations(ctx, os.Stdout, dsn, out)
}

// writeIfChanged writes data to path atomically (temporary file, fsync,
// rename) unless the file holds it already.
func writeIfChanged(path string, data []byte) (bool, error) {
	return atomicfile.Write(path, data, atomicfile.Options{SkipUnchanged: true})
}

// demoPool creates an MN, one SN and 20 nodes in dsn.
func demoPool(ctx context.Context, dsn string) error {
	s, err := pool.Open(ctx, dsn, pool.WithMigrate(), pool.WithSelf("mn1"), pool.WithActor("demo"))
	if err != nil {
		return err
	}
	defer s.Close()
	nw := pool.Network{Name: "mgmt", Prefix: netip.MustParsePrefix("10.0.0.0/16"), Domain: "cluster"}
	if err := s.AddNetwork(ctx, nw, false); err != nil {
		return err
	}
	addr := func(b byte) map[string]netip.Addr {
		return map[string]netip.Addr{"mgmt": netip.AddrFrom4([4]byte{10, 0, 0, b})}
	}
	if _, err := s.Init(ctx, pool.InitOptions{MN: pool.Member{Name: "mn1", Addresses: addr(1)}}); err != nil {
		return err
	}
	if err := s.AddMember(ctx, pool.Member{Name: "sn1", Addresses: addr(2), Services: service.All()}, false); err != nil {
		return err
	}
	nodes := make([]pool.Node, 20)
	for i := range nodes {
		first, second := "mn1", "sn1"
		if i%2 == 1 {
			first, second = second, first
		}
		nodes[i] = pool.Node{Name: fmt.Sprintf("cn%02d", i+1), IP: netip.AddrFrom4([4]byte{10, 0, 1, byte(i + 1)}),
			MACs: []string{fmt.Sprintf("02:00:00:00:01:%02x", i+1)}, ServiceNodes: []string{first, second}}
	}
	return s.AddNodes(ctx, nodes, pool.AddOptions{})
}
