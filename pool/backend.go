package pool

import (
	"context"
	"errors"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/mnpool/mnpool/pool/dsn"
)

// errClass tells the transaction runner what to do with an error.
type errClass int

const (
	// errFatal: return the error to the caller.
	errFatal errClass = iota
	// errRetry: a conflict (Galera certification failure, 1213 deadlock,
	// SQLite busy); run the whole transaction again on the same node.
	errRetry
	// errNode: the node is unusable (lost connection, 1047 not ready, a
	// commit of unknown outcome); mark it bad and run the transaction
	// again on another healthy node.
	errNode
)

// backend is what differs between SQLite and MariaDB/Galera. Everything
// above it is written once.
type backend interface {
	kind() dsn.Kind
	// db returns a handle on a healthy node and the node's label. write
	// selects the writer handle where the backend has one.
	db(ctx context.Context, write bool) (*sqlx.DB, string, error)
	// markBad records that node failed with err so the next db call
	// picks another one.
	markBad(node string, err error)
	classify(err error) errClass
	isDuplicate(err error) bool
	health(ctx context.Context) (Health, error)
	dialect() Dialect
	close() error
}

// Dialect holds the few SQL forms that differ between SQLite and MariaDB,
// for packages that keep their own tables in the pool database.
type Dialect interface {
	// Name is "sqlite" or "mysql".
	Name() string
	// Upsert returns an INSERT of cols into table that updates the
	// non-key columns when a row with the same keys exists.
	Upsert(table string, keys, cols []string) string
	// InsertIgnore returns an INSERT of cols into table that does nothing
	// when a row with the same primary key exists.
	InsertIgnore(table string, cols []string) string
	// Greatest returns the SQL expression for the larger of a and b.
	Greatest(a, b string) string

	// tableExists is a query of the catalog with one parameter, a table
	// name, that returns the number of tables of that name (0 or 1).
	tableExists() string
	// tableOptions is what follows the column list of a CREATE TABLE.
	tableOptions() string
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

type sqliteDialect struct{}

func (sqliteDialect) Name() string { return "sqlite" }
func (sqliteDialect) Upsert(table string, keys, cols []string) string {
	var set []string
	for _, c := range cols {
		if !contains(keys, c) {
			set = append(set, c+"=excluded."+c)
		}
	}
	q := "INSERT INTO " + table + " (" + strings.Join(cols, ",") + ") VALUES (" + placeholders(len(cols)) + ") ON CONFLICT(" + strings.Join(keys, ",") + ")"
	if len(set) == 0 {
		return q + " DO NOTHING"
	}
	return q + " DO UPDATE SET " + strings.Join(set, ",")
}
func (sqliteDialect) InsertIgnore(table string, cols []string) string {
	return "INSERT OR IGNORE INTO " + table + " (" + strings.Join(cols, ",") + ") VALUES (" + placeholders(len(cols)) + ")"
}

func (sqliteDialect) Greatest(a, b string) string { return "MAX(" + a + ", " + b + ")" }
func (sqliteDialect) tableExists() string {
	return "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
}
func (sqliteDialect) tableOptions() string { return "" }

type mysqlDialect struct{}

func (mysqlDialect) Name() string { return "mysql" }
func (mysqlDialect) Upsert(table string, keys, cols []string) string {
	var set []string
	for _, c := range cols {
		if !contains(keys, c) {
			set = append(set, c+"=VALUES("+c+")")
		}
	}
	if len(set) == 0 {
		set = append(set, keys[0]+"="+keys[0])
	}
	return "INSERT INTO " + table + " (" + strings.Join(cols, ",") + ") VALUES (" + placeholders(len(cols)) + ") ON DUPLICATE KEY UPDATE " + strings.Join(set, ",")
}
func (mysqlDialect) InsertIgnore(table string, cols []string) string {
	// Not INSERT IGNORE: that also silences errors other than a duplicate key.
	return "INSERT INTO " + table + " (" + strings.Join(cols, ",") + ") VALUES (" + placeholders(len(cols)) + ") ON DUPLICATE KEY UPDATE " + cols[0] + "=" + cols[0]
}

func (mysqlDialect) Greatest(a, b string) string { return "GREATEST(" + a + ", " + b + ")" }
func (mysqlDialect) tableExists() string {
	return "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?"
}
func (mysqlDialect) tableOptions() string {
	return " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// isContextErr reports whether err is the caller's context ending.
func isContextErr(ctx context.Context, err error) bool {
	return ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ctx.Err()))
}
