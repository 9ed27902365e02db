package locking

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/jmoiron/sqlx"
)

// lockRow is a row of the locks table.
type lockRow struct {
	Name    string `db:"name"`
	Holder  string `db:"holder"`
	Member  string `db:"member"`
	Info    string `db:"info"`
	Token   int64  `db:"token"`
	Lease   int64  `db:"lease"`
	TTLms   int64  `db:"ttl_ms"`
	SinceUS int64  `db:"since_us"`
}

// lease is what a contender watches: it changes whenever the holder
// renews, and a takeover is conditional on it.
func (r lockRow) lease() leaseState { return leaseState{r.Holder, r.Token, r.Lease} }

// ttl is the holder's TTL, never below MinTTL.
func (r lockRow) ttl() time.Duration { return max(time.Duration(r.TTLms)*time.Millisecond, MinTTL) }

// waiterRow is a row of the lock_waiters table.
type waiterRow struct {
	Session string `db:"session_id"`
	Ticket  int64  `db:"ticket"`
	Member  string `db:"member"`
	Lease   int64  `db:"lease"`
	TTLms   int64  `db:"ttl_ms"`
}

func (w waiterRow) ttl() time.Duration { return max(time.Duration(w.TTLms)*time.Millisecond, MinTTL) }

// before orders the queue: by ticket, then session id.
func (w waiterRow) before(ticket int64, session string) bool {
	return w.Ticket < ticket || (w.Ticket == ticket && w.Session < session)
}

// leaseState identifies one lease of one holder at one renewal.
type leaseState struct {
	holder string
	token  int64
	lease  int64
}

const (
	selectLock    = `SELECT name, holder, member, info, token, lease, ttl_ms, since_us FROM locks WHERE name = ?`
	selectWaiters = `SELECT session_id, ticket, member, lease, ttl_ms FROM lock_waiters WHERE name = ? ORDER BY ticket, session_id`
)

// getLock reads the lock row; ok is false when there is none.
func getLock(ctx context.Context, tx *sqlx.Tx, name string) (row lockRow, ok bool, err error) {
	err = tx.GetContext(ctx, &row, selectLock, name)
	if errors.Is(err, sql.ErrNoRows) {
		return lockRow{}, false, nil
	}
	return row, err == nil, err
}

func affected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
