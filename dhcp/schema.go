package dhcp

import (
	"context"
	"embed"

	"github.com/mnpool/mnpool/pool"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Schema returns the tables of package dhcp (dhcp_excluded) for
// pool.Store.Migrate or pool.WithMigrate. The functions of this
// package that use them migrate it themselves first.
func Schema() pool.Schema {
	return pool.Schema{Component: "dhcp", FS: migrationFS, Dir: "migrations"}
}

// ensureSchema makes sure s has the tables of this package; after the
// first success on a store it costs no database call.
func ensureSchema(ctx context.Context, s *pool.Store) error {
	return s.Migrate(ctx, Schema())
}
