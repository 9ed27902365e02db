package memberaddr

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
	"github.com/mnpool/mnpool/pool/siteschema"
)

// Errors returned by the package; match them with errors.Is.
var (
	// ErrNoServers: no member can serve the node asked about.
	ErrNoServers = errors.New("memberaddr: no server")
	// ErrNotMember: a node names a servicenode that is not a pool member.
	ErrNotMember = errors.New("memberaddr: not a member")
)

// Server is a pool member that serves a node or another member, with the
// address to reach it by.
type Server struct {
	Member string     `json:"member"`
	Addr   netip.Addr `json:"addr"`
}

// Domain returns the DNS domain of the names on network: the network's
// domain when set, else site.domain; "" when neither is set.
func Domain(st *pool.State, network string) string {
	if n, ok := st.Network(network); ok && n.Domain != "" {
		return n.Domain
	}
	return st.Site[siteschema.Domain]
}

// OnNetwork returns the address a host on network uses to reach member m:
// m's address on that network. ok is false when m has none there (or
// network is "").
func OnNetwork(m pool.Member, network string) (addr netip.Addr, ok bool) {
	if network == "" {
		return netip.Addr{}, false
	}
	addr, ok = m.Addresses[network]
	return addr, ok
}

// ServiceNodes returns node's servicenodes that are pool members with an
// address on the node's network, in the node's list order, each with that
// address. The others are left out; the result may be empty.
func ServiceNodes(st *pool.State, node pool.Node) []Server {
	var out []Server
	for _, name := range node.ServiceNodes {
		m, ok := st.Member(name)
		if !ok {
			continue
		}
		if a, ok := OnNetwork(m, node.Network); ok {
			out = append(out, Server{Member: name, Addr: a})
		}
	}
	return out
}

// ForNode returns the servicenodes of node that run svc, in the node's
// list order, each with its address on the node's network. Servicenodes
// that do not run svc are left out; a servicenode missing from the pool
// (ErrNotMember) or without an address on the node's network is an error
// (the pool does not let either happen), and so is an empty result
// (ErrNoServers).
func ForNode(st *pool.State, node pool.Node, svc service.Service) ([]Server, error) {
	if node.Network == "" {
		return nil, fmt.Errorf("%w: node %s has no network (give it an IP on a pool network)", ErrNoServers, node.Name)
	}
	var out []Server
	for _, sn := range node.ServiceNodes {
		m, ok := st.Member(sn)
		if !ok {
			return nil, fmt.Errorf("%w: node %s: servicenode %s is not a member of the pool", ErrNotMember, node.Name, sn)
		}
		if !m.Runs(svc) {
			continue
		}
		a, ok := OnNetwork(m, node.Network)
		if !ok {
			return nil, fmt.Errorf("%w: node %s: servicenode %s has no address on network %s", ErrNoServers, node.Name, sn, node.Network)
		}
		out = append(out, Server{Member: sn, Addr: a})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: node %s: none of its servicenodes (%v) runs %s", ErrNoServers, node.Name, node.ServiceNodes, svc)
	}
	return out, nil
}

// Networks returns the networks m has an address on, in the order the
// pool prefers them: the networks whose domain is site.domain first (the
// member's main names live there), then the others, each by name.
func Networks(st *pool.State, m pool.Member) []string {
	nets := make([]string, 0, len(m.Addresses))
	for n := range m.Addresses {
		nets = append(nets, n)
	}
	site := strings.ToLower(st.Site[siteschema.Domain])
	inSite := func(n string) bool { return strings.ToLower(Domain(st, n)) == site }
	sort.Slice(nets, func(i, j int) bool {
		if a, b := inSite(nets[i]), inSite(nets[j]); a != b {
			return a
		}
		return nets[i] < nets[j]
	})
	return nets
}

// Peer returns the address member from uses to reach member to: to's
// address on the first network (in Networks order) both have an address
// on, else to's address on its own first network (reached through
// routing). ok is false when to has no address at all. from may be the
// zero Member (a host that is not a member): then to's first address.
func Peer(st *pool.State, from, to pool.Member) (addr netip.Addr, network string, ok bool) {
	nets := Networks(st, to)
	for _, n := range nets {
		if _, shared := from.Addresses[n]; shared {
			return to.Addresses[n], n, true
		}
	}
	if len(nets) == 0 {
		return netip.Addr{}, "", false
	}
	return to.Addresses[nets[0]], nets[0], true
}

// Peers returns the members other than self that run svc and have an
// address: the MN first (unless self is the MN), then the others in ring
// order after self by name, so that the members' fallbacks spread over the
// pool instead of all naming the same few.
func Peers(st *pool.State, self string, svc service.Service) []pool.Member {
	var mn []pool.Member
	var before, after []pool.Member
	for _, m := range st.Members { // sorted by name
		if m.Name == self || !m.Runs(svc) || len(m.Addresses) == 0 {
			continue
		}
		switch {
		case st.IsMN(m.Name):
			mn = append(mn, m)
		case m.Name < self:
			before = append(before, m)
		default:
			after = append(after, m)
		}
	}
	return append(append(mn, after...), before...)
}
