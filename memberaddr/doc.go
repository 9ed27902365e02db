// Package memberaddr holds the pool's rules for which address of a member
// a host uses to reach it. Every package that writes a member's address
// into a configuration file (dns, ntp, gateway, nodecfg, dhcp) asks here,
// so a node's resolv.conf, chrony.conf, syslog target and DHCP options all
// name the same address for the same member.
//
// There are two rules:
//
//   - A host on a pool network (a compute node, or a member using that
//     network) reaches a member by the member's address on that network
//     (OnNetwork). A node's servers are its servicenodes in list order
//     (ServiceNodes, ForNode). pool.DeriveSettings applies the same rule
//     to the node's tftpserver and nfsserver; it stays in pool because
//     pool's move planner uses it and pool cannot import this package.
//   - A member reaches another member on the first network both have an
//     address on, in the order the pool prefers the target's networks
//     (Networks: the site domain's networks first, then by name), else by
//     the target's address on its own first network, through routing
//     (Peer). The members a member falls back to are spread over the pool
//     (Peers).
//
// The functions only read a *pool.State; they do no I/O.
package memberaddr
