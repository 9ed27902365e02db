package console

import (
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"

	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/liveness"
	"github.com/mnpool/mnpool/pool/service"
)

// Site keys read by the console code.
const (
	// SitePort is the TCP port every member's console broker listens on
	// (default DefaultPort).
	SitePort = "consoleport"
	// SiteNetwork names the network whose member addresses brokers use to
	// reach each other. Without it a member is reached on the first of
	// its networks by name.
	SiteNetwork = "consolenetwork"
	// DefaultPort is the broker port when site.consoleport is not set.
	DefaultPort = 3016
)

// Allowed returns the members allowed to serve the console of node, in
// preference order: spec.Servers when set, else the node's servicenode
// list, keeping only members that exist, are not disabled and run the
// console service.
func Allowed(st *pool.State, node pool.Node, spec Spec) []string {
	list := node.ServiceNodes
	if len(spec.Servers) > 0 {
		list = spec.Servers
	}
	out := make([]string, 0, len(list))
	for _, name := range list {
		m, ok := st.Member(name)
		if !ok || m.Disabled || !m.Runs(service.Console) || slices.Contains(out, name) {
			continue
		}
		out = append(out, name)
	}
	return out
}

// usable filters allowed by liveness, dropping the names in skip.
func usable(allowed []string, live liveness.Source, skip ...string) []string {
	out := make([]string, 0, len(allowed))
	for _, m := range allowed {
		if slices.Contains(skip, m) || !live.LiveState(m).Usable() {
			continue
		}
		out = append(out, m)
	}
	return out
}

// ServerNow returns the member that serves a console now: the lease
// holder unless it is known to be dead (a suspect holder still renews its
// lease, so it keeps the console), else the first usable allowed member
// (alive or unknown: the one that takes the lease on the next request).
// It returns "" when no member can serve it.
func ServerNow(allowed []string, h Holder, live liveness.Source) string {
	if h.Member != "" && live.LiveState(h.Member) != liveness.Dead {
		return h.Member
	}
	if c := usable(allowed, live, h.Member); len(c) > 0 {
		return c[0]
	}
	return ""
}

// BrokerPort returns site.consoleport, or DefaultPort when unset.
func BrokerPort(site map[string]string) (int, error) {
	v, ok := site[SitePort]
	if !ok || v == "" {
		return DefaultPort, nil
	}
	p, err := strconv.Atoi(v)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("%w: site %s=%q: want a TCP port 1-65535", ErrInvalid, SitePort, v)
	}
	return p, nil
}

// BrokerAddr returns member's broker address from the pool state: its
// address on site.consolenetwork (or on the first of its networks by name)
// and site.consoleport.
func BrokerAddr(st *pool.State, member string) (string, error) {
	m, ok := st.Member(member)
	if !ok {
		return "", fmt.Errorf("%w: member %q is not in the pool", ErrNotFound, member)
	}
	port, err := BrokerPort(st.Site)
	if err != nil {
		return "", err
	}
	if nw := st.Site[SiteNetwork]; nw != "" {
		ip, ok := m.Addresses[nw]
		if !ok {
			return "", fmt.Errorf("%w: member %s has no address on network %s (site %s)", ErrNotFound, member, nw, SiteNetwork)
		}
		return net.JoinHostPort(ip.String(), strconv.Itoa(port)), nil
	}
	nets := make([]string, 0, len(m.Addresses))
	for n := range m.Addresses {
		nets = append(nets, n)
	}
	if len(nets) == 0 {
		return "", fmt.Errorf("%w: member %s has no address on any network; add one (mnpool member set %s --ip NET=IP)", ErrNotFound, member, member)
	}
	sort.Strings(nets)
	return net.JoinHostPort(m.Addresses[nets[0]].String(), strconv.Itoa(port)), nil
}
