package pool

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"
)

// Each package that keeps tables in the pool database owns its schema: a
// Schema, that is a component name and migration files
// NNNN_name.{sqlite,mysql}.sql. pool's own tables are in migrations/ here;
// locking, dhcp, console and agent embed theirs and make sure of them
// before their first use of the store (Store.Migrate with their Schema).
//
// Each file is a list of statements separated by ";" at the end of a
// line, one DDL statement each, and every statement must be idempotent
// (CREATE ... IF NOT EXISTS, INSERT that ignores an existing key): two
// members may apply the same migration at the same moment on different
// Galera nodes, where DDL runs in total order (TOI) and the second CREATE
// finds the table made by the first. Nothing else serialises migrators.
//
// pool's versions are recorded in schema_migrations(version, name), as
// they always were, so an older mnpool still sees them and refuses a newer
// pool schema; every other component's in
// component_migrations(component, version, name). Versions count from 1
// in each component.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// poolComponent is the component name of pool's own schema.
const poolComponent = "pool"

// retiredPoolVersion reports whether v was once a pool migration whose
// tables now belong to another component: 401 dhcp_excluded (dhcp), 501
// locks (locking), 801 consoles and console_leases (console), 901
// agent_failovers (agent). Databases made before the move still record
// them in schema_migrations; they are neither applied nor taken for a
// newer schema, and pool never uses these numbers again.
func retiredPoolVersion(v int) bool {
	switch v {
	case 401, 501, 801, 901:
		return true
	}
	return false
}

// Schema is the set of migrations of one component: a package that keeps
// its own tables in the pool database. Give it to Store.Migrate (or
// WithMigrate); a package whose functions use its tables calls
// Store.Migrate with its Schema itself, so a program that forgets one
// still gets the tables on first use.
type Schema struct {
	// Component names the owner ("locking", "dhcp"): its versions are
	// recorded under this name. Lower-case letters, digits and '_'; "pool"
	// is pool's own.
	Component string
	// FS holds the migration files, named NNNN_name.sqlite.sql and
	// NNNN_name.mysql.sql (NNNN from 1 up), in directory Dir ("" or "."
	// for its root).
	FS  fs.FS
	Dir string
}

var componentRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// migration is one schema step.
type migration struct {
	Version    int
	Name       string
	Statements []string
}

// loadMigrations returns the steps of fsys for a backend dialect
// ("sqlite" or "mysql"), in version order.
func loadMigrations(fsys fs.FS, dir, component, dialect string) ([]migration, error) {
	if dir != "" && dir != "." {
		sub, err := fs.Sub(fsys, dir)
		if err != nil {
			return nil, fmt.Errorf("pool: migrations of %s: %w", component, err)
		}
		fsys = sub
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("pool: migrations of %s: %w", component, err)
	}
	var out []migration
	for _, e := range entries {
		base, ok := strings.CutSuffix(e.Name(), "."+dialect+".sql")
		if !ok {
			continue
		}
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("pool: bad migration file name %q of %s (want NNNN_name.%s.sql)", e.Name(), component, dialect)
		}
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{Version: v, Name: name, Statements: splitStatements(string(b))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := range out {
		if i > 0 && out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("pool: two migrations of %s with version %d", component, out[i].Version)
		}
		if component == poolComponent && retiredPoolVersion(out[i].Version) {
			return nil, fmt.Errorf("pool: migration version %d is retired (it moved to another component)", out[i].Version)
		}
	}
	return out, nil
}

func poolSchema() Schema {
	sub, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		panic(err) // the embedded directory is there at build time
	}
	return Schema{Component: poolComponent, FS: sub}
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

// SchemaVersion returns the highest migration of pool's own schema applied
// to the database, 0 for an empty database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.Read(ctx, func(tx *sqlx.Tx) error {
		ok, err := s.tableExists(ctx, tx, "schema_migrations")
		if err != nil || !ok {
			return err
		}
		var vs []int
		if err := tx.SelectContext(ctx, &vs, "SELECT version FROM schema_migrations"); err != nil {
			return err
		}
		for _, x := range vs {
			if !retiredPoolVersion(x) {
				v = max(v, x)
			}
		}
		return nil
	})
	return v, err
}

// noSchema returns ErrNotInitialized when a read failed with err because
// the database has no pool schema, and err otherwise.
func (s *Store) noSchema(ctx context.Context, err error) error {
	if v, verr := s.SchemaVersion(ctx); verr == nil && v == 0 {
		return fmt.Errorf("%w: the database has no pool schema; run `mnpool init`", ErrNotInitialized)
	}
	return err
}

// tableExists asks the database's catalog whether table exists.
func (s *Store) tableExists(ctx context.Context, tx *sqlx.Tx, table string) (bool, error) {
	var n int
	if err := tx.GetContext(ctx, &n, s.Dialect().tableExists(), table); err != nil {
		return false, err
	}
	return n > 0, nil
}

// Migrate applies every migration of pool's own schema, and of each
// schema given, that the database lacks. It is safe to run from several
// members at once and to run again. A component this Store has already
// brought up to date (known by its name) is not looked at again, so
// packages call Migrate with their Schema before they use their tables,
// at the cost of a map look-up. A database migrated further than this
// program knows, for any component, fails with ErrSchemaTooNew.
func (s *Store) Migrate(ctx context.Context, schemas ...Schema) error {
	for _, sc := range schemas {
		if !componentRE.MatchString(sc.Component) || sc.Component == poolComponent || sc.FS == nil {
			return fmt.Errorf("%w: schema component %q (want lower-case letters, digits and '_', not %q, with files)", ErrInvalid, sc.Component, poolComponent)
		}
	}
	all := append([]Schema{poolSchema()}, schemas...)
	if s.schemasDone(all) {
		return nil
	}
	select {
	case s.schemaSem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.schemaSem }()
	for _, sc := range all {
		if s.schemasDone([]Schema{sc}) {
			continue
		}
		if err := s.migrate(ctx, sc); err != nil {
			return err
		}
		s.schemaMu.Lock()
		s.schemaDone[sc.Component] = true
		s.schemaMu.Unlock()
	}
	return nil
}

func (s *Store) schemasDone(all []Schema) bool {
	s.schemaMu.Lock()
	defer s.schemaMu.Unlock()
	for _, sc := range all {
		if !s.schemaDone[sc.Component] {
			return false
		}
	}
	return true
}

// migrate applies the missing migrations of one schema.
func (s *Store) migrate(ctx context.Context, sc Schema) error {
	migs, err := loadMigrations(sc.FS, sc.Dir, sc.Component, s.Dialect().Name())
	if err != nil {
		return err
	}
	vt := s.versionTable(sc.Component)
	applied, err := s.appliedVersions(ctx, vt)
	if err != nil {
		return fmt.Errorf("pool: reading schema version of %s: %w", sc.Component, err)
	}
	known := 0
	if len(migs) > 0 {
		known = migs[len(migs)-1].Version
	}
	for v := range applied {
		if v > known {
			return fmt.Errorf("%w: the %s schema is at version %d, this mnpool knows up to %d; upgrade mnpool on this member",
				ErrSchemaTooNew, sc.Component, v, known)
		}
	}
	for _, m := range migs {
		if applied[m.Version] {
			continue
		}
		for i, stmt := range m.Statements {
			if err := s.exec(ctx, stmt); err != nil {
				return fmt.Errorf("pool: migration %s %d (%s) statement %d: %w", sc.Component, m.Version, m.Name, i+1, err)
			}
		}
		if err := s.exec(ctx, vt.insert, vt.args(m)...); err != nil {
			return fmt.Errorf("pool: recording migration %s %d: %w", sc.Component, m.Version, err)
		}
		s.log.Info("pool: applied migration", "component", sc.Component, "version", m.Version, "name", m.Name)
	}
	return nil
}

// versionTable is where the applied versions of one component are kept.
type versionTable struct {
	table  string
	create string
	query  string
	qargs  []any
	insert string
	args   func(m migration) []any
}

func (s *Store) versionTable(component string) versionTable {
	d := s.Dialect()
	if component == poolComponent {
		return versionTable{
			table: "schema_migrations",
			create: `CREATE TABLE IF NOT EXISTS schema_migrations (
  version INT NOT NULL PRIMARY KEY,
  name    VARCHAR(128) NOT NULL
)` + d.tableOptions(),
			query:  "SELECT version FROM schema_migrations",
			insert: d.InsertIgnore("schema_migrations", []string{"version", "name"}),
			args:   func(m migration) []any { return []any{m.Version, m.Name} },
		}
	}
	return versionTable{
		table: "component_migrations",
		create: `CREATE TABLE IF NOT EXISTS component_migrations (
  component VARCHAR(64)  NOT NULL,
  version   INT          NOT NULL,
  name      VARCHAR(128) NOT NULL,
  PRIMARY KEY (component, version)
)` + d.tableOptions(),
		query:  "SELECT version FROM component_migrations WHERE component = ?",
		qargs:  []any{component},
		insert: d.InsertIgnore("component_migrations", []string{"component", "version", "name"}),
		args:   func(m migration) []any { return []any{component, m.Version, m.Name} },
	}
}

// appliedVersions reads the versions recorded in vt, creating the table
// when the database has none yet. DDL is replicated in total order on
// Galera, so members doing this at once all succeed. pool's retired
// versions are left out.
func (s *Store) appliedVersions(ctx context.Context, vt versionTable) (map[int]bool, error) {
	applied := map[int]bool{}
	var exists bool
	read := func(tx *sqlx.Tx) error {
		var err error
		if exists, err = s.tableExists(ctx, tx, vt.table); err != nil || !exists {
			return err
		}
		var vs []int
		if err := tx.SelectContext(ctx, &vs, vt.query, vt.qargs...); err != nil {
			return err
		}
		for _, v := range vs {
			if vt.table != "schema_migrations" || !retiredPoolVersion(v) {
				applied[v] = true
			}
		}
		return nil
	}
	if err := s.Read(ctx, read); err != nil || exists {
		return applied, err
	}
	if err := s.exec(ctx, vt.create); err != nil {
		return nil, fmt.Errorf("creating %s: %w", vt.table, err)
	}
	return applied, s.Read(ctx, read)
}

// exec runs one statement outside an explicit transaction (DDL commits
// implicitly on MariaDB), with the store's retries.
func (s *Store) exec(ctx context.Context, q string, args ...any) error {
	return s.Tx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	})
}
