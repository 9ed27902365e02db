package pool

import (
	"context"
	"fmt"
	"hash/fnv"
	"sort"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/mnpool/mnpool/pool/service"
)

// Width of servicenode lists.
const (
	// DefaultWidth is the list length Assign gives when none is asked.
	DefaultWidth = 2
	// MinWidth is the shortest list Assign gives: a node must survive the
	// loss of one member.
	MinWidth = 2
)

// Assignment (docs/MEMBERSHIP.md): every node gets an ordered servicenode
// list of Width members eligible for it. A member is eligible for a node
// when it is enabled, runs both dhcp and tftp (it has to boot the node),
// and has an address on the node's network (any member qualifies on that
// last point for a node without a network).
//
// Nodes are grouped by network; within a network
//   - the first entries are spread so that the largest and smallest share
//     of the eligible members differ by at most one (manual lists and
//     nodes outside the selection keep theirs and count as load);
//   - the second entries of the nodes that share a first member are
//     spread the same way over the other members, so a member's nodes
//     fail over evenly;
//   - a node keeps the entries it has while they are eligible and within
//     their member's share, and otherwise takes members in its own
//     rendezvous-hash order (highest random weight of node and member
//     name), so adding or removing a member moves as few nodes as the
//     balance allows, and running Assign again changes nothing.

// AssignOptions are the arguments of Assign and PlanAssignment.
type AssignOptions struct {
	// Nodes to assign. Nil means every node; unknown names are an error
	// that lists them.
	Nodes []string
	// Width is the list length; DefaultWidth when 0, at least MinWidth.
	Width int
	// Rebalance replaces lists an administrator set by hand (Manual)
	// too; without it they are kept and only count as load.
	Rebalance bool
}

// AssignPlan is what PlanAssignment decided.
type AssignPlan struct {
	// Width is the list length used.
	Width int `json:"width"`
	// Changes are the nodes whose list (or manual flag) changes, in node
	// name order.
	Changes []NodeAssignment `json:"changes"`
	// Selected is the number of nodes considered.
	Selected int `json:"selected"`
	// KeptManual counts selected nodes whose manual list was kept.
	KeptManual int `json:"kept_manual"`
	// FirstMoved counts changes whose first entry differs.
	FirstMoved int `json:"first_moved"`
	// Load is the number of nodes each member is first for after the
	// plan, over the whole pool (members with none are listed with 0).
	Load map[string]int `json:"load"`
	// Warnings describe manual lists naming members not eligible for
	// their node; they are kept as the administrator set them.
	Warnings []string `json:"warnings,omitempty"`
}

// NodeAssignment is one node's change.
type NodeAssignment struct {
	Node     string   `json:"node"`
	Old      []string `json:"old"`
	New      []string `json:"new"`
	Revision int64    `json:"-"`
}

// eligibility says which members may serve nodes of a network.
type eligibility struct {
	members []string // eligible, sorted
	why     []string // "member (reason)" for the others
}

func eligibleFor(st *State, network string) eligibility {
	var e eligibility
	for _, m := range st.Members {
		var reasons []string
		if m.Disabled {
			reasons = append(reasons, "disabled")
		}
		if !m.Runs(service.DHCP) {
			reasons = append(reasons, "no dhcp")
		}
		if !m.Runs(service.TFTP) {
			reasons = append(reasons, "no tftp")
		}
		if network != "" {
			if _, ok := m.Addresses[network]; !ok {
				reasons = append(reasons, "no address on "+network)
			}
		}
		if len(reasons) == 0 {
			e.members = append(e.members, m.Name)
		} else {
			e.why = append(e.why, m.Name+" ("+strings.Join(reasons, ", ")+")")
		}
	}
	sort.Strings(e.members)
	return e
}

// PlanAssignment computes the servicenode lists of o.Nodes in st without
// writing anything. It is deterministic: the same state and options give
// the same plan on every member.
func PlanAssignment(st *State, o AssignOptions) (*AssignPlan, error) {
	width := o.Width
	if width == 0 {
		width = DefaultWidth
	}
	if width < MinWidth {
		return nil, fmt.Errorf("%w: width %d: a servicenode list needs at least %d members", ErrInvalid, width, MinWidth)
	}
	selected, nSel, err := selectNodes(st, o.Nodes)
	if err != nil {
		return nil, err
	}
	plan := &AssignPlan{Width: width, Selected: nSel, Load: map[string]int{}}
	for _, m := range st.Members {
		plan.Load[m.Name] = 0
	}

	// Group node indexes by network, in node order.
	classes := map[string][]int{}
	var order []string
	for i, n := range st.Nodes {
		if _, ok := classes[n.Network]; !ok {
			order = append(order, n.Network)
		}
		classes[n.Network] = append(classes[n.Network], i)
	}
	sort.Strings(order)
	newLists := make([][]string, len(st.Nodes))
	var problems []string
	for _, network := range order {
		el := eligibleFor(st, network)
		c := &assignClass{st: st, width: width, el: el, rebalance: o.Rebalance, selected: selected, out: newLists, plan: plan}
		if err := c.run(classes[network]); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrInvalid, strings.Join(problems, "; "))
	}
	for i, n := range st.Nodes {
		list := n.ServiceNodes
		if newLists[i] != nil {
			list = newLists[i]
			if !equalLists(list, n.ServiceNodes) || n.Manual {
				plan.Changes = append(plan.Changes, NodeAssignment{Node: n.Name, Old: n.ServiceNodes, New: list, Revision: n.Revision})
				if len(n.ServiceNodes) == 0 || n.ServiceNodes[0] != list[0] {
					plan.FirstMoved++
				}
			}
		}
		if len(list) > 0 {
			if _, ok := plan.Load[list[0]]; ok {
				plan.Load[list[0]]++
			}
		}
	}
	return plan, nil
}

// selectNodes marks the nodes named (all when names is nil) and counts
// them; unknown names are ErrNotFound.
func selectNodes(st *State, names []string) ([]bool, int, error) {
	selected := make([]bool, len(st.Nodes))
	if names == nil {
		for i := range selected {
			selected[i] = true
		}
		return selected, len(st.Nodes), nil
	}
	idx := make(map[string]int, len(st.Nodes))
	for i, n := range st.Nodes {
		idx[n.Name] = i
	}
	var unknown []string
	n := 0
	for _, name := range names {
		i, ok := idx[name]
		if !ok {
			unknown = append(unknown, name)
			continue
		}
		if !selected[i] {
			selected[i] = true
			n++
		}
	}
	if len(unknown) > 0 {
		return nil, 0, fmt.Errorf("%w: unknown nodes: %s", ErrNotFound, strings.Join(unknown, ", "))
	}
	return selected, n, nil
}

func equalLists(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// assignClass assigns the nodes of one network.
type assignClass struct {
	st        *State
	width     int
	el        eligibility
	rebalance bool
	selected  []bool
	out       [][]string
	plan      *AssignPlan
}

const maxWarnings = 20

func (c *assignClass) warn(format string, args ...any) {
	if len(c.plan.Warnings) < maxWarnings {
		c.plan.Warnings = append(c.plan.Warnings, fmt.Sprintf(format, args...))
	} else if len(c.plan.Warnings) == maxWarnings {
		c.plan.Warnings = append(c.plan.Warnings, "(more warnings left out)")
	}
}

func (c *assignClass) run(nodes []int) error {
	E := c.el.members
	pos := make(map[string]int, len(E))
	for i, m := range E {
		pos[m] = i
	}
	movable, fixed := c.partition(nodes, pos)
	if len(movable) == 0 {
		return nil
	}
	if len(E) < c.width {
		net := c.st.Nodes[movable[0]].Network
		if net == "" {
			net = "(nodes without a network)"
		}
		return fmt.Errorf("network %s: %d nodes need %d members each but only %d are eligible (%s); eligible members are enabled, run dhcp and tftp and have an address on the network; not eligible: %s",
			net, len(movable), c.width, len(E), orNone(E), orNone(c.el.why))
	}

	// Preference order of every movable node: its rendezvous-hash order
	// over the eligible members.
	prefs := c.preferences(movable)
	first, cur := c.firstEntries(movable, fixed, pos, prefs)
	// Candidates for the later entries of each node: its current entries
	// that are eligible (in their order), then its hash order.
	cands := c.candidates(movable, first, pos, prefs)
	// Second entries, balanced among the nodes that share a first member.
	second := c.secondEntries(movable, fixed, pos, first, cur, cands)
	c.emit(movable, first, second, cands)
	return nil
}

// partition splits nodes into those the plan may change and those whose
// lists stay (not selected, or manual without rebalance).
func (c *assignClass) partition(nodes []int, pos map[string]int) (movable, fixed []int) {
	for _, i := range nodes {
		n := c.st.Nodes[i]
		switch {
		case c.selected[i] && (!n.Manual || c.rebalance):
			movable = append(movable, i)
		case c.selected[i]:
			c.plan.KeptManual++
			for _, sn := range n.ServiceNodes {
				if _, ok := pos[sn]; !ok {
					c.warn("node %s: its manual list %s names %s, which is not eligible for network %q", n.Name, joinList(n.ServiceNodes), sn, n.Network)
					break
				}
			}
			fixed = append(fixed, i)
		default:
			fixed = append(fixed, i)
		}
	}
	return movable, fixed
}

// preferences is each movable node's rendezvous-hash order of the
// eligible members (indexes into c.el.members).
func (c *assignClass) preferences(movable []int) [][]int32 {
	E := c.el.members
	k := len(E)
	mh := make([]uint64, k)
	for j, m := range E {
		mh[j] = hash64(m)
	}
	prefs := make([][]int32, len(movable))
	buf := make([]int32, len(movable)*k)
	scores := make([]uint64, k)
	for x, i := range movable {
		nh := hash64(c.st.Nodes[i].Name)
		p := buf[x*k : (x+1)*k : (x+1)*k]
		for j := range p {
			p[j] = int32(j)
			scores[j] = mix64(nh ^ mh[j])
		}
		sort.Slice(p, func(a, b int) bool {
			if scores[p[a]] != scores[p[b]] {
				return scores[p[a]] > scores[p[b]]
			}
			return p[a] < p[b]
		})
		prefs[x] = p
	}
	return prefs
}

// firstEntries balances the first entries; cur is each movable node's
// current first member (-1 when not eligible).
func (c *assignClass) firstEntries(movable, fixed []int, pos map[string]int, prefs [][]int32) (first, cur []int32) {
	k := len(c.el.members)
	fixedLoad := make([]int, k)
	for _, i := range fixed {
		if l := c.st.Nodes[i].ServiceNodes; len(l) > 0 {
			if j, ok := pos[l[0]]; ok {
				fixedLoad[j]++
			}
		}
	}
	cur = make([]int32, len(movable))
	for x, i := range movable {
		cur[x] = -1
		if l := c.st.Nodes[i].ServiceNodes; len(l) > 0 {
			if j, ok := pos[l[0]]; ok {
				cur[x] = int32(j)
			}
		}
	}
	first = balance(k, fixedLoad, cur, nil, func(x int) []int32 { return prefs[x] })
	return first, cur
}

// candidates lists, per movable node, the members for its later entries.
func (c *assignClass) candidates(movable []int, first []int32, pos map[string]int, prefs [][]int32) [][]int32 {
	k := len(c.el.members)
	cands := make([][]int32, len(movable))
	for x, i := range movable {
		p := first[x]
		cand := make([]int32, 0, k-1)
		seen := make([]bool, k)
		seen[p] = true
		for _, sn := range c.st.Nodes[i].ServiceNodes {
			if j, ok := pos[sn]; ok && !seen[j] {
				seen[j] = true
				cand = append(cand, int32(j))
			}
		}
		for _, j := range prefs[x] {
			if !seen[j] {
				seen[j] = true
				cand = append(cand, j)
			}
		}
		cands[x] = cand
	}
	return cands
}

// secondEntries balances the second entries among the nodes that share a
// first member.
func (c *assignClass) secondEntries(movable, fixed []int, pos map[string]int, first, cur []int32, cands [][]int32) []int32 {
	E := c.el.members
	k := len(E)
	second := make([]int32, len(movable))
	byFirst := make([][]int, k)
	for x := range movable {
		byFirst[first[x]] = append(byFirst[first[x]], x)
	}
	fixedByFirst := make([][]int, k)
	for _, i := range fixed {
		l := c.st.Nodes[i].ServiceNodes
		if len(l) < 2 {
			continue
		}
		p, ok1 := pos[l[0]]
		s, ok2 := pos[l[1]]
		if ok1 && ok2 {
			if fixedByFirst[p] == nil {
				fixedByFirst[p] = make([]int, k)
			}
			fixedByFirst[p][s]++
		}
	}
	for p, group := range byFirst {
		if len(group) == 0 {
			continue
		}
		fl := make([]int, k)
		copy(fl, fixedByFirst[p])
		gcur := make([]int32, len(group))
		moving := make([]bool, len(group))
		for y, x := range group {
			moving[y] = first[x] != cur[x]
			gcur[y] = -1
			if listed(c.st.Nodes[movable[x]].ServiceNodes, E[cands[x][0]]) {
				gcur[y] = cands[x][0]
			}
		}
		// Bin p is not a choice: give it no room.
		got := balanceExcluding(k, p, fl, gcur, moving, func(y int) []int32 { return cands[group[y]] })
		for y, x := range group {
			second[x] = got[y]
		}
	}
	return second
}

// emit writes the planned lists of the movable nodes to c.out.
func (c *assignClass) emit(movable []int, first, second []int32, cands [][]int32) {
	E := c.el.members
	for x, i := range movable {
		list := make([]string, 0, c.width)
		list = append(list, E[first[x]], E[second[x]])
		for _, j := range cands[x] {
			if len(list) == c.width {
				break
			}
			if j != second[x] {
				list = append(list, E[j])
			}
		}
		c.out[i] = list
	}
}

// listed reports whether member is among a node's current entries (its
// first candidate for the second slot is then its current choice).
func listed(current []string, member string) bool {
	for _, sn := range current {
		if sn == member {
			return true
		}
	}
	return false
}

func orNone(v []string) string {
	if len(v) == 0 {
		return "none"
	}
	return strings.Join(v, ", ")
}

// balanceExcluding is balance over all bins but one, which takes nothing.
func balanceExcluding(k, skip int, fixed []int, cur []int32, moving []bool, prefs func(int) []int32) []int32 {
	// Map bins without skip onto 0..k-2 and back.
	to := make([]int32, k)
	from := make([]int32, 0, k-1)
	for b := 0; b < k; b++ {
		if b == skip {
			to[b] = -1
			continue
		}
		to[b] = int32(len(from))
		from = append(from, int32(b))
	}
	f := make([]int, k-1)
	for b := 0; b < k; b++ {
		if b != skip {
			f[to[b]] = fixed[b]
		}
	}
	c := make([]int32, len(cur))
	for i, b := range cur {
		c[i] = -1
		if b >= 0 && int(b) != skip {
			c[i] = to[b]
		}
	}
	tmp := make([]int32, 0, k)
	got := balance(k-1, f, c, moving, func(i int) []int32 {
		tmp = tmp[:0]
		for _, b := range prefs(i) {
			if int(b) != skip {
				tmp = append(tmp, to[b])
			}
		}
		return tmp
	})
	for i, b := range got {
		got[i] = from[b]
	}
	return got
}

// balance gives each of len(cur) items one of k bins so that the bins'
// totals (fixed load plus items) are as even as possible: every bin whose
// fixed load is not already above the others ends within one of the rest.
// An item keeps its current bin (cur, -1 for none) while that bin has room;
// the items a bin cannot keep are those that are moving anyway (moving[i],
// may be nil), then those that rank it lowest. Items without
// a bin take the first bin in their preference order that has room. prefs
// must list every bin.
func balance(k int, fixed []int, cur []int32, moving []bool, prefs func(int) []int32) []int32 {
	n := len(cur)
	curCount := make([]int, k)
	for i, b := range cur {
		if b >= 0 && (moving == nil || !moving[i]) {
			curCount[b]++
		}
	}
	quota := targets(n, fixed, curCount)
	out := make([]int32, n)
	for i := range out {
		out[i] = -1
	}
	// Keep current bins within quota; a bin over quota keeps the items
	// not otherwise moving, then those that rank it highest (ties: item
	// order).
	holders := make([][]int, k)
	for i, b := range cur {
		if b >= 0 {
			holders[b] = append(holders[b], i)
		}
	}
	used := make([]int, k)
	for b, hs := range holders {
		if len(hs) > quota[b] {
			rank := make(map[int]int, len(hs))
			for _, i := range hs {
				for r, pb := range prefs(i) {
					if int(pb) == b {
						rank[i] = r
						break
					}
				}
			}
			sort.SliceStable(hs, func(x, y int) bool {
				if moving != nil && moving[hs[x]] != moving[hs[y]] {
					return !moving[hs[x]]
				}
				return rank[hs[x]] < rank[hs[y]]
			})
			hs = hs[:quota[b]]
		}
		for _, i := range hs {
			out[i] = int32(b)
			used[b]++
		}
	}
	for i := range out {
		if out[i] >= 0 {
			continue
		}
		for _, b := range prefs(i) {
			if used[b] < quota[b] {
				out[i] = b
				used[b]++
				break
			}
		}
	}
	return out
}

// targets splits n items over bins with fixed loads by water filling: the
// least loaded bins are raised first. Where one more item goes to some of
// the bins at the final level, the bins holding most items now (curCount)
// get it, so a balanced pool stays as it is.
func targets(n int, fixed, curCount []int) []int {
	k := len(fixed)
	need := func(level int) int {
		s := 0
		for _, f := range fixed {
			if level > f {
				s += level - f
			}
		}
		return s
	}
	lo, hi := 0, n
	for _, f := range fixed {
		hi = max(hi, f+n)
	}
	for lo < hi { // largest level with need(level) <= n
		mid := (lo + hi + 1) / 2
		if need(mid) <= n {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	level := lo
	q := make([]int, k)
	var atLevel []int
	for b, f := range fixed {
		if level > f {
			q[b] = level - f
		}
		if f <= level {
			atLevel = append(atLevel, b)
		}
	}
	rem := n - need(level)
	sort.SliceStable(atLevel, func(x, y int) bool { return curCount[atLevel[x]] > curCount[atLevel[y]] })
	for _, b := range atLevel[:rem] {
		q[b]++
	}
	return q
}

func hash64(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// mix64 is the splitmix64 finalizer: it spreads the bits of x.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// AssignResult is what Assign did.
type AssignResult struct {
	AssignPlan
	// Written counts the lists written (they may be fewer than the plan's
	// changes when other members changed nodes at the same time).
	Written int `json:"written"`
	// Conflicts names nodes that changed concurrently in every round and
	// were left as they were.
	Conflicts []string `json:"conflicts,omitempty"`
}

// assignRounds bounds how often Assign plans again after concurrent changes.
const assignRounds = 3

// Assign computes servicenode lists (PlanAssignment) and writes the
// changed ones. Each node is written with a conditional update on its
// revision, in batches of WithBatchSize nodes per transaction with one
// audit record per batch; a node changed by someone else since it was read
// is left alone and the plan is made again from a fresh snapshot, up to
// three times. When nodes still conflict after that the result lists them
// and the error wraps ErrConflict. Nothing is written when the plan
// changes nothing (no audit record, the change counter does not move).
func (s *Store) Assign(ctx context.Context, o AssignOptions) (AssignResult, error) {
	var res AssignResult
	for round := 1; ; round++ {
		st, err := s.LoadState(ctx)
		if err != nil {
			return res, err
		}
		plan, err := PlanAssignment(st, o)
		if err != nil {
			return res, err
		}
		if round == 1 {
			res.AssignPlan = *plan
		} else {
			res.Load, res.Warnings = plan.Load, plan.Warnings
		}
		written, conflicts, err := s.writeAssignments(ctx, plan.Changes)
		res.Written += written
		if err != nil {
			return res, err
		}
		res.Conflicts = conflicts
		if len(conflicts) == 0 {
			return res, nil
		}
		if round >= assignRounds {
			return res, fmt.Errorf("%w: %d nodes were changed by others while assigning (%s); run assign again", ErrConflict, len(conflicts), abbreviate(conflicts, 10))
		}
		s.log.Debug("pool: assign conflicts, planning again", "round", round, "nodes", len(conflicts))
	}
}

func abbreviate(v []string, n int) string {
	if len(v) <= n {
		return strings.Join(v, ", ")
	}
	return strings.Join(v[:n], ", ") + fmt.Sprintf(", ... (%d more)", len(v)-n)
}

func (s *Store) writeAssignments(ctx context.Context, changes []NodeAssignment) (int, []string, error) {
	written := 0
	var conflicts []string
	for start := 0; start < len(changes); start += s.o.batch {
		batch := changes[start:min(start+s.o.batch, len(changes))]
		var w int
		var lost []string
		err := s.Tx(ctx, func(tx *sqlx.Tx) error {
			var err error
			w, lost, err = s.writeAssignBatch(ctx, tx, batch)
			return err
		})
		if err != nil {
			return written, conflicts, err
		}
		written += w
		conflicts = append(conflicts, lost...)
	}
	return written, conflicts, nil
}

// writeAssignBatch updates the batch's nodes whose revision is still the
// one planned from (clearing their manual flag) and tells which were not:
// a node whose row now holds exactly what was planned at the next
// revision was written (by this statement, or by an earlier run of this
// transaction whose commit outcome was unknown); any other was changed by
// someone else.
func (s *Store) writeAssignBatch(ctx context.Context, tx *sqlx.Tx, batch []NodeAssignment) (int, []string, error) {
	b := nodeBatch{batchForm: batchForm{clearManual: true}, writes: make([]nodeWrite, len(batch))}
	for i, c := range batch {
		b.writes[i] = nodeWrite{node: c.Node, rev: c.Revision, old: joinList(c.Old), new: joinList(c.New)}
	}
	won, n, err := s.writeNodes(ctx, tx, b, nil, true)
	if err != nil {
		return 0, nil, err
	}
	var lost []string
	for i, c := range batch {
		if !won[i] {
			lost = append(lost, c.Node)
		}
	}
	if n > 0 {
		target := batch[0].Node
		if len(batch) > 1 {
			target = fmt.Sprintf("%s..%s (%d nodes)", batch[0].Node, batch[len(batch)-1].Node, len(batch))
		}
		if err := s.Audit(ctx, tx, "node.assign", target, map[string]any{"written": n, "conflicts": len(lost)}); err != nil {
			return 0, nil, err
		}
	}
	return len(batch) - len(lost), lost, nil
}
