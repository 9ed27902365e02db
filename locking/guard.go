package locking

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// Guard fences a database write with a lock's token: call it inside the
// transaction (pool.Store.Tx) that makes the write, before or after the
// write. It returns an error wrapping ErrStaleToken, and the caller must
// then return it so the transaction rolls back, unless the lock name is
// held with token at that moment.
//
// Guard writes the lock row (it bumps a counter that contenders do not
// watch, so it does not extend the lease). That is what makes it safe on
// Galera: a read of the lock row (`WHERE EXISTS (SELECT ... FROM locks
// ...)`) is not certified, so a takeover committed at the same time on
// another node would not stop the write; a write to the same row is
// certified, and one of the two transactions is aborted (error 1213) and
// run again by the store, which then sees the new token.
//
// Anyone who knows the token may call Guard, for example a program run by
// `mnpool lock run` with $MNPOOL_LOCK_TOKEN.
func Guard(ctx context.Context, tx *sqlx.Tx, name string, token int64) error {
	n, err := affected(tx.ExecContext(ctx, `UPDATE locks SET guards = guards + 1 WHERE name = ? AND token = ? AND holder <> ''`, name, token))
	if err != nil {
		return fmt.Errorf("locking: guarding a write with %q token %d: %w", name, token, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %q is no longer held with token %d", ErrStaleToken, name, token)
	}
	return nil
}
