package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mnpool/mnpool/atomicfile"
	"github.com/mnpool/mnpool/dhcp"
	"github.com/mnpool/mnpool/noderange"
	"github.com/mnpool/mnpool/pool"
)

// makedhcpFlags are makedhcp's own flags.
type makedhcpFlags struct {
	newCfg, all, del, query, check, noCheck, allMembers bool
	format, out, reloadCmd, keaSocket, keaLeases        string
}

// NewMakedhcp builds the makedhcp command.
func NewMakedhcp(io IO) *cobra.Command {
	g := &globals{io: io}
	var f makedhcpFlags
	cmd := &cobra.Command{
		Use:   "makedhcp [-n] [-a | NODERANGE] | -d NODERANGE | -q NODERANGE",
		Short: "Write this member's DHCP server configuration (ISC dhcpd or Kea) from the pool database",
		Long: `makedhcp writes the DHCP configuration of the pool member it runs on (--self)
from the pool database, with xCAT's meaning of the flags:

  -n            write a new configuration: subnets for every network this member
                serves; the host entries configured now are kept
  -a            add host entries for all nodes
  NODERANGE     add or update the host entries of these nodes
  -d NODERANGE  remove the host entries of these nodes (-d -a: all)
  -q NODERANGE  show what the configuration on disk holds for these nodes

With site.disjointdhcps=0 every member serves every node of its networks; with 1
only the nodes whose servicenode list names it. Only the MN of the current epoch
serves the networks' dynamic ranges. next-server is this member's own address
(site.sharedtftp=0). DNS and NTP servers of a node are its servicenodes in list
order, this member first when it is one of them.

The whole file is rendered again each time (100,000 nodes take well under a
second), checked with the real daemon when it is installed (dhcpd -t /
kea-dhcp4 -t), written atomically with a backup (FILE.bak), and the daemon is
reloaded: with --reload-cmd, or for Kea with config-reload on its control socket.
Nothing is written or reloaded when the file would not change.`,
		Example: `  makedhcp -n -a                          # dhcpd.conf with every node
  makedhcp cn001,cn002                     # add or update two nodes
  makedhcp -d cn001                        # remove a node's entry
  makedhcp -q cn001 --json                 # what dhcpd.conf holds for cn001
  makedhcp -n -a --format kea --kea-socket /run/kea/kea4-ctrl-socket
  makedhcp -n -a --reload-cmd "systemctl restart isc-dhcp-server"
  makedhcp --all-members --out /tmp/dhcp   # every member's file, for inspection`,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !f.allMembers { // with --all-members, --out is a directory (validate)
				if err := checkOutputFlag(cmd, "out"); err != nil {
					return err
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
	fl.BoolVarP(&f.newCfg, "new", "n", false, "write a new configuration (subnets from the networks; configured host entries are kept)")
	fl.BoolVarP(&f.all, "all", "a", false, "all nodes")
	fl.BoolVarP(&f.del, "delete", "d", false, "remove the host entries of NODERANGE")
	fl.BoolVarP(&f.query, "query", "q", false, "show the host entries of NODERANGE in the configuration on disk")
	fl.StringVar(&f.format, "format", "isc", "configuration format: isc (dhcpd) or kea (kea-dhcp4)")
	fl.StringVar(&f.out, "out", "", "configuration file (default /etc/dhcp/dhcpd.conf or /etc/kea/kea-dhcp4.conf); with --all-members a directory")
	fl.BoolVar(&f.check, "check", false, "render and check with the daemon (required to be installed) but write nothing")
	fl.BoolVar(&f.noCheck, "no-check", false, "do not run the daemon's check before writing (it takes seconds for 100,000 nodes)")
	fl.StringVar(&f.reloadCmd, "reload-cmd", "", `command run after a change to reload the daemon, e.g. "systemctl restart isc-dhcp-server" (split at blanks, no shell)`)
	fl.StringVar(&f.keaSocket, "kea-socket", dhcp.DefaultKeaControlSocket, "Kea control socket: written into the Kea configuration and used for config-reload")
	fl.StringVar(&f.keaLeases, "kea-lease-file", dhcp.DefaultKeaLeaseFile, "Kea memfile lease database written into the Kea configuration")
	fl.BoolVar(&f.allMembers, "all-members", false, "render every DHCP member's configuration into the directory --out (no reload)")
	return cmd
}

// Makedhcp is the main function of cmd/makedhcp.
func Makedhcp(ctx context.Context, args []string, io IO) int {
	return Run(ctx, NewMakedhcp(io), args, io.Err)
}

func (f *makedhcpFlags) validate(args []string) error {
	nr := len(args) > 0
	switch {
	case f.allMembers:
		if nr || f.del || f.query {
			return usagef("--all-members renders every node for every member; it takes no NODERANGE, -d or -q")
		}
		if f.out == "" {
			return usagef("--all-members needs --out DIRECTORY")
		}
	case f.query:
		if f.newCfg || f.del || f.check || f.noCheck || f.reloadCmd != "" {
			return usagef("-q only reads the configuration; it does not go with -n, -d, --check or --reload-cmd")
		}
		if nr == f.all {
			return usagef("-q needs a NODERANGE or -a")
		}
	case f.del:
		if nr == f.all {
			return usagef("-d needs a NODERANGE (or -a for every node)")
		}
	default:
		if f.all && nr {
			return usagef("give -a or a NODERANGE, not both")
		}
		if !f.newCfg && !f.all && !nr {
			return usagef("nothing to do: give -n, -a or a NODERANGE (see makedhcp --help)")
		}
	}
	if f.check && f.noCheck {
		return usagef("--check and --no-check contradict each other")
	}
	if _, err := dhcp.ParseFormat(f.format); err != nil {
		return usageError{err}
	}
	if f.reloadCmd != "" && len(strings.Fields(f.reloadCmd)) == 0 {
		return usagef("--reload-cmd %q is empty", f.reloadCmd)
	}
	return nil
}

func runMakedhcp(ctx context.Context, g *globals, f *makedhcpFlags, args []string) error {
	if err := f.validate(args); err != nil {
		return err
	}
	format, _ := dhcp.ParseFormat(f.format)
	out := f.out
	if out == "" {
		out = format.DefaultPath()
	}
	ropts := dhcp.Options{Format: format, KeaControlSocket: f.keaSocket, KeaLeaseFile: f.keaLeases}
	s, err := g.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	st, err := s.LoadState(ctx)
	if err != nil {
		return err
	}
	if f.query {
		return makedhcpQuery(g, st, out, f.all, args)
	}
	if f.allMembers {
		return makedhcpAllMembers(ctx, g, st, ropts, out)
	}
	self := g.selfName()
	if err := g.requireMember(ctx, s); err != nil {
		return err
	}

	// Whether this member serves the dynamic range. Until the makemn work
	// provides the fail-safe "confirmed MN of the current epoch" check,
	// this is the master record read from a healthy database; the agent
	// and makemn will tighten it (DESIGN.md rule 8).
	ropts.ServeDynamic = st.IsMN(self)
	var notes []string
	if ropts.ServeDynamic {
		if h, err := s.Health(ctx); err != nil || !h.Healthy {
			ropts.ServeDynamic = false
			notes = append(notes, fmt.Sprintf("the pool database is not healthy (%s): no dynamic range, as a member that cannot confirm it is the MN", h.Problem))
		}
	}

	// The node set the file holds now (kept by -n, NODERANGE and -d).
	have := map[string]bool{}
	old, err := atomicfile.ReadFile(out) // never through a symlink
	switch {
	case err == nil:
		in, perr := dhcp.Parse(old)
		switch {
		case perr != nil && !f.newCfg:
			return fmt.Errorf("%s: %w; use -n to replace it (the old file is kept as %s.bak)", out, perr, out)
		case perr == nil && in.Member != self && !f.newCfg:
			return fmt.Errorf("%w: %s was written for member %s, and this is %s; use -n to replace it", dhcp.ErrFormat, out, in.Member, self)
		case perr == nil && in.Format != format:
			return usagef("%s is a %s configuration; use --format %s (or another --out)", out, in.Format, in.Format)
		case perr == nil && in.Member == self:
			for _, n := range in.Nodes() {
				have[n] = true
			}
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}

	var asked []string
	switch {
	case f.del && f.all:
		have = map[string]bool{}
		ropts.Select = func(string) bool { return false }
	case f.del:
		names, err := selectDHCPNodes(st, args, have)
		if err != nil {
			return err
		}
		for _, n := range names {
			if !have[n] {
				notes = append(notes, n+": had no host entry")
			}
			delete(have, n)
		}
		ropts.Select = func(n string) bool { return have[n] }
	case f.all:
		// Select nil: every node the member serves.
	case len(args) > 0:
		names, err := selectDHCPNodes(st, args, nil)
		if err != nil {
			return err
		}
		asked = names
		for _, n := range names {
			have[n] = true
		}
		ropts.Select = func(n string) bool { return have[n] }
	default: // -n alone keeps the configured entries
		ropts.Select = func(n string) bool { return have[n] }
	}
	served := map[string]bool{}
	if sel := ropts.Select; sel != nil {
		ropts.Select = func(n string) bool { served[n] = true; return sel(n) }
	} else if len(asked) > 0 {
		ropts.Select = func(n string) bool { served[n] = true; return true }
	}
	cfg, err := dhcp.Render(st, self, ropts)
	if err != nil {
		return err
	}
	for _, n := range asked {
		if !served[n] {
			notes = append(notes, fmt.Sprintf("%s: not served by %s (%s)", n, self, whyNotServed(st, self, n)))
		}
	}
	for _, sk := range cfg.Skipped {
		notes = append(notes, fmt.Sprintf("%s: no host entry: %s", sk.Node, sk.Reason))
	}
	notes = append(notes, cfg.Notes...)

	var res dhcp.Result
	if f.check {
		chk := dhcp.Checker{}
		if err := chk.Check(ctx, format, cfg.Data, ""); err != nil {
			return err
		}
		prog, _ := chk.Program(format)
		res = dhcp.Result{Path: out, Checked: prog, Changed: string(old) != string(cfg.Data)}
	} else {
		a := &dhcp.Applier{Path: out, Format: format, Logger: g.logger()}
		if f.noCheck {
			a.Check = dhcp.CheckNever
		}
		if f.reloadCmd != "" {
			a.ReloadCommand = strings.Fields(f.reloadCmd)
		} else if format == dhcp.FormatKea {
			if _, err := os.Stat(f.keaSocket); err == nil {
				a.KeaControlSocket = f.keaSocket
			} else {
				notes = append(notes, fmt.Sprintf("Kea control socket %s is not there (Kea not running?): not reloaded", f.keaSocket))
			}
		}
		res, err = a.Apply(ctx, cfg.Data)
		if err != nil && !res.Changed {
			return err
		}
		if err != nil {
			printMakedhcp(g, cfg, res, f.check, notes)
			return err
		}
	}
	return printMakedhcp(g, cfg, res, f.check, notes)
}

func printMakedhcp(g *globals, cfg *dhcp.Config, res dhcp.Result, checkOnly bool, notes []string) error {
	if g.json {
		return printJSON(g.io.Out, struct {
			Config    *dhcp.Config `json:"config"`
			Result    dhcp.Result  `json:"result"`
			CheckOnly bool         `json:"check_only,omitempty"`
			Notes     []string     `json:"notes,omitempty"`
		}{cfg, res, checkOnly, notes})
	}
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
	var what []string
	switch {
	case checkOnly && res.Changed:
		what = append(what, "would change (--check: nothing written)")
	case checkOnly:
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
	fmt.Fprintf(g.io.Out, "  %s\n", strings.Join(what, "; "))
	for _, n := range notes {
		fmt.Fprintf(g.io.Err, "makedhcp: %s\n", n)
	}
	return nil
}

// whyNotServed explains why member renders no entry for node.
func whyNotServed(st *pool.State, member, node string) string {
	me, _ := st.Member(member)
	for _, n := range st.Nodes {
		if n.Name != node {
			continue
		}
		netName := n.Network
		if netName == "" {
			return "the node has no network"
		}
		if _, ok := me.Addresses[netName]; !ok {
			return "it has no address on network " + netName
		}
		return "site.disjointdhcps=1 and the node's servicenode list does not name it"
	}
	return "unknown node"
}

// selectDHCPNodes expands the NODERANGE arguments (xCAT syntax; several
// arguments are a union) against the pool's nodes and groups plus, for -d
// and -q, the names only the file has (nodes removed from the pool).
func selectDHCPNodes(st *pool.State, args []string, extra map[string]bool) ([]string, error) {
	names := make([]string, 0, len(st.Nodes)+len(extra))
	groups := map[string][]string{}
	known := make(map[string]bool, len(st.Nodes))
	for _, n := range st.Nodes {
		names = append(names, n.Name)
		known[n.Name] = true
		for _, g := range n.Groups {
			groups[g] = append(groups[g], n.Name)
		}
	}
	for n := range extra {
		if !known[n] {
			names = append(names, n)
		}
	}
	u, err := noderange.NewStatic(names, groups)
	if err != nil {
		return nil, err
	}
	return noderange.Expand(strings.Join(args, ","), u, noderange.WithFileOpener(func(name string) (io.ReadCloser, error) { return os.Open(name) }))
}

// makedhcpQuery prints, per node, what the configuration on disk holds.
func makedhcpQuery(g *globals, st *pool.State, path string, all bool, args []string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	in, err := dhcp.Parse(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	byNode := map[string][]dhcp.InstalledHost{}
	for _, h := range in.Hosts {
		byNode[h.Node] = append(byNode[h.Node], h)
	}
	names := in.Nodes()
	if !all {
		// Nodes of the pool that the file lacks are reported as not
		// configured: -q answers "is it configured?".
		inFile := make(map[string]bool, len(names))
		for _, n := range names {
			inFile[n] = true
		}
		if names, err = selectDHCPNodes(st, args, inFile); err != nil {
			return err
		}
	}
	type entry struct {
		Node       string               `json:"node"`
		Configured bool                 `json:"configured"`
		Hosts      []dhcp.InstalledHost `json:"hosts,omitempty"`
	}
	var entries []entry
	for _, n := range names {
		hs := byNode[n]
		entries = append(entries, entry{Node: n, Configured: len(hs) > 0, Hosts: hs})
	}
	if g.json {
		return printJSON(g.io.Out, struct {
			Path    string  `json:"path"`
			Member  string  `json:"member"`
			MN      string  `json:"mn"`
			Epoch   int64   `json:"epoch"`
			Dynamic bool    `json:"dynamic"`
			Nodes   []entry `json:"nodes"`
		}{path, in.Member, in.MN, in.Epoch, in.Dynamic, entries})
	}
	t := newTable(g.io.Out, "node", "mac", "ip", "network", "next-server", "dns", "ntp")
	for _, e := range entries {
		if !e.Configured {
			t.row(e.Node, "(not configured)", "", "", "", "", "")
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

// makedhcpAllMembers renders every DHCP member's configuration (all
// nodes, the dynamic range on the MN) into dir, checked when the daemon
// is installed, for inspection.
func makedhcpAllMembers(ctx context.Context, g *globals, st *pool.State, o dhcp.Options, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ext := ".dhcpd.conf"
	if o.Format == dhcp.FormatKea {
		ext = ".kea-dhcp4.json"
	}
	type row struct {
		Config *dhcp.Config `json:"config"`
		Result dhcp.Result  `json:"result"`
	}
	var rows []row
	members := append([]pool.Member(nil), st.Members...)
	sort.Slice(members, func(i, j int) bool { return members[i].Name < members[j].Name })
	for _, m := range members {
		if !m.Runs(pool.ServiceDHCP) {
			continue
		}
		mo := o
		mo.ServeDynamic = st.IsMN(m.Name)
		cfg, err := dhcp.Render(st, m.Name, mo)
		if err != nil {
			return fmt.Errorf("member %s: %w", m.Name, err)
		}
		a := &dhcp.Applier{Path: filepath.Join(dir, m.Name+ext), Format: o.Format, Backup: "-", Logger: g.logger()}
		if ifs, _ := dhcp.ParseInterfaces(st.Site[dhcp.SiteDHCPInterfaces], m.Name); o.Format == dhcp.FormatKea && len(ifs) > 0 && !(len(ifs) == 1 && ifs[0] == "*") {
			// kea-dhcp4 -t fails on interfaces that exist only on the
			// member, not on this host.
			a.Check = dhcp.CheckNever
		}
		res, err := a.Apply(ctx, cfg.Data)
		if err != nil {
			return fmt.Errorf("member %s: %w", m.Name, err)
		}
		if !res.Changed {
			res.Checked = ""
		}
		rows = append(rows, row{cfg, res})
	}
	if g.json {
		return printJSON(g.io.Out, rows)
	}
	t := newTable(g.io.Out, "member", "file", "networks", "nodes", "hosts", "dynamic", "checked")
	for _, r := range rows {
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
