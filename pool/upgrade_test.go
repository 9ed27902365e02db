package pool_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/dhcp"
	"github.com/mnpool/mnpool/internal/schemas"
	"github.com/mnpool/mnpool/internal/storetest"
	"github.com/mnpool/mnpool/locking"
	"github.com/mnpool/mnpool/pool"
)

// oldSchemaDir holds pool's migrations as they were while pool also
// created the tables of dhcp (0401), locking (0501), console (0801) and
// agent (0901).
const oldSchemaDir = "testdata/schema-v0401-0901"

// applyOldSchema does what the migrator of that time did: it records
// pool's versions in schema_migrations(version, name) and runs every
// statement of every file of the dialect.
func applyOldSchema(t *testing.T, s *pool.Store) {
	t.Helper()
	dialect := s.Dialect().Name()
	suffix := ""
	if dialect == "mysql" {
		suffix = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
	}
	mustExec(t, s, "CREATE TABLE IF NOT EXISTS schema_migrations (version INT NOT NULL PRIMARY KEY, name VARCHAR(128) NOT NULL)"+suffix)
	entries, err := os.ReadDir(oldSchemaDir)
	require.NoError(t, err)
	var files []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), "."+dialect+".sql") {
			files = append(files, e.Name())
		}
	}
	sort.Strings(files)
	require.Len(t, files, 8, "old migrations of %s", dialect)
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(oldSchemaDir, f))
		require.NoError(t, err)
		for _, stmt := range oldStatements(string(b)) {
			mustExec(t, s, stmt)
		}
		num, name, _ := strings.Cut(strings.TrimSuffix(f, "."+dialect+".sql"), "_")
		v, err := strconv.Atoi(num)
		require.NoError(t, err)
		mustExec(t, s, "INSERT INTO schema_migrations (version, name) VALUES (?, ?)", v, name)
	}
}

// oldStatements splits a migration file as the old migrator did: at a
// ";" that ends a line, without comment lines.
func oldStatements(src string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(src, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line + "\n")
		if strings.HasSuffix(t, ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	return out
}

func mustExec(t *testing.T, s *pool.Store, q string, args ...any) {
	t.Helper()
	err := s.Tx(context.Background(), func(tx *sqlx.Tx) error {
		_, err := tx.Exec(q, args...)
		return err
	})
	require.NoError(t, err, q)
}

func count(t *testing.T, s *pool.Store, q string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, s.Read(context.Background(), func(tx *sqlx.Tx) error { return tx.Get(&n, q, args...) }), q)
	return n
}

// TestUpgradeFromPoolOwnedTables opens, with the migrations each package
// now owns, a database made when pool's migrations created every table:
// nothing fails, nothing is created twice, no row is lost, and each
// component is recorded at its version 1.
func TestUpgradeFromPoolOwnedTables(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := b.DSN(t)
			old, err := pool.Open(ctx, dsn, pool.WithSelf("mn1"))
			require.NoError(t, err)
			applyOldSchema(t, old)
			mustExec(t, old, "INSERT INTO lock_tokens (name, token) VALUES ('keep', 7)")
			mustExec(t, old, "INSERT INTO locks (name, token) VALUES ('keep', 7)")
			mustExec(t, old, "INSERT INTO dhcp_excluded (node, at_us, member) VALUES ('cn1', 1, 'mn1')")
			mustExec(t, old, "INSERT INTO consoles (node, kind, address, argv, servers) VALUES ('cn1', 'tcp', '10.0.0.9:2001', '[]', '')")
			mustExec(t, old, "INSERT INTO console_leases (node, holder, session, token, counter) VALUES ('cn1', 'sn1', 'x', 3, 5)")
			mustExec(t, old, "INSERT INTO agent_failovers (member, failovers, token, leader) VALUES ('sn2', 2, 4, 'mn1')")
			require.NoError(t, old.Close())

			for i := 0; i < 2; i++ { // the second open finds everything done
				s, err := pool.Open(ctx, dsn, pool.WithSelf("mn1"), pool.WithMigrate(schemas.All()...))
				require.NoError(t, err, "open %d after the old migrations", i+1)
				v, err := s.SchemaVersion(ctx)
				require.NoError(t, err)
				require.Equal(t, 300, v, "pool's own schema version")
				for _, c := range []string{"locking", "dhcp", "console", "agent"} {
					require.Equal(t, 1, count(t, s, "SELECT COUNT(*) FROM component_migrations WHERE component = ? AND version = 1", c), c)
				}
				require.Equal(t, 8, count(t, s, "SELECT COUNT(*) FROM schema_migrations"), "old version rows kept, none added")
				require.Equal(t, 7, count(t, s, "SELECT token FROM lock_tokens WHERE name = 'keep'"))
				require.Equal(t, 1, count(t, s, "SELECT COUNT(*) FROM dhcp_excluded WHERE node = 'cn1'"))
				require.Equal(t, 1, count(t, s, "SELECT COUNT(*) FROM consoles WHERE node = 'cn1'"))
				require.Equal(t, 3, count(t, s, "SELECT token FROM console_leases WHERE node = 'cn1'"), "the unused table is left alone")
				require.Equal(t, 2, count(t, s, "SELECT failovers FROM agent_failovers WHERE member = 'sn2'"))
				require.NoError(t, s.Close())
			}

			// The packages work on the upgraded tables.
			s := storetest.Open(t, dsn)
			excl, err := dhcp.Excluded(ctx, s)
			require.NoError(t, err)
			require.Equal(t, map[string]bool{"cn1": true}, excl)
			lk, err := locking.New(s)
			require.NoError(t, err)
			l, err := lk.TryLock(ctx, "keep")
			require.NoError(t, err)
			require.Greater(t, l.Token(), int64(7), "the fencing token keeps growing")
			require.NoError(t, l.Unlock(ctx))
		})
	}
}

// TestSchemaOwnership: a new database has exactly the tables of the
// components migrated, no console_leases, and a component's tables appear
// when its package first uses the store.
func TestSchemaOwnership(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx := context.Background()
		has := func(table string) bool {
			q := "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
			if s.Dialect().Name() == "mysql" {
				q = "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?"
			}
			return count(t, s, q, table) == 1
		}
		require.True(t, has("members"))
		for _, table := range []string{"locks", "dhcp_excluded", "consoles", "agent_failovers", "console_leases"} {
			require.False(t, has(table), "pool's migrations create %s", table)
		}
		_, err := dhcp.Excluded(ctx, s)
		require.NoError(t, err, "dhcp migrates its own schema on first use")
		require.True(t, has("dhcp_excluded"))
		require.False(t, has("locks"))
		require.NoError(t, s.Migrate(ctx, schemas.All()...))
		for _, table := range []string{"locks", "lock_tokens", "lock_waiters", "consoles", "agent_failovers"} {
			require.True(t, has(table), table)
		}
		require.False(t, has("console_leases"), "console leases are locks now")
	})
}

// TestSchemaTooNew: a database migrated further than this program knows
// is refused, per component.
func TestSchemaTooNew(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := b.DSN(t)
			s := storetest.Open(t, dsn, pool.WithMigrate(locking.Schema()))
			mustExec(t, s, "INSERT INTO component_migrations (component, version, name) VALUES ('locking', 99, 'future')")
			mustExec(t, s, "INSERT INTO schema_migrations (version, name) VALUES (9999, 'future')")
			// A fresh store, which has not checked the database yet.
			fresh, err := pool.Open(ctx, dsn)
			require.NoError(t, err)
			t.Cleanup(func() { fresh.Close() })
			_, err = pool.Open(ctx, dsn, pool.WithMigrate())
			require.ErrorIs(t, err, pool.ErrSchemaTooNew, "Open with WithMigrate")
			err = fresh.Migrate(ctx)
			require.ErrorIs(t, err, pool.ErrSchemaTooNew)
			require.Contains(t, err.Error(), "9999")
			mustExec(t, s, "DELETE FROM schema_migrations WHERE version = 9999")
			err = fresh.Migrate(ctx, locking.Schema())
			require.ErrorIs(t, err, pool.ErrSchemaTooNew)
			require.Contains(t, err.Error(), "locking")
			require.ErrorIs(t, fresh.Migrate(ctx, pool.Schema{Component: "pool", FS: os.DirFS(".")}), pool.ErrInvalid)
		})
	}
}
