// Package dispatch runs one command on many nodes in parallel, the way
// xCAT's xdsh, pdsh and ClusterShell's clush do, and routes each node
// through the pool member that serves it.
//
// A Runner executes a Request on a list of Targets with a bounded fanout
// through a Transport (SSH in production, see SSH); each node's Result
// (stdout, stderr, exit code, error, timing) is handed to the caller as
// soon as the node is done. Plan decides, from the pool's state and the
// published liveness of the members, which targets are run from here and
// which are relayed to another member, which runs them itself with its own
// fanout (ServeRelay is the member's side; the mnpool command exposes it
// as the hidden `mnpool xdsh-relay`).
//
// Nothing here prints: the CLI (mnpool xdsh) formats results, and an
// embedding product can consume Results directly.
package dispatch
