// Package dns gives the pool's compute nodes and members their name
// service: resolv.conf for a node (its servicenodes, in list order) and for
// a member (itself first, then other members, never only the MN); the
// pool's DNS data (forward zones for the site and network domains, reverse
// zones for the networks) as BIND zone files; and a DNS server that any
// member can run, authoritative for those zones straight from the pool
// store and forwarding other names to site.forwarders.
//
// The server keeps an immutable snapshot of the zones and swaps it when the
// pool's change counter moves (pool.Store.Watch), so answers follow new
// nodes, re-addressed nodes and snmove without a reload, and no query ever
// reads the database.
//
// The package also holds the address rules shared by the ntp and gateway
// packages: which address of a member another member or a node uses
// (ServerAddrs, PeerAddr, Peers).
package dns
