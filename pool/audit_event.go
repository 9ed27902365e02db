package pool

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/jmoiron/sqlx"
)

// AuditEvent records an event that is not a pool change (for example a
// user attaching to a console) on behalf of actor, an identity the
// caller authenticated, in place of the store's WithActor. It does not
// move the change counter.
func (s *Store) AuditEvent(ctx context.Context, actor, action, target string, detail any) error {
	var d string
	if detail != nil {
		b, err := json.Marshal(detail)
		if err != nil {
			return err
		}
		d = string(b)
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return err
	}
	return s.Tx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO audit (id, at_us, member, actor, action, target, detail) VALUES (?,?,?,?,?,?,?)`,
			hex.EncodeToString(id[:]), time.Now().UnixMicro(), s.o.self, truncate(actor, 64), action, truncate(target, 4000), d)
		return err
	})
}
