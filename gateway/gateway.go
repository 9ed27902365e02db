// Package gateway gives compute nodes an HA way out of their networks.
// A network lists its gateways in order (pool.Network.Gateways); nodes and
// DHCP hand out all of them, first preferred (ForNode). Members that
// forward traffic share a virtual gateway address with VRRP: the package
// renders their keepalived configuration from the VRRP groups kept in the
// site table, so the address moves to the next member when one fails and
// the way out does not depend on the MN alone (Warnings reports pools
// where it does).
//
// A VRRP group on network NET is three site keys:
//
//	vrrp.NET.members  members that forward traffic, highest priority first (two or more)
//	vrrp.NET.vips     the virtual gateway addresses (each one of NET's gateways)
//	vrrp.NET.vrid     the VRRP router ID, 1-255 (default 51)
package gateway

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/mnpool/mnpool/memberaddr"
	"github.com/mnpool/mnpool/pool"
)

// Errors returned by the package; match them with errors.Is.
var (
	// ErrInvalid: a VRRP setting or an option that cannot go into a
	// configuration file.
	ErrInvalid = errors.New("gateway: invalid value")
	// ErrNotFound: a node, member or network that is not in the pool, or a
	// member that forwards for no network.
	ErrNotFound = errors.New("gateway: not found")
	// ErrOnlyMN: a network whose only way out is the MN.
	ErrOnlyMN = errors.New("gateway: only through the MN")
)

// VRRP defaults.
const (
	DefaultVRID = 51
	// TopPriority is the priority of a group's first member; each next
	// member gets PriorityStep less.
	TopPriority  = 150
	PriorityStep = 10
	// MaxGroupMembers keeps every priority above zero.
	MaxGroupMembers = TopPriority / PriorityStep
)

// MembersKey is the site key listing the members of network's VRRP group.
func MembersKey(network string) string { return "vrrp." + network + ".members" }

// VIPsKey is the site key listing the virtual addresses of network's
// VRRP group.
func VIPsKey(network string) string { return "vrrp." + network + ".vips" }

// VRIDKey is the site key holding the VRRP router ID of network's group.
func VRIDKey(network string) string { return "vrrp." + network + ".vrid" }

// ForNode returns the gateways of node's network in order, the first
// preferred: DHCP's routers option and a node's static configuration list
// all of them. A network without gateways gives none.
func ForNode(st *pool.State, node pool.Node) ([]netip.Addr, error) {
	if node.Network == "" {
		return nil, fmt.Errorf("%w: node %s has no network", ErrNotFound, node.Name)
	}
	nw, ok := st.Network(node.Network)
	if !ok {
		return nil, fmt.Errorf("%w: node %s: network %s", ErrNotFound, node.Name, node.Network)
	}
	return slices.Clone(nw.Gateways), nil
}

// Group is the VRRP group of one network.
type Group struct {
	Network string       `json:"network"`
	Prefix  netip.Prefix `json:"cidr"`
	VRID    int          `json:"vrid"`
	VIPs    []netip.Addr `json:"vips"`
	// Members forward traffic, highest priority first.
	Members []string `json:"members"`
}

// Priority returns the VRRP priority of member in the group (0 when it is
// not in it).
func (g Group) Priority(member string) int {
	if i := slices.Index(g.Members, member); i >= 0 {
		return TopPriority - i*PriorityStep
	}
	return 0
}

func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
}

// Groups returns the VRRP groups set in the site table, by network name,
// each checked against the pool: two to MaxGroupMembers distinct members
// with an address on the network; virtual addresses inside the network,
// listed among its gateways (else nodes would not use them) and nobody's
// own address.
func Groups(st *pool.State) ([]Group, error) {
	var out []Group
	used := map[netip.Addr]string{}
	for _, m := range st.Members {
		for _, a := range m.Addresses {
			used[a] = "member " + m.Name
		}
	}
	for _, n := range st.Nodes {
		if n.IP.IsValid() {
			used[n.IP] = "node " + n.Name
		}
	}
	for _, nw := range st.Networks {
		mv, hasMembers := st.Site[MembersKey(nw.Name)]
		vv, hasVIPs := st.Site[VIPsKey(nw.Name)]
		idv, hasID := st.Site[VRIDKey(nw.Name)]
		if !hasMembers && !hasVIPs && !hasID {
			continue
		}
		g := Group{Network: nw.Name, Prefix: nw.Prefix, VRID: DefaultVRID}
		bad := func(format string, args ...any) ([]Group, error) {
			return nil, fmt.Errorf("%w: VRRP group of network %s: %s", ErrInvalid, nw.Name, fmt.Sprintf(format, args...))
		}
		g.Members = splitList(mv)
		if len(g.Members) < 2 || len(g.Members) > MaxGroupMembers {
			return bad("site %s=%q: want 2 to %d members, highest priority first", MembersKey(nw.Name), mv, MaxGroupMembers)
		}
		for i, name := range g.Members {
			m, ok := st.Member(name)
			if !ok {
				return bad("%s is not a member of the pool", name)
			}
			if _, ok := memberaddr.OnNetwork(m, nw.Name); !ok {
				return bad("member %s has no address on network %s", name, nw.Name)
			}
			if slices.Contains(g.Members[:i], name) {
				return bad("member %s is listed twice", name)
			}
		}
		for _, s := range splitList(vv) {
			a, err := netip.ParseAddr(s)
			if err != nil || a.Zone() != "" {
				return bad("site %s: %q is not an IP address", VIPsKey(nw.Name), s)
			}
			a = a.Unmap()
			switch {
			case !nw.Prefix.Contains(a):
				return bad("virtual address %s is outside %s", a, nw.Prefix)
			case !slices.Contains(nw.Gateways, a):
				return bad("virtual address %s is not one of the network's gateways %v (nodes would not use it; add it with mnpool network)", a, nw.Gateways)
			case used[a] != "":
				return bad("virtual address %s is the address of %s", a, used[a])
			case slices.Contains(g.VIPs, a):
				return bad("virtual address %s is listed twice", a)
			}
			g.VIPs = append(g.VIPs, a)
		}
		if len(g.VIPs) == 0 {
			return bad("site %s is empty: name the virtual gateway address(es)", VIPsKey(nw.Name))
		}
		if hasID {
			id, err := strconv.Atoi(idv)
			if err != nil || id < 1 || id > 255 {
				return bad("site %s=%q: want 1-255", VRIDKey(nw.Name), idv)
			}
			g.VRID = id
		}
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b Group) int { return strings.Compare(a.Network, b.Network) })
	return out, nil
}

// Warnings returns what keeps the pool from having an HA way out: VRRP
// groups that are set wrong (ErrInvalid) and networks whose every gateway
// is an address of the MN (ErrOnlyMN). Networks without gateways are
// fine: they may be meant to be closed.
func Warnings(st *pool.State) []error {
	var out []error
	if _, err := Groups(st); err != nil {
		out = append(out, err)
	}
	mn, _ := st.Member(st.Master.Member)
	for _, nw := range st.Networks {
		if len(nw.Gateways) == 0 {
			continue
		}
		onlyMN := true
		for _, g := range nw.Gateways {
			if mn.Addresses[nw.Name] != g {
				onlyMN = false
			}
		}
		if onlyMN {
			out = append(out, fmt.Errorf("%w: network %s: its only gateway %s is the MN %s; add another gateway or a VRRP address (%s, %s)",
				ErrOnlyMN, nw.Name, nw.Gateways[0], mn.Name, MembersKey(nw.Name), VIPsKey(nw.Name)))
		}
	}
	return out
}
