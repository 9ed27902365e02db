package pool

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"

	"github.com/jmoiron/sqlx"
	"github.com/mnpool/mnpool/pool/dsn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteBackend is the embedded default: one file in WAL mode. One writer
// connection (BEGIN IMMEDIATE, so writers queue on the busy timeout instead
// of failing on lock upgrade) and a pool of readers.
type sqliteBackend struct {
	path string
	rw   *sqlx.DB
	ro   *sqlx.DB
}

func openSQLite(ctx context.Context, path string, busy int) (*sqliteBackend, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("pool: creating directory for %s: %w", path, err)
		}
	}
	// A new database is created 0600 here rather than by SQLite (which
	// would use the umask, 0644); SQLite gives the -wal and -shm files the
	// mode of the database file.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("pool: creating sqlite %s: %w", path, err)
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	base := "file:" + (&url.URL{Path: path}).EscapedPath()
	rw, err := sqlx.Open("sqlite", base+"?"+q.Encode()+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("pool: opening sqlite %s: %w", path, err)
	}
	rw.SetMaxOpenConns(1)
	ro, err := sqlx.Open("sqlite", base+"?"+q.Encode())
	if err != nil {
		rw.Close()
		return nil, fmt.Errorf("pool: opening sqlite %s: %w", path, err)
	}
	ro.SetMaxOpenConns(4)
	if err := rw.PingContext(ctx); err != nil {
		rw.Close()
		ro.Close()
		return nil, fmt.Errorf("%w: sqlite %s: %v", ErrUnavailable, path, err)
	}
	return &sqliteBackend{path: path, rw: rw, ro: ro}, nil
}

func (b *sqliteBackend) kind() dsn.Kind { return dsn.SQLite }

func (b *sqliteBackend) db(_ context.Context, write bool) (*sqlx.DB, string, error) {
	if write {
		return b.rw, b.path, nil
	}
	return b.ro, b.path, nil
}

func (b *sqliteBackend) markBad(string, error) {}

func (b *sqliteBackend) classify(err error) errClass {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return errRetry
		}
	}
	return errFatal
}

func (b *sqliteBackend) isDuplicate(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
			return true
		}
	}
	return false
}

func (b *sqliteBackend) health(ctx context.Context) (Health, error) {
	h := Health{Backend: "sqlite", Node: b.path}
	var mode string
	if err := b.ro.GetContext(ctx, &mode, "PRAGMA journal_mode"); err != nil {
		h.Problem = err.Error()
		return h, nil
	}
	h.Healthy = true
	h.Nodes = []NodeHealth{{Node: b.path, Healthy: true, State: "journal_mode=" + mode}}
	return h, nil
}

func (b *sqliteBackend) dialect() Dialect { return sqliteDialect{} }

func (b *sqliteBackend) close() error {
	return errors.Join(b.ro.Close(), b.rw.Close())
}
