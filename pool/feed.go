package pool

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"
)

// DefaultWatchInterval is how often Watch reads the change counter.
const DefaultWatchInterval = 500 * time.Millisecond

// The change feed is one counter, pool_version, that every audited change
// increments in the same transaction (Store.Audit does it). A member that
// renders configuration remembers the version it rendered and reloads the
// state only when the counter has moved: one primary-key read per interval
// instead of reading the pool. The counter's value means nothing across
// pools; only "it moved" does.

// Version returns the pool's change counter.
func (s *Store) Version(ctx context.Context) (int64, error) {
	var v int64
	err := s.Read(ctx, func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &v, "SELECT version FROM pool_version WHERE id = 1")
	})
	return v, err
}

// bumpVersion increments the change counter inside tx.
func bumpVersion(ctx context.Context, tx *sqlx.Tx) error {
	_, err := tx.ExecContext(ctx, "UPDATE pool_version SET version = version + 1 WHERE id = 1")
	return err
}

// Watch sends the change counter on the returned channel at start and
// whenever it moves, reading it every interval (DefaultWatchInterval when
// zero). Read errors are skipped (the next tick tries again) and reported
// through the store's logger. The channel is closed when ctx ends. A slow
// receiver only ever misses intermediate values, never the latest.
func (s *Store) Watch(ctx context.Context, interval time.Duration) <-chan int64 {
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	ch := make(chan int64, 1)
	go func() {
		defer close(ch)
		last := int64(-1)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			v, err := s.Version(ctx)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("pool: reading change counter", "err", err)
			}
			if err == nil && v != last {
				select {
				case <-ch: // drop the unread older value
				default:
				}
				ch <- v
				last = v
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return ch
}
