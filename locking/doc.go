// Package locking provides cluster-wide locks for the members of a pool,
// kept in the pool database (SQLite or MariaDB Galera): leases with a TTL
// renewed in the background, a fencing token per lock name that only
// grows, a FIFO queue of waiters, and the lock of a directory of the
// shared install tree (Install) that adds a flock(2) and a token file.
//
// The locks are built from rows and conditional updates only. GET_LOCK(),
// LOCK TABLES and SELECT ... FOR UPDATE lock one Galera node, not the
// cluster (docs/DESIGN.md, *node-local-locks*; TestGetLockIsNodeLocal shows two holders).
// Expiry trusts no clock across hosts (rule 7): a contender takes a lock
// over only after it has seen the holder's lease counter stand still for
// the holder's TTL on its own monotonic clock, with an UPDATE conditional
// on exactly that counter. The holder gives the lock up (Done closes) when
// it has not renewed for TTL minus a safety margin on its own clock, so it
// stops before any contender can take over. docs/LOCKING.md has the
// arithmetic and the Galera timing the TTL must exceed.
//
// Typical use:
//
//	lk, err := locking.New(store)
//	l, err := lk.Lock(ctx, "install:/install/netboot/rhels9", locking.WithTTL(time.Minute))
//	defer l.Unlock(context.Background())
//	for step := range steps {
//		if !l.Held() { return l.Err() }
//		err := store.Tx(ctx, func(tx *sqlx.Tx) error {
//			if err := l.Guard(ctx, tx); err != nil { return err }
//			return step(tx)
//		})
//	}
//
// See Lock for exactly when it is and is not safe to assume the lock is
// held.
//
// Tables (migration 0501): locks (one row per name: holder session,
// member, token, lease counter, TTL), lock_tokens (the token per name,
// never deleted, so deleting a lock row cannot reset it) and lock_waiters
// (the queue). Renewals are not audited (they are not pool changes and
// would move the change counter); takeovers are, as "lock.takeover".
package locking
