// Package dns gives the pool's compute nodes and members their name
// service: resolv.conf for a node (its servicenodes, in list order) and for
// a member (itself first, then other members, never only the MN); the
// pool's DNS data (forward zones for the site and network domains, reverse
// zones for the networks) as BIND zone files; and a DNS server that any
// member can run, authoritative for those zones straight from the pool
// store and forwarding other names to site.forwarders.
//
// The server keeps an immutable snapshot of the zones, with every answer
// already packed in wire format, and swaps it when the pool's change
// counter moves (pool.Store.Watch), so answers follow new nodes,
// re-addressed nodes and snmove without a reload, and no query ever reads
// the database. UDP is served by one read loop per socket (one socket per
// CPU with SO_REUSEPORT, recvmmsg/sendmmsg batches on Linux) that answers
// common queries without allocating; the rest goes through miekg/dns.
//
// The server is safe to run on a pool's networks: only clients in the
// allow list (the pool's networks and loopback, site.dnsallow) get
// answers; forwarders that are pool members are dropped and forwarded
// queries carry a loop mark (LoopMarkOption) so that pool servers never
// forward them again; forwarding is bounded in time and concurrency; UDP
// answers are rate limited per client prefix (RateLimit).
//
// Which address of a member a node or another member uses is decided by
// package memberaddr, shared with ntp, gateway, nodecfg and dhcp.
package dns
