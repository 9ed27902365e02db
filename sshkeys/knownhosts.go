package sshkeys

import (
	"bytes"
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeys are the SSH host keys of one pool member and the names it is
// reached by.
type HostKeys struct {
	// Name of the member ([A-Za-z0-9._-]); a short name and an FQDN are two
	// HostKeys or one name plus addresses, as the site prefers.
	Name string
	// Addresses are the member's IP addresses on the networks it serves.
	Addresses []string
	// Port of sshd; 0 means 22.
	Port int
	// Keys are the member's host public keys (one per host key type).
	Keys []ssh.PublicKey
}

// RenderKnownHosts returns existing (a known_hosts file, nil if none) with
// the mnpool block holding one line per member and host key: the member's
// name and addresses, then the key. Lines outside the block are kept.
//
// Entries are plain, not hashed. Hashing hides which hosts a user has
// visited; the pool's member names and addresses are no secret (they are in
// DNS, /etc/hosts and the xCAT tables), while plain entries can be read and
// audited by an administrator, and render byte for byte the same every time,
// which a salted hash cannot. OpenSSH and x/crypto/ssh/knownhosts accept both.
func RenderKnownHosts(existing []byte, hosts []HostKeys) ([]byte, error) {
	type entry struct {
		name     string
		patterns []string
		keys     []ssh.PublicKey
	}
	entries := make([]entry, 0, len(hosts))
	seen := map[string]bool{}
	for _, h := range hosts {
		if err := validName(h.Name); err != nil {
			return nil, err
		}
		if seen[h.Name] {
			return nil, fmt.Errorf("%w: %q listed twice", ErrInvalidName, h.Name)
		}
		seen[h.Name] = true
		if h.Port < 0 || h.Port > 65535 {
			return nil, fmt.Errorf("%w: port %d of %s (allowed: 0 for 22, or 1 to 65535)", ErrInvalidAddress, h.Port, h.Name)
		}
		if len(h.Keys) == 0 {
			return nil, fmt.Errorf("%w: no host key for %s", ErrInvalidKey, h.Name)
		}
		addrs := make([]netip.Addr, 0, len(h.Addresses))
		for _, a := range h.Addresses {
			ip, err := netip.ParseAddr(a)
			if err != nil || ip.Zone() != "" {
				return nil, fmt.Errorf("%w: %q of %s (want an IPv4 or IPv6 address without zone)", ErrInvalidAddress, a, h.Name)
			}
			addrs = append(addrs, ip.Unmap())
		}
		slices.SortFunc(addrs, netip.Addr.Compare)
		addrs = slices.Compact(addrs)
		port := "22"
		if h.Port != 0 {
			port = strconv.Itoa(h.Port)
		}
		patterns := []string{net.JoinHostPort(h.Name, port)}
		for _, a := range addrs {
			patterns = append(patterns, net.JoinHostPort(a.String(), port))
		}
		keys := slices.Clone(h.Keys)
		slices.SortFunc(keys, func(a, b ssh.PublicKey) int {
			return cmp.Or(cmp.Compare(a.Type(), b.Type()), bytes.Compare(a.Marshal(), b.Marshal()))
		})
		keys = slices.CompactFunc(keys, keyEqual)
		entries = append(entries, entry{h.Name, patterns, keys})
	}
	slices.SortFunc(entries, func(a, b entry) int { return cmp.Compare(a.name, b.name) })
	body := []string{"# Host keys of the pool members, rendered by mnpool; lines inside this block are replaced on every render."}
	for _, e := range entries {
		for _, k := range e.keys {
			body = append(body, knownhosts.Line(e.patterns, k))
		}
	}
	return replaceBlock(existing, body, nil)
}
