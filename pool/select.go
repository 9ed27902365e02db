package pool

import (
	"io"
	"os"

	"github.com/mnpool/mnpool/noderange"
)

// Universe returns the snapshot's nodes and groups for noderange
// expansion. It is built on each call; keep it when expanding several
// ranges against one snapshot.
func (s *State) Universe() (noderange.Universe, error) {
	names := make([]string, len(s.Nodes))
	groups := map[string][]string{}
	for i, n := range s.Nodes {
		names[i] = n.Name
		for _, g := range n.Groups {
			groups[g] = append(groups[g], n.Name)
		}
	}
	return noderange.NewStatic(names, groups)
}

// Select expands an xCAT noderange (cn[001-100], groups, all, -exclusions,
// /regex, ^file) against the snapshot and returns the nodes in natural
// order. Unknown names are an error (noderange.ErrUnknown) that lists them
// all; a range that selects nothing is noderange.ErrEmpty.
func (s *State) Select(expr string) ([]Node, error) {
	u, err := s.Universe()
	if err != nil {
		return nil, err
	}
	names, err := noderange.Expand(expr, u, noderange.WithFileOpener(func(name string) (io.ReadCloser, error) { return os.Open(name) }))
	if err != nil {
		return nil, err
	}
	idx := make(map[string]int, len(s.Nodes))
	for i, n := range s.Nodes {
		idx[n.Name] = i
	}
	out := make([]Node, 0, len(names))
	for _, name := range names {
		out = append(out, s.Nodes[idx[name]])
	}
	return out, nil
}
