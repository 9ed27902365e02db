package pool

import (
	"context"
	"sort"

	"github.com/mnpool/mnpool/pool/liveness"
)

// MemberStatus is one member's line in Status.
type MemberStatus struct {
	Member
	IsMN bool `json:"is_mn"`
	// Primary is the number of nodes whose servicenode list starts with
	// this member; Listed is the number that list it anywhere.
	Primary int `json:"primary_nodes"`
	Listed  int `json:"listed_nodes"`
	// Liveness is the member's liveness as published by the observing
	// members (Store.PublishedView); nil in Summarize.
	Liveness *liveness.Judgement `json:"liveness,omitempty"`
}

// Status is the summary `mnpool status` prints.
type Status struct {
	Master     Master         `json:"master"`
	Members    []MemberStatus `json:"members"`
	Networks   int            `json:"networks"`
	Nodes      int            `json:"nodes"`
	Unassigned int            `json:"unassigned_nodes"`
	DB         Health         `json:"db"`
	// Addresses: nodes with a MAC but no IP, or an IP but no MAC.
	Addresses []AddressWarning `json:"address_warnings,omitempty"`
}

// Summarize computes per-member counts from a state snapshot.
func Summarize(st *State) Status {
	out := Status{Master: st.Master, Networks: len(st.Networks), Nodes: len(st.Nodes)}
	idx := map[string]int{}
	for _, m := range st.Members {
		idx[m.Name] = len(out.Members)
		out.Members = append(out.Members, MemberStatus{Member: m, IsMN: st.IsMN(m.Name)})
	}
	for _, n := range st.Nodes {
		if len(n.ServiceNodes) == 0 {
			out.Unassigned++
			continue
		}
		for i, sn := range n.ServiceNodes {
			j, ok := idx[sn]
			if !ok {
				continue
			}
			out.Members[j].Listed++
			if i == 0 {
				out.Members[j].Primary++
			}
		}
	}
	sort.SliceStable(out.Members, func(i, j int) bool {
		if out.Members[i].IsMN != out.Members[j].IsMN {
			return out.Members[i].IsMN
		}
		return out.Members[i].Name < out.Members[j].Name
	})
	return out
}

// Status loads the pool and reports its members, MN, node counts and the
// database's health, with the published liveness (no ages).
func (s *Store) Status(ctx context.Context) (Status, error) {
	return s.status(ctx, func() (liveness.View, error) { return s.PublishedView(ctx) })
}

// StatusAged is Status with the age of each liveness judgement
// (Store.AgedView): it takes up to o.StaleIntervals heartbeat intervals.
func (s *Store) StatusAged(ctx context.Context, o AgeOptions) (Status, error) {
	return s.status(ctx, func() (liveness.View, error) { return s.AgedView(ctx, o) })
}

func (s *Store) status(ctx context.Context, view func() (liveness.View, error)) (Status, error) {
	st, err := s.LoadState(ctx)
	if err != nil {
		return Status{}, err
	}
	out := Summarize(st)
	out.Addresses = AddressWarnings(st.Nodes)
	live, err := view()
	if err != nil {
		return Status{}, err
	}
	for i := range out.Members {
		l, ok := live[out.Members[i].Name]
		if !ok {
			l = liveness.Judgement{Member: out.Members[i].Name, State: liveness.Unknown}
		}
		out.Members[i].Liveness = &l
	}
	out.DB, err = s.Health(ctx)
	return out, err
}
