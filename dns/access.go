package dns

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/mnpool/mnpool/pool"
)

// SiteDNSAllow is the site key that lists the clients the DNS server
// answers: CIDRs or single addresses separated by commas or spaces, and
// the word "pool" for the pool's networks. Empty or unset means "pool".
// Loopback (127.0.0.0/8, ::1) is always allowed. Clients outside the list
// get REFUSED for every query, recursion included.
const SiteDNSAllow = "dnsallow"

// allowPool is the word in site.dnsallow that stands for every pool
// network.
const allowPool = "pool"

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// AllowList returns the client prefixes the server answers, from
// site.dnsallow (see SiteDNSAllow): loopback first, then the listed
// prefixes (the pool's networks for "pool" or an empty value).
func AllowList(st *pool.State) ([]netip.Prefix, error) {
	out := append([]netip.Prefix(nil), loopback...)
	v := strings.TrimSpace(st.Site[SiteDNSAllow])
	if v == "" {
		v = allowPool
	}
	seen := map[netip.Prefix]bool{}
	add := func(p netip.Prefix) {
		p = p.Masked()
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		if strings.EqualFold(f, allowPool) {
			for _, n := range st.Networks {
				add(n.Prefix)
			}
			continue
		}
		p, err := parseAllow(f)
		if err != nil {
			return nil, err
		}
		add(p)
	}
	return out, nil
}

func parseAllow(f string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(f); err == nil && a.Zone() == "" {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(f)
	if err != nil || p.Addr().Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%w: site.%s: %q is not a CIDR or an IP address; want a list such as \"pool,192.0.2.0/24,2001:db8::/48\"", ErrInvalid, SiteDNSAllow, f)
	}
	if p.Addr().Is4In6() {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p, nil
}

// allowed reports whether a client address is in the list.
func allowed(list []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// memberAddrs returns every address of every pool member, on any
// network: a pool server never forwards to one of them.
func memberAddrs(st *pool.State) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	for _, m := range st.Members {
		for _, a := range m.Addresses {
			out[a.Unmap()] = true
		}
	}
	return out
}
