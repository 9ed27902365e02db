package dhcp

import (
	"context"
	"embed"
	"io/fs"

	"github.com/mnpool/mnpool/pool"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Schema returns the tables of package dhcp (dhcp_excluded) for
// pool.Store.Migrate or pool.WithMigrate. The functions of this
// package that use them migrate it themselves first.
func Schema() pool.Schema {
	sub, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		panic(err) // the embedded directory is there at build time
	}
	return pool.Schema{Component: "dhcp", FS: sub}
}

// ensureSchema makes sure s has the tables of this package; after the
// first success on a store it costs no database call.
func ensureSchema(ctx context.Context, s *pool.Store) error {
	return s.Migrate(ctx, Schema())
}
