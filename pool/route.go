package pool

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/mnpool/mnpool/pool/liveness"
)

// Routing says which member should act on which nodes: each node goes to
// the first member of its servicenode list that is reachable (failover
// order). A command started on any member (a parallel shell, a power
// command) sends each group to its member.
type Routing struct {
	// ByMember maps a member to the nodes it should act on, sorted.
	ByMember map[string][]string `json:"by_member"`
	// Down lists the nodes none of whose listed members is reachable
	// (all suspect, dead or no longer members). They are returned, not
	// dropped, so the caller can report them.
	Down []string `json:"down,omitempty"`
	// Unassigned lists the nodes without a servicenode list.
	Unassigned []string `json:"unassigned,omitempty"`
	// FailedOver counts the nodes routed to a member other than their
	// first.
	FailedOver int `json:"failed_over"`
}

// RouteNodes groups nodes by the first member of their servicenode list
// that is usable in v (alive, or unknown: not observed long enough to say)
// and is a member (isMember; nil takes every name as a member). Disabled
// members still serve the nodes that list them. It is a pure function of
// its inputs.
func RouteNodes(nodes []Node, v liveness.Source, isMember func(string) bool) Routing {
	r := Routing{ByMember: map[string][]string{}}
	for _, n := range nodes {
		if len(n.ServiceNodes) == 0 {
			r.Unassigned = append(r.Unassigned, n.Name)
			continue
		}
		to := ""
		for i, sn := range n.ServiceNodes {
			if (isMember == nil || isMember(sn)) && v.LiveState(sn).Usable() {
				to = sn
				if i > 0 {
					r.FailedOver++
				}
				break
			}
		}
		if to == "" {
			r.Down = append(r.Down, n.Name)
			continue
		}
		r.ByMember[to] = append(r.ByMember[to], n.Name)
	}
	for _, l := range r.ByMember {
		sort.Strings(l)
	}
	sort.Strings(r.Down)
	sort.Strings(r.Unassigned)
	return r
}

// Members returns the members of the routing, sorted.
func (r Routing) Members() []string {
	out := make([]string, 0, len(r.ByMember))
	for m := range r.ByMember {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// Route loads the named nodes (nil: every node) and routes them with the
// liveness view v (usually Store.PublishedView, or an Observer's view).
// Names in servicenode lists that are no longer members are skipped.
// Unknown node names are an error that lists them all. It works the same
// from every member: nothing in it depends on which member runs it.
func (s *Store) Route(ctx context.Context, names []string, v liveness.Source) (Routing, error) {
	st, err := s.LoadState(ctx)
	if err != nil {
		return Routing{}, err
	}
	nodes := st.Nodes
	if names != nil {
		idx := make(map[string]int, len(nodes))
		for i, n := range nodes {
			idx[n.Name] = i
		}
		var sel []Node
		var unknown []string
		seen := map[string]bool{}
		for _, name := range names {
			i, ok := idx[name]
			switch {
			case !ok:
				unknown = append(unknown, name)
			case !seen[name]:
				seen[name] = true
				sel = append(sel, nodes[i])
			}
		}
		if len(unknown) > 0 {
			return Routing{}, fmt.Errorf("%w: unknown nodes: %s", ErrNotFound, strings.Join(unknown, ", "))
		}
		nodes = sel
	}
	isMember := func(m string) bool { _, ok := st.Member(m); return ok }
	return RouteNodes(nodes, v, isMember), nil
}
