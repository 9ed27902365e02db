package cli

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mnpool/mnpool/dhcp"
	"github.com/mnpool/mnpool/mnguard"
)

// makedhcpFlags are makedhcp's own flags.
type makedhcpFlags struct {
	newCfg, all, del, query, check, allMembers bool
	hold                                       time.Duration
	dhcp                                       dhcpFlags
}

const makedhcpLong = `makedhcp writes the DHCP configuration of the pool member it runs on (--self)
from the pool database, with xCAT's meaning of the flags:

  -n            write a new configuration: subnets for every network this member
                serves and the host entries of its nodes; a file written for
                another member, or not by mnpool, is replaced
  -a            host entries for all nodes (brings back nodes removed with -d)
  NODERANGE     add or update the host entries of these nodes (brings them back
                after a -d)
  -d NODERANGE  remove the host entries of these nodes (-d -a: all). The removal
                is recorded in the pool database: every member, makemn and the
                agent (mnpoold) leave the nodes out until makedhcp NODERANGE or
                makedhcp -a brings them back
  -q NODERANGE  show what the configuration on disk holds for these nodes

With site.disjointdhcps=0 every member serves every node of its networks; with 1
only the nodes whose servicenode list names it. Only the MN of the current epoch,
confirmed through a healthy database node by the MN guard, serves the networks'
dynamic ranges; the first run on a new MN waits the guard's hold (--hold) unless
the file already serves the range under this epoch. next-server is this member's
own address (site.sharedtftp=0). DNS and NTP servers of a node are its
servicenodes in list order, this member first when it is one of them.

The whole file is rendered again each time (100,000 nodes take well under a
second), checked with the real daemon when it is installed (dhcpd -t /
kea-dhcp4 -t), written atomically with a backup (FILE.bak), and the daemon is
reloaded: with --dhcp-reload-cmd, or for Kea with config-reload on its control
socket. Nothing is written or reloaded when the file would not change. The same
DHCP flags work for makemn, mnpool sync and mnpoold.`

// NewMakedhcp builds the makedhcp command.
func NewMakedhcp(io IO) *cobra.Command {
	g := &globals{io: io}
	var f makedhcpFlags
	cmd := &cobra.Command{
		Use:   "makedhcp [-n] [-a | NODERANGE] | -d NODERANGE | -q NODERANGE",
		Short: "Write this member's DHCP server configuration (ISC dhcpd or Kea) from the pool database",
		Long:  makedhcpLong,
		Example: `  makedhcp -n -a                          # dhcpd.conf with every node
  makedhcp cn001,cn002                     # add or update two nodes
  makedhcp -d cn001                        # remove a node's entry (on every member)
  makedhcp -q cn001 --json                 # what dhcpd.conf holds for cn001
  makedhcp -n -a --dhcp-format kea --kea-socket /run/kea/kea4-ctrl-socket
  makedhcp -n -a --dhcp-reload-cmd "systemctl restart isc-dhcp-server"
  makedhcp --all-members --dhcp-config /tmp/dhcp   # every member's file, for inspection`,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !f.allMembers { // with --all-members, --out is a directory (validate)
				for _, name := range []string{"dhcp-config", "out"} {
					if err := checkOutputFlag(cmd, name); err != nil {
						return err
					}
				}
			}
			return runMakedhcp(cmd.Context(), g, &f, args)
		},
	}
	cmd.SetIn(io.In)
	cmd.SetOut(io.Out)
	cmd.SetErr(io.Err)
	g.addFlags(cmd)
	g.addJSON(cmd)
	fl := cmd.Flags()
	fl.BoolVarP(&f.newCfg, "new", "n", false, "write a new configuration (replaces a file of another member or not written by mnpool)")
	fl.BoolVarP(&f.all, "all", "a", false, "all nodes")
	fl.BoolVarP(&f.del, "delete", "d", false, "remove the host entries of NODERANGE, on every member, until they are added again")
	fl.BoolVarP(&f.query, "query", "q", false, "show the host entries of NODERANGE in the configuration on disk")
	fl.BoolVar(&f.check, "check", false, "render and check with the daemon (required to be installed) but write nothing")
	fl.BoolVar(&f.allMembers, "all-members", false, "render every DHCP member's configuration into the directory --dhcp-config (no reload)")
	fl.DurationVar(&f.hold, "hold", mnguard.DefaultValidFor+mnguard.DefaultConfirmEvery, "on the MN: how long the MN guard must confirm the role before a file without the dynamic range gains it")
	addDHCPFlags(fl, &f.dhcp, "default /etc/dhcp/dhcpd.conf or /etc/kea/kea-dhcp4.conf; with --all-members a directory", false,
		"format", "out", "reload-cmd", "no-check")
	return cmd
}

// Makedhcp is the main function of cmd/makedhcp.
func Makedhcp(ctx context.Context, args []string, io IO) int {
	return Run(ctx, NewMakedhcp(io), args, io.Err)
}

// options turns the command line into dhcp.MakeOptions; errors are usage
// errors.
func (f *makedhcpFlags) options(g *globals, args []string) (dhcp.MakeOptions, error) {
	f.dhcp.warnDeprecated(g.io.Err, "makedhcp")
	ac, _, err := f.dhcp.config()
	if err != nil {
		return dhcp.MakeOptions{}, err
	}
	if f.allMembers && ac.Path == "" {
		return dhcp.MakeOptions{}, usagef("--all-members needs --dhcp-config DIRECTORY")
	}
	if f.hold < 0 {
		return dhcp.MakeOptions{}, usagef("--hold %v: must not be negative", f.hold)
	}
	ac.Logger = g.logger()
	o := dhcp.MakeOptions{Applier: ac, New: f.newCfg, All: f.all, Noderange: strings.Join(args, ","),
		Delete: f.del, Query: f.query, AllMembers: f.allMembers, CheckOnly: f.check,
		Guard: []mnguard.Option{mnguard.WithHold(f.hold), mnguard.WithLogger(g.logger())}}
	if !f.allMembers {
		o.Self = g.selfName()
	}
	if err := o.Validate(); err != nil {
		return o, usageError{err}
	}
	return o, nil
}

func runMakedhcp(ctx context.Context, g *globals, f *makedhcpFlags, args []string) error {
	o, err := f.options(g, args)
	if err != nil {
		return err
	}
	s, err := g.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	if !o.Query && !o.AllMembers {
		if err := g.requireMember(ctx, s); err != nil {
			return err
		}
	}
	rep, err := dhcp.Make(ctx, s, o)
	switch {
	case rep == nil:
		return err
	case rep.Query != nil:
		return printMakedhcpQuery(g, rep.Query)
	case o.AllMembers:
		if perr := printMakedhcpMembers(g, rep); perr != nil {
			return perr
		}
		return err
	case rep.Config == nil:
		return err
	}
	if perr := printMakedhcp(g, rep); perr != nil {
		return perr
	}
	return err
}

func printMakedhcp(g *globals, rep *dhcp.MakeReport) error {
	if g.json {
		return printJSON(g.io.Out, rep)
	}
	cfg, res := rep.Config, rep.Result
	dyn := "no dynamic range"
	if cfg.Dynamic {
		dyn = "with the dynamic range (MN"
	} else if cfg.MN != "" {
		dyn += " (the MN is " + cfg.MN
	}
	if cfg.MN != "" {
		dyn += fmt.Sprintf(", epoch %d)", cfg.Epoch)
	}
	fmt.Fprintf(g.io.Out, "%s for %s (%s): %d networks, %d nodes, %d host entries, %s\n",
		res.Path, cfg.Member, cfg.Format, len(cfg.Networks), cfg.Nodes, cfg.Hosts, dyn)
	fmt.Fprintf(g.io.Out, "  %s\n", strings.Join(makedhcpOutcome(rep), "; "))
	if len(rep.Removed) > 0 {
		fmt.Fprintf(g.io.Out, "  removed (on every member, until makedhcp NODE or -a): %s\n", strings.Join(rep.Removed, ","))
	}
	if len(rep.Restored) > 0 {
		fmt.Fprintf(g.io.Out, "  brought back: %s\n", strings.Join(rep.Restored, ","))
	}
	if rep.StillRemoved > 0 {
		fmt.Fprintf(g.io.Out, "  %d node(s) left out: removed with makedhcp -d\n", rep.StillRemoved)
	}
	if !rep.Dynamic.Served && rep.Dynamic.Why != "" && cfg.MN == cfg.Member {
		fmt.Fprintf(g.io.Err, "makedhcp: dynamic range not served: %s\n", rep.Dynamic.Why)
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(g.io.Err, "makedhcp: %s\n", n)
	}
	return nil
}

func makedhcpOutcome(rep *dhcp.MakeReport) []string {
	res := rep.Result
	var what []string
	switch {
	case rep.CheckOnly && res.Changed:
		what = append(what, "would change (--check: nothing written)")
	case rep.CheckOnly:
		what = append(what, "unchanged (--check: nothing written)")
	case res.Changed:
		what = append(what, "written")
		if res.Backup != "" {
			what = append(what, "previous file kept as "+res.Backup)
		}
	default:
		what = append(what, "unchanged: not written, not reloaded")
	}
	if res.Checked != "" {
		what = append(what, "accepted by "+res.Checked)
	}
	if res.Reloaded != "" {
		what = append(what, "reloaded ("+res.Reloaded+")")
	}
	return what
}

// printMakedhcpQuery prints, per node, what the configuration on disk
// holds.
func printMakedhcpQuery(g *globals, q *dhcp.QueryReport) error {
	if g.json {
		return printJSON(g.io.Out, q)
	}
	t := newTable(g.io.Out, "node", "mac", "ip", "network", "next-server", "dns", "ntp")
	for _, e := range q.Nodes {
		if !e.Configured {
			what := "(not configured)"
			if e.Excluded {
				what = "(removed: makedhcp -d)"
			}
			t.row(e.Node, what, "", "", "", "", "")
			continue
		}
		for _, h := range e.Hosts {
			next := ""
			if h.NextServer.IsValid() {
				next = h.NextServer.String()
			}
			t.row(h.Node, h.MAC, h.IP.String(), h.Network, next, joinAddrs(h.DNS), joinAddrs(h.NTP))
		}
	}
	return t.flush()
}

func joinAddrs(a []netip.Addr) string {
	s := make([]string, len(a))
	for i, v := range a {
		s[i] = v.String()
	}
	return strings.Join(s, ",")
}

func printMakedhcpMembers(g *globals, rep *dhcp.MakeReport) error {
	if g.json {
		return printJSON(g.io.Out, rep.Members)
	}
	t := newTable(g.io.Out, "member", "file", "networks", "nodes", "hosts", "dynamic", "checked")
	for _, r := range rep.Members {
		t.row(r.Config.Member, r.Result.Path, strings.Join(r.Config.Networks, ","), fmt.Sprint(r.Config.Nodes), fmt.Sprint(r.Config.Hosts), yesNo(r.Config.Dynamic), r.Result.Checked)
	}
	return t.flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
