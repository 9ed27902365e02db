package dns

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// DefaultDNSPort is the port a forwarder is asked on when none is given.
const DefaultDNSPort = 53

// ParseForwarders parses site.forwarders: addresses separated by commas
// or spaces, each "IP" (port 53), "IPv4:PORT" or "[IPv6]:PORT". Names are
// refused: resolving the forwarder through DNS would need the forwarder.
// The order is kept (the first answering forwarder wins); duplicates are
// an error.
func ParseForwarders(s string) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	seen := map[netip.AddrPort]bool{}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		ap, err := parseForwarder(f)
		if err != nil {
			return nil, err
		}
		if seen[ap] {
			return nil, fmt.Errorf("%w: site.forwarders: %s is listed twice", ErrInvalid, ap)
		}
		seen[ap] = true
		out = append(out, ap)
	}
	return out, nil
}

func parseForwarder(f string) (netip.AddrPort, error) {
	bad := func(why string) (netip.AddrPort, error) {
		return netip.AddrPort{}, fmt.Errorf("%w: site.forwarders: %q %s; want IP, IPv4:PORT or [IPv6]:PORT, such as 192.0.2.53 or 127.0.0.1:5353", ErrInvalid, f, why)
	}
	if a, err := netip.ParseAddr(f); err == nil {
		if a.Zone() != "" {
			return bad("has an IPv6 zone")
		}
		return valid(netip.AddrPortFrom(a.Unmap(), DefaultDNSPort), bad)
	}
	host, port, ok := strings.Cut(f, "]:")
	if ok && strings.HasPrefix(host, "[") {
		host = host[1:]
	} else if i := strings.LastIndexByte(f, ':'); i > 0 && !strings.Contains(f[:i], ":") {
		host, port = f[:i], f[i+1:]
	} else {
		return bad("is not an IP address")
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" {
		return bad("is not an IP address")
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return bad("has a bad port (want 1-65535)")
	}
	return valid(netip.AddrPortFrom(a.Unmap(), uint16(p)), bad)
}

func valid(ap netip.AddrPort, bad func(string) (netip.AddrPort, error)) (netip.AddrPort, error) {
	a := ap.Addr()
	if a.IsUnspecified() || a.IsMulticast() {
		return bad("is not a unicast address")
	}
	return ap, nil
}
