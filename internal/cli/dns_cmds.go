package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/mnpool/mnpool/atomicfile"
	"github.com/mnpool/mnpool/dns"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/siteschema"
)

func newDNSCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dns",
		Short: "Name service: DNS server, resolv.conf for nodes and members, zone files",
	}
	cmd.AddCommand(newDNSServeCmd(g), newDNSResolvconfCmd(g), newDNSZoneCmd(g))
	return cmd
}

// loadState opens the store and reads one snapshot of the pool.
func (g *globals) loadState(ctx context.Context) (*pool.State, error) {
	s, err := g.open(ctx)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.LoadState(ctx)
}

// daemonLogger logs to stderr: info and up, everything with -V.
func (g *globals) daemonLogger() *slog.Logger {
	if g.verbose {
		return g.logger()
	}
	return slog.New(slog.NewTextHandler(g.io.Err, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// rendered is one file rendered for a node or a member.
type rendered struct {
	Node   string `json:"node,omitempty"`
	Member string `json:"member,omitempty"`
	Config any    `json:"config"`
	data   []byte
}

// renderFor renders a file for the nodes of a noderange, or for one member
// (--member), and prints it, writes it (--output, one target only) or
// prints JSON.
func (g *globals) renderFor(ctx context.Context, args []string, member, output string,
	forNode func(*pool.State, pool.Node) (any, []byte, error),
	forMember func(*pool.State, string) (any, []byte, error),
	check func(context.Context, []byte) error,
) error {
	if (len(args) == 0) == (member == "") {
		return usagef("give a NODERANGE or --member NAME (one of the two)")
	}
	st, err := g.loadState(ctx)
	if err != nil {
		return err
	}
	var out []rendered
	if member != "" {
		cfg, data, err := forMember(st, member)
		if err != nil {
			return err
		}
		out = append(out, rendered{Member: member, Config: cfg, data: data})
	} else {
		nodes, err := selectNodes(st, args)
		if err != nil {
			return err
		}
		for _, n := range nodes {
			cfg, data, err := forNode(st, n)
			if err != nil {
				return err
			}
			out = append(out, rendered{Node: n.Name, Config: cfg, data: data})
		}
	}
	if check != nil {
		for _, r := range out {
			if err := check(ctx, r.data); err != nil {
				return fmt.Errorf("%s%s: %w", r.Node, r.Member, err)
			}
		}
	}
	if output != "" {
		if len(out) != 1 {
			return usagef("--output writes one file; the noderange selects %d nodes", len(out))
		}
		return g.writeFile(output, out[0].data)
	}
	if g.json {
		return printJSON(g.io.Out, out)
	}
	for _, r := range out {
		if _, err := g.io.Out.Write(r.data); err != nil {
			return err
		}
	}
	return nil
}

// writeFile replaces path atomically, keeping the old file as path.bak
// (a hard link: its mode and owner kept). The new file keeps the old one's
// mode and owner; a new file is 0644. A symlink at path is refused.
func (g *globals) writeFile(path string, data []byte) error {
	changed, err := atomicfile.Write(path, data, atomicfile.Options{Backup: ".bak", SkipUnchanged: true})
	if err != nil {
		return err
	}
	if changed {
		fmt.Fprintf(g.io.Out, "%s written\n", path)
	} else {
		fmt.Fprintf(g.io.Out, "%s unchanged\n", path)
	}
	return nil
}

func newDNSServeCmd(g *globals) *cobra.Command {
	var listen []string
	var interval time.Duration
	var ttl, negTTL uint32
	cmd := &cobra.Command{
		Use:   "serve [--listen ADDR:PORT]...",
		Short: "Run the pool's DNS server on this member (UDP and TCP)",
		Long: `serve answers for the pool's zones (site.domain, every network domain, and
the reverse zones of the networks) straight from the pool database, and
forwards other names to site.forwarders when the client asks for recursion.

Only clients on the pool's networks and loopback get answers; others get
REFUSED. site.dnsallow changes the list: CIDRs or addresses separated by
commas or spaces, and "pool" for the pool's networks (loopback always stays).

site.forwarders is a list of IP addresses separated by commas or spaces, each
IP (port 53), IPv4:PORT or [IPv6]:PORT; names are refused. A forwarder that is
this server itself or any pool member is ignored, and a query forwarded by a
pool server is never forwarded again, so servers cannot loop.

UDP answers are rate limited per client /24 (/56) and answer: 1000 identical
answers a second after a burst of 15000; over that every second answer is sent
truncated (the client retries over TCP) and the others dropped.

The server follows the pool's change counter: new nodes, changed addresses and
snmove show in the answers within --interval, without a restart. It stops
cleanly on SIGINT or SIGTERM.`,
		Example: `  mnpool dns serve
  mnpool dns serve --listen 10.0.0.2:53 --listen 127.0.0.1:53
  mnpool site set forwarders=192.0.2.53,192.0.2.54
  mnpool site set dnsallow=pool,192.168.10.0/24`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, err := g.open(ctx)
			if err != nil {
				return err
			}
			defer s.Close()
			if err := g.requireMember(ctx, s); err != nil {
				return err
			}
			log := g.daemonLogger()
			srv := dns.NewServer(s, dns.WithListen(listen...), dns.WithLogger(log), dns.WithWatchInterval(interval),
				dns.WithZoneOptions(dns.ZoneOptions{TTL: ttl, NegativeTTL: negTTL}))
			err = srv.Serve(ctx)
			if errors.Is(err, context.Canceled) {
				log.Info("dns: stopped")
				return nil
			}
			return err
		},
	}
	cmd.Flags().StringArrayVar(&listen, "listen", []string{dns.DefaultListen}, "address to listen on, UDP and TCP (repeat for several)")
	cmd.Flags().DurationVar(&interval, "interval", pool.DefaultWatchInterval, "how often to look for pool changes")
	cmd.Flags().Uint32Var(&ttl, "ttl", dns.DefaultTTL, "TTL of the answers, seconds")
	cmd.Flags().Uint32Var(&negTTL, "negative-ttl", dns.DefaultNegativeTTL, "how long resolvers may cache 'no such name', seconds")
	return cmd
}

func newDNSResolvconfCmd(g *globals) *cobra.Command {
	var member, output string
	cmd := &cobra.Command{
		Use:   "resolvconf NODERANGE | --member NAME",
		Short: "Print the resolv.conf of compute nodes or of a pool member",
		Long: `For a compute node the name servers are its servicenodes that run dns, in
the order of its servicenode list, by their address on the node's network (the
resolver reads three); the search list is the network's domain, then
site.domain.

For a member (--member) the name servers are the member itself, then the MN,
then the next members by name: a member never depends on the MN alone.

--output writes the file atomically (the old one kept as FILE.bak).`,
		Example: `  mnpool dns resolvconf cn001
  mnpool dns resolvconf cn001,cn002 --json
  mnpool dns resolvconf --member sn1 --output /etc/resolv.conf`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutputFlag(cmd, "output"); err != nil {
				return err
			}
			return g.renderFor(cmd.Context(), args, member, output,
				func(st *pool.State, n pool.Node) (any, []byte, error) {
					rc, err := dns.NodeResolvConf(st, n)
					return renderConf(rc, err)
				},
				func(st *pool.State, m string) (any, []byte, error) {
					rc, err := dns.MemberResolvConf(st, m)
					return renderConf(rc, err)
				}, nil)
		},
	}
	cmd.Flags().StringVar(&member, "member", "", "render for this pool member instead of nodes")
	cmd.Flags().StringVar(&output, "output", "", "write the file here instead of printing it (one target)")
	g.addJSON(cmd)
	return cmd
}

// renderConf renders a configuration built by one of the library's
// NodeXxx/MemberXxx functions, passing its error through.
func renderConf[C interface{ Render() ([]byte, error) }](c C, err error) (any, []byte, error) {
	if err != nil {
		return nil, nil, err
	}
	data, err := c.Render()
	return c, data, err
}

func newDNSZoneCmd(g *globals) *cobra.Command {
	var dir string
	var list, check bool
	cmd := &cobra.Command{
		Use:   "zone [ZONE] [--dir DIR] [--list]",
		Short: "Render the pool's zones as BIND zone files",
		Long: `zone renders the zones the pool is authoritative for, for sites that run
their own named: the forward zones (site.domain and every network domain) and
the reverse zones of the networks. The SOA serial is the pool's change
counter, so it grows with every change.

Without --dir it prints one zone (default: site.domain). With --dir it writes
every zone as DIR/db.ZONE and DIR/named.conf.mnpool, a named.conf fragment
declaring them (include it from named.conf). --check runs named-checkzone
on every zone first and writes nothing if one fails.`,
		Example: `  mnpool dns zone --list
  mnpool dns zone cluster
  mnpool dns zone 0.10.in-addr.arpa
  mnpool dns zone --dir /var/lib/mnpool/dns --check`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			zs, site, err := g.loadZones(ctx)
			if err != nil {
				return err
			}
			if check {
				for _, z := range zs.List {
					if err := dns.CheckZone(ctx, "", z); err != nil {
						return err
					}
				}
			}
			switch {
			case list:
				return printZoneList(g, zs)
			case dir != "":
				return writeZoneDir(g, zs, dir)
			default:
				origin := site[siteschema.Domain]
				if len(args) == 1 {
					origin = args[0]
				}
				return printZone(g, zs, origin)
			}
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "write every zone and named.conf.mnpool into this directory")
	cmd.Flags().BoolVar(&list, "list", false, "list the zones")
	cmd.Flags().BoolVar(&check, "check", false, "check every zone with named-checkzone (bind9-utils) first")
	g.addJSON(cmd)
	return cmd
}

// printZoneList: dns zone --list.
func printZoneList(g *globals, zs *dns.Zones) error {
	if g.json {
		type row struct {
			Zone    string `json:"zone"`
			Reverse bool   `json:"reverse"`
			Records int    `json:"records"`
			Serial  uint32 `json:"serial"`
		}
		rows := []row{}
		for _, z := range zs.List {
			rows = append(rows, row{z.Origin, z.Reverse, len(z.Records), zs.Serial})
		}
		return printJSON(g.io.Out, rows)
	}
	t := newTable(g.io.Out, "zone", "records", "file", "serial")
	for _, z := range zs.List {
		t.row(z.Origin, strconv.Itoa(len(z.Records)), z.FileName(), strconv.FormatUint(uint64(zs.Serial), 10))
	}
	return t.flush()
}

// writeZoneDir: dns zone --dir DIR, every zone and named.conf.mnpool.
func writeZoneDir(g *globals, zs *dns.Zones, dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	conf, err := dns.NamedConf(zs, abs)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return err
	}
	for _, z := range zs.List {
		if err := g.writeFile(filepath.Join(abs, z.FileName()), z.Render()); err != nil {
			return err
		}
	}
	return g.writeFile(filepath.Join(abs, "named.conf.mnpool"), conf)
}

// printZone: dns zone ORIGIN, one zone file on stdout.
func printZone(g *globals, zs *dns.Zones, origin string) error {
	z, ok := zs.Zone(origin)
	if !ok {
		var names []string
		for _, z := range zs.List {
			names = append(names, z.Origin)
		}
		return fmt.Errorf("%w: zone %q; the pool's zones are %v", dns.ErrNotFound, origin, names)
	}
	_, err := g.io.Out.Write(z.Render())
	return err
}

// loadZones reads the pool at one version (see dns.Load) and builds its
// zones with the version as serial; it returns the site table too.
func (g *globals) loadZones(ctx context.Context) (*dns.Zones, map[string]string, error) {
	s, err := g.open(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer s.Close()
	st, v, err := dns.Load(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	zs, err := dns.BuildZones(st, uint32(v), dns.ZoneOptions{})
	return zs, st.Site, err
}
