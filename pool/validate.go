package pool

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/mnpool/mnpool/internal/syntax"
	"github.com/mnpool/mnpool/pool/internal/valid"
	"github.com/mnpool/mnpool/pool/service"
)

var (
	labelRE    = syntax.HostLabelRE
	netNameRE  = valid.NetNameRE
	ifNameRE   = valid.IfNameRE
	domainPart = syntax.HostLabelRE
)

// ValidateName checks a node or member name: one RFC 1123 host label
// (letters, digits and '-', 1 to 63 characters, not starting or ending
// with '-').
func ValidateName(kind, name string) error { return valid.Name(kind, name) }

// ValidateGroup checks a group name; groups share the node namespace in
// noderanges, so they follow the same rule.
func ValidateGroup(name string) error {
	if !labelRE.MatchString(name) {
		return fmt.Errorf("%w: group name %q: want letters, digits and '-' (1-63 characters)", ErrInvalid, name)
	}
	if isReservedName(name) {
		return fmt.Errorf("%w: group name %q is reserved: the noderange all means every node", ErrInvalid, name)
	}
	return nil
}

// ValidateDomain checks a DNS domain (dot separated RFC 1123 labels).
func ValidateDomain(d string) error { return valid.Domain(d) }

// NormalizeMAC parses a MAC address (colon, dash or dot notation) and
// returns it lower case with colons. Only 6-byte Ethernet MACs are
// accepted.
func NormalizeMAC(s string) (string, error) {
	hw, err := net.ParseMAC(strings.TrimSpace(s))
	if err != nil || len(hw) != 6 {
		return "", fmt.Errorf("%w: MAC address %q: want six hex bytes such as 00:1a:2b:3c:4d:5e", ErrInvalid, s)
	}
	return hw.String(), nil
}

// normalizeServices sorts services in AllServices order and removes
// duplicates.
func normalizeServices(in []service.Service) ([]service.Service, error) {
	seen := map[service.Service]bool{}
	for _, s := range in {
		v, err := service.Parse(string(s))
		if err != nil {
			return nil, err
		}
		seen[v] = true
	}
	out := []service.Service{}
	for _, v := range service.All() {
		if seen[v] {
			out = append(out, v)
		}
	}
	return out, nil
}

// CheckNetwork is the one rule set for a network, used by the store when a
// network is added and by every renderer (dhcp, dns, ...) before it writes
// a configuration. It refuses:
//   - a bad name, a missing CIDR, a CIDR with host bits set;
//   - IPv4-mapped IPv6 networks (::ffff:a.b.c.d/n): they hide an overlap
//     with the IPv4 network they map; write the IPv4 form;
//   - multicast, loopback, link-local multicast and unspecified networks;
//   - a gateway outside the network, equal to its network or broadcast
//     address, given twice, or inside the dynamic range;
//   - a dynamic range with only one end, outside the network, ending
//     before it starts, or holding the network or broadcast address;
//   - a bad domain or interface name.
//
// Errors wrap ErrInvalid and name the network, the value and the rule.
func CheckNetwork(n Network) error { return checkNetwork(n, false) }

func checkNetwork(n Network, allowLoopback bool) error {
	if !netNameRE.MatchString(n.Name) {
		return fmt.Errorf("%w: network name %q: want letters, digits, '_', '.', '-' (1-64 characters)", ErrInvalid, n.Name)
	}
	p := n.Prefix
	if !p.IsValid() {
		return fmt.Errorf("%w: network %s: missing or bad CIDR", ErrInvalid, n.Name)
	}
	if p != p.Masked() {
		return fmt.Errorf("%w: network %s: CIDR %s has host bits set (did you mean %s?)", ErrInvalid, n.Name, p, p.Masked())
	}
	a := p.Addr()
	switch {
	case a.Is4In6():
		return fmt.Errorf("%w: network %s: %s is an IPv4-mapped IPv6 network; it would hide an overlap with IPv4 networks: write it as IPv4", ErrInvalid, n.Name, p)
	case a.IsMulticast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast():
		return fmt.Errorf("%w: network %s: %s is a multicast network; nodes cannot live on it", ErrInvalid, n.Name, p)
	case !allowLoopback && (a.IsLoopback() || (a.Is4() && a.As4()[0] == 127)):
		return fmt.Errorf("%w: network %s: %s is a loopback network; nodes cannot live on it", ErrInvalid, n.Name, p)
	case a.IsUnspecified() && p.Bits() == 0:
		return fmt.Errorf("%w: network %s: %s is every address; give the real subnet", ErrInvalid, n.Name, p)
	}
	seen := map[netip.Addr]bool{}
	for _, g := range n.Gateways {
		if why := hostAddrProblem(p, g); why != "" {
			return fmt.Errorf("%w: network %s: gateway %s is %s", ErrInvalid, n.Name, g, why)
		}
		if seen[g] {
			return fmt.Errorf("%w: network %s: gateway %s is listed twice", ErrInvalid, n.Name, g)
		}
		seen[g] = true
	}
	if err := checkDynamicRange(n); err != nil {
		return err
	}
	for _, g := range n.Gateways {
		if n.InRange(g) {
			return fmt.Errorf("%w: network %s: gateway %s is inside the dynamic range %s-%s (DHCP would hand it out)", ErrInvalid, n.Name, g, n.DynamicStart, n.DynamicEnd)
		}
	}
	if err := ValidateDomain(n.Domain); err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	if n.MgtIfName != "" && !ifNameRE.MatchString(n.MgtIfName) {
		return fmt.Errorf("%w: network %s: interface name %q: want letters, digits, '_', '.', ':', '-'", ErrInvalid, n.Name, n.MgtIfName)
	}
	return nil
}

func checkDynamicRange(n Network) error {
	if n.DynamicStart.IsValid() != n.DynamicEnd.IsValid() {
		return fmt.Errorf("%w: network %s: dynamic range needs both a start and an end", ErrInvalid, n.Name)
	}
	if !n.DynamicStart.IsValid() {
		return nil
	}
	for _, a := range []netip.Addr{n.DynamicStart, n.DynamicEnd} {
		if why := hostAddrProblem(n.Prefix, a); why != "" {
			return fmt.Errorf("%w: network %s: dynamic range %s-%s: %s is %s", ErrInvalid, n.Name, n.DynamicStart, n.DynamicEnd, a, why)
		}
	}
	if n.DynamicEnd.Less(n.DynamicStart) {
		return fmt.Errorf("%w: network %s: dynamic range %s-%s ends before it starts", ErrInvalid, n.Name, n.DynamicStart, n.DynamicEnd)
	}
	return nil
}

// hostAddrProblem says why ip cannot be a host address of p ("" when it
// can): outside p, a different address family, or p's network or
// broadcast address (networks of /31, /32 and IPv6 /127, /128 have
// neither).
func hostAddrProblem(p netip.Prefix, ip netip.Addr) string {
	switch {
	case !ip.IsValid():
		return "not an address"
	case ip.Is4In6():
		return "an IPv4-mapped IPv6 address; write it as IPv4"
	case ip.BitLen() != p.Addr().BitLen():
		return "not of the network's address family"
	case !p.Contains(ip):
		return "outside " + p.String()
	case p.Bits() < ip.BitLen()-1 && ip == p.Addr():
		return "the network address of " + p.String()
	case ip.Is4() && p.Bits() < 31 && ip == lastAddr(p):
		return "the broadcast address of " + p.String()
	}
	return ""
}

// CheckNetworks applies CheckNetwork to each network and the rules between
// networks: names unique (case-insensitively) and no two overlapping.
func CheckNetworks(nets []Network) error {
	for i, n := range nets {
		if err := CheckNetwork(n); err != nil {
			return err
		}
		if err := checkAgainst(n, nets[:i]); err != nil {
			return err
		}
	}
	return nil
}

// checkAgainst applies the rules between n and other networks.
func checkAgainst(n Network, others []Network) error {
	for _, o := range others {
		if strings.EqualFold(o.Name, n.Name) {
			return fmt.Errorf("%w: networks %s and %s differ only in case", ErrInvalid, o.Name, n.Name)
		}
		if o.Prefix.Overlaps(n.Prefix) {
			return fmt.Errorf("%w: network %s (%s) overlaps network %s (%s)", ErrInvalid, n.Name, n.Prefix, o.Name, o.Prefix)
		}
	}
	return nil
}

// ParseRange parses a dynamic range "A-B" or "A,B".
func ParseRange(s string) (start, end netip.Addr, err error) {
	if strings.TrimSpace(s) == "" {
		return netip.Addr{}, netip.Addr{}, nil
	}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		a, b, ok = strings.Cut(s, ",")
	}
	if ok {
		start, err = netip.ParseAddr(strings.TrimSpace(a))
		if err == nil {
			end, err = netip.ParseAddr(strings.TrimSpace(b))
		}
	}
	if !ok || err != nil {
		return netip.Addr{}, netip.Addr{}, fmt.Errorf("%w: dynamic range %q: want START-END, such as 10.0.255.1-10.0.255.254", ErrInvalid, s)
	}
	return start.Unmap(), end.Unmap(), nil
}

// InRange reports whether ip lies in the network's dynamic range.
func (n Network) InRange(ip netip.Addr) bool {
	return n.HasDynamicRange() && !ip.Less(n.DynamicStart) && !n.DynamicEnd.Less(ip)
}
