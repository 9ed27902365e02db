package pool

import (
	"net/netip"
	"sort"
	"strings"

	"github.com/mnpool/mnpool/pool/service"
)

// Network is a subnet the pool serves (xCAT's networks table).
type Network struct {
	Name string `json:"name"`
	// Prefix is the subnet, canonical (host bits zero).
	Prefix netip.Prefix `json:"cidr"`
	// Gateways in order of preference; several give an HA way out.
	Gateways []netip.Addr `json:"gateways"`
	// DynamicStart..DynamicEnd is the dynamic range; both zero when none.
	// Only the MN hands it out.
	DynamicStart netip.Addr `json:"dynamic_start"`
	DynamicEnd   netip.Addr `json:"dynamic_end"`
	Domain       string     `json:"domain"`
	MgtIfName    string     `json:"mgtifname"`
}

// HasDynamicRange reports whether the network has a dynamic range.
func (n Network) HasDynamicRange() bool { return n.DynamicStart.IsValid() }

// Member is an MN or SN of the pool.
type Member struct {
	Name string `json:"name"`
	// Addresses maps network name to this member's address on it.
	Addresses map[string]netip.Addr `json:"addresses"`
	// Services the member runs, sorted in AllServices order.
	Services []service.Service `json:"services"`
	// Disabled members get no new nodes and are never a move target.
	Disabled bool `json:"disabled"`
	// Heartbeat is the member's liveness counter (see the membership
	// code); only its movement matters, never its value.
	Heartbeat int64 `json:"heartbeat"`
}

// Runs reports whether the member runs svc.
func (m Member) Runs(svc service.Service) bool {
	for _, s := range m.Services {
		if s == svc {
			return true
		}
	}
	return false
}

// Master is the master record: which member is the MN, in which epoch.
// The epoch only grows; every MN change increments it, and it is the
// fencing token of the MN role.
type Master struct {
	Member string `json:"member"`
	Epoch  int64  `json:"epoch"`
}

// Node is a compute node.
type Node struct {
	Name    string     `json:"name"`
	Groups  []string   `json:"groups"`
	MACs    []string   `json:"macs"` // lower case, colon separated, first is primary
	IP      netip.Addr `json:"ip"`
	Network string     `json:"network"`
	// ServiceNodes is the ordered servicenode list (noderes.servicenode):
	// the first alive member serves the node.
	ServiceNodes []string `json:"servicenodes"`
	// Manual is set when an administrator chose ServiceNodes by hand;
	// automatic assignment keeps such lists unless asked to rebalance.
	Manual bool `json:"manual"`
	// Revision grows with every change of the node's row; conditional
	// updates compare it.
	Revision int64 `json:"revision"`
}

// State is a consistent snapshot of the whole pool.
type State struct {
	Site     map[string]string `json:"site"`
	Master   Master            `json:"master"`
	Networks []Network         `json:"networks"`
	Members  []Member          `json:"members"`
	Nodes    []Node            `json:"nodes"`
}

// Member returns the named member.
func (s *State) Member(name string) (Member, bool) {
	i := sort.Search(len(s.Members), func(i int) bool { return s.Members[i].Name >= name })
	if i < len(s.Members) && s.Members[i].Name == name {
		return s.Members[i], true
	}
	return Member{}, false
}

// Network returns the named network.
func (s *State) Network(name string) (Network, bool) {
	for _, n := range s.Networks {
		if n.Name == name {
			return n, true
		}
	}
	return Network{}, false
}

// IsMN reports whether member is the MN of the snapshot.
func (s *State) IsMN(member string) bool { return member != "" && s.Master.Member == member }

func joinList(v []string) string { return strings.Join(v, ",") }

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
