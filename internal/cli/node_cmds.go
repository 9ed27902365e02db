package cli

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mnpool/mnpool/pool"
)

func newNodeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Add, list, remove and import compute nodes"}
	var ip, network, groups, macs, sns string
	add := &cobra.Command{
		Use:     "add NAME [--ip IP] [--mac MAC[|MAC]] [--groups G1,G2] [--servicenodes SN1,SN2]",
		Short:   "Add one compute node",
		Example: "  mnpool node add cn001 --ip 10.0.1.1 --mac 00:1a:2b:3c:4d:01 --groups compute,rack1 --servicenodes sn1,sn2",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := nodeFromFields(args[0], ip, network, groups, macs, sns)
			if err != nil {
				return err
			}
			s, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			if err := s.AddNodes(cmd.Context(), []pool.Node{n}, pool.AddOptions{}); err != nil {
				var ne *pool.NodeError
				if errors.As(err, &ne) {
					return ne.Err
				}
				return err
			}
			fmt.Fprintf(g.io.Out, "node %s added\n", n.Name)
			return nil
		},
	}
	add.Flags().StringVar(&ip, "ip", "", "the node's IP address")
	add.Flags().StringVar(&network, "network", "", "network name (default: the network that contains --ip)")
	add.Flags().StringVar(&groups, "groups", "", "comma-separated groups")
	add.Flags().StringVar(&macs, "mac", "", "MAC address(es), '|' separated, primary first")
	add.Flags().StringVar(&sns, "servicenodes", "", "ordered servicenode list, comma-separated (marks the list as set by hand)")

	list := &cobra.Command{
		Use:   "list [NODERANGE]",
		Short: "List compute nodes with their servicenode lists",
		RunE: g.withStore(func(cmd *cobra.Command, args []string, s *pool.Store) error {
			st, err := s.LoadState(cmd.Context())
			if err != nil {
				return err
			}
			nodes, err := selectNodes(st, args)
			if err != nil {
				return err
			}
			if g.json {
				if nodes == nil {
					nodes = []pool.Node{}
				}
				return printJSON(g.io.Out, nodes)
			}
			t := newTable(g.io.Out, "node", "ip", "network", "macs", "groups", "servicenodes")
			for _, n := range nodes {
				ipS := ""
				if n.IP.IsValid() {
					ipS = n.IP.String()
				}
				snl := strings.Join(n.ServiceNodes, ",")
				if n.Manual && snl != "" {
					snl += " (manual)"
				}
				t.row(n.Name, ipS, n.Network, strings.Join(n.MACs, "|"), strings.Join(n.Groups, ","), snl)
			}
			return t.flush()
		}),
	}
	g.addJSON(list)

	remove := &cobra.Command{
		Use:   "remove NODERANGE",
		Short: "Remove compute nodes (every name must exist, else nothing is removed)",
		Args:  cobra.MinimumNArgs(1),
		RunE: g.withStore(func(cmd *cobra.Command, args []string, s *pool.Store) error {
			st, err := s.LoadState(cmd.Context())
			if err != nil {
				return err
			}
			nodes, err := selectNodes(st, args)
			if err != nil {
				return err
			}
			names := make([]string, len(nodes))
			for i, n := range nodes {
				names[i] = n.Name
			}
			if err := s.RemoveNodes(cmd.Context(), names); err != nil {
				return err
			}
			fmt.Fprintf(g.io.Out, "%d nodes removed\n", len(names))
			return nil
		}),
	}

	var replace bool
	imp := &cobra.Command{
		Use:   "import FILE.csv",
		Short: "Add nodes from a CSV file with a header row (all rows are checked before any is written)",
		Long: `import reads a CSV file whose first row names the columns:
  node (required), ip, network, mac, groups, servicenodes
mac may hold several MACs separated by '|'; groups and servicenodes are
comma-separated (quote the field). A bad row aborts the import with its row
number and nothing is written. Use - for standard input.`,
		Example: `  node,ip,mac,groups,servicenodes
  cn001,10.0.1.1,00:1a:2b:3c:4d:01,"compute,rack1","sn1,sn2"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r io.Reader = g.io.In
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			}
			nodes, rows, err := readNodeCSV(r)
			if err != nil {
				return err
			}
			s, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			bar := progress(g, len(nodes), "importing")
			opts := pool.AddOptions{Replace: replace}
			if bar != nil {
				opts.Progress = func(done, _ int) { bar.Set(done) }
			}
			err = s.AddNodes(cmd.Context(), nodes, opts)
			if bar != nil {
				bar.Finish()
			}
			if err != nil {
				var ne *pool.NodeError
				if errors.As(err, &ne) {
					return fmt.Errorf("%s row %d (%s): %w; nothing was imported", args[0], rows[ne.Index], ne.Node, ne.Err)
				}
				return err
			}
			fmt.Fprintf(g.io.Out, "%d nodes imported\n", len(nodes))
			return nil
		},
	}
	imp.Flags().BoolVar(&replace, "replace", false, "update nodes that exist already")
	cmd.AddCommand(add, list, remove, imp)
	return cmd
}

func nodeFromFields(name, ip, network, groups, macs, sns string) (pool.Node, error) {
	n := pool.Node{Name: strings.TrimSpace(name), Network: strings.TrimSpace(network)}
	if ip = strings.TrimSpace(ip); ip != "" {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return n, fmt.Errorf("%w: IP %q is not an IP address", pool.ErrInvalid, ip)
		}
		n.IP = a
	}
	n.Groups = splitField(groups, ",")
	n.MACs = splitField(macs, "|")
	n.ServiceNodes = splitField(sns, ",")
	n.Manual = len(n.ServiceNodes) > 0
	return n, nil
}

func splitField(s, sep string) []string {
	var out []string
	for _, p := range strings.Split(s, sep) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// readNodeCSV parses an import file; rows[i] is the file row of nodes[i].
func readNodeCSV(r io.Reader) ([]pool.Node, []int, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, fmt.Errorf("%w: the CSV file is empty (want a header row: node,ip,network,mac,groups,servicenodes)", pool.ErrInvalid)
		}
		return nil, nil, fmt.Errorf("%w: CSV header: %v", pool.ErrInvalid, err)
	}
	allowed := map[string]string{"node": "node", "name": "node", "ip": "ip", "network": "network", "mac": "mac", "macs": "mac", "groups": "groups", "servicenodes": "servicenodes", "servicenode": "servicenodes"}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "#")))
		k, ok := allowed[h]
		if !ok {
			return nil, nil, fmt.Errorf("%w: CSV header column %q: want node, ip, network, mac, groups, servicenodes", pool.ErrInvalid, header[i])
		}
		col[k] = i
	}
	if _, ok := col["node"]; !ok {
		return nil, nil, fmt.Errorf("%w: CSV header has no node column", pool.ErrInvalid)
	}
	var nodes []pool.Node
	var rows []int
	for row := 2; ; row++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%w: CSV row %d: %v; nothing was imported", pool.ErrInvalid, row, err)
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		get := func(k string) string {
			if i, ok := col[k]; ok && i < len(rec) {
				return rec[i]
			}
			return ""
		}
		n, err := nodeFromFields(get("node"), get("ip"), get("network"), get("groups"), get("mac"), get("servicenodes"))
		if err != nil {
			return nil, nil, fmt.Errorf("row %d: %w; nothing was imported", row, err)
		}
		nodes = append(nodes, n)
		rows = append(rows, row)
	}
	return nodes, rows, nil
}

// selectNodes picks nodes by xCAT noderange; each argument is a noderange
// and the union is returned in natural order. No arguments means all.
// Unknown names are an error that lists them all.
func selectNodes(st *pool.State, args []string) ([]pool.Node, error) {
	if len(args) == 0 {
		return st.Nodes, nil
	}
	return st.Select(strings.Join(args, ","))
}
