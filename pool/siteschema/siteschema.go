// Package siteschema is the schema of the pool's site table: every site
// key mnpool (or a package of it) reads, with its type, range and meaning
// (Keys, Lookup), the well-known key names (Master, Domain, ...), the
// values `mnpool init` writes (Defaults) and the checks (ValidateKey,
// ValidateValue, Check). `mnpool site set` refuses values that break a
// key's rule and keys the schema does not know, unless they are stored as
// custom keys (xCAT has many site keys mnpool does not use; an import
// keeps them). The renderers check the values again when they read them:
// a value stored before this schema existed is reported by
// pool.Store.Check.
//
// It is a leaf: pool imports it (Store.SetSite validates with it), and
// its errors wrap pool.ErrInvalid.
package siteschema

import (
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/mnpool/mnpool/internal/syntax"
	"github.com/mnpool/mnpool/pool/internal/valid"
)

// More site keys, read by other packages of mnpool (their own constants
// have the same values).
const (
	DHCPLease      = "dhcplease"
	DHCPInterfaces = "dhcpinterfaces"
	BootBIOS       = "bootfile.bios"
	BootUEFI       = "bootfile.uefi"
	BootARM64      = "bootfile.arm64"
	ConsolePort    = "consoleport"
	ConsoleNetwork = "consolenetwork"
	ConsoleACL     = "consoleacl"
	DNSAllow       = "dnsallow"
)

// Key describes one site key. Name may be a pattern with NETWORK
// standing for a network name (vrrp.NETWORK.vrid).
type Key struct {
	Name    string `json:"key"`
	Type    string `json:"type"`
	Range   string `json:"range,omitempty"`
	Default string `json:"default,omitempty"`
	Meaning string `json:"meaning"`
	// ReadOnly keys are written by mnpool itself (master follows makemn).
	ReadOnly bool `json:"read_only,omitempty"`
	check    func(string) error
}

// Check applies the key's rule to v.
func (k Key) Check(v string) error {
	if k.check == nil {
		return nil
	}
	if err := k.check(v); err != nil {
		return fmt.Errorf("%w: site %s=%q: %s is %s: %v", valid.ErrInvalid, k.Name, clipValue(v), k.Name, k.Type, err)
	}
	return nil
}

func clipValue(v string) string {
	if len(v) > 80 {
		return v[:80] + "..."
	}
	return v
}

func checkBool01(v string) error {
	if v != "0" && v != "1" {
		return fmt.Errorf("want 0 or 1")
	}
	return nil
}

func checkIntRange(lo, hi int) func(string) error {
	return func(v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("want a whole number from %d to %d", lo, hi)
		}
		return nil
	}
}

func listItems(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
}

// checkTokens accepts a list of words made of letters, digits and the
// characters in extra (so no quote, ';', '$' reaches a configuration).
func checkTokens(extra string) func(string) error {
	return func(v string) error {
		for _, w := range listItems(v) {
			for _, r := range w {
				if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(extra, r)) {
					return fmt.Errorf("%q holds %q; want letters, digits and %q", w, r, extra)
				}
			}
		}
		return nil
	}
}

func checkHostList(v string) error {
	for _, h := range listItems(v) {
		if a, err := netip.ParseAddr(h); err == nil {
			if a.Zone() != "" || a.IsUnspecified() || a.IsMulticast() {
				return fmt.Errorf("%s: want a unicast address without zone", h)
			}
			continue
		}
		if err := valid.Domain(strings.TrimSuffix(h, ".")); err != nil {
			return fmt.Errorf("%q is neither an IP address nor a host name", h)
		}
	}
	return nil
}

func checkCIDRList(v string) error {
	items := listItems(v)
	if len(items) == 0 {
		return fmt.Errorf("want at least one CIDR, such as 10.0.0.0/16")
	}
	for _, c := range items {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return fmt.Errorf("%q is not a CIDR such as 10.0.0.0/16", c)
		}
		if p != p.Masked() {
			return fmt.Errorf("%s has host bits set (did you mean %s?)", p, p.Masked())
		}
	}
	return nil
}

func checkIPList(v string) error {
	items := listItems(v)
	if len(items) == 0 {
		return fmt.Errorf("want at least one IP address")
	}
	seen := map[netip.Addr]bool{}
	for _, s := range items {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return fmt.Errorf("%q is not an IP address", s)
		}
		if seen[a] {
			return fmt.Errorf("%s is listed twice", a)
		}
		seen[a] = true
	}
	return nil
}

func checkMemberList(lo, hi int) func(string) error {
	return func(v string) error {
		items := listItems(v)
		if len(items) < lo || len(items) > hi {
			return fmt.Errorf("want %d to %d member names, comma-separated", lo, hi)
		}
		seen := map[string]bool{}
		for _, m := range items {
			if !syntax.HostLabelRE.MatchString(m) {
				return fmt.Errorf("%q is not a member name", m)
			}
			if seen[strings.ToLower(m)] {
				return fmt.Errorf("%s is listed twice", m)
			}
			seen[strings.ToLower(m)] = true
		}
		return nil
	}
}

func checkBootFile(v string) error {
	if len(v) > 127 {
		return fmt.Errorf("longer than 127 characters")
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"'\\{};#$`,[]", c) >= 0 {
			return fmt.Errorf("want printable characters without blanks, quotes, '\\', '{', '}', ';', '#', ',', '$', '`', '[', ']'")
		}
	}
	return nil
}

func checkInterfaces(v string) error {
	for _, part := range strings.Split(v, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		who, list, per := strings.Cut(part, "|")
		if per && !syntax.HostLabelRE.MatchString(strings.TrimSpace(who)) {
			return fmt.Errorf("%q is not a member name", who)
		}
		if !per {
			list = part
		}
		for _, name := range strings.Split(list, ",") {
			name = strings.TrimSpace(name)
			if name != "*" && (len(name) > 15 || !valid.IfNameRE.MatchString(name)) {
				return fmt.Errorf("interface %q: want \"*\" or 1-15 letters, digits, '_', '.', ':', '-'", name)
			}
		}
	}
	return nil
}

func checkNetName(v string) error {
	if !valid.NetNameRE.MatchString(v) {
		return fmt.Errorf("want a network name (letters, digits, '_', '.', '-')")
	}
	return nil
}

// Keys returns the schema, sorted by key.
func Keys() []Key {
	keys := []Key{
		{Name: Master, Type: "member name", Meaning: "the MN; follows the master record (change it with makemn)", ReadOnly: true, check: func(v string) error { return valid.Name("member", v) }},
		{Name: Domain, Type: "DNS domain", Default: "cluster", Meaning: "domain of nodes and members whose network has none", check: valid.Domain},
		{Name: DisjointDHCPs, Type: "0 or 1", Default: "0", Meaning: "1: a member's DHCP server answers only the nodes that list it (xCAT disjointdhcps)", check: checkBool01},
		{Name: SharedTFTP, Type: "0 or 1", Default: "0", Meaning: "1: members share /tftpboot (xCAT sharedtftp); a pool wants 0", check: checkBool01},
		{Name: AutoFailover, Type: "0 or 1", Default: "0", Meaning: "1: the agents move the nodes of a dead member automatically", check: checkBool01},
		{Name: Forwarders, Type: "address list", Meaning: "DNS servers the pool's DNS forwards other names to: IP, IPv4:PORT or [IPv6]:PORT, comma-separated (the DNS server checks each when it starts)", check: checkTokens(".:[]-_")},
		{Name: ExtNTPServers, Type: "host list", Meaning: "external NTP servers the members take time from: IP addresses or host names, comma-separated", check: checkHostList},
		{Name: DHCPLease, Type: "seconds", Range: "60-2147483647", Default: "43200", Meaning: "DHCP lease time (xCAT dhcplease)", check: checkIntRange(60, 1<<31-1)},
		{Name: DHCPInterfaces, Type: "interface list", Meaning: "interfaces the DHCP server listens on: eth1,eth2 or per member mn1|eth1;sn1|bond0 (xCAT dhcpinterfaces)", check: checkInterfaces},
		{Name: BootBIOS, Type: "file name", Default: "xcat/xnba.kpxe", Meaning: "boot file of BIOS PXE clients", check: checkBootFile},
		{Name: BootUEFI, Type: "file name", Default: "xcat/xnba.efi", Meaning: "boot file of x86-64 UEFI clients", check: checkBootFile},
		{Name: BootARM64, Type: "file name", Default: "boot/grub2/grubaa64.efi", Meaning: "boot file of ARM64 UEFI clients", check: checkBootFile},
		{Name: ConsolePort, Type: "TCP port", Range: "1-65535", Default: "3016", Meaning: "port of every member's console broker", check: checkIntRange(1, 65535)},
		{Name: ConsoleNetwork, Type: "network name", Meaning: "network whose member addresses the console brokers use to reach each other", check: checkNetName},
		{Name: ConsoleACL, Type: "text", Meaning: "console permissions per user or group (checked by the console service)"},
		{Name: DNSAllow, Type: "CIDR list", Meaning: "clients allowed to query the pool's DNS server, comma-separated CIDRs", check: checkCIDRList},
		{Name: "vrrp.NETWORK.members", Type: "member list", Range: "2-15 members", Meaning: "members of the network's VRRP gateway group, highest priority first", check: checkMemberList(2, 15)},
		{Name: "vrrp.NETWORK.vips", Type: "IP list", Meaning: "virtual gateway addresses of the network's VRRP group (each one of the network's gateways)", check: checkIPList},
		{Name: "vrrp.NETWORK.vrid", Type: "VRRP router ID", Range: "1-255", Default: "51", Meaning: "VRRP router ID of the network's group", check: checkIntRange(1, 255)},
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].Name < keys[j].Name })
	return keys
}

// Lookup returns the schema entry of key (pattern keys such as
// vrrp.mgmt.vrid match vrrp.NETWORK.vrid).
func Lookup(key string) (Key, bool) {
	name := key
	if rest, ok := strings.CutPrefix(key, "vrrp."); ok {
		if i := strings.LastIndexByte(rest, '.'); i > 0 && valid.NetNameRE.MatchString(rest[:i]) {
			name = "vrrp.NETWORK." + rest[i+1:]
		}
	}
	for _, k := range Keys() {
		if k.Name == name {
			if name != key {
				k.Name = key
			}
			return k, true
		}
	}
	return Key{}, false
}

// UnknownKey is the error (wrapping pool.ErrInvalid) for a key the schema
// does not know; it suggests the closest known key.
func UnknownKey(key string) error {
	hint := ""
	if s := closestSiteKey(key); s != "" {
		hint = "; did you mean " + s + "?"
	}
	return fmt.Errorf("%w: site key %q is not known to mnpool (list them with `mnpool site keys`)%s; to store it anyway as a custom key, use --custom", valid.ErrInvalid, key, hint)
}

func closestSiteKey(key string) string {
	best, bestD := "", 3
	for _, k := range Keys() {
		if d := editDistance(strings.ToLower(key), k.Name); d < bestD {
			best, bestD = k.Name, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// Well-known site keys (xCAT names).
const (
	Master        = "master"
	Domain        = "domain"
	DisjointDHCPs = "disjointdhcps"
	SharedTFTP    = "sharedtftp"
	Forwarders    = "forwarders"
	ExtNTPServers = "extntpservers"
	// AutoFailover (mnpool's, 0 or 1, default 0) lets the agents move
	// the nodes of a dead member automatically (agent package).
	AutoFailover = "autofailover"
)

// Defaults is what `mnpool init` writes for keys not given.
func Defaults() map[string]string {
	return map[string]string{
		Domain:        "cluster",
		DisjointDHCPs: "0",
		SharedTFTP:    "0",
	}
}

// siteKeyRE is the pattern of a site key.
var siteKeyRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,63}$`)

// ValidateKey checks a site table key.
func ValidateKey(k string) error {
	if !siteKeyRE.MatchString(k) {
		return fmt.Errorf("%w: site key %q: want a letter then letters, digits, '_', '.', '-' (up to 64)", valid.ErrInvalid, k)
	}
	return nil
}

// ValidateValue checks a site value: one line of printable text, and
// for a key of the schema (Keys) the key's own rule. Keys the schema
// does not know get only the first check.
func ValidateValue(k, v string) error {
	if len(v) > 4096 {
		return fmt.Errorf("%w: site %s: value longer than 4096 characters", valid.ErrInvalid, k)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: site %s: value %q contains a control character (newline, tab, ...)", valid.ErrInvalid, k, v)
		}
	}
	if sk, ok := Lookup(k); ok && (v != "" || !sk.ReadOnly) {
		return sk.Check(v)
	}
	return nil
}

// Problem is a stored site value that breaks the schema.
type Problem struct {
	Key     string `json:"key"`
	Value   string `json:"value"`
	Problem string `json:"problem"`
}

// Check lists the values of site that break the schema, and the keys
// the schema does not know (Custom), sorted by key.
func Check(site map[string]string) (bad []Problem, custom []string) {
	keys := make([]string, 0, len(site))
	for k := range site {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, known := Lookup(k); !known {
			custom = append(custom, k)
		}
		if err := ValidateValue(k, site[k]); err != nil {
			bad = append(bad, Problem{Key: k, Value: site[k], Problem: err.Error()})
		}
	}
	return bad, custom
}
