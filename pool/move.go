package pool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/mnpool/mnpool/pool/liveness"
	"github.com/mnpool/mnpool/pool/service"
)

// ErrTargetUnusable: the move target is dead, suspect or disabled and the
// move was not forced. Nothing was written.
var ErrTargetUnusable = errors.New("pool: move target is not usable")

// defaultMoveRounds bounds how often a node whose row changed under a move
// (a concurrent move or edit won the race) is read again and re-planned
// before it is reported as failed with ErrConflict.
const defaultMoveRounds = 8

// maxAuditDetail keeps a move's audit detail inside a MariaDB TEXT column.
const maxAuditDetail = 60000

// MoveRequest says which nodes move and where to. It is xCAT's snmove:
// `snmove NODERANGE [-d DEST] [-D DEST_IP]` is Nodes (+ Target,
// TargetAddr); `snmove -s SOURCE [-d DEST]` is Source (+ Target).
type MoveRequest struct {
	// Nodes selects nodes by name (an expanded noderange). Each node moves
	// off the first member of its servicenode list, or off Source when
	// both are given (nodes not on Source are left alone).
	Nodes []string `json:"nodes,omitempty"`
	// Source selects the nodes whose servicenode list starts with this
	// member, when Nodes is empty. The source may be down: nothing is
	// asked of it.
	Source string `json:"source,omitempty"`
	// Target is the member the nodes move to. Empty: per node, the next
	// usable member of its own list after the source (alive or unknown,
	// not disabled, with an address on the node's network). A dead,
	// suspect or disabled Target is refused (ErrTargetUnusable) unless
	// Force is set.
	Target string `json:"target,omitempty"`
	// TargetAddr (xCAT -D) is the address the nodes should use for
	// Target; it must be one of Target's addresses. It replaces Target's
	// address in the derived settings of the plan and in what is pushed
	// to the nodes. It is not stored: DHCP and other renderers keep using
	// Target's address on the node's network.
	TargetAddr netip.Addr `json:"target_addr,omitzero"`
	// Force allows a dead, suspect or disabled Target.
	Force bool `json:"force,omitempty"`
	// Liveness says which members are alive. Nil: every member is
	// liveness.Unknown (usable).
	Liveness liveness.Source `json:"-"`
	// DryRun plans and returns the plan without writing anything.
	DryRun bool `json:"dry_run,omitempty"`
	// Guard, when set, is called first in every write transaction of the
	// move; an error from it rolls that transaction back and ends the move
	// (the nodes not yet written are failed, Move returns the error
	// wrapped). A failover leader passes its lease's Guard so that each
	// batch commits only while it holds the lease (the fencing token is
	// checked by the protected write itself).
	Guard func(ctx context.Context, tx *sqlx.Tx) error `json:"-"`
	// Progress, when set, is called after each committed batch with the
	// number of planned nodes settled so far and their total.
	Progress func(done, total int) `json:"-"`
}

// MoveStatus is what happened to one node.
type MoveStatus string

// Move statuses.
const (
	// MovePlanned: the node would move (dry run).
	MovePlanned MoveStatus = "planned"
	// MoveMoved: the node's servicenode list was rewritten.
	MoveMoved MoveStatus = "moved"
	// MoveUnchanged: nothing to do (already on the target, not on the
	// source, served by a usable member).
	MoveUnchanged MoveStatus = "unchanged"
	// MoveNoTarget: no usable member to move the node to; nothing about
	// the node changed.
	MoveNoTarget MoveStatus = "no-target"
	// MoveFailed: the node could not be moved (see Reason); nothing about
	// it changed.
	MoveFailed MoveStatus = "failed"
)

// Names of the settings reported in NodeMove.Changes. They follow the
// first member of the servicenode list that runs the service.
const (
	SettingServiceNode = "servicenode"
	SettingTFTPServer  = "tftpserver"
	SettingNFSServer   = "nfsserver"
	SettingConServer   = "conserver"
)

// SettingChange is one derived setting of a node that a move changes.
type SettingChange struct {
	Setting string `json:"setting"`
	Old     string `json:"old"`
	New     string `json:"new"`
}

// NodeMove is the plan, and after a move the outcome, for one node.
type NodeMove struct {
	Node    string     `json:"node"`
	Network string     `json:"network,omitempty"`
	Status  MoveStatus `json:"status"`
	// Source and Target are the members the node moves off and onto.
	Source string `json:"source,omitempty"`
	Target string `json:"target,omitempty"`
	// Old and New are the servicenode lists before and after; New is
	// empty when the node does not move.
	Old []string `json:"old"`
	New []string `json:"new,omitempty"`
	// OldRevision is the node's revision the plan was made from; Revision
	// is its revision afterwards (OldRevision+1 when moved).
	OldRevision int64 `json:"old_revision"`
	Revision    int64 `json:"revision"`
	// Changes lists every derived setting that changes, servicenode
	// first.
	Changes []SettingChange `json:"changes,omitempty"`
	// Reason explains unchanged, no-target and failed.
	Reason string `json:"reason,omitempty"`
	// Replans counts how often the node's row had changed under the move
	// and it was planned again from the current row.
	Replans int `json:"replans,omitempty"`
}

// MoveCounts counts the nodes of a result by status.
type MoveCounts struct {
	Planned   int `json:"planned"`
	Moved     int `json:"moved"`
	Unchanged int `json:"unchanged"`
	NoTarget  int `json:"no_target"`
	Failed    int `json:"failed"`
}

// MoveResult is the plan of a move and, unless it was a dry run, its
// outcome. Nodes are sorted by name.
type MoveResult struct {
	Source     string     `json:"source,omitempty"`
	Target     string     `json:"target,omitempty"`
	TargetAddr netip.Addr `json:"target_addr,omitzero"`
	Force      bool       `json:"force,omitempty"`
	DryRun     bool       `json:"dry_run"`
	Nodes      []NodeMove `json:"nodes"`
	Counts     MoveCounts `json:"counts"`
}

// OK reports whether every selected node is where it should be: none
// failed and none was left without a target.
func (r *MoveResult) OK() bool { return r.Counts.Failed == 0 && r.Counts.NoTarget == 0 }

// Names returns the names of the nodes with status st, sorted.
func (r *MoveResult) Names(st MoveStatus) []string {
	var out []string
	for _, n := range r.Nodes {
		if n.Status == st {
			out = append(out, n.Node)
		}
	}
	return out
}

func (r *MoveResult) count() {
	r.Counts = MoveCounts{}
	for _, n := range r.Nodes {
		switch n.Status {
		case MovePlanned:
			r.Counts.Planned++
		case MoveMoved:
			r.Counts.Moved++
		case MoveUnchanged:
			r.Counts.Unchanged++
		case MoveNoTarget:
			r.Counts.NoTarget++
		case MoveFailed:
			r.Counts.Failed++
		}
	}
}

// NodeSettings are the settings of a node derived from its servicenode
// list: each follows the first member of the list that runs the service.
// Addresses are the member's address on the node's network (the member
// name when it has none there).
type NodeSettings struct {
	ServiceNodes []string `json:"servicenodes"`
	TFTPServer   string   `json:"tftpserver,omitempty"`
	NFSServer    string   `json:"nfsserver,omitempty"`
	ConServer    string   `json:"conserver,omitempty"`
}

// DeriveSettings computes a node's derived settings from st's members.
func DeriveSettings(st *State, n Node) NodeSettings {
	members := make(map[string]Member, len(st.Members))
	for _, m := range st.Members {
		members[m.Name] = m
	}
	return deriveSettings(members, n.Network, n.ServiceNodes, "", netip.Addr{})
}

// deriveSettings: override, when valid, replaces member over's address.
func deriveSettings(members map[string]Member, network string, list []string, over string, overAddr netip.Addr) NodeSettings {
	out := NodeSettings{ServiceNodes: list}
	addr := func(name string) string {
		if name == over && overAddr.IsValid() {
			return overAddr.String()
		}
		if a, ok := members[name].Addresses[network]; ok && network != "" {
			return a.String()
		}
		return name
	}
	first := func(svc service.Service) string {
		for _, name := range list {
			if m, ok := members[name]; ok && m.Runs(svc) {
				return name
			}
		}
		return ""
	}
	if len(list) > 0 {
		// The install tree is on the pool's shared file system; every
		// member exports it, so the nodes mount it from their first.
		out.NFSServer = addr(list[0])
	}
	if m := first(service.TFTP); m != "" {
		out.TFTPServer = addr(m)
	}
	out.ConServer = first(service.Console)
	return out
}

func settingChanges(o, n NodeSettings) []SettingChange {
	var out []SettingChange
	add := func(name, a, b string) {
		if a != b {
			out = append(out, SettingChange{Setting: name, Old: a, New: b})
		}
	}
	add(SettingServiceNode, joinList(o.ServiceNodes), joinList(n.ServiceNodes))
	add(SettingTFTPServer, o.TFTPServer, n.TFTPServer)
	add(SettingNFSServer, o.NFSServer, n.NFSServer)
	add(SettingConServer, o.ConServer, n.ConServer)
	return out
}

// moveNode is the part of a node row a move reads.
type moveNode struct {
	Name     string `db:"name"`
	Network  string `db:"network"`
	SNs      string `db:"servicenodes"`
	Revision int64  `db:"revision"`
}

// movePlanner plans nodes of one request against one snapshot of the
// members.
type movePlanner struct {
	req     MoveRequest
	members map[string]Member
	// afterRead, for tests, runs in a batch's transaction between the
	// read of the rows and the conditional update.
	afterRead func(ctx context.Context, tx *sqlx.Tx, names []string) error
	// exec writes a batch (nil: Store.updateNodes); benchmarks compare
	// other forms of the statement.
	exec batchExec
}

// usable says whether member name may take nodes, and if not, why.
func (p *movePlanner) usable(name string) (bool, string) {
	m, ok := p.members[name]
	if !ok {
		return false, "not a member"
	}
	if m.Disabled {
		return false, "disabled"
	}
	if st := p.req.Liveness.LiveState(name); !st.Usable() {
		return false, string(st)
	}
	return true, ""
}

// reorder puts tgt first and src last, keeping the others' order.
func reorder(list []string, src, tgt string) []string {
	out := make([]string, 0, len(list)+1)
	out = append(out, tgt)
	for _, m := range list {
		if m != tgt && m != src {
			out = append(out, m)
		}
	}
	if src != tgt && slices.Contains(list, src) {
		out = append(out, src)
	}
	return out
}

// plan decides one node's move from its current row.
func (p *movePlanner) plan(n moveNode) NodeMove {
	old := splitList(n.SNs)
	nm := NodeMove{Node: n.Name, Network: n.Network, Old: old, OldRevision: n.Revision, Revision: n.Revision}
	done := func(st MoveStatus, format string, args ...any) NodeMove {
		nm.Status, nm.Reason = st, fmt.Sprintf(format, args...)
		return nm
	}
	if len(old) == 0 {
		return done(MoveFailed, "node has no servicenode list; assign one first")
	}
	src := old[0]
	if p.req.Source != "" {
		if old[0] != p.req.Source {
			return done(MoveUnchanged, "served by %s, not by source %s", old[0], p.req.Source)
		}
		src = p.req.Source
	}
	nm.Source = src
	hasAddr := func(member string) bool {
		if n.Network == "" {
			return true
		}
		_, ok := p.members[member].Addresses[n.Network]
		return ok
	}
	tgt := p.req.Target
	if tgt != "" {
		if src == tgt {
			nm.Target = tgt
			return done(MoveUnchanged, "already served by %s", tgt)
		}
		if !hasAddr(tgt) {
			return done(MoveFailed, "target %s has no address on network %s", tgt, n.Network)
		}
	} else {
		if p.req.Source == "" {
			if ok, _ := p.usable(src); ok {
				return done(MoveUnchanged, "served by %s, which is usable (give a target or a source to move nodes off a working member)", src)
			}
		}
		var why []string
		for _, c := range old {
			if c == src {
				continue
			}
			ok, reason := p.usable(c)
			if ok && !hasAddr(c) {
				ok, reason = false, "no address on network "+n.Network
			}
			if ok {
				tgt = c
				break
			}
			why = append(why, c+": "+reason)
		}
		if tgt == "" {
			if len(why) == 0 {
				return done(MoveNoTarget, "no other member in its list %s", n.SNs)
			}
			return done(MoveNoTarget, "no usable member after %s in its list (%s)", src, strings.Join(why, ", "))
		}
	}
	nm.Target = tgt
	nm.New = reorder(old, src, tgt)
	before := deriveSettings(p.members, n.Network, old, "", netip.Addr{})
	after := deriveSettings(p.members, n.Network, nm.New, tgt, p.req.TargetAddr)
	nm.Changes = settingChanges(before, after)
	nm.Status = MovePlanned
	return nm
}

// PlanMove plans req against a state snapshot without touching a store.
// Store.Move with DryRun gives the same plan from the database.
func PlanMove(st *State, req MoveRequest) (*MoveResult, error) {
	nodes := make([]moveNode, len(st.Nodes))
	for i, n := range st.Nodes {
		nodes[i] = moveNode{Name: n.Name, Network: n.Network, SNs: joinList(n.ServiceNodes), Revision: n.Revision}
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	_, res, err := planMove(st.Members, nodes, req)
	if err != nil {
		return nil, err
	}
	res.DryRun = true
	res.count()
	return res, nil
}

// checkRequest validates the request on its own.
func checkRequest(req *MoveRequest) error {
	if req.Liveness == nil {
		req.Liveness = liveness.Static(nil)
	}
	if len(req.Nodes) == 0 && req.Source == "" {
		return fmt.Errorf("%w: a move needs nodes (a noderange) or a source member", ErrInvalid)
	}
	if req.Source != "" {
		if err := ValidateName("member", req.Source); err != nil {
			return fmt.Errorf("source: %w", err)
		}
	}
	if req.Target != "" {
		if err := ValidateName("member", req.Target); err != nil {
			return fmt.Errorf("target: %w", err)
		}
		if req.Target == req.Source {
			return fmt.Errorf("%w: source and target are both %s", ErrInvalid, req.Target)
		}
	}
	if req.TargetAddr.IsValid() && req.Target == "" {
		return fmt.Errorf("%w: a destination address (%s) needs a destination member", ErrInvalid, req.TargetAddr)
	}
	for _, n := range req.Nodes {
		if err := ValidateName("node", n); err != nil {
			return err
		}
	}
	return nil
}

// planMove validates req against the members, selects the nodes (sorted
// by name) and plans each.
func planMove(members []Member, nodes []moveNode, req MoveRequest) (*movePlanner, *MoveResult, error) {
	if err := checkRequest(&req); err != nil {
		return nil, nil, err
	}
	p := &movePlanner{req: req, members: make(map[string]Member, len(members))}
	var names []string
	for _, m := range members {
		p.members[m.Name] = m
		names = append(names, m.Name)
	}
	known := strings.Join(names, ", ")
	if req.Source != "" {
		if _, ok := p.members[req.Source]; !ok {
			return nil, nil, fmt.Errorf("%w: source member %s (members: %s)", ErrNotFound, req.Source, known)
		}
	}
	if req.Target != "" {
		t, ok := p.members[req.Target]
		if !ok {
			return nil, nil, fmt.Errorf("%w: target member %s (members: %s)", ErrNotFound, req.Target, known)
		}
		if ok, why := p.usable(req.Target); !ok && !req.Force {
			return nil, nil, fmt.Errorf("%w: %s is %s; force the move to use it anyway", ErrTargetUnusable, req.Target, why)
		}
		if req.TargetAddr.IsValid() {
			req.TargetAddr = req.TargetAddr.Unmap()
			p.req.TargetAddr = req.TargetAddr
			var addrs []string
			found := false
			for _, net := range slices.Sorted(maps.Keys(t.Addresses)) {
				a := t.Addresses[net]
				addrs = append(addrs, a.String()+" ("+net+")")
				found = found || a == req.TargetAddr
			}
			if !found {
				return nil, nil, fmt.Errorf("%w: %s is not an address of %s (its addresses: %s)", ErrInvalid, req.TargetAddr, req.Target, strings.Join(addrs, ", "))
			}
		}
	}
	var sel []moveNode
	if len(req.Nodes) > 0 {
		want := make(map[string]bool, len(req.Nodes))
		for _, n := range req.Nodes {
			want[n] = true
		}
		for _, n := range nodes {
			if want[n.Name] {
				sel = append(sel, n)
				delete(want, n.Name)
			}
		}
		if len(want) > 0 {
			missing := slices.Sorted(maps.Keys(want))
			more := ""
			if len(missing) > 20 {
				more = fmt.Sprintf(" and %d more", len(missing)-20)
				missing = missing[:20]
			}
			return nil, nil, fmt.Errorf("%w: nodes %s%s", ErrNotFound, strings.Join(missing, ", "), more)
		}
	} else {
		prefix := req.Source + ","
		for _, n := range nodes {
			if n.SNs == req.Source || strings.HasPrefix(n.SNs, prefix) {
				sel = append(sel, n)
			}
		}
	}
	res := &MoveResult{Source: req.Source, Target: req.Target, TargetAddr: req.TargetAddr, Force: req.Force, Nodes: make([]NodeMove, len(sel))}
	for i, n := range sel {
		res.Nodes[i] = p.plan(n)
	}
	return p, res, nil
}

// Move moves nodes to another member (xCAT's snmove): it reorders their
// servicenode lists so the target comes first and the source last, which
// moves everything derived from the list (DHCP next-server and TFTP, NFS,
// console server) with them.
//
// The result is the plan (for DryRun) or the outcome, per node. Writes
// are batched (WithBatchSize rows per transaction, one audit record
// each). Each node's write is one conditional statement on its revision
// and list, so a node moves completely or not at all; a node whose row
// changed since it was planned (a concurrent move on another member) is
// read again and planned from its current list, at most 8 times.
// Running the same request again changes nothing: nodes already
// on their target are not written.
//
// Errors about the request itself (ErrInvalid, ErrNotFound,
// ErrTargetUnusable) come before anything is written. When the database
// fails in the middle, Move returns the result so far (nodes of committed
// batches are moved, the others failed) together with the error.
func (s *Store) Move(ctx context.Context, req MoveRequest) (*MoveResult, error) {
	return s.move(ctx, req, nil, nil)
}

// move is Move with the batch writer exec (nil: the store's) and a hook
// for tests.
func (s *Store) move(ctx context.Context, req MoveRequest, exec batchExec, afterRead func(context.Context, *sqlx.Tx, []string) error) (*MoveResult, error) {
	if err := checkRequest(&req); err != nil {
		return nil, err
	}
	var members []Member
	var nodes []moveNode
	err := s.Read(ctx, func(tx *sqlx.Tx) error {
		var err error
		if members, err = readMembers(ctx, tx); err != nil {
			return err
		}
		nodes = nodes[:0]
		return tx.SelectContext(ctx, &nodes, "SELECT name, network, servicenodes, revision FROM nodes ORDER BY name")
	})
	if err != nil {
		return nil, s.noSchema(ctx, err)
	}
	p, res, err := planMove(members, nodes, req)
	if err != nil {
		return nil, err
	}
	if req.DryRun {
		res.DryRun = true
		res.count()
		return res, nil
	}
	p.afterRead, p.exec = afterRead, exec
	err = s.applyMove(ctx, p, res)
	res.count()
	return res, err
}

// applyMove writes the planned nodes of res in batches and rounds.
func (s *Store) applyMove(ctx context.Context, p *movePlanner, res *MoveResult) error {
	var pending []int
	for i, n := range res.Nodes {
		if n.Status == MovePlanned {
			pending = append(pending, i)
		}
	}
	total, done := len(pending), 0
	for round := 0; len(pending) > 0; round++ {
		if round == defaultMoveRounds {
			for _, i := range pending {
				nm := &res.Nodes[i]
				nm.Status, nm.New = MoveFailed, nil
				nm.Reason = fmt.Sprintf("%v: the node's row kept changing under the move (%d attempts)", ErrConflict, round)
			}
			return fmt.Errorf("%w: %d nodes kept changing under the move", ErrConflict, len(pending))
		}
		var next []int
		for start := 0; start < len(pending); start += s.o.batch {
			batch := pending[start:min(start+s.o.batch, len(pending))]
			var out []NodeMove
			var losers []int
			run := func(reread bool) error {
				return s.Tx(ctx, func(tx *sqlx.Tx) error {
					if p.req.Guard != nil {
						if err := p.req.Guard(ctx, tx); err != nil {
							return err
						}
					}
					var err error
					out, losers, err = s.moveBatch(ctx, tx, p, res, batch, reread)
					return err
				})
			}
			// The first round writes straight from the plan; a batch in
			// which a row changed since is rolled back and done again
			// with the rows read first.
			err := run(round > 0)
			if errors.Is(err, errReread) {
				err = run(true)
			}
			if err != nil {
				for _, i := range append(next, pending[start:]...) {
					nm := &res.Nodes[i]
					nm.Status, nm.New = MoveFailed, nil
					nm.Reason = "not written: " + err.Error()
				}
				return fmt.Errorf("pool: moving nodes: %w", err)
			}
			lost := make(map[int]bool, len(losers))
			for _, i := range losers {
				lost[i] = true
				next = append(next, i)
			}
			for k, i := range batch {
				if !lost[i] {
					res.Nodes[i] = out[k]
					done++
				}
			}
			if p.req.Progress != nil {
				p.req.Progress(done, total)
			}
		}
		pending = next
	}
	return nil
}

// moveBatch runs inside a transaction (and may run several times): it
// reads the batch's rows, plans again every node whose row changed since
// it was planned, writes the moves with one conditional update each, and
// audits them. It returns the outcome per batch entry and the indexes (in
// res.Nodes) of nodes whose conditional update did not match (changed
// between the read and the write), to be tried again.
func (s *Store) moveBatch(ctx context.Context, tx *sqlx.Tx, p *movePlanner, res *MoveResult, batch []int, reread bool) ([]NodeMove, []int, error) {
	out := make([]NodeMove, len(batch))
	var writes []int // positions in batch
	if !reread {
		for k, i := range batch {
			out[k] = res.Nodes[i]
			writes = append(writes, k)
		}
		return s.writeBatch(ctx, tx, p, batch, out, writes, false)
	}
	names := make([]any, len(batch))
	for k, i := range batch {
		names[k] = res.Nodes[i].Node
	}
	var cur []moveNode
	if err := tx.SelectContext(ctx, &cur, "SELECT name, network, servicenodes, revision FROM nodes WHERE name IN ("+placeholders(len(names))+")", names...); err != nil {
		return nil, nil, err
	}
	byName := make(map[string]moveNode, len(cur))
	for _, c := range cur {
		byName[c.Name] = c
	}
	for k, i := range batch {
		planned := res.Nodes[i]
		c, ok := byName[planned.Node]
		switch {
		case !ok:
			planned.Status, planned.New, planned.Changes = MoveFailed, nil, nil
			planned.Reason = "node was removed during the move"
			out[k] = planned
			continue
		case c.Revision == planned.OldRevision && c.SNs == joinList(planned.Old):
			out[k] = planned
		default:
			np := p.plan(c)
			np.Replans = planned.Replans + 1
			if np.Status == MoveUnchanged && c.SNs == joinList(planned.New) {
				np.Reason = fmt.Sprintf("already in the planned order at revision %d (written by an earlier attempt of this move or by an identical concurrent move)", c.Revision)
			}
			out[k] = np
			if np.Status != MovePlanned {
				continue
			}
		}
		writes = append(writes, k)
	}
	return s.writeBatch(ctx, tx, p, batch, out, writes, true)
}

// writeBatch writes out[k] for k in writes and audits what it wrote.
// exact says that the rows were read in this transaction before the
// write, which lets a multi-row update tell which rows it did not match;
// without it such an update returns errReread.
func (s *Store) writeBatch(ctx context.Context, tx *sqlx.Tx, p *movePlanner, batch []int, out []NodeMove, writes []int, exact bool) ([]NodeMove, []int, error) {
	if len(writes) == 0 {
		return out, nil, nil
	}
	if p.afterRead != nil {
		wn := make([]string, len(writes))
		for j, k := range writes {
			wn[j] = out[k].Node
		}
		if err := p.afterRead(ctx, tx, wn); err != nil {
			return nil, nil, err
		}
	}
	b := nodeBatch{batchForm: batchForm{checkOld: true}, writes: make([]nodeWrite, len(writes))}
	for j, k := range writes {
		nm := out[k]
		b.writes[j] = nodeWrite{node: nm.Node, rev: nm.OldRevision, old: joinList(nm.Old), new: joinList(nm.New)}
	}
	won, _, err := s.writeNodes(ctx, tx, b, p.exec, exact)
	if err != nil {
		return nil, nil, err
	}
	var losers []int
	var moved []NodeMove
	for j, k := range writes {
		if !won[j] {
			losers = append(losers, batch[k])
			continue
		}
		out[k].Status = MoveMoved
		out[k].Revision = out[k].OldRevision + 1
		moved = append(moved, out[k])
	}
	if len(moved) == 0 {
		return out, losers, nil
	}
	return out, losers, s.Audit(ctx, tx, "node.move", rangeTarget(moved), moveDetail(p.req, moved))
}

func rangeTarget(moved []NodeMove) string {
	if len(moved) == 1 {
		return moved[0].Node
	}
	return fmt.Sprintf("%s..%s (%d nodes)", moved[0].Node, moved[len(moved)-1].Node, len(moved))
}

// moveAudit is the audit detail of one batch of a move.
type moveAudit struct {
	Source     string      `json:"source,omitempty"`
	Target     string      `json:"target,omitempty"`
	TargetAddr string      `json:"target_addr,omitempty"`
	Force      bool        `json:"force,omitempty"`
	Count      int         `json:"count"`
	Moves      []MoveGroup `json:"moves,omitempty"`
}

// MoveGroup is the nodes of one audited batch that had the same old list
// and got the same new list.
type MoveGroup struct {
	Old   string   `json:"old"`
	New   string   `json:"new"`
	Nodes []string `json:"nodes"`
}

func moveDetail(req MoveRequest, moved []NodeMove) string {
	d := moveAudit{Source: req.Source, Target: req.Target, Force: req.Force, Count: len(moved)}
	if req.TargetAddr.IsValid() {
		d.TargetAddr = req.TargetAddr.String()
	}
	idx := map[[2]string]int{}
	for _, m := range moved {
		key := [2]string{joinList(m.Old), joinList(m.New)}
		i, ok := idx[key]
		if !ok {
			i = len(d.Moves)
			idx[key] = i
			d.Moves = append(d.Moves, MoveGroup{Old: key[0], New: key[1]})
		}
		d.Moves[i].Nodes = append(d.Moves[i].Nodes, m.Node)
	}
	b, _ := json.Marshal(d)
	if len(b) > maxAuditDetail {
		d.Moves = nil
		b, _ = json.Marshal(d)
	}
	return string(b)
}
