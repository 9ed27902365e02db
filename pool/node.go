package pool

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/jmoiron/sqlx"
)

// NodeError says which node of a bulk call was rejected. Index is the
// node's position in the call's slice (importers add their own row
// offset). It unwraps to the cause (ErrInvalid, ErrExists, ...).
type NodeError struct {
	Index int
	Node  string
	Err   error
}

func (e *NodeError) Error() string {
	return fmt.Sprintf("node %d (%s): %v", e.Index+1, e.Node, e.Err)
}

func (e *NodeError) Unwrap() error { return e.Err }

// AddOptions tune AddNodes.
type AddOptions struct {
	// Replace updates nodes that exist already instead of failing.
	Replace bool
	// Progress, when set, is called after each committed batch with the
	// number of nodes written so far and the total.
	Progress func(done, total int)
}

// poolIndex is what node validation checks against.
type poolIndex struct {
	nets       []Network
	netByName  map[string]Network
	members    map[string]Member
	nodeIP     map[netip.Addr]string // ip -> node name
	nodeMAC    map[string]string     // mac -> node name
	memberIP   map[netip.Addr]string
	nodeExists map[string]int64 // name -> revision
	// names is the one name space of nodes, members and groups, by
	// lower-case name.
	names nameSpace
}

func loadIndex(ctx context.Context, tx *sqlx.Tx) (*poolIndex, error) {
	nets, err := readNetworks(ctx, tx)
	if err != nil {
		return nil, err
	}
	ms, err := readMembers(ctx, tx)
	if err != nil {
		return nil, err
	}
	ix := &poolIndex{nets: nets, netByName: map[string]Network{}, members: map[string]Member{},
		nodeIP: map[netip.Addr]string{}, nodeMAC: map[string]string{}, memberIP: map[netip.Addr]string{}, nodeExists: map[string]int64{},
		names: nameSpace{}}
	for _, n := range nets {
		ix.netByName[n.Name] = n
	}
	for _, m := range ms {
		ix.members[m.Name] = m
		ix.names.add(kindMember, m.Name)
		for _, a := range m.Addresses {
			ix.memberIP[a] = m.Name
		}
	}
	rows, err := tx.QueryContext(ctx, "SELECT name, ip, revision, grouplist FROM nodes")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	seenLists := map[string]bool{}
	for rows.Next() {
		var name, groups string
		var ip *string
		var rev int64
		if err := rows.Scan(&name, &ip, &rev, &groups); err != nil {
			return nil, err
		}
		ix.nodeExists[name] = rev
		ix.names.add(kindNode, name)
		if !seenLists[groups] {
			seenLists[groups] = true
			for _, g := range splitList(groups) {
				ix.names.add(kindGroup, g)
			}
		}
		if ip != nil {
			if a, err := netip.ParseAddr(*ip); err == nil {
				ix.nodeIP[a] = name
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	mrows, err := tx.QueryContext(ctx, "SELECT mac, node FROM node_macs")
	if err != nil {
		return nil, err
	}
	defer mrows.Close()
	for mrows.Next() {
		var mac, node string
		if err := mrows.Scan(&mac, &node); err != nil {
			return nil, err
		}
		ix.nodeMAC[mac] = node
	}
	return ix, mrows.Err()
}

// normalizeNode validates n against the index and fills in derived values
// (canonical MACs, the network from the IP). It does not check against
// other nodes.
func (ix *poolIndex) normalizeNode(n *Node) error {
	if err := ValidateName("node", n.Name); err != nil {
		return err
	}
	if err := ix.names.free(kindNode, n.Name); err != nil {
		return err
	}
	groups, err := ix.normalizeGroups(n.Groups)
	if err != nil {
		return err
	}
	n.Groups = groups
	macs, err := normalizeMACs(n.MACs)
	if err != nil {
		return err
	}
	n.MACs = macs
	if n.IP.IsValid() {
		n.IP = n.IP.Unmap()
	}
	if err := ix.placeOnNetwork(n); err != nil {
		return err
	}
	return ix.checkServiceNodes(n)
}

// normalizeGroups returns the group names trimmed, without empty ones and
// without repeats (compared without regard to case), each checked to be a
// valid name not taken by a node or member.
func (ix *poolIndex) normalizeGroups(in []string) ([]string, error) {
	groups := make([]string, 0, len(in))
	seen := map[string]bool{}
	for _, g := range in {
		g = strings.TrimSpace(g)
		if g == "" || seen[strings.ToLower(g)] {
			continue
		}
		if err := ValidateGroup(g); err != nil {
			return nil, err
		}
		if err := ix.names.free(kindGroup, g); err != nil {
			return nil, err
		}
		seen[strings.ToLower(g)] = true
		groups = append(groups, g)
	}
	return groups, nil
}

// normalizeMACs returns the MACs in canonical form; a MAC given twice is
// an error.
func normalizeMACs(in []string) ([]string, error) {
	macs := make([]string, 0, len(in))
	seen := map[string]bool{}
	for _, m := range in {
		mac, err := NormalizeMAC(m)
		if err != nil {
			return nil, err
		}
		if seen[mac] {
			return nil, fmt.Errorf("%w: MAC %s is listed twice", ErrInvalid, mac)
		}
		seen[mac] = true
		macs = append(macs, mac)
	}
	return macs, nil
}

// placeOnNetwork sets n's network from its IP when none is given, and
// checks that the network exists and the IP may be a host's on it.
func (ix *poolIndex) placeOnNetwork(n *Node) error {
	if n.Network == "" && n.IP.IsValid() {
		for _, nw := range ix.nets {
			if nw.Prefix.Contains(n.IP) {
				n.Network = nw.Name
				break
			}
		}
		if n.Network == "" {
			return fmt.Errorf("%w: IP %s is in no network of the pool (networks: %s)", ErrInvalid, n.IP, networkNames(ix.nets))
		}
	}
	if n.Network != "" {
		nw, ok := ix.netByName[n.Network]
		if !ok {
			return fmt.Errorf("%w: network %q does not exist (known: %s)", ErrInvalid, n.Network, networkNames(ix.nets))
		}
		if n.IP.IsValid() {
			if err := checkHostAddr(nw, n.IP); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkServiceNodes checks that n's servicenodes are members of the pool,
// each listed once, with an address on n's network.
func (ix *poolIndex) checkServiceNodes(n *Node) error {
	seen := map[string]bool{}
	for _, sn := range n.ServiceNodes {
		m, ok := ix.members[sn]
		if !ok {
			return fmt.Errorf("%w: servicenode %q is not a member of the pool (members: %s)", ErrInvalid, sn, ix.memberNames())
		}
		if seen[sn] {
			return fmt.Errorf("%w: servicenode %s is listed twice", ErrInvalid, sn)
		}
		seen[sn] = true
		if n.Network != "" {
			if _, ok := m.Addresses[n.Network]; !ok {
				return fmt.Errorf("%w: servicenode %s has no address on network %s", ErrInvalid, sn, n.Network)
			}
		}
	}
	return nil
}

func checkHostAddr(nw Network, ip netip.Addr) error {
	if !nw.Prefix.Contains(ip) {
		return fmt.Errorf("%w: IP %s is outside network %s (%s)", ErrInvalid, ip, nw.Name, nw.Prefix)
	}
	if ip == nw.Prefix.Addr() && nw.Prefix.Bits() < nw.Prefix.Addr().BitLen()-1 {
		return fmt.Errorf("%w: IP %s is the network address of %s", ErrInvalid, ip, nw.Prefix)
	}
	if ip.Is4() && nw.Prefix.Bits() < 31 && ip == lastAddr(nw.Prefix) {
		return fmt.Errorf("%w: IP %s is the broadcast address of %s", ErrInvalid, ip, nw.Prefix)
	}
	for _, g := range nw.Gateways {
		if g == ip {
			return fmt.Errorf("%w: IP %s is a gateway of network %s", ErrInvalid, ip, nw.Name)
		}
	}
	if nw.InRange(ip) {
		return fmt.Errorf("%w: IP %s is inside the dynamic range %s-%s of network %s", ErrInvalid, ip, nw.DynamicStart, nw.DynamicEnd, nw.Name)
	}
	return nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func (ix *poolIndex) memberNames() string {
	var s []string
	for n := range ix.members {
		s = append(s, n)
	}
	sort.Strings(s)
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// AddNodes validates every node against the pool and then writes them in
// batches (WithBatchSize rows per transaction). If any node is invalid the
// error is a *NodeError naming it and nothing is written. When a batch
// fails after earlier ones were committed (a concurrent change on another
// member, the database lost), the new nodes of the earlier batches are
// removed again before AddNodes returns the error.
func (s *Store) AddNodes(ctx context.Context, nodes []Node, o AddOptions) error {
	if len(nodes) == 0 {
		return nil
	}
	nodes = append([]Node(nil), nodes...)
	var ix *poolIndex
	err := s.Read(ctx, func(tx *sqlx.Tx) error {
		var err error
		ix, err = loadIndex(ctx, tx)
		return err
	})
	if err != nil {
		return err
	}
	if err := ix.checkBatch(nodes, o.Replace); err != nil {
		return err
	}
	var done []string
	for start := 0; start < len(nodes); start += s.o.batch {
		batch := nodes[start:min(start+s.o.batch, len(nodes))]
		err := s.Tx(ctx, func(tx *sqlx.Tx) error {
			return s.insertNodes(ctx, tx, batch, ix, o.Replace)
		})
		if err != nil {
			if s.IsDuplicate(err) {
				err = fmt.Errorf("%w: a node, IP or MAC of batch %d was added concurrently: %v", ErrExists, start/s.o.batch+1, err)
			}
			if len(done) > 0 {
				cctx := context.WithoutCancel(ctx)
				if rerr := s.removeNodes(cctx, done, "node.add.undo"); rerr != nil {
					err = errors.Join(err, fmt.Errorf("pool: undoing %d nodes added by earlier batches: %w", len(done), rerr))
				}
			}
			return err
		}
		for _, n := range batch {
			if _, existed := ix.nodeExists[n.Name]; !existed {
				done = append(done, n.Name)
			}
		}
		if o.Progress != nil {
			o.Progress(start+len(batch), len(nodes))
		}
	}
	return nil
}

func (ix *poolIndex) checkBatch(nodes []Node, replace bool) error {
	names := make(map[string]int, len(nodes))
	ips := make(map[netip.Addr]int, len(nodes))
	macs := make(map[string]int, len(nodes))
	for i := range nodes {
		n := &nodes[i]
		fail := func(err error) error { return &NodeError{Index: i, Node: n.Name, Err: err} }
		if err := ix.normalizeNode(n); err != nil {
			return fail(err)
		}
		if j, dup := names[strings.ToLower(n.Name)]; dup {
			return fail(fmt.Errorf("%w: node %s is given twice (also as node %d, %s; names are case-insensitive)", ErrInvalid, n.Name, j+1, nodes[j].Name))
		}
		names[strings.ToLower(n.Name)] = i
		if _, exists := ix.nodeExists[n.Name]; exists && !replace {
			return fail(fmt.Errorf("%w: node %s", ErrExists, n.Name))
		}
		if n.IP.IsValid() {
			if j, dup := ips[n.IP]; dup {
				return fail(fmt.Errorf("%w: IP %s is also given to node %s", ErrExists, n.IP, nodes[j].Name))
			}
			ips[n.IP] = i
			if owner, ok := ix.nodeIP[n.IP]; ok && owner != n.Name {
				return fail(fmt.Errorf("%w: IP %s belongs to node %s", ErrExists, n.IP, owner))
			}
			if owner, ok := ix.memberIP[n.IP]; ok {
				return fail(fmt.Errorf("%w: IP %s belongs to member %s", ErrExists, n.IP, owner))
			}
		}
		for _, m := range n.MACs {
			if j, dup := macs[m]; dup {
				return fail(fmt.Errorf("%w: MAC %s is also given to node %s", ErrExists, m, nodes[j].Name))
			}
			macs[m] = i
			if owner, ok := ix.nodeMAC[m]; ok && owner != n.Name {
				return fail(fmt.Errorf("%w: MAC %s belongs to node %s", ErrExists, m, owner))
			}
		}
	}
	spelling := map[string]string{}
	for i := range nodes {
		for _, g := range nodes[i].Groups {
			if sp, ok := spelling[strings.ToLower(g)]; ok && sp != g {
				return &NodeError{Index: i, Node: nodes[i].Name, Err: fmt.Errorf("%w: group %q is also written %q; names are case-insensitive, spell it one way", ErrInvalid, g, sp)}
			}
			spelling[strings.ToLower(g)] = g
			if j, clash := names[strings.ToLower(g)]; clash {
				return &NodeError{Index: i, Node: nodes[i].Name, Err: fmt.Errorf("%w: group name %q is also a node (node %d); noderanges could not tell them apart", ErrInvalid, g, j+1)}
			}
		}
	}
	return nil
}

func nullIP(a netip.Addr) any {
	if !a.IsValid() {
		return nil
	}
	return a.String()
}

func (s *Store) insertNodes(ctx context.Context, tx *sqlx.Tx, batch []Node, ix *poolIndex, replace bool) error {
	if replace {
		var names []any
		for _, n := range batch {
			if _, ok := ix.nodeExists[n.Name]; ok {
				names = append(names, n.Name)
			}
		}
		if len(names) > 0 {
			in := placeholders(len(names))
			if _, err := tx.ExecContext(ctx, "DELETE FROM node_macs WHERE node IN ("+in+")", names...); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "DELETE FROM nodes WHERE name IN ("+in+")", names...); err != nil {
				return err
			}
		}
	}
	const cols = 7
	args := make([]any, 0, len(batch)*cols)
	var macArgs []any
	for _, n := range batch {
		rev := int64(0)
		if old, ok := ix.nodeExists[n.Name]; ok {
			rev = old + 1
		}
		args = append(args, n.Name, n.Network, nullIP(n.IP), joinList(n.Groups), joinList(n.ServiceNodes), n.Manual, rev)
		for i, m := range n.MACs {
			macArgs = append(macArgs, m, n.Name, i)
		}
	}
	q := "INSERT INTO nodes (name, network, ip, grouplist, servicenodes, manual, revision) VALUES " + valuesList(len(batch), cols)
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return err
	}
	if len(macArgs) > 0 {
		q := "INSERT INTO node_macs (mac, node, pos) VALUES " + valuesList(len(macArgs)/3, 3)
		if _, err := tx.ExecContext(ctx, q, macArgs...); err != nil {
			return err
		}
	}
	target := batch[0].Name
	if len(batch) > 1 {
		target = fmt.Sprintf("%s..%s (%d nodes)", batch[0].Name, batch[len(batch)-1].Name, len(batch))
	}
	return s.Audit(ctx, tx, "node.add", target, nil)
}

func valuesList(rows, cols int) string {
	one := "(" + placeholders(cols) + ")"
	var b strings.Builder
	b.Grow(rows * (len(one) + 1))
	for i := 0; i < rows; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(one)
	}
	return b.String()
}

// RemoveNodes deletes nodes. If any name is unknown, the error lists all
// of them and nothing is deleted.
func (s *Store) RemoveNodes(ctx context.Context, names []string) error {
	if len(names) == 0 {
		return nil
	}
	var missing []string
	err := s.Read(ctx, func(tx *sqlx.Tx) error {
		missing = missing[:0]
		have := map[string]bool{}
		for start := 0; start < len(names); start += s.o.batch {
			chunk := toAny(names[start:min(start+s.o.batch, len(names))])
			var got []string
			if err := tx.SelectContext(ctx, &got, "SELECT name FROM nodes WHERE name IN ("+placeholders(len(chunk))+")", chunk...); err != nil {
				return err
			}
			for _, g := range got {
				have[g] = true
			}
		}
		for _, n := range names {
			if !have[n] {
				missing = append(missing, n)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: nodes %s", ErrNotFound, strings.Join(missing, ", "))
	}
	return s.removeNodes(ctx, names, "node.remove")
}

func (s *Store) removeNodes(ctx context.Context, names []string, action string) error {
	for start := 0; start < len(names); start += s.o.batch {
		chunk := names[start:min(start+s.o.batch, len(names))]
		err := s.Tx(ctx, func(tx *sqlx.Tx) error {
			args := toAny(chunk)
			in := placeholders(len(args))
			if _, err := tx.ExecContext(ctx, "DELETE FROM node_macs WHERE node IN ("+in+")", args...); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "DELETE FROM nodes WHERE name IN ("+in+")", args...); err != nil {
				return err
			}
			target := chunk[0]
			if len(chunk) > 1 {
				target = fmt.Sprintf("%s..%s (%d nodes)", chunk[0], chunk[len(chunk)-1], len(chunk))
			}
			return s.Audit(ctx, tx, action, target, nil)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func toAny(v []string) []any {
	out := make([]any, len(v))
	for i, s := range v {
		out[i] = s
	}
	return out
}

type nodeRow struct {
	Name         string  `db:"name"`
	Network      string  `db:"network"`
	IP           *string `db:"ip"`
	Groups       string  `db:"grouplist"`
	ServiceNodes string  `db:"servicenodes"`
	Manual       bool    `db:"manual"`
	Revision     int64   `db:"revision"`
}

func readNodes(ctx context.Context, tx *sqlx.Tx) ([]Node, error) {
	var count int
	if err := tx.GetContext(ctx, &count, "SELECT COUNT(*) FROM nodes"); err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, "SELECT name, network, ip, grouplist, servicenodes, manual, revision FROM nodes ORDER BY name")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	// Scan into reused buffers and intern the values many nodes share
	// (network, group lists, servicenode lists): loading 100,000 nodes
	// then allocates a few objects per node instead of twenty.
	out := make([]Node, 0, count)
	idx := make(map[string]int, count)
	var in interner
	var name, network, ip, groups, sns sql.RawBytes
	var manual bool
	var rev int64
	for rows.Next() {
		if err := rows.Scan(&name, &network, &ip, &groups, &sns, &manual, &rev); err != nil {
			return nil, err
		}
		n := Node{Name: string(name), Network: in.str(network), Groups: in.list(groups), ServiceNodes: in.list(sns), Manual: manual, Revision: rev}
		if ip != nil {
			if n.IP, err = netip.ParseAddr(string(ip)); err != nil {
				return nil, fmt.Errorf("pool: node %s in database has bad IP %q", n.Name, ip)
			}
		}
		idx[n.Name] = len(out)
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	mrows, err := tx.QueryContext(ctx, "SELECT node, mac FROM node_macs ORDER BY node, pos")
	if err != nil {
		return nil, err
	}
	defer mrows.Close()
	var node, mac sql.RawBytes
	for mrows.Next() {
		if err := mrows.Scan(&node, &mac); err != nil {
			return nil, err
		}
		if i, ok := idx[string(node)]; ok {
			if out[i].MACs == nil {
				out[i].MACs = make([]string, 0, 1)
			}
			out[i].MACs = append(out[i].MACs, string(mac))
		}
	}
	return out, mrows.Err()
}

// interner returns one string for equal byte values it has seen, and a
// fresh copy of the split list for equal comma lists (callers own and may
// modify the slices they get).
type interner struct {
	strs  map[string]string
	lists map[string][]string
}

func (in *interner) str(b []byte) string {
	if in.strs == nil {
		in.strs = map[string]string{}
	}
	if s, ok := in.strs[string(b)]; ok {
		return s
	}
	if len(in.strs) > 4096 {
		// Values that do not repeat (IP addresses): keep the map small.
		return string(b)
	}
	s := string(b)
	in.strs[s] = s
	return s
}

func (in *interner) list(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	if in.lists == nil {
		in.lists = map[string][]string{}
	}
	l, ok := in.lists[string(b)]
	if !ok {
		parts := strings.Split(string(b), ",")
		for i, p := range parts {
			parts[i] = in.str([]byte(p))
		}
		if len(in.lists) < 4096 {
			in.lists[string(b)] = parts
		}
		l = parts
	}
	return append([]string(nil), l...)
}

// Nodes returns every node, sorted by name.
func (s *Store) Nodes(ctx context.Context) ([]Node, error) {
	var out []Node
	err := s.Read(ctx, func(tx *sqlx.Tx) error {
		var err error
		out, err = readNodes(ctx, tx)
		return err
	})
	return out, err
}

// LoadState reads the whole pool in one consistent snapshot.
func (s *Store) LoadState(ctx context.Context) (*State, error) {
	st := &State{}
	err := s.Read(ctx, func(tx *sqlx.Tx) error {
		var err error
		if st.Site, err = readSite(ctx, tx); err != nil {
			return err
		}
		if st.Master, err = readMaster(ctx, tx); err != nil {
			return err
		}
		if st.Networks, err = readNetworks(ctx, tx); err != nil {
			return err
		}
		if st.Members, err = readMembers(ctx, tx); err != nil {
			return err
		}
		st.Nodes, err = readNodes(ctx, tx)
		return err
	})
	if err != nil {
		return nil, s.noSchema(ctx, err)
	}
	return st, nil
}
