package locking

import (
	"context"
	"embed"

	"github.com/mnpool/mnpool/pool"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Schema returns the tables of package locking (locks, lock_tokens,
// lock_waiters) for pool.Store.Migrate or pool.WithMigrate. A Locker and
// Held migrate it themselves before they first use a store.
func Schema() pool.Schema {
	return pool.Schema{Component: "locking", FS: migrationFS, Dir: "migrations"}
}

// ensureSchema makes sure s has the tables of this package; after the
// first success on a store it costs no database call.
func ensureSchema(ctx context.Context, s *pool.Store) error {
	return s.Migrate(ctx, Schema())
}
