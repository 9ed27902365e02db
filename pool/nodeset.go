package pool

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/jmoiron/sqlx"
)

// Changing nodes (xCAT's chdef): a change names an attribute, an operation
// and a value. Store.SetNodes applies the same changes to many nodes,
// Store.ApplyNodes applies each node its own (node import --replace). Every
// node is validated as a whole, against the pool and the other changed
// nodes, before anything is written; each row is updated conditionally on
// the revision that was read, so a concurrent change is a conflict, never
// lost.

// NodeAttr is a node attribute that can be changed.
type NodeAttr string

// Node attributes, named as in xCAT (lsdef/chdef).
const (
	AttrIP           NodeAttr = "ip"
	AttrMAC          NodeAttr = "mac"
	AttrGroups       NodeAttr = "groups"
	AttrServiceNodes NodeAttr = "servicenodes"
	AttrNetwork      NodeAttr = "network"
	AttrManual       NodeAttr = "manual"
)

// NodeAttrs lists the attributes in display order.
func NodeAttrs() []NodeAttr {
	return []NodeAttr{AttrGroups, AttrIP, AttrMAC, AttrNetwork, AttrServiceNodes, AttrManual}
}

// ParseNodeAttr accepts an attribute name or an xCAT alias (macs,
// servicenode, noderes.servicenode, hosts.ip, mac.mac, nodelist.groups).
func ParseNodeAttr(s string) (NodeAttr, error) {
	k := strings.ToLower(strings.TrimSpace(s))
	switch k {
	case "ip", "hosts.ip":
		return AttrIP, nil
	case "mac", "macs", "mac.mac":
		return AttrMAC, nil
	case "groups", "nodelist.groups":
		return AttrGroups, nil
	case "servicenodes", "servicenode", "noderes.servicenode":
		return AttrServiceNodes, nil
	case "network":
		return AttrNetwork, nil
	case "manual":
		return AttrManual, nil
	}
	return "", fmt.Errorf("%w: node attribute %q: want one of ip, mac, groups, servicenodes, network, manual", ErrInvalid, s)
}

// ChangeOp is how a change applies its value.
type ChangeOp string

// Change operations: KEY=VALUE sets (an empty value clears), KEY+=VALUE
// adds to a list, KEY-=VALUE removes from a list.
const (
	OpSet    ChangeOp = "="
	OpAdd    ChangeOp = "+="
	OpRemove ChangeOp = "-="
)

// NodeChange is one KEY=VALUE of node set.
type NodeChange struct {
	Attr  NodeAttr `json:"attr"`
	Op    ChangeOp `json:"op"`
	Value string   `json:"value"`
}

func (c NodeChange) String() string { return string(c.Attr) + string(c.Op) + c.Value }

// ParseNodeChange parses KEY=VALUE, KEY= (clear), KEY+=VALUE or
// KEY-=VALUE. Only list attributes (mac, groups, servicenodes) take += and
// -=.
func ParseNodeChange(s string) (NodeChange, error) {
	i := strings.IndexByte(s, '=')
	if i <= 0 {
		return NodeChange{}, fmt.Errorf("%w: %q: want KEY=VALUE, KEY= (clear), KEY+=VALUE or KEY-=VALUE", ErrInvalid, s)
	}
	key, op := s[:i], OpSet
	switch {
	case strings.HasSuffix(key, "+"):
		key, op = key[:len(key)-1], OpAdd
	case strings.HasSuffix(key, "-"):
		key, op = key[:len(key)-1], OpRemove
	}
	a, err := ParseNodeAttr(key)
	if err != nil {
		return NodeChange{}, err
	}
	if op != OpSet && a != AttrMAC && a != AttrGroups && a != AttrServiceNodes {
		return NodeChange{}, fmt.Errorf("%w: %q: %s is not a list; %s works only on mac, groups and servicenodes", ErrInvalid, s, a, op)
	}
	return NodeChange{Attr: a, Op: op, Value: strings.TrimSpace(s[i+1:])}, nil
}

func listSep(a NodeAttr) string {
	if a == AttrMAC {
		return "|"
	}
	return ","
}

func splitValues(v, sep string) []string {
	var out []string
	for _, p := range strings.Split(v, sep) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func applyList(cur []string, c NodeChange, fold func(string) string) []string {
	vals := splitValues(c.Value, listSep(c.Attr))
	switch c.Op {
	case OpSet:
		return vals
	case OpAdd:
		out := slices.Clone(cur)
		for _, v := range vals {
			if !slices.ContainsFunc(out, func(x string) bool { return fold(x) == fold(v) }) {
				out = append(out, v)
			}
		}
		return out
	default:
		return slices.DeleteFunc(slices.Clone(cur), func(x string) bool {
			return slices.ContainsFunc(vals, func(v string) bool { return fold(x) == fold(v) })
		})
	}
}

func macFold(s string) string {
	if m, err := NormalizeMAC(s); err == nil {
		return m
	}
	return s
}

// Apply returns n with the change applied (not yet validated against the
// pool).
func (c NodeChange) Apply(n Node) (Node, error) {
	switch c.Attr {
	case AttrIP:
		n.IP = netip.Addr{}
		if c.Value != "" {
			a, err := netip.ParseAddr(c.Value)
			if err != nil {
				return n, fmt.Errorf("%w: ip %q is not an IP address", ErrInvalid, c.Value)
			}
			n.IP = a.Unmap()
		}
		// The network follows the address unless network= is given too
		// (changes apply in order; a later network= wins).
		n.Network = ""
	case AttrNetwork:
		n.Network = c.Value
	case AttrMAC:
		n.MACs = applyList(n.MACs, c, macFold)
	case AttrGroups:
		n.Groups = applyList(n.Groups, c, strings.ToLower)
	case AttrServiceNodes:
		n.ServiceNodes = applyList(n.ServiceNodes, c, strings.ToLower)
		n.Manual = len(n.ServiceNodes) > 0
	case AttrManual:
		switch strings.ToLower(c.Value) {
		case "1", "yes", "true":
			n.Manual = true
		case "0", "no", "false", "":
			n.Manual = false
		default:
			return n, fmt.Errorf("%w: manual=%q: want 0 or 1", ErrInvalid, c.Value)
		}
	}
	return n, nil
}

// NodeUpdate is the changes for one node.
type NodeUpdate struct {
	Name    string       `json:"node"`
	Changes []NodeChange `json:"changes"`
}

// SetOptions tune SetNodes and ApplyNodes.
type SetOptions struct {
	// DryRun validates and reports, writing nothing.
	DryRun bool
	// Create makes nodes that do not exist (ApplyNodes for an import);
	// without it an unknown node is ErrNotFound.
	Create bool
	// Progress is called after each committed batch.
	Progress func(done, total int)
}

// NodeDiff is one node's change: the node before (nil when created) and
// after, and the attributes that differ.
type NodeDiff struct {
	Node    string     `json:"node"`
	Before  *Node      `json:"before,omitempty"`
	After   Node       `json:"after"`
	Changed []NodeAttr `json:"changed"`
}

// NodeChangeReport says what SetNodes or ApplyNodes changed (or would
// change, in a dry run). Unchanged lists the nodes the changes left as
// they were; nothing is written for them.
type NodeChangeReport struct {
	Changed   []NodeDiff `json:"changed"`
	Created   []NodeDiff `json:"created"`
	Unchanged []string   `json:"unchanged"`
	DryRun    bool       `json:"dry_run"`
}

// SetNodes applies the same changes, in order, to every named node (all
// must exist).
func (s *Store) SetNodes(ctx context.Context, names []string, changes []NodeChange, o SetOptions) (NodeChangeReport, error) {
	ups := make([]NodeUpdate, len(names))
	for i, n := range names {
		ups[i] = NodeUpdate{Name: n, Changes: changes}
	}
	return s.ApplyNodes(ctx, ups, o)
}

// ApplyNodes applies each update's changes to its node, validates every
// resulting node against the pool and the others (the rules of AddNodes:
// names, addresses, MACs, servicenodes) and writes the changed ones, each
// with a conditional update on the revision read. An invalid node is a
// *NodeError and nothing is written. A node changed by someone else
// meanwhile is ErrConflict (the batches before it stay written; run the
// command again). Every changed node is audited as node.set with its
// before and after; created nodes as node.add.
func (s *Store) ApplyNodes(ctx context.Context, ups []NodeUpdate, o SetOptions) (NodeChangeReport, error) {
	rep := NodeChangeReport{DryRun: o.DryRun}
	var ix *poolIndex
	var cur map[string]Node
	err := s.Read(ctx, func(tx *sqlx.Tx) error {
		var err error
		if ix, err = loadIndex(ctx, tx); err != nil {
			return err
		}
		nodes, err := readNodes(ctx, tx)
		cur = make(map[string]Node, len(nodes))
		for _, n := range nodes {
			cur[n.Name] = n
		}
		return err
	})
	if err != nil {
		return rep, err
	}
	after, diffs, err := planUpdates(ups, cur, o.Create)
	if err != nil {
		return rep, err
	}
	if len(after) > 0 {
		if err := ix.checkBatch(after, true); err != nil {
			return rep, err
		}
	}
	for i, d := range diffs {
		d.After = after[i]
		d.Changed = changedAttrs(d.Before, d.After)
		switch {
		case d.Before == nil:
			rep.Created = append(rep.Created, d)
		case len(d.Changed) == 0:
			rep.Unchanged = append(rep.Unchanged, d.Node)
		default:
			rep.Changed = append(rep.Changed, d)
		}
	}
	if o.DryRun {
		return rep, nil
	}
	return rep, s.writeChanges(ctx, rep, ix, o.Progress)
}

func planUpdates(ups []NodeUpdate, cur map[string]Node, create bool) ([]Node, []NodeDiff, error) {
	var missing []string
	after := make([]Node, 0, len(ups))
	diffs := make([]NodeDiff, 0, len(ups))
	for i, u := range ups {
		n, ok := cur[u.Name]
		var before *Node
		switch {
		case ok:
			b := n
			b.Groups, b.MACs, b.ServiceNodes = slices.Clone(n.Groups), slices.Clone(n.MACs), slices.Clone(n.ServiceNodes)
			before = &b
		case create:
			n = Node{Name: u.Name}
		default:
			missing = append(missing, u.Name)
			continue
		}
		netGiven := false
		for _, c := range u.Changes {
			var err error
			if n, err = c.Apply(n); err != nil {
				return nil, nil, &NodeError{Index: i, Node: u.Name, Err: err}
			}
			netGiven = netGiven || c.Attr == AttrNetwork
			if c.Attr == AttrIP && !netGiven && before != nil && !n.IP.IsValid() {
				n.Network = before.Network // ip= keeps the node on its network
			}
		}
		after = append(after, n)
		diffs = append(diffs, NodeDiff{Node: u.Name, Before: before})
	}
	if len(missing) > 0 {
		return nil, nil, fmt.Errorf("%w: nodes %s", ErrNotFound, strings.Join(missing, ", "))
	}
	return after, diffs, nil
}

func changedAttrs(b *Node, a Node) []NodeAttr {
	if b == nil {
		return NodeAttrs()
	}
	var out []NodeAttr
	add := func(attr NodeAttr, differ bool) {
		if differ {
			out = append(out, attr)
		}
	}
	add(AttrGroups, !slices.Equal(b.Groups, a.Groups))
	add(AttrIP, b.IP != a.IP)
	add(AttrMAC, !slices.Equal(b.MACs, a.MACs))
	add(AttrNetwork, b.Network != a.Network)
	add(AttrServiceNodes, !slices.Equal(b.ServiceNodes, a.ServiceNodes))
	add(AttrManual, b.Manual != a.Manual)
	return out
}

func (s *Store) writeChanges(ctx context.Context, rep NodeChangeReport, ix *poolIndex, progress func(done, total int)) error {
	total := len(rep.Changed) + len(rep.Created)
	done := 0
	for start := 0; start < len(rep.Changed); start += s.o.batch {
		batch := rep.Changed[start:min(start+s.o.batch, len(rep.Changed))]
		if err := s.Tx(ctx, func(tx *sqlx.Tx) error { return s.writeNodeDiffs(ctx, tx, batch) }); err != nil {
			if s.IsDuplicate(err) {
				err = fmt.Errorf("%w: an IP or MAC of batch %d was taken concurrently: %v", ErrExists, start/s.o.batch+1, err)
			}
			return err
		}
		done += len(batch)
		if progress != nil {
			progress(done, total)
		}
	}
	if len(rep.Created) == 0 {
		return nil
	}
	nodes := make([]Node, len(rep.Created))
	for i, d := range rep.Created {
		nodes[i] = d.After
	}
	return s.AddNodes(ctx, nodes, AddOptions{Progress: func(d, _ int) {
		if progress != nil {
			progress(done+d, total)
		}
	}})
}

// nodeAudit is the detail of a node.set record.
type nodeAudit struct {
	Before Node       `json:"before"`
	After  Node       `json:"after"`
	Fields []NodeAttr `json:"changed"`
}

// writeNodeDiffs writes a batch of changed nodes with the node batch
// writer: one conditional update of their rows on the revisions read,
// then the MACs of the nodes whose MACs changed, and a node.set audit
// record per node. A node changed or removed by someone else since it was
// read fails the whole batch with ErrConflict.
func (s *Store) writeNodeDiffs(ctx context.Context, tx *sqlx.Tx, batch []NodeDiff) error {
	b := nodeBatch{batchForm: batchForm{setRow: true}, writes: make([]nodeWrite, len(batch))}
	for i, d := range batch {
		a := d.After
		ip := ""
		if a.IP.IsValid() {
			ip = a.IP.String()
		}
		b.writes[i] = nodeWrite{node: a.Name, rev: d.Before.Revision, old: joinList(d.Before.ServiceNodes), new: joinList(a.ServiceNodes),
			row: rowColumns{network: a.Network, ip: ip, groups: joinList(a.Groups), manual: a.Manual}}
	}
	won, written, err := s.writeNodes(ctx, tx, b, nil, true)
	if err != nil {
		return err
	}
	if int(written) != len(batch) {
		return setConflict(batch, won)
	}
	if err := replaceMACs(ctx, tx, batch); err != nil {
		return err
	}
	for _, d := range batch {
		after := d.After
		after.Revision = d.Before.Revision + 1
		if err := s.Audit(ctx, tx, "node.set", after.Name, nodeAudit{Before: *d.Before, After: after, Fields: d.Changed}); err != nil {
			return err
		}
	}
	return nil
}

// setConflict is the error of a batch whose update missed a row: it names
// the first node that does not hold its change (won, from writeNodes),
// else the batch (a row already held the change: an identical concurrent
// change, or an earlier run of this transaction that committed).
func setConflict(batch []NodeDiff, won []bool) error {
	who := fmt.Sprintf("a node of %s..%s (%d nodes)", batch[0].After.Name, batch[len(batch)-1].After.Name, len(batch))
	for i, ok := range won {
		if !ok {
			who = "node " + batch[i].After.Name
			break
		}
	}
	return fmt.Errorf("%w: %s was changed or removed by someone else meanwhile; nothing of this batch was written, run the command again", ErrConflict, who)
}

// replaceMACs replaces the MAC rows of the batch's nodes whose MACs
// changed: one DELETE and one INSERT.
func replaceMACs(ctx context.Context, tx *sqlx.Tx, batch []NodeDiff) error {
	var names, macArgs []any
	for _, d := range batch {
		if !slices.Contains(d.Changed, AttrMAC) {
			continue
		}
		names = append(names, d.After.Name)
		for i, m := range d.After.MACs {
			macArgs = append(macArgs, m, d.After.Name, i)
		}
	}
	if len(names) == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM node_macs WHERE node IN ("+placeholders(len(names))+")", names...); err != nil {
		return err
	}
	if len(macArgs) == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, "INSERT INTO node_macs (mac, node, pos) VALUES "+valuesList(len(macArgs)/3, 3), macArgs...)
	return err
}

// Value returns n's value of attribute a as node set takes it and node
// show prints it ("" when unset): lists comma-separated, MACs '|'
// separated, manual 0 or 1.
func (a NodeAttr) Value(n Node) string {
	switch a {
	case AttrIP:
		if n.IP.IsValid() {
			return n.IP.String()
		}
		return ""
	case AttrMAC:
		return strings.Join(n.MACs, "|")
	case AttrGroups:
		return joinList(n.Groups)
	case AttrServiceNodes:
		return joinList(n.ServiceNodes)
	case AttrNetwork:
		return n.Network
	case AttrManual:
		if n.Manual {
			return "1"
		}
		return "0"
	}
	return ""
}
