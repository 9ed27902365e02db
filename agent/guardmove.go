package agent

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/mnpool/mnpool/pool"
)

// guardMove fences every write transaction of a failover's move twice:
//   - with the lease: each batch commits only while the lease row still
//     carries this holding's token (locking.Guard writes that row, so on
//     Galera a takeover committed at the same time on another node
//     conflicts with the batch);
//   - with the dead member's heartbeat counter: each batch first reads it
//     (wsrep_sync_wait makes that read see every committed beat) and stops
//     the move if it moved since the leader judged the member dead, so a
//     member that was only paused and came back loses at most the batch in
//     flight, not all of its nodes.
func guardMove(req pool.MoveRequest, l lease, member string, counter int64) pool.MoveRequest {
	req.Guard = func(ctx context.Context, tx *sqlx.Tx) error {
		if err := l.Guard(ctx, tx); err != nil {
			return err
		}
		var now int64
		if err := tx.GetContext(ctx, &now, "SELECT heartbeat FROM members WHERE name = ?", member); err != nil {
			return fmt.Errorf("agent: reading the heartbeat of %s: %w", member, err)
		}
		if now != counter {
			return fmt.Errorf("%w: %s beat again (counter %d, judged dead at %d); failover stopped", ErrMemberAlive, member, now, counter)
		}
		return nil
	}
	return req
}
