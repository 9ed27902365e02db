package dhcp

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/mnpool/mnpool/pool/siteschema"
)

// Format is a DHCP server configuration format.
type Format string

// Formats Render writes.
const (
	// FormatISC is an ISC dhcpd.conf (dhcpd 4.x).
	FormatISC Format = "isc"
	// FormatKea is a Kea DHCPv4 JSON configuration (kea-dhcp4 2.x).
	FormatKea Format = "kea"
)

// ParseFormat checks a format name ("isc" or "kea"; "dhcpd" is taken as
// isc).
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "isc", "dhcpd":
		return FormatISC, nil
	case "kea", "kea-dhcp4":
		return FormatKea, nil
	}
	return "", fmt.Errorf("%w: format %q: want isc or kea", ErrFormat, s)
}

// DefaultPath returns where the daemon of format f reads its configuration
// on Debian.
func (f Format) DefaultPath() string {
	if f == FormatKea {
		return "/etc/kea/kea-dhcp4.conf"
	}
	return "/etc/dhcp/dhcpd.conf"
}

// Site keys read by Render (besides siteschema.DisjointDHCPs and
// siteschema.Domain). xCAT has no site keys for boot files (it derives them
// from noderes.netboot); these are mnpool's, named after DHCP's "boot file
// name".
const (
	// SiteBootBIOS is the boot file of BIOS (legacy PXE, arch 0) clients
	// and of clients that send no architecture (option 93).
	SiteBootBIOS = "bootfile.bios"
	// SiteBootUEFI is the boot file of x86-64 UEFI clients (arch 7 and 9).
	SiteBootUEFI = "bootfile.uefi"
	// SiteBootARM64 is the boot file of ARM64 UEFI clients (arch 11).
	SiteBootARM64 = "bootfile.arm64"
	// SiteDHCPLease is the lease time in seconds (xCAT's dhcplease).
	SiteDHCPLease = "dhcplease"
	// SiteDHCPInterfaces lists the interfaces Kea listens on, in xCAT's
	// dhcpinterfaces syntax: "eth1,eth2" for every member, or
	// "mn1|eth1,eth2;sn1|bond0" per member (ISC dhcpd takes its
	// interfaces on the command line instead).
	SiteDHCPInterfaces = "dhcpinterfaces"
)

// Defaults of the site keys and options.
const (
	DefaultBootBIOS         = "xcat/xnba.kpxe"
	DefaultBootUEFI         = "xcat/xnba.efi"
	DefaultBootARM64        = "boot/grub2/grubaa64.efi"
	DefaultLeaseTime        = 43200
	DefaultKeaControlSocket = "/run/kea/kea4-ctrl-socket"
	DefaultKeaLeaseFile     = "/var/lib/kea/kea-leases4.csv"
)

// Options tune Render. The zero value renders an ISC configuration of
// every eligible node without the dynamic range.
type Options struct {
	// Format of the output (default FormatISC).
	Format Format
	// ServeDynamic includes the networks' dynamic ranges. The caller
	// decides: only the member that has confirmed it is the MN of the
	// current epoch may set it (docs/DESIGN.md, *fencing-tokens*: a member that cannot
	// confirm its role serves no dynamic range).
	ServeDynamic bool
	// Select, when not nil, limits the host reservations to the nodes it
	// returns true for (makedhcp NODERANGE / -d keep a subset). Nodes it
	// selects that the member does not serve are still left out.
	Select func(node string) bool
	// Interfaces Kea listens on. Default: the member's entry of site
	// dhcpinterfaces, else "*" (every interface).
	Interfaces []string
	// KeaControlSocket is the path of Kea's control socket, written into
	// the Kea configuration (default DefaultKeaControlSocket).
	KeaControlSocket string
	// KeaLeaseFile is Kea's memfile lease database (default
	// DefaultKeaLeaseFile).
	KeaLeaseFile string
}

// settings are the site values Render uses, validated.
type settings struct {
	disjoint   bool
	domain     string
	bootBIOS   string
	bootUEFI   string
	bootARM64  string
	leaseTime  int
	interfaces []string
}

func siteSettings(site map[string]string, member string) (settings, error) {
	s := settings{leaseTime: DefaultLeaseTime}
	switch v := site[siteschema.DisjointDHCPs]; v {
	case "", "0":
	case "1":
		s.disjoint = true
	default:
		return s, fmt.Errorf("%w: site %s=%q: want 0 or 1", ErrInvalid, siteschema.DisjointDHCPs, v)
	}
	s.domain = site[siteschema.Domain]
	if err := checkDomain("site domain", s.domain); err != nil {
		return s, err
	}
	boot := func(key, def string) (string, error) {
		v, ok := site[key]
		if !ok {
			return def, nil
		}
		return v, checkBootFile(key, v)
	}
	var err error
	if s.bootBIOS, err = boot(SiteBootBIOS, DefaultBootBIOS); err != nil {
		return s, err
	}
	if s.bootUEFI, err = boot(SiteBootUEFI, DefaultBootUEFI); err != nil {
		return s, err
	}
	if s.bootARM64, err = boot(SiteBootARM64, DefaultBootARM64); err != nil {
		return s, err
	}
	if v, ok := site[SiteDHCPLease]; ok && v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 60 || n > 1<<31-1 {
			return s, fmt.Errorf("%w: site %s=%q: want a number of seconds from 60 to 2147483647", ErrInvalid, SiteDHCPLease, v)
		}
		s.leaseTime = n
	}
	if s.interfaces, err = ParseInterfaces(site[SiteDHCPInterfaces], member); err != nil {
		return s, err
	}
	return s, nil
}

// ParseInterfaces returns the interfaces that the site dhcpinterfaces
// value v gives member: "eth1,eth2" applies to every member,
// "mn1|eth1,eth2;sn1|bond0" names them per member. Nil means no entry.
func ParseInterfaces(v, member string) ([]string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	var all, mine []string
	for _, part := range strings.Split(v, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		who, list, per := strings.Cut(part, "|")
		if per {
			who = strings.TrimSpace(who)
			if err := checkLabel("dhcpinterfaces member", who); err != nil {
				return nil, fmt.Errorf("site %s=%q: %w", SiteDHCPInterfaces, v, err)
			}
		} else {
			list = part
		}
		var ifs []string
		for _, name := range strings.Split(list, ",") {
			name = strings.TrimSpace(name)
			if err := checkInterface(name); err != nil {
				return nil, fmt.Errorf("site %s=%q: %w", SiteDHCPInterfaces, v, err)
			}
			ifs = append(ifs, name)
		}
		switch {
		case !per:
			all = append(all, ifs...)
		case who == member:
			mine = append(mine, ifs...)
		}
	}
	if mine != nil {
		return mine, nil
	}
	return all, nil
}
