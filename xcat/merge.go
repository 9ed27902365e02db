package xcat

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/siteschema"
)

// Merging brings an export (or any xCAT dump) into an existing pool: what
// the dump has and the pool has not is added, what differs is changed to
// the dump's value, and what the pool has and the dump has not is kept.
// PlanMerge computes the difference without writing; Merge applies it.

// Change is one difference between the pool and the dump.
type Change struct {
	Kind   string `json:"kind"` // site, network, member, node
	Name   string `json:"name"`
	Op     string `json:"op"` // add, change
	Before string `json:"before,omitempty"`
	After  string `json:"after"`
}

func (c Change) String() string {
	if c.Op == "add" {
		return fmt.Sprintf("+ %s %s: %s", c.Kind, c.Name, c.After)
	}
	return fmt.Sprintf("~ %s %s: %s -> %s", c.Kind, c.Name, c.Before, c.After)
}

// MergePlan is the difference PlanMerge found and what Merge writes.
type MergePlan struct {
	Changes  []Change          `json:"changes"`
	site     map[string]string // keys to set
	networks []pool.Network
	members  []pool.Member
	nodes    []pool.NodeUpdate
}

// Empty reports whether the dump holds nothing the pool lacks.
func (p *MergePlan) Empty() bool { return len(p.Changes) == 0 }

// PlanMerge compares the pool st with the dump x.
func PlanMerge(st *pool.State, x *Import) *MergePlan {
	p := &MergePlan{site: map[string]string{}}
	for _, k := range slices.Sorted(maps.Keys(x.Site)) {
		v := x.Site[k]
		if k == siteschema.Master {
			continue
		}
		if old, ok := st.Site[k]; !ok {
			p.add("site", k, "add", "", v)
			p.site[k] = v
		} else if old != v {
			p.add("site", k, "change", old, v)
			p.site[k] = v
		}
	}
	for _, n := range x.Networks {
		old, ok := st.Network(n.Name)
		if !ok || networkText(old) != networkText(n) {
			p.networks = append(p.networks, n)
			p.addDiff("network", n.Name, ok, networkText(old), networkText(n))
		}
	}
	for _, m := range append([]pool.Member{x.MN}, x.Members...) {
		old, ok := st.Member(m.Name)
		if !ok || memberText(old) != memberText(m) {
			if ok {
				m.Disabled = old.Disabled || m.Disabled
			}
			p.members = append(p.members, m)
			p.addDiff("member", m.Name, ok, memberText(old), memberText(m))
		}
	}
	cur := map[string]pool.Node{}
	for _, n := range st.Nodes {
		cur[n.Name] = n
	}
	for _, n := range x.Nodes {
		old, ok := cur[n.Name]
		before, after := nodeDiffText(old, n, ok)
		if ok && before == after {
			continue
		}
		p.addDiff("node", n.Name, ok, before, after)
		u := pool.NodeUpdate{Name: n.Name}
		for _, a := range []pool.NodeAttr{pool.AttrIP, pool.AttrNetwork, pool.AttrMAC, pool.AttrGroups, pool.AttrServiceNodes, pool.AttrManual} {
			u.Changes = append(u.Changes, pool.NodeChange{Attr: a, Op: pool.OpSet, Value: a.Value(n)})
		}
		p.nodes = append(p.nodes, u)
	}
	return p
}

func (p *MergePlan) add(kind, name, op, before, after string) {
	p.Changes = append(p.Changes, Change{Kind: kind, Name: name, Op: op, Before: before, After: after})
}

func (p *MergePlan) addDiff(kind, name string, existed bool, before, after string) {
	if existed {
		p.add(kind, name, "change", before, after)
	} else {
		p.add(kind, name, "add", "", after)
	}
}

func networkText(n pool.Network) string {
	if !n.Prefix.IsValid() {
		return ""
	}
	var gws []string
	for _, g := range n.Gateways {
		gws = append(gws, g.String())
	}
	s := fmt.Sprintf("%s gateways=%s domain=%s mgtifname=%s", n.Prefix, strings.Join(gws, ","), n.Domain, n.MgtIfName)
	if n.HasDynamicRange() {
		s += fmt.Sprintf(" dynamic=%s-%s", n.DynamicStart, n.DynamicEnd)
	}
	return s
}

func memberText(m pool.Member) string {
	if m.Name == "" {
		return ""
	}
	nets := slices.Sorted(maps.Keys(m.Addresses))
	var addrs []string
	for _, n := range nets {
		addrs = append(addrs, n+"="+m.Addresses[n].String())
	}
	svcs := make([]string, len(m.Services))
	for i, s := range m.Services {
		svcs[i] = string(s)
	}
	return fmt.Sprintf("addresses=%s services=%s", strings.Join(addrs, ","), strings.Join(svcs, ","))
}

// nodeDiffText shows the attributes that differ (all of a new node's).
func nodeDiffText(old, n pool.Node, existed bool) (before, after string) {
	var b, a []string
	for _, attr := range pool.NodeAttrs() {
		ov, nv := attr.Value(old), attr.Value(n)
		if existed && ov == nv {
			continue
		}
		if existed {
			b = append(b, string(attr)+"="+ov)
		}
		a = append(a, string(attr)+"="+nv)
	}
	return strings.Join(b, " "), strings.Join(a, " ")
}

// Merge writes the plan into s: site keys (unknown keys kept as custom),
// networks, members, then nodes (each node checked as node set checks it,
// all before any node is written). A step that fails stops the merge; the
// error says which step, and the steps before it stay written.
func Merge(ctx context.Context, s *pool.Store, p *MergePlan) error {
	if len(p.site) > 0 {
		if err := s.SetSiteWith(ctx, p.site, pool.SiteOptions{Custom: true}); err != nil {
			return fmt.Errorf("merge: site: %w", err)
		}
	}
	sort.Slice(p.networks, func(i, j int) bool { return p.networks[i].Name < p.networks[j].Name })
	for _, n := range p.networks {
		if err := s.AddNetwork(ctx, n, true); err != nil {
			return fmt.Errorf("merge: network %s: %w", n.Name, err)
		}
	}
	for _, m := range p.members {
		if m.Addresses == nil {
			m.Addresses = map[string]netip.Addr{}
		}
		if err := s.AddMember(ctx, m, true); err != nil {
			return fmt.Errorf("merge: member %s: %w", m.Name, err)
		}
	}
	if len(p.nodes) > 0 {
		if _, err := s.ApplyNodes(ctx, p.nodes, pool.SetOptions{Create: true}); err != nil {
			return fmt.Errorf("merge: nodes: %w", err)
		}
	}
	return nil
}
