package dhcp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// Installed is what a configuration file written by mnpool holds, read
// back from the file (makedhcp -q, and the node set that makedhcp
// NODERANGE and -d start from).
type Installed struct {
	Format  Format `json:"format"`
	Member  string `json:"member"`
	MN      string `json:"mn"`
	Epoch   int64  `json:"epoch"`
	Dynamic bool   `json:"dynamic"`
	// Subnets in file order.
	Subnets []InstalledSubnet `json:"subnets"`
	// Hosts sorted by node, then in file order (a node's MACs in order).
	Hosts []InstalledHost `json:"hosts"`
}

// InstalledSubnet is one subnet of an installed configuration.
type InstalledSubnet struct {
	Network    string       `json:"network"`
	Prefix     netip.Prefix `json:"cidr"`
	Routers    []netip.Addr `json:"routers,omitempty"`
	NextServer netip.Addr   `json:"next_server,omitzero"`
	DNS        []netip.Addr `json:"dns,omitempty"`
	NTP        []netip.Addr `json:"ntp,omitempty"`
	// Range is "START-END", empty when the member serves no dynamic
	// range on it.
	Range string `json:"range,omitempty"`
}

// InstalledHost is one reservation with the values a client gets from
// it: the host's own where it has them, else its subnet's.
type InstalledHost struct {
	Node       string       `json:"node"`
	MAC        string       `json:"mac"`
	IP         netip.Addr   `json:"ip"`
	Network    string       `json:"network"`
	NextServer netip.Addr   `json:"next_server,omitzero"`
	DNS        []netip.Addr `json:"dns,omitempty"`
	NTP        []netip.Addr `json:"ntp,omitempty"`
}

// Nodes returns the distinct node names of the reservations, sorted.
func (in *Installed) Nodes() []string {
	var out []string
	for _, h := range in.Hosts {
		if len(out) == 0 || out[len(out)-1] != h.Node {
			out = append(out, h.Node)
		}
	}
	return out
}

// Parse reads a configuration file written by Render (either format). A
// file that is not mnpool's fails with ErrFormat.
func Parse(data []byte) (*Installed, error) {
	t := bytes.TrimLeft(data, " \t\r\n")
	if len(t) > 0 && t[0] == '{' {
		return parseKea(data)
	}
	return parseISC(data)
}

// keaDoc is the part of a Kea DHCPv4 configuration that parseKea reads.
type keaDoc struct {
	Dhcp4 *struct {
		UserContext map[string]struct {
			Member  string `json:"member"`
			MN      string `json:"mn"`
			Epoch   int64  `json:"epoch"`
			Dynamic bool   `json:"dynamic"`
		} `json:"user-context"`
		Subnet4 []keaSubnet `json:"subnet4"`
	} `json:"Dhcp4"`
}

type keaSubnet struct {
	Subnet      string `json:"subnet"`
	UserContext struct {
		Network string `json:"network"`
	} `json:"user-context"`
	NextServer string      `json:"next-server"`
	OptionData []keaOption `json:"option-data"`
	Pools      []struct {
		Pool string `json:"pool"`
	} `json:"pools"`
	Reservations []keaReservation `json:"reservations"`
}

type keaReservation struct {
	HW         string      `json:"hw-address"`
	IP         string      `json:"ip-address"`
	Hostname   string      `json:"hostname"`
	NextServer string      `json:"next-server"`
	OptionData []keaOption `json:"option-data"`
}

type keaOption struct {
	Name string `json:"name"`
	Data string `json:"data"`
}

func parseKea(data []byte) (*Installed, error) {
	var doc keaDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: not a Kea JSON configuration: %v", ErrFormat, err)
	}
	if doc.Dhcp4 == nil {
		return nil, fmt.Errorf("%w: no Dhcp4 section: not a Kea DHCPv4 configuration", ErrFormat)
	}
	hdr, ok := doc.Dhcp4.UserContext[Marker]
	if !ok {
		return nil, fmt.Errorf("%w: the Kea configuration was not written by mnpool (no %q user-context)", ErrFormat, Marker)
	}
	in := &Installed{Format: FormatKea, Member: hdr.Member, MN: hdr.MN, Epoch: hdr.Epoch, Dynamic: hdr.Dynamic, Subnets: []InstalledSubnet{}, Hosts: []InstalledHost{}}
	for _, s := range doc.Dhcp4.Subnet4 {
		sub, err := parseKeaSubnet(s)
		if err != nil {
			return nil, err
		}
		in.Subnets = append(in.Subnets, sub)
		for _, r := range s.Reservations {
			h, err := parseKeaReservation(r, sub)
			if err != nil {
				return nil, err
			}
			in.Hosts = append(in.Hosts, h)
		}
	}
	sortHosts(in.Hosts)
	return in, nil
}

// parseKeaSubnet reads a subnet4 entry but its reservations.
func parseKeaSubnet(s keaSubnet) (InstalledSubnet, error) {
	pfx, err := netip.ParsePrefix(s.Subnet)
	if err != nil {
		return InstalledSubnet{}, fmt.Errorf("%w: subnet %q: %v", ErrFormat, s.Subnet, err)
	}
	sub := InstalledSubnet{Network: s.UserContext.Network, Prefix: pfx}
	if sub.NextServer, err = optAddr(s.NextServer); err != nil {
		return InstalledSubnet{}, err
	}
	for _, o := range s.OptionData {
		var err error
		switch o.Name {
		case "routers":
			sub.Routers, err = parseAddrList(o.Data, ",")
		case "domain-name-servers":
			sub.DNS, err = parseAddrList(o.Data, ",")
		case "ntp-servers":
			sub.NTP, err = parseAddrList(o.Data, ",")
		}
		if err != nil {
			return InstalledSubnet{}, err
		}
	}
	if len(s.Pools) > 0 {
		sub.Range = strings.ReplaceAll(s.Pools[0].Pool, " ", "")
	}
	return sub, nil
}

// parseKeaReservation reads a reservation of subnet sub; what it does not
// set itself it has from sub.
func parseKeaReservation(r keaReservation, sub InstalledSubnet) (InstalledHost, error) {
	h := InstalledHost{Node: r.Hostname, MAC: r.HW, Network: sub.Network, NextServer: sub.NextServer, DNS: sub.DNS, NTP: sub.NTP}
	var err error
	if h.IP, err = netip.ParseAddr(r.IP); err != nil {
		return InstalledHost{}, fmt.Errorf("%w: reservation %s: IP %q", ErrFormat, r.Hostname, r.IP)
	}
	if r.NextServer != "" {
		if h.NextServer, err = optAddr(r.NextServer); err != nil {
			return InstalledHost{}, err
		}
	}
	for _, o := range r.OptionData {
		switch o.Name {
		case "domain-name-servers":
			h.DNS, err = parseAddrList(o.Data, ",")
		case "ntp-servers":
			h.NTP, err = parseAddrList(o.Data, ",")
		}
		if err != nil {
			return InstalledHost{}, err
		}
	}
	return h, nil
}

func optAddr(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return a, fmt.Errorf("%w: address %q", ErrFormat, s)
	}
	return a, nil
}

func parseAddrList(s, sep string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, f := range strings.Split(s, sep) {
		a, err := netip.ParseAddr(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%w: address list %q", ErrFormat, s)
		}
		out = append(out, a)
	}
	return out, nil
}

func sortHosts(h []InstalledHost) {
	sort.SliceStable(h, func(i, j int) bool { return h[i].Node < h[j].Node })
}

// parseISC reads the dhcpd.conf that writeISC writes; it knows only that
// layout (one statement per line).
func parseISC(data []byte) (*Installed, error) {
	lines := bytes.Split(data, []byte("\n"))
	in, err := parseISCHeader(lines)
	if err != nil {
		return nil, err
	}
	p := iscParser{in: in}
	for i, raw := range lines {
		if err := p.line(i, raw); err != nil {
			return nil, err
		}
	}
	return p.finish()
}

// parseISCHeader reads the two header lines of mnpool's dhcpd.conf.
func parseISCHeader(lines [][]byte) (*Installed, error) {
	in := &Installed{Format: FormatISC, Subnets: []InstalledSubnet{}, Hosts: []InstalledHost{}}
	if len(lines) < 2 || !bytes.HasPrefix(lines[0], []byte("# "+Marker+":")) {
		return nil, fmt.Errorf("%w: the dhcpd configuration was not written by mnpool (its first line is not \"# %s: ...\")", ErrFormat, Marker)
	}
	for _, kv := range strings.Fields(strings.TrimPrefix(string(lines[1]), "#")) {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "member":
			in.Member = v
		case "mn":
			in.MN = v
		case "epoch":
			in.Epoch, _ = strconv.ParseInt(v, 10, 64)
		case "dynamic":
			in.Dynamic = v == "yes"
		}
	}
	return in, nil
}

// iscParser reads dhcpd.conf line by line: the subnet or host block it is
// in, and the hosts read so far.
type iscParser struct {
	in      *Installed
	sub     *InstalledSubnet // the subnet block the parser is in, or nil
	cur     *iscHost         // the host block the parser is in, or nil
	hosts   []iscHost
	netName string // from the last "# network" comment
}

// iscHost is a host as read, and which of the subnet's values it sets
// itself.
type iscHost struct {
	h              InstalledHost
	next, dns, ntp bool
	lineNo         int
}

// line reads line i (from 0): a comment, the start or end of a block, or
// a statement inside one.
func (p *iscParser) line(i int, raw []byte) error {
	l := bytes.TrimSpace(raw)
	switch {
	case len(l) == 0:
		return nil
	case bytes.HasPrefix(l, []byte("# network ")):
		f := strings.Fields(string(l[len("# network "):]))
		if len(f) > 0 {
			p.netName = f[0]
		}
		return nil
	case l[0] == '#':
		return nil
	case bytes.HasPrefix(l, []byte("subnet ")):
		return p.subnet(i, l)
	case bytes.HasPrefix(l, []byte("host ")):
		name := strings.TrimSuffix(strings.TrimSpace(string(l[5:])), "{")
		name = strings.TrimSpace(name)
		node, _, _ := strings.Cut(name, ".")
		p.hosts = append(p.hosts, iscHost{h: InstalledHost{Node: node}, lineNo: i + 1})
		p.cur = &p.hosts[len(p.hosts)-1]
		return nil
	case bytes.Equal(bytes.TrimRight(raw, " \t\r"), []byte("}")):
		// Blocks end with "}" in column 0; the indented ones close
		// the boot file conditions inside a subnet.
		if p.cur != nil {
			p.cur = nil
		} else {
			p.sub = nil
		}
		return nil
	}
	stmt := strings.TrimSuffix(string(l), ";")
	var err error
	switch {
	case p.cur != nil:
		err = p.cur.statement(stmt)
	case p.sub != nil:
		err = iscSubnetStatement(p.sub, stmt)
	}
	if err != nil {
		return fmt.Errorf("line %d: %w", i+1, err)
	}
	return nil
}

// subnet starts the subnet block of line i, "subnet ADDR netmask MASK {".
func (p *iscParser) subnet(i int, l []byte) error {
	bad := func() error {
		return fmt.Errorf("%w: dhcpd configuration line %d: unexpected %q", ErrFormat, i+1, truncate(string(l), 80))
	}
	f := strings.Fields(string(l))
	if len(f) != 5 {
		return bad()
	}
	a, err1 := netip.ParseAddr(f[1])
	m, err2 := netip.ParseAddr(f[3])
	if err1 != nil || err2 != nil {
		return bad()
	}
	ones := 0
	for v := u32(m); v&0x80000000 != 0; v <<= 1 {
		ones++
	}
	p.in.Subnets = append(p.in.Subnets, InstalledSubnet{Network: p.netName, Prefix: netip.PrefixFrom(a, ones)})
	p.sub = &p.in.Subnets[len(p.in.Subnets)-1]
	return nil
}

// iscValue returns the rest of stmt after prefix, and whether stmt starts
// with it.
func iscValue(stmt, prefix string) (string, bool) {
	if strings.HasPrefix(stmt, prefix) {
		return strings.TrimSpace(stmt[len(prefix):]), true
	}
	return "", false
}

// statement reads a statement of a host block.
func (r *iscHost) statement(stmt string) error {
	var err error
	if v, ok := iscValue(stmt, "hardware ethernet "); ok {
		r.h.MAC = v
	} else if v, ok := iscValue(stmt, "fixed-address "); ok {
		r.h.IP, err = optAddr(v)
	} else if v, ok := iscValue(stmt, "next-server "); ok {
		r.h.NextServer, err = optAddr(v)
		r.next = true
	} else if v, ok := iscValue(stmt, "option domain-name-servers "); ok {
		r.h.DNS, err = parseAddrList(v, ",")
		r.dns = true
	} else if v, ok := iscValue(stmt, "option ntp-servers "); ok {
		r.h.NTP, err = parseAddrList(v, ",")
		r.ntp = true
	}
	return err
}

// iscSubnetStatement reads a statement of a subnet block into sub.
func iscSubnetStatement(sub *InstalledSubnet, stmt string) error {
	var err error
	if v, ok := iscValue(stmt, "option routers "); ok {
		sub.Routers, err = parseAddrList(v, ",")
	} else if v, ok := iscValue(stmt, "option domain-name-servers "); ok {
		sub.DNS, err = parseAddrList(v, ",")
	} else if v, ok := iscValue(stmt, "option ntp-servers "); ok {
		sub.NTP, err = parseAddrList(v, ",")
	} else if v, ok := iscValue(stmt, "next-server "); ok {
		sub.NextServer, err = optAddr(v)
	} else if v, ok := iscValue(stmt, "range "); ok {
		sub.Range = strings.Join(strings.Fields(v), "-")
	}
	return err
}

// finish places each host on the subnet holding its IP, gives it the
// subnet's values it does not set itself, and returns what was read.
func (p *iscParser) finish() (*Installed, error) {
	in := p.in
	for _, r := range p.hosts {
		h := r.h
		if !h.IP.IsValid() || h.MAC == "" {
			return nil, fmt.Errorf("%w: dhcpd configuration line %d: host %s has no fixed-address or hardware ethernet", ErrFormat, r.lineNo, h.Node)
		}
		for _, s := range in.Subnets {
			if s.Prefix.Contains(h.IP) {
				h.Network = s.Network
				if !r.next {
					h.NextServer = s.NextServer
				}
				if !r.dns {
					h.DNS = s.DNS
				}
				if !r.ntp {
					h.NTP = s.NTP
				}
				break
			}
		}
		in.Hosts = append(in.Hosts, h)
	}
	sortHosts(in.Hosts)
	return in, nil
}
