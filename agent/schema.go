package agent

import (
	"context"
	"embed"

	"github.com/mnpool/mnpool/locking"
	"github.com/mnpool/mnpool/pool"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Schema returns the tables of package agent (agent_failovers) for
// pool.Store.Migrate or pool.WithMigrate. An Agent migrates it
// itself when it starts.
func Schema() pool.Schema {
	return pool.Schema{Component: "agent", FS: migrationFS, Dir: "migrations"}
}

// ensureSchema makes sure s has the tables of this package and of
// package locking (the failover lease), so that the DDL runs when the
// agent starts rather than in its first failover.
func ensureSchema(ctx context.Context, s *pool.Store) error {
	return s.Migrate(ctx, Schema(), locking.Schema())
}
