package pool

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/jmoiron/sqlx"
)

// AuditEntry is one record of the audit log: who, from which member, did
// what to what, and when (by the clock of the member that wrote it; use
// it to read the log, never to order or decide).
type AuditEntry struct {
	ID     string    `json:"id" db:"id"`
	At     time.Time `json:"at" db:"-"`
	AtUS   int64     `json:"-" db:"at_us"`
	Member string    `json:"member" db:"member"`
	Actor  string    `json:"actor" db:"actor"`
	Action string    `json:"action" db:"action"`
	Target string    `json:"target" db:"target"`
	Detail string    `json:"detail" db:"detail"`
}

// Audit writes an audit record inside tx and increments the change
// counter (see Watch). detail is marshalled to JSON unless it is a string.
// Packages that change the pool in their own transactions call it so every
// change is on record and followers re-render.
func (s *Store) Audit(ctx context.Context, tx *sqlx.Tx, action, target string, detail any) error {
	var d string
	switch v := detail.(type) {
	case nil:
	case string:
		d = v
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		d = string(b)
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO audit (id, at_us, member, actor, action, target, detail) VALUES (?,?,?,?,?,?,?)`,
		hex.EncodeToString(id[:]), time.Now().UnixMicro(), s.o.self, s.o.actor, action, truncate(target, 4000), d)
	if err != nil {
		return err
	}
	return bumpVersion(ctx, tx)
}

// AuditLog returns the newest limit audit records, newest first.
func (s *Store) AuditLog(ctx context.Context, limit int) ([]AuditEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	var out []AuditEntry
	err := s.Read(ctx, func(tx *sqlx.Tx) error {
		out = out[:0]
		return tx.SelectContext(ctx, &out, `SELECT id, at_us, member, actor, action, target, detail FROM audit ORDER BY at_us DESC, id LIMIT ?`, limit)
	})
	for i := range out {
		out[i].At = time.UnixMicro(out[i].AtUS).UTC()
	}
	return out, err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
