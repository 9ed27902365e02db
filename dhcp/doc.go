// Package dhcp renders, for one pool member, the DHCPv4 server
// configuration that member runs: an ISC dhcpd.conf or a Kea DHCPv4 JSON
// configuration, and applies it (atomic write with a backup, a check with
// the real daemon, reload).
//
// What a member serves (see docs/DHCP.md):
//   - a subnet for every IPv4 network it has an address on, with its
//     gateways (option 3 lists them all), domain, DNS and NTP servers;
//   - a host reservation (MAC → IP) for every node on those networks
//     (site.disjointdhcps=0) or only for the nodes whose servicenode list
//     names the member (site.disjointdhcps=1);
//   - next-server: the member's own address on the network
//     (site.sharedtftp=0: a booting node is pointed at the member that
//     answered), boot file names per client architecture from the site
//     keys bootfile.bios, bootfile.uefi and bootfile.arm64;
//   - per node, DNS and NTP servers: its servicenodes in list order with
//     the rendering member first when it is one of them;
//   - the dynamic range only when Options.ServeDynamic is set, which the
//     caller decides: only the confirmed MN of the current epoch serves it.
//
// Render is pure: the same State and Options give byte-identical output.
// Every value that reaches the file is validated first (names, MACs,
// addresses, domains, file names, paths), so a value in the pool database
// cannot inject configuration.
package dhcp
