package pool

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jmoiron/sqlx"
)

// Nodes, members and groups share one name space: a noderange names any of
// them, so two that differ only in case, or a node and a group of one name,
// could not be told apart (and DNS, which ignores case, would publish both
// under one name). Names are compared case-insensitively; the reserved
// names (reservedNames) are refused for all three.

// nameKind says what a name in the pool's name space stands for.
type nameKind string

// Kinds of names.
const (
	kindNode   nameKind = "node"
	kindMember nameKind = "member"
	kindGroup  nameKind = "group"
)

// reservedNames are names no node, member or group may have: "all" is the
// noderange of every node.
func reservedNames() []string { return []string{"all"} }

// isReservedName reports whether name (in any case) is reserved.
func isReservedName(name string) bool {
	for _, r := range reservedNames() {
		if strings.EqualFold(r, name) {
			return true
		}
	}
	return false
}

type nameEntry struct {
	kind nameKind
	name string
}

// nameSpace maps a lower-case name to what holds it.
type nameSpace map[string]nameEntry

func (ns nameSpace) add(kind nameKind, name string) {
	k := strings.ToLower(name)
	if _, ok := ns[k]; !ok {
		ns[k] = nameEntry{kind, name}
	}
}

// free checks that name may be used as kind: not reserved, not taken by
// another kind, and not an existing name of its kind spelled differently.
// The exact name of the same kind is free (a node being replaced, a group
// being joined).
func (ns nameSpace) free(kind nameKind, name string) error {
	if isReservedName(name) {
		return fmt.Errorf("%w: %s name %q is reserved (the noderange all means every node)", ErrInvalid, kind, name)
	}
	e, ok := ns[strings.ToLower(name)]
	switch {
	case !ok || (e.kind == kind && e.name == name):
		return nil
	case e.kind == kind:
		return fmt.Errorf("%w: %s %q differs only in case from the existing %s %q; names are case-insensitive", ErrExists, kind, name, e.kind, e.name)
	default:
		return fmt.Errorf("%w: %s name %q is the name of a %s (%s); nodes, members and groups share one case-insensitive name space (noderanges could not tell them apart)", ErrInvalid, kind, name, e.kind, e.name)
	}
}

// loadNameSpace reads every node, member and group name in tx.
func loadNameSpace(ctx context.Context, tx *sqlx.Tx) (nameSpace, error) {
	ns := nameSpace{}
	var members []string
	if err := tx.SelectContext(ctx, &members, "SELECT name FROM members"); err != nil {
		return nil, err
	}
	for _, m := range members {
		ns.add(kindMember, m)
	}
	var nodes []string
	if err := tx.SelectContext(ctx, &nodes, "SELECT name FROM nodes"); err != nil {
		return nil, err
	}
	for _, n := range nodes {
		ns.add(kindNode, n)
	}
	var lists []string
	if err := tx.SelectContext(ctx, &lists, "SELECT DISTINCT grouplist FROM nodes"); err != nil {
		return nil, err
	}
	for _, l := range lists {
		for _, g := range splitList(l) {
			ns.add(kindGroup, g)
		}
	}
	return ns, nil
}

// NameProblem is a name in an existing pool that breaks the name-space
// rule (found by Store.Check; nothing is changed).
type NameProblem struct {
	Name    string   `json:"name"`
	Kinds   []string `json:"kinds"` // "node cn001", "member CN001", ...
	Problem string   `json:"problem"`
}

// nameProblems lists the reserved names in use and the names that collide
// case-insensitively, sorted by name.
func nameProblems(members, nodes []string, groups map[string]bool) []NameProblem {
	type holder struct{ kind, name string }
	by := map[string][]holder{}
	add := func(kind nameKind, n string) {
		k := strings.ToLower(n)
		by[k] = append(by[k], holder{string(kind), n})
	}
	for _, m := range members {
		add(kindMember, m)
	}
	for _, n := range nodes {
		add(kindNode, n)
	}
	for g := range groups {
		add(kindGroup, g)
	}
	var out []NameProblem
	for k, hs := range by {
		var kinds []string
		for _, h := range hs {
			kinds = append(kinds, h.kind+" "+h.name)
		}
		sort.Strings(kinds)
		switch {
		case isReservedName(k):
			out = append(out, NameProblem{Name: k, Kinds: kinds, Problem: "reserved name (the noderange all means every node)"})
		case len(hs) > 1:
			out = append(out, NameProblem{Name: k, Kinds: kinds, Problem: "one name for several nodes, members or groups (names are case-insensitive)"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
