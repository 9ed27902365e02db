// Package nodecfg reconfigures compute nodes after their servicenode list
// changed (snmove): it renders the few files on a node that name its
// servicenodes — resolv.conf, chrony.conf, the rsyslog forwarding target
// and the default route — and pushes them to the node.
//
// Three small pieces meet here:
//
//   - a Renderer gives the files of one node from a pool.State. Builtin is
//     a simple one; the dns and ntp packages replace its resolv.conf and
//     chrony.conf when they land.
//   - a Pusher writes files on one node and reports a Result. SSH is the
//     real one: one SSH connection per node, a fixed remote script per
//     file kind that writes the file atomically (contents on stdin, paths
//     fixed, nothing of the content ever reaches the shell) and applies
//     it (restart chronyd or rsyslog, replace the default route).
//   - PushAll runs a Pusher over many nodes with bounded parallelism and a
//     per-node timeout, and returns one Result per node.
//
// Reconfigure puts them together after a pool.Store.Move: it reads the
// pool as the move left it, renders the moved nodes' files, pushes them
// within per-node and overall time bounds and writes one audit record
// naming the nodes that failed. snmove and the agent's automatic failover
// both call it; NewSSH builds their SSH pusher from the pool key (package
// sshkeys) and known_hosts.
package nodecfg
