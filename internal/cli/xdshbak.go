package cli

import (
	"fmt"
	"sort"

	"github.com/spf13/cobra"

	"github.com/mnpool/mnpool/dispatch"
	"github.com/mnpool/mnpool/noderange"
)

func newXdshbakCmd(g *globals) *cobra.Command {
	var collate, plain bool
	cmd := &cobra.Command{
		Use:   "xdshbak [-c] [-x]",
		Short: "Group xdsh output by node (xCAT xdshbak)",
		Long: `xdshbak reads the "node: line" output of mnpool xdsh (or of pdsh, clush,
xCAT's xdsh) on stdin and prints it grouped by node: a "HOST: node" header
and the node's lines. With -c nodes whose output is identical are printed
once under a "HOSTS" header with their noderange. With -x each line keeps its
"node: " prefix, nodes in order, no headers. Lines without a "node: " prefix
are reported on stderr and make the exit status 1.

xdshbak sees only the text: it cannot tell exit statuses apart. mnpool xdsh
--collate groups by output and exit status together.`,
		Example: `  mnpool xdsh compute -- uname -r | mnpool xdshbak -c
  mnpool xdsh rack1 -- 'grep -c processor /proc/cpuinfo' | mnpool xdshbak -x`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runXdshbak(g, collate, plain)
		},
	}
	cmd.Flags().BoolVarP(&collate, "collapse", "c", false, "print nodes with identical output once")
	cmd.Flags().BoolVarP(&plain, "no-header", "x", false, `keep the "node: " prefix on each line, nodes in order, no headers`)
	return cmd
}

func runXdshbak(g *globals, collate, plain bool) error {
	outs, stray, err := dispatch.ReadPrefixed(g.io.In)
	if err != nil {
		return fmt.Errorf("reading stdin: %w", err)
	}
	switch {
	case collate:
		err = dispatch.WriteGroups(g.io.Out, dispatch.CollateOutputs(outs))
	case plain:
		sort.SliceStable(outs, func(a, b int) bool { return noderange.Less(outs[a].Node, outs[b].Node) })
		for _, o := range outs {
			writePrefixed(g.io.Out, o.Node, o.Text)
		}
	default:
		err = dispatch.WriteByNode(g.io.Out, outs)
	}
	if err != nil {
		return err
	}
	for _, l := range stray {
		fmt.Fprintf(g.io.Err, "xdshbak: line without a \"node: \" prefix: %q\n", l)
	}
	if len(stray) > 0 {
		return fmt.Errorf("%d lines without a node prefix", len(stray))
	}
	return nil
}
