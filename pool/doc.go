// Package pool is the state of an xCAT-style Management Node Pool and the
// operations on it: one MN plus service nodes (SNs), all active, the
// compute nodes each served first by one of them.
//
// # The store
//
// Open a Store with a DSN: "sqlite:/var/lib/mnpool/pool.db" for one host,
// or one "mysql:USER:PASS@tcp(HOST:PORT)/DB" per MariaDB Galera node,
// comma-separated, the local node first (see dsn.DSN). Name the member the
// program runs on with WithSelf and who asks for changes with WithActor;
// bring the schema up to date with Migrate (or WithMigrate). pool's
// migrations create pool's own tables only; a package that keeps tables in
// the pool database (locking, dhcp, console, agent) owns their migrations
// as a Schema and passes it to Migrate before it first uses them, and
// versions are recorded per component. One Store is safe for concurrent
// use; close it with Close.
//
// On Galera, every write is one transaction that Store.Tx retries on a
// certification conflict (deadlock 1213) and on a node that went bad,
// switching to the next healthy node. Reads that decide something use
// wsrep_sync_wait, so they see every write committed anywhere in the
// cluster. Row locks and named locks hold on one Galera node only:
// nothing in this package relies on them across members; cluster-wide
// exclusion is the locking package's lease with its fencing token.
//
// # What the pool holds
//
//   - networks (AddNetwork), members (Init names the first MN, AddMember
//     the SNs) with their address on each network and the services they
//     run, and nodes (AddNodes) with their servicenode lists;
//   - the master record (Master): the MN and its epoch, changed only by
//     Promote (makemn.Run); a stale MN is fenced by the epoch (TxAsMN);
//   - site settings (Site, SetSite), the audit log (Audit, AuditLog) and a
//     change counter (Version, Watch) that followers poll;
//   - heartbeats and published liveness (Heartbeater, PublishedView; the
//     judging is package pool/liveness):
//     each member's judgement of the others, made on its own clock from
//     counters, never from another host's timestamps.
//
// LoadState reads everything at once into a State, the input of every
// renderer (dhcp, dns, ntp, nodecfg, the role files).
//
// # Operations
//
// Each administrator command is a call here with options and a report;
// the CLI only parses flags and prints:
//
//   - Move (snmove): reorders servicenode lists so that nodes move to
//     another member; batched, idempotent, with a dry run. The nodes
//     themselves are then reconfigured with nodecfg.Reconfigure;
//   - Assign, Route, Status, the xCAT import (PlanXCATImport, ImportXCAT);
//   - poolsync.Sync runs sync steps (rolefiles.Step, dhcp.SyncStep, a
//     product's own) for this member; the agent package runs it on every
//     change.
//
// Errors are typed: match them with errors.Is (ErrNotFound, ErrInvalid,
// ErrStaleEpoch, ErrUnavailable, ...), never by their text.
//
// Tests of programs that embed the pool get a seeded pool in one call from
// the pooltest package.
package pool
