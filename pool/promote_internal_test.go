package pool

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
)

// errCommitUnknown stands for Galera's 1180 / a connection lost during
// COMMIT: the commit may or may not have happened.
var errCommitUnknown = errors.New("test: commit outcome unknown")

// unknownCommitBackend is the SQLite backend with a writer whose COMMIT
// succeeds and then reports errCommitUnknown, as often as armed; the
// store treats that error like a node failure and runs the transaction
// again.
type unknownCommitBackend struct {
	*sqliteBackend
	rw      *sqlx.DB
	commits atomic.Int32
	lie     atomic.Int32
}

func (b *unknownCommitBackend) db(ctx context.Context, write bool) (*sqlx.DB, string, error) {
	if write {
		return b.rw, "flaky", nil
	}
	return b.sqliteBackend.db(ctx, write)
}

func (b *unknownCommitBackend) classify(err error) errClass {
	if errors.Is(err, errCommitUnknown) {
		return errNode
	}
	return b.sqliteBackend.classify(err)
}

type flakyConnector struct {
	dsn string
	drv driver.Driver
	b   *unknownCommitBackend
}

func (c flakyConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &flakyConn{Conn: conn, b: c.b}, nil
}
func (c flakyConnector) Driver() driver.Driver { return c.drv }

type flakyConn struct {
	driver.Conn
	b *unknownCommitBackend
}

func (c *flakyConn) BeginTx(ctx context.Context, o driver.TxOptions) (driver.Tx, error) {
	tx, err := c.Conn.(driver.ConnBeginTx).BeginTx(ctx, o)
	if err != nil {
		return nil, err
	}
	return &flakyTx{Tx: tx, b: c.b}, nil
}

func (c *flakyConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.(driver.ExecerContext).ExecContext(ctx, q, args)
}

func (c *flakyConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.(driver.QueryerContext).QueryContext(ctx, q, args)
}

type flakyTx struct {
	driver.Tx
	b *unknownCommitBackend
}

func (t *flakyTx) Commit() error {
	if err := t.Tx.Commit(); err != nil {
		return err
	}
	t.b.commits.Add(1)
	if t.b.lie.Add(-1) >= 0 {
		return errCommitUnknown
	}
	return nil
}

func TestPromoteRerunAfterUnknownCommitIsItsOwnSuccess(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "pool.db")
	s, err := Open(ctx, "sqlite:"+path, WithMigrate(), WithSelf("sn1"))
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Init(ctx, InitOptions{MN: Member{Name: "mn1"}})
	require.NoError(t, err)
	require.NoError(t, s.AddMember(ctx, Member{Name: "sn1"}, false))

	sb := s.b.(*sqliteBackend)
	plain, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	drv := plain.Driver()
	plain.Close()
	fb := &unknownCommitBackend{sqliteBackend: sb}
	fb.rw = sqlx.NewDb(sql.OpenDB(flakyConnector{dsn: "file:" + path + "?_pragma=busy_timeout(10000)&_txlock=immediate", drv: drv, b: fb}), "sqlite")
	fb.rw.SetMaxOpenConns(1)
	defer fb.rw.Close()
	s.b = fb

	fb.lie.Store(1)
	p, err := s.Promote(ctx, "sn1", PromoteOptions{})
	require.NoError(t, err, "the re-run finds its own promotion, not a conflict with itself")
	require.Equal(t, Promotion{Previous: Master{Member: "mn1", Epoch: 1}, Master: Master{Member: "sn1", Epoch: 2}}, p)
	require.Equal(t, int32(2), fb.commits.Load(), "the transaction ran twice")

	m, err := s.Master(ctx)
	require.NoError(t, err)
	require.Equal(t, Master{Member: "sn1", Epoch: 2}, m, "promoted once, not twice")
	log, err := s.AuditLog(ctx, 100)
	require.NoError(t, err)
	n := 0
	for _, e := range log {
		if e.Action == "pool.promote" {
			n++
		}
	}
	require.Equal(t, 1, n, "one audit record")

	// Another member's promotion committed under an unknown outcome is
	// still a conflict for a call that did not make it.
	require.NoError(t, s.AddMember(ctx, Member{Name: "sn2"}, false))
	fb.lie.Store(0)
	_, err = s.Promote(ctx, "sn2", PromoteOptions{Epoch: 1})
	var ce *PromoteConflictError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, Master{Member: "sn1", Epoch: 2}, ce.Winner)
}
