package dhcp

import (
	"net/netip"
	"slices"
	"strconv"
)

// Kea DHCPv4 JSON writer. The output is plain JSON (no comments), so
// encoding/json reads it back (ParseKea); the mnpool header lives in the
// Dhcp4 user-context.

// Kea client classes for the boot file per client architecture.
const (
	keaClassUEFI  = "mnpool-uefi-x64"
	keaClassARM64 = "mnpool-arm64"
	keaClassBIOS  = "mnpool-bios"
)

func keaArch(code string) string {
	return "substring(option[93].hex,0,2) == 0x" + code
}

func writeKea(p *plan, cfg *Config) []byte {
	b := make([]byte, 0, 4096+cfg.Hosts*256)
	b = append(b, "{\n\"Dhcp4\": {\n  \"user-context\": {\""+Marker+"\": {\"generated-by\": \"mnpool makedhcp; do not edit\", \"member\": "...)
	b = appendJSONString(b, p.member)
	b = append(b, ", \"mn\": "...)
	b = appendJSONString(b, p.mn)
	b = append(b, ", \"epoch\": "...)
	b = strconv.AppendInt(b, p.epoch, 10)
	b = append(b, ", \"dynamic\": "...)
	b = strconv.AppendBool(b, p.dynamic)
	b = append(b, ", \"disjointdhcps\": "...)
	b = strconv.AppendBool(b, p.set.disjoint)
	b = append(b, ", \"nodes\": "...)
	b = strconv.AppendInt(b, int64(cfg.Nodes), 10)
	b = append(b, ", \"hosts\": "...)
	b = strconv.AppendInt(b, int64(cfg.Hosts), 10)
	b = append(b, "}},\n  \"interfaces-config\": {\"interfaces\": ["...)
	for i, name := range p.ifaces {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendJSONString(b, name)
	}
	b = append(b, "]},\n  \"control-socket\": {\"socket-type\": \"unix\", \"socket-name\": "...)
	b = appendJSONString(b, p.keaSocket)
	b = append(b, "},\n  \"lease-database\": {\"type\": \"memfile\", \"persist\": true, \"name\": "...)
	b = appendJSONString(b, p.keaLeases)
	b = append(b, "},\n  \"valid-lifetime\": "...)
	b = strconv.AppendInt(b, int64(p.set.leaseTime), 10)
	b = append(b, ",\n  \"authoritative\": "...)
	b = strconv.AppendBool(b, p.authoritative)
	// A node with several MACs has one reservation per MAC, all with the
	// node's IP.
	b = append(b, ",\n  \"ip-reservations-unique\": false,\n  \"host-reservation-identifiers\": [\"hw-address\"],\n"...)
	b = appendClassesKea(b, p.set)
	b = append(b, "  \"subnet4\": ["...)
	for i, sn := range p.subnets {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendSubnetKea(b, sn)
	}
	if len(p.subnets) > 0 {
		b = append(b, "\n  "...)
	}
	return append(b, "]\n}\n}\n"...)
}

func appendClassesKea(b []byte, s settings) []byte {
	type class struct{ name, test, file string }
	var cl []class
	if s.bootUEFI != "" {
		cl = append(cl, class{keaClassUEFI, keaArch("0007") + " or " + keaArch("0009"), s.bootUEFI})
	}
	if s.bootARM64 != "" {
		cl = append(cl, class{keaClassARM64, keaArch("000b"), s.bootARM64})
	}
	if s.bootBIOS != "" {
		cl = append(cl, class{keaClassBIOS, "not option[93].exists or " + keaArch("0000"), s.bootBIOS})
	}
	if len(cl) == 0 {
		return b
	}
	b = append(b, "  \"client-classes\": [\n"...)
	for i, c := range cl {
		b = append(b, "    {\"name\": "...)
		b = appendJSONString(b, c.name)
		b = append(b, ", \"test\": "...)
		b = appendJSONString(b, c.test)
		b = append(b, ", \"boot-file-name\": "...)
		b = appendJSONString(b, c.file)
		b = append(b, '}')
		if i < len(cl)-1 {
			b = append(b, ',')
		}
		b = append(b, '\n')
	}
	return append(b, "  ],\n"...)
}

// appendSubnetKea writes one subnet4 entry: its options, its dynamic
// pool and its reservations.
func appendSubnetKea(b []byte, sn *subnet) []byte {
	b = append(b, "\n    {\n      \"id\": "...)
	b = strconv.AppendUint(b, uint64(u32(sn.net.Prefix.Addr())), 10)
	b = append(b, ",\n      \"subnet\": \""...)
	b = sn.net.Prefix.AppendTo(b)
	b = append(b, "\",\n      \"user-context\": {\"network\": "...)
	b = appendJSONString(b, sn.net.Name)
	b = append(b, "},\n"...)
	if sn.next.IsValid() {
		b = append(b, "      \"next-server\": \""...)
		b = sn.next.AppendTo(b)
		b = append(b, "\",\n"...)
	}
	b = appendSubnetOptionsKea(b, sn)
	b = append(b, "],\n      \"pools\": ["...)
	if sn.dynamic {
		b = append(b, "{\"pool\": \""...)
		b = sn.net.DynamicStart.AppendTo(b)
		b = append(b, " - "...)
		b = sn.net.DynamicEnd.AppendTo(b)
		b = append(b, "\"}"...)
	}
	b = append(b, "],\n      \"reservations\": ["...)
	b = appendReservationsKea(b, sn.hosts)
	return append(b, "]\n    }"...)
}

// appendSubnetOptionsKea writes the subnet's option-data (routers,
// domain name, DNS and NTP servers), leaving the list open.
func appendSubnetOptionsKea(b []byte, sn *subnet) []byte {
	b = append(b, "      \"option-data\": ["...)
	first := true
	opt := func(name string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, "\n        {\"name\": \""...)
		b = append(b, name...)
		b = append(b, "\", \"data\": "...)
	}
	if len(sn.net.Gateways) > 0 {
		opt("routers")
		b = appendAddrListKea(b, sn.net.Gateways)
		b = append(b, '}')
	}
	if sn.domain != "" {
		opt("domain-name")
		b = appendJSONString(b, sn.domain)
		b = append(b, '}')
	}
	if len(sn.dns) > 0 {
		opt("domain-name-servers")
		b = appendAddrListKea(b, sn.dns)
		b = append(b, '}')
	}
	if len(sn.ntp) > 0 {
		opt("ntp-servers")
		b = appendAddrListKea(b, sn.ntp)
		b = append(b, '}')
	}
	if !first {
		b = append(b, "\n      "...)
	}
	return b
}

// appendReservationsKea writes the reservations of hosts, one per MAC,
// leaving the list open.
func appendReservationsKea(b []byte, hosts []host) []byte {
	first := true
	for i := range hosts {
		h := &hosts[i]
		for _, mac := range h.node.MACs {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, "\n        {\"hw-address\": \""...)
			b = append(b, mac...)
			b = append(b, "\", \"ip-address\": \""...)
			b = h.node.IP.AppendTo(b)
			b = append(b, "\", \"hostname\": \""...)
			b = append(b, h.node.Name...)
			b = append(b, '"')
			if h.next.IsValid() {
				b = append(b, ", \"next-server\": \""...)
				b = h.next.AppendTo(b)
				b = append(b, '"')
			}
			if h.srv != nil && len(h.srv.kea) > 0 {
				b = append(b, h.srv.kea...)
			}
			b = append(b, '}')
		}
	}
	if !first {
		b = append(b, "\n      "...)
	}
	return b
}

// keaServerOptions renders the per-reservation option-data for the DNS
// and NTP servers that differ from the subnet's (with its leading comma).
func keaServerOptions(srv *servers, sn *subnet) []byte {
	var b []byte
	n := 0
	add := func(name string, addrs []netip.Addr) {
		if n == 0 {
			b = append(b, ", \"option-data\": ["...)
		} else {
			b = append(b, ", "...)
		}
		n++
		b = append(b, "{\"name\": \""...)
		b = append(b, name...)
		b = append(b, "\", \"data\": "...)
		b = appendAddrListKea(b, addrs)
		b = append(b, '}')
	}
	if !slices.Equal(srv.dns, sn.dns) {
		add("domain-name-servers", srv.dns)
	}
	if !slices.Equal(srv.ntp, sn.ntp) {
		add("ntp-servers", srv.ntp)
	}
	if n > 0 {
		b = append(b, ']')
	}
	return b
}

func appendAddrListKea(b []byte, addrs []netip.Addr) []byte {
	b = append(b, '"')
	for i, a := range addrs {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = a.AppendTo(b)
	}
	return append(b, '"')
}

// appendJSONString writes s as a JSON string. The renderer only passes
// validated values, but the escaping does not rely on it.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c >= 0x7f:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
