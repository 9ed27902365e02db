package cli

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/xcat"
)

const importXCATLong = `import-xcat reads DIR/site.csv, networks.csv and nodelist.csv (required) and
servicenode.csv, hosts.csv, noderes.csv and mac.csv (optional), as xCAT's
tabdump (or dumpxCATdb) writes them, and creates the pool:

  site             site settings (master becomes the MN)
  networks         networks: net/mask, gateway, dynamicrange, domain, mgtifname
  servicenode      the SNs and their services (dhcp, dns, ntp, tftp, console);
                   group rows (e.g. "service") apply to the group's nodes
  hosts            node and member addresses (otherinterfaces for members)
  nodelist         compute nodes and their groups
  noderes          servicenode lists (node rows, else the first group's row)
  mac              MACs ("|" separated; MAC!HOST for another host is left out)

Regular-expression rows are evaluated for every node of the group, as xCAT
does: |\D+(\d+)|10.0.0.($1+0)| gives cn007 10.0.0.7 (+ - * / % and
parentheses), /\z/-bmc/ appends -bmc to the node name. A value that still
cannot be mapped (no match, not an address) is listed node by node. Whatever
has no place in the pool (a gateway of <xcatmaster>, per-network DHCP servers,
unknown columns and tables) is reported and left out.

mnpool export writes these files too (plus mnpool_members.csv and
mnpool_nodes.csv); import-xcat reads them back to the same pool.

With --merge the files are brought into the existing pool instead: the
difference is shown first (+ added, ~ changed; what the pool has and the files
have not is kept), and nothing is written without --yes. Wrong values (bad addresses, invalid names, two nodes with one MAC)
stop the import before anything is written: the whole pool is first built in a
scratch database. The target pool must be new, or have the same MN (running the
import again finishes an interrupted one). Run mnpool assign afterwards to give
nodes without a complete list their servicenodes.`

func newImportXCATCmd(g *globals) *cobra.Command {
	var mn string
	var dryRun, merge, yes bool
	cmd := &cobra.Command{
		Use:   "import-xcat DIR [--mn NAME] [--dry-run] [--merge [--yes]]",
		Short: "Create the pool from xCAT tables dumped with tabdump",
		Long:  importXCATLong,
		Example: `  mkdir /tmp/xcat && cd /tmp/xcat
  for t in site networks nodelist noderes servicenode mac hosts; do tabdump $t > $t.csv; done
  mnpool --db mysql:... import-xcat /tmp/xcat --dry-run
  mnpool --db mysql:... import-xcat /tmp/xcat && mnpool assign`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			info, err := os.Stat(args[0])
			if err != nil {
				return err
			}
			if !info.IsDir() {
				return usagef("%s is not a directory; give the directory holding the *.csv files", args[0])
			}
			x, err := xcat.Plan(os.DirFS(args[0]), xcat.Options{MN: mn})
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if merge {
				return runMerge(cmd, g, x, yes && !dryRun)
			}
			if dryRun {
				err = xcat.Validate(ctx, x)
			} else {
				var s *pool.Store
				if s, err = g.openPool(ctx, true); err != nil {
					return err
				}
				defer s.Close()
				err = xcat.Apply(ctx, s, x)
			}
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(g.io.Out, x)
			}
			return printXCATImport(g, x, dryRun)
		},
	}
	cmd.Flags().StringVar(&mn, "mn", "", "name of the MN (default: site.master, resolved through the hosts table)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "check and report, write nothing")
	cmd.Flags().BoolVar(&merge, "merge", false, "bring the files into the existing pool; show the difference first")
	cmd.Flags().BoolVar(&yes, "yes", false, "with --merge: write the difference (without it nothing is written)")
	g.addJSON(cmd)
	return cmd
}

func runMerge(cmd *cobra.Command, g *globals, x *xcat.Import, apply bool) error {
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
	plan := xcat.PlanMerge(st, x)
	if apply {
		if err := xcat.Merge(ctx, s, plan); err != nil {
			return err
		}
	}
	if g.json {
		return printJSON(g.io.Out, map[string]any{"changes": plan.Changes, "applied": apply, "unmapped": x.Unmapped})
	}
	for _, c := range plan.Changes {
		fmt.Fprintln(g.io.Out, c)
	}
	printUnmapped(g, x)
	switch {
	case plan.Empty():
		fmt.Fprintln(g.io.Out, "the pool already holds everything in the files; nothing to merge")
	case apply:
		fmt.Fprintf(g.io.Out, "merged: %d changes written\n", len(plan.Changes))
	default:
		fmt.Fprintf(g.io.Out, "%d changes; nothing was written (run again with --yes to write them)\n", len(plan.Changes))
	}
	return nil
}

func printUnmapped(g *globals, x *xcat.Import) {
	if len(x.Unmapped) == 0 {
		return
	}
	fmt.Fprintf(g.io.Out, "\nnot mapped, node by node (%d):\n", len(x.Unmapped))
	t := newTable(g.io.Out, "node", "attribute", "value", "why")
	for _, u := range x.Unmapped {
		t.row(u.Node, u.Table+"."+u.Column, u.Value, u.Reason)
	}
	t.flush()
}

func printXCATImport(g *globals, x *xcat.Import, dryRun bool) error {
	w := g.io.Out
	var sns []string
	for _, m := range x.Members {
		sns = append(sns, m.Name)
	}
	manual := 0
	for _, n := range x.Nodes {
		if n.Manual {
			manual++
		}
	}
	verb := "imported"
	if dryRun {
		verb = "would be imported (dry run: nothing written)"
	}
	fmt.Fprintf(w, "%s: MN %s, %d SNs (%s), %d networks, %d nodes (%d with their xCAT servicenode list), %d site settings\n",
		verb, x.MN.Name, len(sns), strings.Join(sns, ","), len(x.Networks), len(x.Nodes), manual, len(x.Site))
	printUnmapped(g, x)
	if len(x.Issues) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nnot imported (%d kinds):\n", len(x.Issues))
	t := newTable(w, "attribute", "rows", "examples", "why")
	for _, is := range x.Issues {
		attr := is.Table
		if is.Column != "" {
			attr += "." + is.Column
		}
		t.row(attr, strconv.Itoa(is.Count), strings.Join(is.Keys, ","), is.Reason)
	}
	return t.flush()
}
