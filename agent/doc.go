// Package agent is the long-running process of a pool member: mnpoold
// runs it, and a cluster-management product embeds it.
//
// On every member an Agent
//
//   - heartbeats: bumps the member's counter and judges the other members
//     by how long theirs stood still on its own monotonic clock (no clocks
//     of two hosts are ever compared);
//   - follows the change feed and re-applies what the member serves (its
//     sync steps: role files, DHCP configuration and reload, a product's
//     own files) through poolsync.Sync whenever the pool changes;
//   - keeps the MN fail-safe: the DHCP dynamic range is rendered only
//     while the MN guard confirms this member as the MN of the current
//     epoch, and taken out of the files, from the last snapshot, when the
//     guard expires even if the database cannot be read;
//   - runs optional services beside it (the DNS server, the console
//     broker) and serves /metrics and /healthz;
//   - with the site setting autofailover=1, campaigns for the failover
//     lease; the one leader moves the nodes of a member it judges dead to
//     the next alive member of each node's list (pool.Store.Move, the code
//     of snmove), fenced by the lease's token, audited as
//     "agent.failover", damped by a cool-down and a limit per window.
//
// A minimal embedding:
//
//	s, err := pool.Open(ctx, dsn, pool.WithSelf("sn1"))
//	a, err := agent.New(s,
//		agent.WithSteps(rolefiles.Step("/"), dhcp.SyncStep(applier, dhcp.Options{}), myStep),
//		agent.WithEvents(func(e agent.Event) { ... }),
//		agent.WithHTTPAddr("127.0.0.1:9655"))
//	err = a.Run(ctx) // until ctx ends
//
// docs/AGENT.md describes the timing chain of a failover and its safety.
package agent
