package cli

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mnpool/mnpool/pool"
)

func newNodeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Add, list, remove and import compute nodes"}
	cmd.AddCommand(newNodeAddCmd(g), newNodeListCmd(g), newNodeRemoveCmd(g), newNodeImportCmd(g), newNodeSetCmd(g), newNodeShowCmd(g))
	return cmd
}

func newNodeAddCmd(g *globals) *cobra.Command {
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
	return add
}

func newNodeListCmd(g *globals) *cobra.Command {
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
			return printNodeList(g, nodes)
		}),
	}
	g.addJSON(list)
	return list
}

// printNodeList prints the table of node list.
func printNodeList(g *globals, nodes []pool.Node) error {
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
}

func newNodeRemoveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
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
}

const nodeImportLong = `import reads a CSV file whose first row names the columns:
  node (required), ip, network, mac, groups, servicenodes
mac may hold several MACs separated by '|'; groups and servicenodes are
comma-separated (quote the field). A bad row aborts the import with its row
number and nothing is written. Use - for standard input.

With --replace, nodes that exist already are changed like node set: only the
columns the file has are changed (a file of node,ip changes the IPs and keeps
MACs, groups and servicenode lists), and each change is audited as node.set
with the node before and after.`

const nodeImportExample = `  node,ip,mac,groups,servicenodes
  cn001,10.0.1.1,00:1a:2b:3c:4d:01,"compute,rack1","sn1,sn2"`

func newNodeImportCmd(g *globals) *cobra.Command {
	var replace bool
	imp := &cobra.Command{
		Use:     "import FILE.csv",
		Short:   "Add nodes from a CSV file with a header row (all rows are checked before any is written)",
		Long:    nodeImportLong,
		Example: nodeImportExample,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runNodeImport(cmd, g, args[0], replace)
		},
	}
	imp.Flags().BoolVar(&replace, "replace", false, "change nodes that exist already (only the file's columns)")
	return imp
}

func runNodeImport(cmd *cobra.Command, g *globals, file string, replace bool) error {
	var r io.Reader = g.io.In
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	csvf, err := readNodeCSV(r)
	if err != nil {
		return err
	}
	s, err := g.open(cmd.Context())
	if err != nil {
		return err
	}
	defer s.Close()
	bar := progress(g, len(csvf.nodes), "importing")
	prog := func(done, _ int) {
		if bar != nil {
			bar.Set(done)
		}
	}
	var rep pool.NodeChangeReport
	if replace {
		rep, err = s.ApplyNodes(cmd.Context(), csvf.updates(), pool.SetOptions{Create: true, Progress: prog})
	} else {
		err = s.AddNodes(cmd.Context(), csvf.nodes, pool.AddOptions{Progress: prog})
	}
	if bar != nil {
		bar.Finish()
	}
	if err != nil {
		var ne *pool.NodeError
		if errors.As(err, &ne) {
			return fmt.Errorf("%s row %d (%s): %w; nothing was imported", file, csvf.rows[ne.Index], ne.Node, ne.Err)
		}
		return err
	}
	if replace {
		fmt.Fprintf(g.io.Out, "%d nodes imported: %d added, %d changed, %d unchanged\n", len(csvf.nodes), len(rep.Created), len(rep.Changed), len(rep.Unchanged))
		return nil
	}
	fmt.Fprintf(g.io.Out, "%d nodes imported\n", len(csvf.nodes))
	return nil
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

// nodeCSV is a parsed import file: the nodes, the file row of each, the
// columns the header named and each row's raw values.
type nodeCSV struct {
	nodes   []pool.Node
	rows    []int
	columns []string // canonical names, header order
	values  []map[string]string
}

// updates turns the file into node changes of only the file's columns
// (ip before network, so network= wins).
func (f *nodeCSV) updates() []pool.NodeUpdate {
	order := []pool.NodeAttr{pool.AttrIP, pool.AttrNetwork, pool.AttrMAC, pool.AttrGroups, pool.AttrServiceNodes}
	col := map[pool.NodeAttr]string{pool.AttrIP: "ip", pool.AttrNetwork: "network", pool.AttrMAC: "mac", pool.AttrGroups: "groups", pool.AttrServiceNodes: "servicenodes"}
	out := make([]pool.NodeUpdate, len(f.nodes))
	for i, n := range f.nodes {
		out[i].Name = n.Name
		for _, a := range order {
			if slices.Contains(f.columns, col[a]) {
				out[i].Changes = append(out[i].Changes, pool.NodeChange{Attr: a, Op: pool.OpSet, Value: strings.TrimSpace(f.values[i][col[a]])})
			}
		}
	}
	return out
}

// readNodeCSV parses an import file.
func readNodeCSV(r io.Reader) (*nodeCSV, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the CSV file is empty (want a header row: node,ip,network,mac,groups,servicenodes)", pool.ErrInvalid)
		}
		return nil, fmt.Errorf("%w: CSV header: %v", pool.ErrInvalid, err)
	}
	allowed := map[string]string{"node": "node", "name": "node", "ip": "ip", "network": "network", "mac": "mac", "macs": "mac", "groups": "groups", "servicenodes": "servicenodes", "servicenode": "servicenodes"}
	f := &nodeCSV{}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "#")))
		k, ok := allowed[h]
		if !ok {
			return nil, fmt.Errorf("%w: CSV header column %q: want node, ip, network, mac, groups, servicenodes", pool.ErrInvalid, header[i])
		}
		col[k] = i
		f.columns = append(f.columns, k)
	}
	if _, ok := col["node"]; !ok {
		return nil, fmt.Errorf("%w: CSV header has no node column", pool.ErrInvalid)
	}
	for row := 2; ; row++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: CSV row %d: %v; nothing was imported", pool.ErrInvalid, row, err)
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		vals := map[string]string{}
		for k, i := range col {
			if i < len(rec) {
				vals[k] = rec[i]
			}
		}
		n, err := nodeFromFields(vals["node"], vals["ip"], vals["network"], vals["groups"], vals["mac"], vals["servicenodes"])
		if err != nil {
			return nil, fmt.Errorf("row %d: %w; nothing was imported", row, err)
		}
		f.nodes = append(f.nodes, n)
		f.rows = append(f.rows, row)
		f.values = append(f.values, vals)
	}
	return f, nil
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

func newNodeSetCmd(g *globals) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "set NODERANGE KEY=VALUE... [--dry-run]",
		Short: "Change attributes of nodes (xCAT chdef): ip, mac, groups, servicenodes, network, manual",
		Long: `set changes the attributes of every node of NODERANGE, like xCAT's chdef:
  KEY=VALUE    set the attribute (KEY= with nothing after '=' clears it)
  KEY+=VALUE   add to a list (mac, groups, servicenodes)
  KEY-=VALUE   remove from a list
Attributes: ip, mac ('|' separated, primary first), groups, servicenodes
(ordered, comma-separated; setting them marks the list as chosen by hand),
network (default: the network holding ip), manual (0 or 1). Every changed
node is checked against the pool (names, addresses, MACs, servicenodes)
before anything is written, and audited as node.set with before and after.`,
		Example: `  mnpool node set cn001 ip=10.0.1.17 mac=00:1a:2b:3c:4d:17
  mnpool node set rack1 groups+=gpu servicenodes=sn2,sn1 --dry-run
  mnpool node set cn[001-010] mac=`,
		Args: cobra.MinimumNArgs(2),
		RunE: g.withStore(func(cmd *cobra.Command, args []string, s *pool.Store) error {
			var changes []pool.NodeChange
			for _, a := range args[1:] {
				c, err := pool.ParseNodeChange(a)
				if err != nil {
					return usageError{err}
				}
				changes = append(changes, c)
			}
			st, err := s.LoadState(cmd.Context())
			if err != nil {
				return err
			}
			nodes, err := selectNodes(st, args[:1])
			if err != nil {
				return err
			}
			names := make([]string, len(nodes))
			for i, n := range nodes {
				names[i] = n.Name
			}
			rep, err := s.SetNodes(cmd.Context(), names, changes, pool.SetOptions{DryRun: dryRun})
			if err != nil {
				var ne *pool.NodeError
				if errors.As(err, &ne) {
					return fmt.Errorf("node %s: %w; nothing was changed", ne.Node, ne.Err)
				}
				return err
			}
			if g.json {
				return printJSON(g.io.Out, rep)
			}
			return printNodeChanges(g, rep)
		}),
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "check and show the changes, write nothing")
	g.addJSON(cmd)
	return cmd
}

func printNodeChanges(g *globals, rep pool.NodeChangeReport) error {
	w := g.io.Out
	for _, d := range rep.Changed {
		for _, a := range d.Changed {
			fmt.Fprintf(w, "%s: %s: %q -> %q\n", d.Node, a, a.Value(*d.Before), a.Value(d.After))
		}
	}
	verb := "changed"
	if rep.DryRun {
		verb = "would be changed (dry run: nothing written)"
	}
	fmt.Fprintf(w, "%d nodes %s, %d unchanged\n", len(rep.Changed), verb, len(rep.Unchanged))
	return nil
}

func newNodeShowCmd(g *globals) *cobra.Command {
	var long bool
	var keys string
	cmd := &cobra.Command{
		Use:   "show NODERANGE [-l] [-i KEYS]",
		Short: "Show nodes as xCAT's lsdef does: names, or every attribute with -l, or some with -i",
		Example: `  mnpool node show compute
  mnpool node show cn001 -l
  mnpool node show rack1 -i ip,mac`,
		Args: cobra.MinimumNArgs(1),
		RunE: g.withStore(func(cmd *cobra.Command, args []string, s *pool.Store) error {
			attrs := pool.NodeAttrs()
			if keys != "" {
				attrs = nil
				for _, k := range splitField(keys, ",") {
					a, err := pool.ParseNodeAttr(k)
					if err != nil {
						return usageError{err}
					}
					attrs = append(attrs, a)
				}
				long = true
			}
			st, err := s.LoadState(cmd.Context())
			if err != nil {
				return err
			}
			nodes, err := selectNodes(st, args)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(g.io.Out, nodeShowJSON(nodes, attrs))
			}
			for _, n := range nodes {
				if !long {
					fmt.Fprintf(g.io.Out, "%s  (node)\n", n.Name)
					continue
				}
				fmt.Fprintf(g.io.Out, "Object name: %s\n", n.Name)
				for _, a := range attrs {
					fmt.Fprintf(g.io.Out, "    %s=%s\n", a, a.Value(n))
				}
			}
			return nil
		}),
	}
	cmd.Flags().BoolVarP(&long, "long", "l", false, "every attribute")
	cmd.Flags().StringVarP(&keys, "info", "i", "", "only these attributes (comma-separated)")
	g.addJSON(cmd)
	return cmd
}

func nodeShowJSON(nodes []pool.Node, attrs []pool.NodeAttr) []map[string]string {
	out := make([]map[string]string, 0, len(nodes))
	for _, n := range nodes {
		m := map[string]string{"node": n.Name}
		for _, a := range attrs {
			m[string(a)] = a.Value(n)
		}
		out = append(out, m)
	}
	return out
}
