package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mnpool/mnpool/console"
	"github.com/mnpool/mnpool/internal/atomicfile"
	"github.com/mnpool/mnpool/pool"
)

func newConsoleCmd(g *globals) *cobra.Command {
	var watch, force, raw, noReconnect bool
	var brokers []string
	open := func(cmd *cobra.Command, args []string) error {
		return g.consoleOpen(cmd.Context(), args[0], watch, force, raw, !noReconnect, brokers)
	}
	cmd := &cobra.Command{
		Use:   "console NODE | console SUBCOMMAND",
		Short: "Open a node's console through any member; configure consoles; run the console broker",
		Long: `A node's console is held by one member at a time: the first alive member of
its servicenode list (or of its console's --servers) that holds the node's
console lease. Every member runs the console broker (mnpool console serve);
"mnpool console NODE" connects to this member's broker, which opens the
console itself or proxies to the member holding it. Several users may watch
a console; one writes at a time (the others watch; --force takes over).
When the holding member dies, the next member takes the lease after the
lease TTL and reopens the console, and clients reconnect by themselves.

Leave with the conserver escape: Ctrl-E c . (^Ec.); ^Ec? lists the escapes.`,
		Example: `  mnpool console cn001
  mnpool console cn001 --watch
  mnpool console set cn001 --tcp ts1.cluster:7001
  mnpool console set cn001 --command -- ipmitool -I lanplus -H cn001-bmc -U admin -f /etc/mnpool/ipmi.pw sol activate
  mnpool console serve
  mnpool console conserver --member sn1 --file /etc/conserver.cf`,
		Args: cobra.ExactArgs(1),
		RunE: open,
	}
	addOpenFlags := func(c *cobra.Command) {
		c.Flags().BoolVar(&watch, "watch", false, "watch only (read-only)")
		c.Flags().BoolVar(&force, "force", false, "take write access from the user who has it")
		c.Flags().BoolVar(&raw, "raw", false, "no escape processing and no terminal changes, and take write access (for conserver's exec consoles); stdin's end leaves")
		c.Flags().BoolVar(&noReconnect, "no-reconnect", false, "leave when the connection ends instead of reconnecting")
		c.Flags().StringArrayVar(&brokers, "broker", nil, "broker HOST:PORT to use (repeatable; default: this member's, then the node's servers'; no database needed)")
	}
	addOpenFlags(cmd)
	openCmd := &cobra.Command{
		Use:   "open NODE",
		Short: "Open a node's console (the same as 'mnpool console NODE')",
		Args:  cobra.ExactArgs(1),
		RunE:  open,
	}
	addOpenFlags(openCmd)
	cmd.AddCommand(openCmd, newConsoleSetCmd(g), newConsoleListCmd(g), newConsoleRemoveCmd(g), newConsoleServeCmd(g), newConsoleConserverCmd(g))
	return cmd
}

// consoleOpen attaches the user's terminal to a node's console.
func (g *globals) consoleOpen(ctx context.Context, node string, watch, force, raw, reconnect bool, brokers []string) error {
	if err := pool.ValidateName("node", node); err != nil {
		return usageError{err}
	}
	for _, b := range brokers {
		if err := console.ValidateTCPAddress(b); err != nil {
			return usageError{fmt.Errorf("--broker: %w", err)}
		}
	}
	addrs := brokers
	if len(addrs) == 0 {
		var err error
		if addrs, err = g.consoleBrokers(ctx, node); err != nil {
			return err
		}
	}
	user := actor()
	if user == "" {
		user = "unknown"
	}
	// --raw is conserver's exec console: conserver arbitrates its own users,
	// so its connection takes write access rather than watching behind a
	// writer that has not been noticed gone yet.
	h := console.Hello{Node: node, Mode: console.ModeWrite, Force: force || raw, User: user + "@" + g.selfName()}
	if watch {
		h.Mode = console.ModeWatch
	}
	o := console.AttachOptions{Addrs: addrs, Hello: h, Out: g.io.Out, Notices: g.io.Err, Reconnect: reconnect}
	var err error
	if f, ok := g.io.In.(*os.File); ok && !raw {
		err = console.Interact(ctx, f, o)
	} else {
		o.In, o.Escape = g.io.In, !raw
		err = console.Attach(ctx, o)
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// consoleBrokers lists brokers to try for node: this member's, then the
// members allowed to serve the node, then the other members.
func (g *globals) consoleBrokers(ctx context.Context, node string) ([]string, error) {
	s, err := g.open(ctx)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	st, err := s.LoadState(ctx)
	if err != nil {
		return nil, err
	}
	nodes, err := st.Select(node)
	if err != nil {
		return nil, err
	}
	spec, err := console.SpecOf(ctx, s, node)
	if err != nil {
		return nil, err
	}
	order := []string{g.selfName()}
	order = append(order, console.Allowed(st, nodes[0], spec)...)
	for _, m := range st.Members {
		order = append(order, m.Name)
	}
	var addrs []string
	for _, m := range order {
		a, err := console.BrokerAddr(st, m)
		if err != nil || slices.Contains(addrs, a) {
			continue
		}
		addrs = append(addrs, a)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("no member has a broker address: give members an address (mnpool member set NAME --ip NET=IP) or use --broker HOST:PORT")
	}
	return addrs, nil
}

// consoleNodes opens the store and selects the nodes of a noderange
// (every node when args is empty). The caller closes the store.
func (g *globals) consoleNodes(ctx context.Context, args []string) (*pool.Store, *pool.State, []pool.Node, error) {
	s, err := g.open(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := s.LoadState(ctx)
	if err == nil {
		var nodes []pool.Node
		if nodes, err = selectNodes(st, args); err == nil {
			return s, st, nodes, nil
		}
	}
	s.Close()
	return nil, nil, nil, err
}

func newConsoleSetCmd(g *globals) *cobra.Command {
	var tcp, servers string
	var command bool
	cmd := &cobra.Command{
		Use:   "set NODERANGE (--tcp HOST:PORT | --command -- PROGRAM ARG...) [--servers M1,M2]",
		Short: "Set where nodes' consoles are: a terminal-server port or a command run under a pseudo-terminal",
		Long: `Sets the console of every node of NODERANGE. {node} in the address or in the
command is replaced by each node's name.

--tcp HOST:PORT     a terminal-server (or BMC raw serial) TCP port.
--command -- ARGV   a program and its arguments, run under a pseudo-terminal
                    by the member holding the console. No shell is involved:
                    each argument reaches the program as given. The program is
                    an absolute path or a name found in the standard PATH. Do
                    not put passwords in arguments (they show in ps and in
                    'console list'): use ipmitool's -f FILE or -E.
--servers M1,M2     members allowed to serve these consoles, in order,
                    instead of the nodes' servicenode lists.`,
		Example: `  mnpool console set cn001 --tcp ts1.cluster:7001
  mnpool console set cn[001-040] --tcp {node}-bmc:2001
  mnpool console set rack1 --command -- ipmitool -I lanplus -H {node}-bmc -U admin -f /etc/mnpool/ipmi.pw sol activate`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rangeArgs, argv := args, []string(nil)
			if dash := cmd.ArgsLenAtDash(); dash >= 0 {
				rangeArgs, argv = args[:dash], args[dash:]
			}
			if len(rangeArgs) == 0 {
				return usagef("give a NODERANGE before --")
			}
			tmpl := console.Spec{}
			if command && len(argv) == 0 {
				return usagef("--command: put the program and its arguments after --, such as --command -- ipmitool -I lanplus ... sol activate")
			}
			switch {
			case tcp != "" && len(argv) > 0:
				return usagef("give either --tcp HOST:PORT or --command -- ARGV, not both")
			case tcp != "":
				tmpl.Kind, tmpl.Address = console.KindTCP, tcp
			case len(argv) > 0:
				tmpl.Kind, tmpl.Argv = console.KindCommand, argv
			default:
				return usagef("give --tcp HOST:PORT or --command -- PROGRAM ARG...")
			}
			if servers != "" {
				tmpl.Servers = strings.Split(servers, ",")
			}
			s, _, nodes, err := g.consoleNodes(cmd.Context(), rangeArgs)
			if err != nil {
				return err
			}
			defer s.Close()
			specs := make([]console.Spec, len(nodes))
			for i, n := range nodes {
				specs[i] = tmpl.Expand(n.Name)
			}
			if err := console.SetSpecs(cmd.Context(), s, specs); err != nil {
				return err
			}
			fmt.Fprintf(g.io.Out, "console set for %d node(s)\n", len(specs))
			return nil
		},
	}
	cmd.Flags().StringVar(&tcp, "tcp", "", "console at this terminal-server HOST:PORT")
	cmd.Flags().BoolVar(&command, "command", false, "console is the command after --")
	cmd.Flags().StringVar(&servers, "servers", "", "members allowed to serve, in order (default: the servicenode list)")
	return cmd
}

// consoleRow is a line of `console list`.
type consoleRow struct {
	console.Spec
	Allowed []string `json:"allowed"`
	Holder  string   `json:"holder,omitempty"`
	Token   int64    `json:"token,omitempty"`
	Server  string   `json:"server_now,omitempty"`
}

func newConsoleListCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list [NODERANGE]",
		Short: "List consoles: endpoint, members allowed to serve, lease holder",
		RunE: func(cmd *cobra.Command, args []string) error {
			s, st, nodes, err := g.consoleNodes(cmd.Context(), args)
			if err != nil {
				return err
			}
			defer s.Close()
			specs, err := console.Specs(cmd.Context(), s)
			if err != nil {
				return err
			}
			holders, err := console.LeaseHolders(cmd.Context(), s, nil)
			if err != nil {
				return err
			}
			byNode := map[string]console.Spec{}
			for _, sp := range specs {
				byNode[sp.Node] = sp
			}
			live := pool.StaticLiveness(nil)
			rows := []consoleRow{}
			for _, n := range nodes {
				sp, ok := byNode[n.Name]
				if !ok {
					continue
				}
				allowed := console.Allowed(st, n, sp)
				h := holders[n.Name]
				rows = append(rows, consoleRow{Spec: sp, Allowed: allowed, Holder: h.Member, Token: h.Token, Server: console.ServerNow(allowed, h, live)})
			}
			if g.json {
				return printJSON(g.io.Out, rows)
			}
			t := newTable(g.io.Out, "node", "endpoint", "servers", "holder", "token")
			for _, r := range rows {
				tok := ""
				if r.Holder != "" {
					tok = strconv.FormatInt(r.Token, 10)
				}
				t.row(r.Node, r.Endpoint(), strings.Join(r.Allowed, ","), r.Holder, tok)
			}
			return t.flush()
		},
	}
	g.addJSON(cmd)
	return cmd
}

func newConsoleRemoveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "remove NODERANGE",
		Short: "Remove nodes' console configuration",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, _, nodes, err := g.consoleNodes(cmd.Context(), args)
			if err != nil {
				return err
			}
			defer s.Close()
			names := make([]string, len(nodes))
			for i, n := range nodes {
				names[i] = n.Name
			}
			if err := console.RemoveSpecs(cmd.Context(), s, names); err != nil {
				return err
			}
			fmt.Fprintf(g.io.Out, "console removed for %d node(s)\n", len(names))
			return nil
		},
	}
}

func newConsoleServeCmd(g *globals) *cobra.Command {
	var listen, liveness string
	var ttl, idle time.Duration
	cmd := &cobra.Command{
		Use:   "serve [--listen ADDR]",
		Short: "Run this member's console broker until interrupted",
		Long: `Runs the console broker of this member (--self). It listens on --listen
(default: all addresses, port site.consoleport, default 3016), opens the
consoles this member holds the lease of and proxies to the other members.
Peers must be loopback or pool members' addresses. On SIGINT/SIGTERM it
closes its consoles and releases their leases, so other members take over
at once; if it dies instead, they take over after the lease TTL.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, err := g.open(ctx)
			if err != nil {
				return err
			}
			defer s.Close()
			self := g.selfName()
			if _, err := s.Member(ctx, self); err != nil {
				return fmt.Errorf("%s is not a pool member (give --self NAME): %w", self, err)
			}
			if listen == "" {
				site, err := s.Site(ctx)
				if err != nil {
					return err
				}
				port, err := console.BrokerPort(site)
				if err != nil {
					return err
				}
				listen = ":" + strconv.Itoa(port)
			}
			var live pool.LivenessView = pool.StaticLiveness(nil)
			switch liveness {
			case "published":
				pl := &pool.PublishedLiveness{}
				go pl.Follow(ctx, s, pool.DefaultHeartbeatInterval*2, g.logger())
				live = pl
			case "none":
			default:
				return usagef("--liveness %q: want published or none", liveness)
			}
			b, err := console.NewBroker(s, self, console.WithLogger(g.logger()), console.WithLeaseTTL(ttl), console.WithIdleClose(idle), console.WithLiveness(live))
			if err != nil {
				return err
			}
			var lc net.ListenConfig
			ln, err := lc.Listen(ctx, "tcp", listen)
			if err != nil {
				return fmt.Errorf("listening on %s: %w", listen, err)
			}
			fmt.Fprintf(g.io.Out, "console broker of %s listening on %s\n", self, ln.Addr())
			err = b.Serve(ctx, ln)
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", "HOST:PORT to listen on (default :site.consoleport)")
	cmd.Flags().StringVar(&liveness, "liveness", "published", "members' liveness: published (the agents' heartbeat judgements; members nobody judged are usable) or none (every member usable; dead holders are found by their leases)")
	cmd.Flags().DurationVar(&ttl, "lease-ttl", console.DefaultLeaseTTL, "console lease TTL (keep it well above Galera's failure detection)")
	cmd.Flags().DurationVar(&idle, "idle-close", console.DefaultIdleClose, "close a console nobody watches after this long (negative: never)")
	return cmd
}

func newConsoleConserverCmd(g *globals) *cobra.Command {
	var o console.ConserverOptions
	var file string
	cmd := &cobra.Command{
		Use:   "conserver --member NAME [--file PATH]",
		Short: "Render conserver.cf for a member: the consoles it serves now, attached through its broker",
		Long: `Renders conserver.cf listing the nodes whose console --member serves now
(the lease holder, or the first alive member allowed to serve it). Each
console runs 'mnpool console --raw --broker ADDR NODE', so conserver goes
through the member's broker and a node's console keeps one connection in the
pool. Render again (and reload conserver) when consoles move; with --file the
file is replaced atomically only when it changed (previous kept as .bak).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Member == "" {
				return usagef("give --member NAME")
			}
			ctx := cmd.Context()
			s, err := g.open(ctx)
			if err != nil {
				return err
			}
			defer s.Close()
			st, err := s.LoadState(ctx)
			if err != nil {
				return err
			}
			specs, err := console.Specs(ctx, s)
			if err != nil {
				return err
			}
			holders, err := console.LeaseHolders(ctx, s, nil)
			if err != nil {
				return err
			}
			out, err := console.RenderConserver(st, specs, holders, pool.StaticLiveness(nil), o)
			if err != nil {
				return err
			}
			if file == "" {
				_, err = g.io.Out.Write(out)
				return err
			}
			changed, err := atomicfile.Write(file, out, atomicfile.Options{Mode: 0o644, Backup: ".bak", SkipUnchanged: true})
			if err != nil {
				return err
			}
			if changed {
				fmt.Fprintf(g.io.Out, "%s updated; reload conserver\n", file)
			} else {
				fmt.Fprintf(g.io.Out, "%s already up to date\n", file)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&o.Member, "member", "", "the member to render for")
	cmd.Flags().StringVar(&file, "file", "", "update this file instead of printing")
	cmd.Flags().StringVar(&o.Program, "program", console.DefaultProgram, "path of mnpool that conserver runs")
	cmd.Flags().StringVar(&o.Broker, "broker", "", "the member's broker HOST:PORT (default: its address and site.consoleport)")
	cmd.Flags().StringVar(&o.LogDir, "log-dir", console.DefaultLogDir, "conserver log directory")
	cmd.Flags().BoolVar(&o.OnDemand, "ondemand", false, "open consoles only while someone is attached")
	return cmd
}
