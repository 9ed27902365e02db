package noderange

import (
	"fmt"
	"maps"
	"slices"
)

// Universe is what a noderange is resolved against: the defined nodes and
// groups. Implementations must be safe for concurrent reads if Ranges are
// expanded concurrently. Static is the implementation for a snapshot in
// memory; a database-backed caller loads one.
type Universe interface {
	// Nodes returns every node name once, preferably in natural order (see
	// Compare), which makes Expand fastest. Callers must not modify it.
	Nodes() []string
	// Lookup returns the position of a node in Nodes() (0 <= i <
	// len(Nodes())), or false if name is not a node.
	Lookup(name string) (int, bool)
	// Group returns the member nodes of a group, or false if there is no
	// group of that name. Members must be nodes.
	Group(name string) ([]string, bool)
}

// MaxNameLen is the longest node or group name ValidateName accepts.
const MaxNameLen = 255

// ValidateName checks that a node or group name can be written in a
// noderange: 1 to MaxNameLen letters, digits, '-', '_' and '.', not starting
// with '-'. Errors match ErrInvalidName.
func ValidateName(name string) error {
	const allowed = "names contain 1 to 255 letters, digits, '-', '_' and '.', and do not start with '-'"
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("%w: %q is %d bytes long; %s", ErrInvalidName, name, len(name), allowed)
	}
	if name[0] == '-' {
		return fmt.Errorf("%w: %q starts with '-'; %s", ErrInvalidName, name, allowed)
	}
	for i := 0; i < len(name); i++ {
		if !isNameByte(name[i]) {
			return fmt.Errorf("%w: %q has %q at byte %d; %s", ErrInvalidName, name, name[i:i+1], i+1, allowed)
		}
	}
	return nil
}

// Static is a Universe held in memory. It is immutable and safe for
// concurrent use. Build it with NewStatic; the zero Static has no nodes.
type Static struct {
	nodes  []string
	index  map[string]int
	groups map[string][]string
}

// NewStatic builds a Universe from node names and groups (group name to
// member nodes). Names are checked with ValidateName; duplicates are
// dropped; every group member must be one of nodes (ErrUnknown otherwise).
// The inputs are copied.
func NewStatic(nodes []string, groups map[string][]string) (*Static, error) {
	s := &Static{
		nodes:  sortedUnique(nodes),
		groups: make(map[string][]string, len(groups)),
	}
	s.index = make(map[string]int, len(s.nodes))
	for i, n := range s.nodes {
		if err := ValidateName(n); err != nil {
			return nil, err
		}
		s.index[n] = i
	}
	for _, g := range slices.Sorted(maps.Keys(groups)) {
		if err := ValidateName(g); err != nil {
			return nil, fmt.Errorf("group: %w", err)
		}
		members := sortedUnique(groups[g])
		var unknown []string
		for _, m := range members {
			if _, ok := s.index[m]; !ok {
				unknown = append(unknown, m)
			}
		}
		if unknown != nil {
			return nil, fmt.Errorf("group %q has members that are not nodes: %w", g, &UnknownError{Names: unknown})
		}
		s.groups[g] = members
	}
	return s, nil
}

// sortedUnique returns a naturally sorted copy of names without duplicates.
func sortedUnique(names []string) []string {
	out := slices.Clone(names)
	if !slices.IsSortedFunc(out, Compare) {
		slices.SortFunc(out, Compare)
	}
	return slices.Compact(out)
}

// Nodes returns all node names in natural order. Do not modify the slice.
func (s *Static) Nodes() []string { return s.nodes }

// Lookup returns the position of name in Nodes().
func (s *Static) Lookup(name string) (int, bool) {
	i, ok := s.index[name]
	return i, ok
}

// Group returns the members of a group in natural order. Do not modify the
// slice.
func (s *Static) Group(name string) ([]string, bool) {
	m, ok := s.groups[name]
	return m, ok
}

// Groups returns the group names in natural order.
func (s *Static) Groups() []string {
	return slices.SortedFunc(maps.Keys(s.groups), Compare)
}
