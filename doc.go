// Package mnpool is the root of mnpool, a Go library with thin command-line
// programs that lets an HPC cluster run many management nodes at once, all
// active: xCAT's "Management Node Pool" design.
//
// One MN plus service nodes (SNs) form the pool. Every member can be used to
// manage the cluster. Each compute node is served by an ordered list of two
// or more members (xCAT's noderes.servicenode); when a member dies its nodes
// move to the next member of their lists (snmove), and any SN can become the
// MN (makemn) whether the old MN is up or down. DHCP data is the same on every
// member but only the MN hands out the dynamic range (makedhcp); compute
// nodes point their DNS and NTP at both of their servicenodes; pool members
// and compute nodes use different SSH keys; a node's console can be served
// by more than one member; writes to the shared /install tree are locked
// cluster-wide.
//
// # Packages
//
//   - [github.com/mnpool/mnpool/pool]: the pool database (MariaDB Galera, or
//     embedded SQLite for one host), its schema, members, networks, nodes,
//     the master record (MN and epoch), validation, audit log, change feed.
//   - locking: cluster-wide lease locks with fencing tokens; the /install lock.
//   - dhcp: dhcpd.conf and Kea configuration per member.
//   - dns, ntp: resolver, DNS server, zone files, chrony configuration.
//   - sshkeys: the pool key and the compute key, kept apart.
//   - console: consoles served by more than one member.
//   - noderange: xCAT's noderange syntax.
//
// # State and the rules Galera forces
//
// State lives in MariaDB Galera, replicated across members. Galera's named
// locks and SELECT ... FOR UPDATE are node-local, conflicting writes abort
// with error 1213, reads can be stale on another node, and a node cut off in
// a minority still answers SELECT 1. The store therefore checks node health
// by wsrep status (Primary, ready, Synced), retries whole transactions,
// makes every decision a conditional single-statement update, sets
// wsrep_sync_wait, and treats the MN epoch and every lock token as fencing
// tokens. Liveness never compares clocks of different hosts.
//
// Start with [github.com/mnpool/mnpool/pool.Open] and the quickstart in
// examples/quickstart.
package mnpool
