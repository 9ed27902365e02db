package pool

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"
)

var (
	labelRE    = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
	siteKeyRE  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,63}$`)
	netNameRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	ifNameRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,31}$`)
	domainPart = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
)

// ValidateName checks a node or member name: one RFC 1123 host label
// (letters, digits and '-', 1 to 63 characters, not starting or ending
// with '-').
func ValidateName(kind, name string) error {
	if !labelRE.MatchString(name) {
		return fmt.Errorf("%w: %s name %q: want an RFC 1123 host label (letters, digits, '-', 1-63 characters, no leading or trailing '-')", ErrInvalid, kind, name)
	}
	return nil
}

// ValidateGroup checks a group name; groups share the node namespace in
// noderanges, so they follow the same rule.
func ValidateGroup(name string) error {
	if !labelRE.MatchString(name) {
		return fmt.Errorf("%w: group name %q: want letters, digits and '-' (1-63 characters)", ErrInvalid, name)
	}
	if name == "all" {
		return fmt.Errorf("%w: group name %q is reserved: the noderange all means every node", ErrInvalid, name)
	}
	return nil
}

// ValidateDomain checks a DNS domain (dot separated RFC 1123 labels).
func ValidateDomain(d string) error {
	if d == "" {
		return nil
	}
	if len(d) > 253 {
		return fmt.Errorf("%w: domain %q is longer than 253 characters", ErrInvalid, d)
	}
	for _, p := range strings.Split(d, ".") {
		if !domainPart.MatchString(p) {
			return fmt.Errorf("%w: domain %q: label %q must be letters, digits and '-' (1-63 characters)", ErrInvalid, d, p)
		}
	}
	return nil
}

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

// ParseService checks a service name.
func ParseService(s string) (Service, error) {
	for _, v := range AllServices() {
		if string(v) == strings.ToLower(strings.TrimSpace(s)) {
			return v, nil
		}
	}
	return "", fmt.Errorf("%w: service %q: want one of %s", ErrInvalid, s, servicesList())
}

func servicesList() string {
	var s []string
	for _, v := range AllServices() {
		s = append(s, string(v))
	}
	return strings.Join(s, ", ")
}

// normalizeServices sorts services in AllServices order and removes
// duplicates.
func normalizeServices(in []Service) ([]Service, error) {
	seen := map[Service]bool{}
	for _, s := range in {
		v, err := ParseService(string(s))
		if err != nil {
			return nil, err
		}
		seen[v] = true
	}
	out := []Service{}
	for _, v := range AllServices() {
		if seen[v] {
			out = append(out, v)
		}
	}
	return out, nil
}

// ValidateSiteKey checks a site table key.
func ValidateSiteKey(k string) error {
	if !siteKeyRE.MatchString(k) {
		return fmt.Errorf("%w: site key %q: want a letter then letters, digits, '_', '.', '-' (up to 64)", ErrInvalid, k)
	}
	return nil
}

// ValidateSiteValue checks a site value: one line of printable text.
func ValidateSiteValue(k, v string) error {
	if len(v) > 4096 {
		return fmt.Errorf("%w: site %s: value longer than 4096 characters", ErrInvalid, k)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: site %s: value %q contains a control character (newline, tab, ...)", ErrInvalid, k, v)
		}
	}
	switch k {
	case SiteDisjointDHCPs, SiteSharedTFTP, SiteAutoFailover:
		if v != "0" && v != "1" {
			return fmt.Errorf("%w: site %s=%q: want 0 or 1", ErrInvalid, k, v)
		}
	case SiteDomain:
		return ValidateDomain(v)
	case SiteMaster:
		if v != "" {
			return ValidateName("member", v)
		}
	}
	return nil
}

// ValidateNetwork checks a network on its own (not against the pool).
func ValidateNetwork(n *Network) error {
	if !netNameRE.MatchString(n.Name) {
		return fmt.Errorf("%w: network name %q: want letters, digits, '_', '.', '-' (1-64 characters)", ErrInvalid, n.Name)
	}
	if !n.Prefix.IsValid() {
		return fmt.Errorf("%w: network %s: missing or bad CIDR", ErrInvalid, n.Name)
	}
	if n.Prefix != n.Prefix.Masked() {
		return fmt.Errorf("%w: network %s: CIDR %s has host bits set (did you mean %s?)", ErrInvalid, n.Name, n.Prefix, n.Prefix.Masked())
	}
	for _, g := range n.Gateways {
		if !n.Prefix.Contains(g) {
			return fmt.Errorf("%w: network %s: gateway %s is outside %s", ErrInvalid, n.Name, g, n.Prefix)
		}
	}
	if n.DynamicStart.IsValid() != n.DynamicEnd.IsValid() {
		return fmt.Errorf("%w: network %s: dynamic range needs both a start and an end", ErrInvalid, n.Name)
	}
	if n.DynamicStart.IsValid() {
		if !n.Prefix.Contains(n.DynamicStart) || !n.Prefix.Contains(n.DynamicEnd) {
			return fmt.Errorf("%w: network %s: dynamic range %s-%s is not inside %s", ErrInvalid, n.Name, n.DynamicStart, n.DynamicEnd, n.Prefix)
		}
		if n.DynamicEnd.Less(n.DynamicStart) {
			return fmt.Errorf("%w: network %s: dynamic range %s-%s ends before it starts", ErrInvalid, n.Name, n.DynamicStart, n.DynamicEnd)
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
