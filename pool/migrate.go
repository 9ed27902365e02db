package pool

import (
	"context"
	"embed"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"
)

// Migrations live in migrations/NNNN_name.{sqlite,mysql}.sql. Each file is
// a list of statements separated by ";" at the end of a line, and every
// statement must be idempotent (CREATE ... IF NOT EXISTS, INSERT that
// ignores an existing key): two members may apply the same migration at
// the same moment on different Galera nodes, where DDL runs in total order
// (TOI) and the second CREATE finds the table made by the first.
//
// Version ranges by feature keep parallel work apart: 1-99 foundation,
// 100 membership, 200 snmove/change feed, 300 makemn, 400 dhcp,
// 500 locking, 600 dns/ntp, 700 sshkeys, 800 console, 900 agent.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// Migration is one schema step.
type Migration struct {
	Version    int
	Name       string
	Statements []string
}

// Migrations returns the steps for a backend dialect ("sqlite" or
// "mysql"), in version order.
func Migrations(dialect string) ([]Migration, error) {
	entries, err := migrationFS.ReadDir("migrations")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		base, ok := strings.CutSuffix(e.Name(), "."+dialect+".sql")
		if !ok {
			continue
		}
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("pool: bad migration file name %q (want NNNN_name.%s.sql)", e.Name(), dialect)
		}
		b, err := migrationFS.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: name, Statements: splitStatements(string(b))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("pool: two migrations with version %d", out[i].Version)
		}
	}
	return out, nil
}

func splitStatements(s string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(s, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if strings.TrimSpace(cur.String()) != "" {
		out = append(out, strings.TrimSpace(cur.String()))
	}
	return out
}

// SchemaVersion returns the highest migration applied to the database, 0
// for an empty database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.Read(ctx, func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &v, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
	})
	if err != nil && isNoTable(err) {
		return 0, nil
	}
	return v, err
}

func isNoTable(err error) bool {
	if mysqlErrNo(err) == 1146 {
		return true
	}
	return strings.Contains(err.Error(), "no such table")
}

// Migrate applies every migration the database lacks. It is safe to run
// from several members at once and to run again.
func (s *Store) Migrate(ctx context.Context) error {
	migs, err := Migrations(s.Dialect().Name())
	if err != nil {
		return err
	}
	applied := map[int]bool{}
	var maxApplied int
	readApplied := func(tx *sqlx.Tx) error {
		var vs []int
		if err := tx.SelectContext(ctx, &vs, "SELECT version FROM schema_migrations"); err != nil {
			return err
		}
		for _, v := range vs {
			applied[v] = true
			maxApplied = max(maxApplied, v)
		}
		return nil
	}
	err = s.Read(ctx, readApplied)
	if err != nil && isNoTable(err) {
		// A new database. DDL is replicated in total order on Galera, so
		// members doing this at once all succeed.
		if err := s.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
  version INT NOT NULL PRIMARY KEY,
  name    VARCHAR(128) NOT NULL
)`+s.tableSuffix()); err != nil {
			return fmt.Errorf("pool: creating schema_migrations: %w", err)
		}
		err = s.Read(ctx, readApplied)
	}
	if err != nil {
		return fmt.Errorf("pool: reading schema version: %w", err)
	}
	if len(migs) > 0 && maxApplied > migs[len(migs)-1].Version {
		return fmt.Errorf("%w: database is at version %d, this mnpool knows up to %d; upgrade mnpool on this member",
			ErrSchemaTooNew, maxApplied, migs[len(migs)-1].Version)
	}
	for _, m := range migs {
		if applied[m.Version] {
			continue
		}
		for i, stmt := range m.Statements {
			if err := s.exec(ctx, stmt); err != nil {
				return fmt.Errorf("pool: migration %d (%s) statement %d: %w", m.Version, m.Name, i+1, err)
			}
		}
		ins := s.Dialect().InsertIgnore("schema_migrations", []string{"version", "name"})
		if err := s.exec(ctx, ins, m.Version, m.Name); err != nil {
			return fmt.Errorf("pool: recording migration %d: %w", m.Version, err)
		}
		s.log.Info("pool: applied migration", "version", m.Version, "name", m.Name)
	}
	return nil
}

func (s *Store) tableSuffix() string {
	if s.Dialect().Name() == "mysql" {
		return " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
	}
	return ""
}

// exec runs one statement outside an explicit transaction (DDL commits
// implicitly on MariaDB), with the store's retries.
func (s *Store) exec(ctx context.Context, q string, args ...any) error {
	return s.Tx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	})
}
