package dhcp

import (
	"fmt"
	"net/netip"
	"strings"
)

// The checks here are the renderer's own: a State may be built by hand or
// come from a damaged database, so nothing is trusted to have passed the
// pool's validation. They are hand-written loops because they run once
// per node (100,000 nodes must render in a fraction of a second).

// isLabel reports whether s is an RFC 1123 host label: letters, digits
// and '-', 1 to 63 characters, no leading or trailing '-'.
func isLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func checkLabel(kind, s string) error {
	if !isLabel(s) {
		return fmt.Errorf("%w: %s %q: want an RFC 1123 host label (letters, digits, '-', 1-63 characters, no leading or trailing '-')", ErrInvalid, kind, s)
	}
	return nil
}

// checkDomain accepts "" or dot-separated host labels of at most 253
// characters.
func checkDomain(kind, d string) error {
	if d == "" {
		return nil
	}
	ok := len(d) <= 253
	if ok {
		for _, p := range strings.Split(d, ".") {
			if !isLabel(p) {
				ok = false
				break
			}
		}
	}
	if !ok {
		return fmt.Errorf("%w: %s %q: want dot-separated host labels (letters, digits, '-'), at most 253 characters", ErrInvalid, kind, d)
	}
	return nil
}

// checkNetName accepts a pool network name (letters, digits, '_', '.',
// '-', 1-64 characters, starting with a letter or digit).
func checkNetName(s string) error {
	ok := len(s) >= 1 && len(s) <= 64 && isAlnum(s[0])
	for i := 0; ok && i < len(s); i++ {
		c := s[i]
		ok = isAlnum(c) || c == '_' || c == '.' || c == '-'
	}
	if !ok {
		return fmt.Errorf("%w: network name %q: want letters, digits, '_', '.', '-' (1-64 characters)", ErrInvalid, s)
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// fileSafe reports whether c may appear in a boot file name or a path:
// printable ASCII without blanks and without the characters that quote,
// escape or end a statement in either format.
func fileSafe(c byte) bool {
	if c <= ' ' || c >= 0x7f {
		return false
	}
	switch c {
	case '"', '\'', '\\', '{', '}', ';', '#', '$', '`', ',', '[', ']':
		return false
	}
	return true
}

// checkBootFile accepts "" (no boot file) or at most 127 file-safe
// characters (the BOOTP file field holds 128 bytes with its NUL).
func checkBootFile(key, v string) error {
	ok := len(v) <= 127
	for i := 0; ok && i < len(v); i++ {
		ok = fileSafe(v[i])
	}
	if !ok {
		return fmt.Errorf("%w: site %s=%q: want a file name of at most 127 printable characters without blanks, quotes, '\\', '{', '}', ';', '#', ',', '$', '`', '[', ']'", ErrInvalid, key, v)
	}
	return nil
}

// checkPath accepts an absolute path of file-safe characters, at most max
// bytes long.
func checkPath(kind, p string, max int) error {
	ok := len(p) > 1 && len(p) <= max && p[0] == '/'
	for i := 0; ok && i < len(p); i++ {
		ok = fileSafe(p[i])
	}
	if !ok {
		return fmt.Errorf("%w: %s %q: want an absolute path of at most %d printable characters without blanks, quotes or '\\'", ErrInvalid, kind, p, max)
	}
	return nil
}

// checkInterface accepts "*" or a Linux interface name (at most 15
// characters: letters, digits, '_', '.', ':', '-').
func checkInterface(s string) error {
	ok := s == "*"
	if !ok && len(s) >= 1 && len(s) <= 15 && isAlnum(s[0]) {
		ok = true
		for i := 0; ok && i < len(s); i++ {
			c := s[i]
			ok = isAlnum(c) || c == '_' || c == '.' || c == ':' || c == '-'
		}
	}
	if !ok {
		return fmt.Errorf("%w: interface %q: want \"*\" or a name of 1-15 letters, digits, '_', '.', ':', '-'", ErrInvalid, s)
	}
	return nil
}

// isMAC reports whether s is a MAC in the pool's canonical form: six
// lower-case hex bytes separated by colons.
func isMAC(s string) bool {
	if len(s) != 17 {
		return false
	}
	for i := 0; i < 17; i++ {
		c := s[i]
		if i%3 == 2 {
			if c != ':' {
				return false
			}
		} else if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// macKey packs a MAC that passed isMAC into an integer.
func macKey(s string) uint64 {
	var v uint64
	for i := 0; i < 17; i += 3 {
		v = v<<8 | uint64(hexVal(s[i])<<4|hexVal(s[i+1]))
	}
	return v
}

func hexVal(c byte) byte {
	if c >= 'a' {
		return c - 'a' + 10
	}
	return c - '0'
}

// hostAddr reports why ip cannot be a host address of prefix p, or "".
func hostAddrProblem(p netip.Prefix, ip netip.Addr) string {
	switch {
	case !ip.Is4():
		return "not an IPv4 address"
	case !p.Contains(ip):
		return "outside " + p.String()
	case p.Bits() < 31 && ip == p.Addr():
		return "the network address of " + p.String()
	case p.Bits() < 31 && ip == lastAddr(p):
		return "the broadcast address of " + p.String()
	}
	return ""
}

// lastAddr returns the last address of an IPv4 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= (1<<(32-p.Bits()) - 1)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func mask4(p netip.Prefix) netip.Addr {
	var v uint32
	if p.Bits() > 0 {
		v = ^uint32(0) << (32 - p.Bits())
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
