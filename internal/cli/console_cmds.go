package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mnpool/mnpool/atomicfile"
	"github.com/mnpool/mnpool/console"
	"github.com/mnpool/mnpool/pki"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/liveness"
)

func newConsoleCmd(g *globals) *cobra.Command {
	var o consoleOpenFlags
	open := func(cmd *cobra.Command, args []string) error {
		return g.consoleOpen(cmd.Context(), args[0], o)
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

Who you are: on a member, root (or a member of the broker's
--socket-group) connects through the broker's local socket (--socket,
default /run/mnpool/console.sock). From elsewhere, connect to a broker
(--broker HOST:PORT, TLS 1.3) with a user certificate from
'mnpool certs issue --user NAME' (--cert/--key, default
~/.mnpool/console.crt and .key). What you may do (watch, write, force) is
set by site.consoleacl; see docs/SECURITY.md.

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
		c.Flags().BoolVar(&o.watch, "watch", false, "watch only (read-only)")
		c.Flags().BoolVar(&o.force, "force", false, "take write access from the user who has it")
		c.Flags().BoolVar(&o.raw, "raw", false, "no escape processing and no terminal changes, and take write access (for conserver's exec consoles); stdin's end leaves")
		c.Flags().BoolVar(&o.noReconnect, "no-reconnect", false, "leave when the connection ends instead of reconnecting")
		c.Flags().StringArrayVar(&o.brokers, "broker", nil, "broker HOST:PORT to use, over TLS with --cert (repeatable; default: the local socket, then this member's broker, then the node's servers'; no database needed)")
		c.Flags().StringVar(&o.socket, "socket", "", "the local broker's Unix socket (default "+console.DefaultSocket+" when it exists)")
		c.Flags().StringVar(&o.cert, "cert", "", "your user certificate for TCP brokers (default ~/.mnpool/console.crt)")
		c.Flags().StringVar(&o.key, "key", "", "its private key (default: --cert with .key)")
		c.Flags().StringVar(&o.ca, "ca", "", "the pool CA bundle (default "+pki.DefaultDir+"/ca.crt)")
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

// consoleOpenFlags are the flags of `mnpool console NODE`.
type consoleOpenFlags struct {
	watch, force, raw, noReconnect bool
	brokers                        []string
	socket, cert, key, ca          string
}

// consoleOpen attaches the user's terminal to a node's console.
func (g *globals) consoleOpen(ctx context.Context, node string, f consoleOpenFlags) error {
	if err := pool.ValidateName("node", node); err != nil {
		return usageError{err}
	}
	for _, b := range f.brokers {
		if err := console.ValidateTCPAddress(b); err != nil {
			return usageError{fmt.Errorf("--broker: %w", err)}
		}
	}
	if f.socket != "" && !filepath.IsAbs(f.socket) {
		return usagef("--socket %q: want an absolute path", f.socket)
	}
	addrs, err := g.consoleAddrs(ctx, node, f)
	if err != nil {
		return err
	}
	tlsCfg, err := userTLSConfig(f, addrs)
	if err != nil {
		return err
	}
	// --raw is conserver's exec console: conserver arbitrates its own users,
	// so its connection takes write access rather than watching behind a
	// writer that has not been noticed gone yet. The broker names the user
	// by how the connection authenticated, so the hello names nobody.
	h := console.Hello{Node: node, Mode: console.ModeWrite, Force: f.force || f.raw}
	if f.watch {
		h.Mode = console.ModeWatch
	}
	o := console.AttachOptions{Addrs: addrs, Hello: h, Out: g.io.Out, Notices: g.io.Err, Reconnect: !f.noReconnect, Dial: console.ClientDialer(tlsCfg)}
	if in, ok := g.io.In.(*os.File); ok && !f.raw {
		err = console.Interact(ctx, in, o)
	} else {
		o.In, o.Escape = g.io.In, !f.raw
		err = console.Attach(ctx, o)
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// consoleAddrs is where `console NODE` connects: --socket, or the --broker
// addresses, or the local socket when it exists and then the brokers the
// database names.
func (g *globals) consoleAddrs(ctx context.Context, node string, f consoleOpenFlags) ([]string, error) {
	var addrs []string
	if f.socket != "" {
		addrs = append(addrs, f.socket)
	}
	addrs = append(addrs, f.brokers...)
	if len(addrs) > 0 {
		return addrs, nil
	}
	if fi, err := os.Stat(console.DefaultSocket); err == nil && fi.Mode()&os.ModeSocket != 0 {
		addrs = append(addrs, console.DefaultSocket)
	}
	more, err := g.consoleBrokers(ctx, node)
	if err != nil && len(addrs) == 0 {
		return nil, err
	}
	return append(addrs, more...), nil
}

// userTLSConfig loads the user's certificate when a TCP broker is among
// addrs (nil when only sockets are used).
func userTLSConfig(f consoleOpenFlags, addrs []string) (*tls.Config, error) {
	tcp := slices.ContainsFunc(addrs, func(a string) bool { return !strings.HasPrefix(a, "/") })
	if !tcp {
		return nil, nil
	}
	cert, key, ca := f.cert, f.key, f.ca
	if cert == "" {
		home, _ := os.UserHomeDir()
		cert = filepath.Join(home, ".mnpool", "console.crt")
	}
	if key == "" {
		key = strings.TrimSuffix(cert, ".crt") + ".key"
	}
	if ca == "" {
		ca = pki.Dir(pki.DefaultDir).CACert()
	}
	creds, err := pki.LoadCredentials(cert, key, ca)
	if err != nil {
		if f.cert == "" && len(f.brokers) == 0 && slices.ContainsFunc(addrs, func(a string) bool { return strings.HasPrefix(a, "/") }) {
			return nil, nil // the local socket alone, then
		}
		return nil, fmt.Errorf("a TCP broker needs your user certificate (mnpool certs issue --user NAME, then --cert/--key): %w", err)
	}
	return creds.ClientConfig(""), nil
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

const consoleSetLong = `Sets the console of every node of NODERANGE. {node} in the address or in the
command is replaced by each node's name.

--tcp HOST:PORT     a terminal-server (or BMC raw serial) TCP port.
--command -- ARGV   a program and its arguments, run under a pseudo-terminal
                    by the member holding the console. No shell is involved:
                    each argument reaches the program as given. The program is
                    an absolute path or a name found in the standard PATH. Do
                    not put passwords in arguments (they show in ps and in
                    'console list'): use ipmitool's -f FILE or -E.
--servers M1,M2     members allowed to serve these consoles, in order,
                    instead of the nodes' servicenode lists.`

const consoleSetExample = `  mnpool console set cn001 --tcp ts1.cluster:7001
  mnpool console set cn[001-040] --tcp {node}-bmc:2001
  mnpool console set rack1 --command -- ipmitool -I lanplus -H {node}-bmc -U admin -f /etc/mnpool/ipmi.pw sol activate`

// consoleSetFlags are the flags of console set.
type consoleSetFlags struct {
	tcp, servers string
	command      bool
}

func newConsoleSetCmd(g *globals) *cobra.Command {
	var f consoleSetFlags
	cmd := &cobra.Command{
		Use:     "set NODERANGE (--tcp HOST:PORT | --command -- PROGRAM ARG...) [--servers M1,M2]",
		Short:   "Set where nodes' consoles are: a terminal-server port or a command run under a pseudo-terminal",
		Long:    consoleSetLong,
		Example: consoleSetExample,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rangeArgs, argv := args, []string(nil)
			if dash := cmd.ArgsLenAtDash(); dash >= 0 {
				rangeArgs, argv = args[:dash], args[dash:]
			}
			if len(rangeArgs) == 0 {
				return usagef("give a NODERANGE before --")
			}
			tmpl, err := f.template(argv)
			if err != nil {
				return err
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
	cmd.Flags().StringVar(&f.tcp, "tcp", "", "console at this terminal-server HOST:PORT")
	cmd.Flags().BoolVar(&f.command, "command", false, "console is the command after --")
	cmd.Flags().StringVar(&f.servers, "servers", "", "members allowed to serve, in order (default: the servicenode list)")
	return cmd
}

// template is the console the flags of console set and the command after
// -- (argv) describe, with {node} not yet replaced.
func (f *consoleSetFlags) template(argv []string) (console.Spec, error) {
	tmpl := console.Spec{}
	if f.command && len(argv) == 0 {
		return tmpl, usagef("--command: put the program and its arguments after --, such as --command -- ipmitool -I lanplus ... sol activate")
	}
	switch {
	case f.tcp != "" && len(argv) > 0:
		return tmpl, usagef("give either --tcp HOST:PORT or --command -- ARGV, not both")
	case f.tcp != "":
		tmpl.Kind, tmpl.Address = console.KindTCP, f.tcp
	case len(argv) > 0:
		tmpl.Kind, tmpl.Argv = console.KindCommand, argv
	default:
		return tmpl, usagef("give --tcp HOST:PORT or --command -- PROGRAM ARG...")
	}
	if f.servers != "" {
		tmpl.Servers = strings.Split(f.servers, ",")
	}
	return tmpl, nil
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
			live := liveness.Static(nil)
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

// consoleSecFlags are where a broker finds its certificate and which
// local socket it serves (console serve, mnpoold --console).
type consoleSecFlags struct {
	pkiDir, socket, socketGroup string
}

func (f *consoleSecFlags) add(fl *pflag.FlagSet, prefix string) {
	fl.StringVar(&f.pkiDir, prefix+"pki-dir", pki.DefaultDir, "directory of the pool CA bundle (ca.crt) and this member's certificate (member.crt, member.key)")
	fl.StringVar(&f.socket, prefix+"socket", console.DefaultSocket, "Unix socket for local administrators (root, or --"+prefix+"socket-group); 'none' for no socket")
	fl.StringVar(&f.socketGroup, prefix+"socket-group", "", "group whose members may use the Unix socket besides root")
}

// brokerSetup loads self's member credentials and opens the Unix socket:
// the broker's options and the extra listeners (the caller closes them
// if it does not Serve).
func (f consoleSecFlags) brokerSetup(self string, log *slog.Logger) ([]console.Option, []net.Listener, error) {
	src, err := pki.WatchMember(pki.Dir(f.pkiDir), self, log)
	if err != nil {
		return nil, nil, fmt.Errorf("console broker: %w (on a member holding the CA: mnpool certs issue --member %s)", err, self)
	}
	opts := []console.Option{console.WithCredentialSource(src)}
	gid := -1
	if f.socketGroup != "" {
		if gid, err = console.LookupGroup(f.socketGroup); err != nil {
			return nil, nil, usageError{err}
		}
		opts = append(opts, console.WithSocketGroup(gid))
	}
	if f.socket == "none" || f.socket == "" {
		return opts, nil, nil
	}
	uln, err := console.ListenUnix(f.socket, gid)
	if err != nil {
		return nil, nil, err
	}
	return opts, []net.Listener{uln}, nil
}

// serveBroker runs self's broker on TCP listen (TLS) and the Unix socket
// until ctx ends, naming its addresses on out (when not nil).
func (f consoleSecFlags) serveBroker(ctx context.Context, s *pool.Store, self, listen string, out io.Writer, log *slog.Logger, opts ...console.Option) error {
	secOpts, lns, err := f.brokerSetup(self, log)
	if err != nil {
		return err
	}
	b, err := console.NewBroker(s, self, append(append(secOpts, console.WithLogger(log)), opts...)...)
	if err == nil {
		var lc net.ListenConfig
		var ln net.Listener
		if ln, err = lc.Listen(ctx, "tcp", listen); err != nil {
			err = fmt.Errorf("console broker: listening on %s: %w", listen, err)
		} else {
			lns = append([]net.Listener{ln}, lns...)
		}
	}
	if err != nil {
		for _, l := range lns {
			l.Close()
		}
		return err
	}
	for _, l := range lns {
		if out != nil {
			fmt.Fprintf(out, "console broker of %s listening on %s\n", self, l.Addr())
		}
	}
	return b.Serve(ctx, lns...)
}

const consoleServeLong = `Runs the console broker of this member (--self). It listens on --listen
(default: all addresses, port site.consoleport, default 3016), opens the
consoles this member holds the lease of and proxies to the other members.
TCP connections are TLS 1.3 with a client certificate of the pool CA
required: a user certificate, or the certificate of an enabled member
running the console service. Local administrators use the Unix socket
(--socket): root, and the members of --socket-group. See docs/SECURITY.md.
On SIGINT/SIGTERM it closes its consoles and releases their leases, so other
members take over at once; if it dies instead, they take over after the
lease TTL.`

// consoleServeFlags are the flags of console serve.
type consoleServeFlags struct {
	listen, liveness string
	ttl, idle        time.Duration
	sec              consoleSecFlags
}

func newConsoleServeCmd(g *globals) *cobra.Command {
	var f consoleServeFlags
	cmd := &cobra.Command{
		Use:   "serve [--listen ADDR]",
		Short: "Run this member's console broker until interrupted",
		Long:  consoleServeLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runConsoleServe(cmd.Context(), g, &f)
		},
	}
	cmd.Flags().StringVar(&f.listen, "listen", "", "HOST:PORT to listen on (default :site.consoleport)")
	cmd.Flags().StringVar(&f.liveness, "liveness", "published", "members' liveness: published (the agents' heartbeat judgements; members nobody judged are usable) or none (every member usable; dead holders are found by their leases)")
	cmd.Flags().DurationVar(&f.ttl, "lease-ttl", console.DefaultLeaseTTL, "console lease TTL (keep it well above Galera's failure detection)")
	cmd.Flags().DurationVar(&f.idle, "idle-close", console.DefaultIdleClose, "close a console nobody watches after this long (negative: never)")
	f.sec.add(cmd.Flags(), "")
	return cmd
}

func runConsoleServe(ctx context.Context, g *globals, f *consoleServeFlags) error {
	s, err := g.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	self := g.selfName()
	if err := g.requireMember(ctx, s); err != nil {
		return err
	}
	listen, err := brokerListen(ctx, s, f.listen)
	if err != nil {
		return err
	}
	var live liveness.Source = liveness.Static(nil)
	switch f.liveness {
	case "published":
		pl := &liveness.Published{}
		go pl.Follow(ctx, s, liveness.DefaultHeartbeatInterval*2, g.logger())
		live = pl
	case "none":
	default:
		return usagef("--liveness %q: want published or none", f.liveness)
	}
	err = f.sec.serveBroker(ctx, s, self, listen, g.io.Out, g.logger(), console.WithLeaseTTL(f.ttl), console.WithIdleClose(f.idle), console.WithLiveness(live))
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// brokerListen is the address of the console broker: listen, else
// :site.consoleport.
func brokerListen(ctx context.Context, s *pool.Store, listen string) (string, error) {
	if listen != "" {
		return listen, nil
	}
	site, err := s.Site(ctx)
	if err != nil {
		return "", err
	}
	port, err := console.BrokerPort(site)
	if err != nil {
		return "", err
	}
	return ":" + strconv.Itoa(port), nil
}

const consoleConserverLong = `Renders conserver.cf listing the nodes whose console --member serves now
(the lease holder, or the first alive member allowed to serve it). Each
console runs 'mnpool console --raw --socket PATH NODE', so conserver (as
root on the member) goes through the member's broker and a node's console keeps one connection in the
pool. Render again (and reload conserver) when consoles move; with --file the
file is replaced atomically only when it changed (previous kept as .bak).`

func newConsoleConserverCmd(g *globals) *cobra.Command {
	var o console.ConserverOptions
	var file string
	cmd := &cobra.Command{
		Use:   "conserver --member NAME [--file PATH]",
		Short: "Render conserver.cf for a member: the consoles it serves now, attached through its broker",
		Long:  consoleConserverLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Member == "" {
				return usagef("give --member NAME")
			}
			if err := checkOutputFlag(cmd, "file"); err != nil {
				return err
			}
			out, err := renderConserver(cmd.Context(), g, o)
			if err != nil {
				return err
			}
			return writeConserver(g, file, out)
		},
	}
	cmd.Flags().StringVar(&o.Member, "member", "", "the member to render for")
	cmd.Flags().StringVar(&file, "file", "", "update this file instead of printing")
	cmd.Flags().StringVar(&o.Program, "program", mnpoolProgram(), "path of mnpool that conserver runs")
	cmd.Flags().StringVar(&o.Socket, "socket", console.DefaultSocket, "the Unix socket of the member's broker")
	cmd.Flags().StringVar(&o.LogDir, "log-dir", console.DefaultLogDir, "conserver log directory")
	cmd.Flags().BoolVar(&o.OnDemand, "ondemand", false, "open consoles only while someone is attached")
	return cmd
}

// renderConserver reads the pool and renders conserver.cf for o.Member.
func renderConserver(ctx context.Context, g *globals, o console.ConserverOptions) ([]byte, error) {
	s, err := g.open(ctx)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	st, err := s.LoadState(ctx)
	if err != nil {
		return nil, err
	}
	specs, err := console.Specs(ctx, s)
	if err != nil {
		return nil, err
	}
	holders, err := console.LeaseHolders(ctx, s, nil)
	if err != nil {
		return nil, err
	}
	return console.RenderConserver(st, specs, holders, liveness.Static(nil), o)
}

// writeConserver prints out, or with file replaces file by it when it
// changed, and says which.
func writeConserver(g *globals, file string, out []byte) error {
	if file == "" {
		_, err := g.io.Out.Write(out)
		return err
	}
	changed, err := atomicfile.Write(file, out, atomicfile.Options{Backup: ".bak", SkipUnchanged: true})
	if err != nil {
		return err
	}
	if changed {
		fmt.Fprintf(g.io.Out, "%s updated; reload conserver\n", file)
	} else {
		fmt.Fprintf(g.io.Out, "%s already up to date\n", file)
	}
	return nil
}
