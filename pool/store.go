package pool

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/mnpool/mnpool/internal/ctxutil"
	"github.com/mnpool/mnpool/pool/dsn"
)

// Defaults of the store's options.
const (
	defaultMaxAttempts   = 8
	defaultBackoff       = 10 * time.Millisecond
	defaultMaxBackoff    = 1 * time.Second
	defaultHealthEvery   = 2 * time.Second
	defaultCheckTimeout  = 3 * time.Second
	defaultBadFor        = 5 * time.Second
	defaultIOTimeout     = 30 * time.Second
	defaultSyncWait      = 1
	defaultSQLiteBusy    = 10 * time.Second
	defaultMaxConns      = 16
	defaultBatchSize     = 500
	defaultMigrateOnOpen = false
)

type options struct {
	log          *slog.Logger
	maxAttempts  int
	backoff      time.Duration
	maxBackoff   time.Duration
	healthEvery  time.Duration
	checkTimeout time.Duration
	badFor       time.Duration
	ioTimeout    time.Duration
	syncWait     int
	sqliteBusy   time.Duration
	maxConns     int
	batch        int
	self         string
	actor        string
	migrate      bool
	schemas      []Schema // WithMigrate
	loopbackNets bool     // WithLoopbackNetworks
}

// Option configures a Store.
type Option func(*options)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithRetry bounds how often a transaction is run again after a conflict
// (Galera 1213, SQLite busy) or a node failure, and the backoff between
// attempts (exponential with full jitter, capped at max).
func WithRetry(attempts int, backoff, max time.Duration) Option {
	return func(o *options) { o.maxAttempts, o.backoff, o.maxBackoff = attempts, backoff, max }
}

// WithHealthInterval sets how often the node in use is checked again
// (Primary, ready, Synced) before a transaction, and how long a failed node
// is avoided before it is tried again.
func WithHealthInterval(every, badFor time.Duration) Option {
	return func(o *options) { o.healthEvery, o.badFor = every, badFor }
}

// WithSyncWait sets wsrep_sync_wait for the store's sessions (default 1:
// reads wait until the node has applied everything committed before them).
func WithSyncWait(v int) Option { return func(o *options) { o.syncWait = v } }

// WithBatchSize sets the rows per transaction of bulk writes.
func WithBatchSize(n int) Option { return func(o *options) { o.batch = n } }

// WithSelf names the pool member this process runs on; it is recorded in
// the audit log of every change.
func WithSelf(member string) Option { return func(o *options) { o.self = member } }

// WithActor names who asked for changes (a user name), for the audit log.
func WithActor(actor string) Option { return func(o *options) { o.actor = actor } }

// WithMigrate applies the migrations of pool's own schema and of the
// schemas given (see Migrate) when the store opens.
func WithMigrate(schemas ...Schema) Option {
	return func(o *options) { o.migrate, o.schemas = true, append(o.schemas, schemas...) }
}

// Store is the pool database. It is safe for concurrent use. Open it with
// Open; close it with Close.
type Store struct {
	b   backend
	o   options
	log *slog.Logger

	// Migrate: schemaSem lets one call at a time migrate; schemaDone
	// (under schemaMu) names the components this Store brought up to date.
	schemaSem  chan struct{}
	schemaMu   sync.Mutex
	schemaDone map[string]bool
}

// Open opens the store named by the data source name source (see
// dsn.DSN). It does not touch the schema unless WithMigrate is given; call
// Migrate.
func Open(ctx context.Context, source string, opts ...Option) (*Store, error) {
	d, err := dsn.Parse(source)
	if err != nil {
		return nil, err
	}
	o := options{
		log:          slog.New(slog.NewTextHandler(io.Discard, nil)),
		maxAttempts:  defaultMaxAttempts,
		backoff:      defaultBackoff,
		maxBackoff:   defaultMaxBackoff,
		healthEvery:  defaultHealthEvery,
		checkTimeout: defaultCheckTimeout,
		badFor:       defaultBadFor,
		ioTimeout:    defaultIOTimeout,
		syncWait:     defaultSyncWait,
		sqliteBusy:   defaultSQLiteBusy,
		maxConns:     defaultMaxConns,
		batch:        defaultBatchSize,
	}
	for _, f := range opts {
		f(&o)
	}
	if o.maxAttempts < 1 {
		o.maxAttempts = 1
	}
	if o.batch < 1 {
		o.batch = defaultBatchSize
	}
	s := &Store{o: o, log: o.log, schemaSem: make(chan struct{}, 1), schemaDone: map[string]bool{}}
	switch d.Kind {
	case dsn.SQLite:
		b, err := openSQLite(ctx, d.Path, int(o.sqliteBusy/time.Millisecond))
		if err != nil {
			return nil, err
		}
		s.b = b
	case dsn.MySQL:
		b, err := openMySQL(d.MySQL, &o)
		if err != nil {
			return nil, err
		}
		s.b = b
	}
	if o.migrate {
		if err := s.Migrate(ctx, o.schemas...); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// Close releases the store's connections.
func (s *Store) Close() error { return s.b.close() }

// Kind is the backend in use.
func (s *Store) Kind() dsn.Kind { return s.b.kind() }

// SyncWait is the wsrep_sync_wait the store's MySQL/Galera sessions use
// (WithSyncWait); readers that must see the latest commit (the MN guard)
// check it.
func (s *Store) SyncWait() int { return s.o.syncWait }

// Dialect returns the SQL forms of the backend, for packages that keep
// their own tables in the pool database (see Tx).
func (s *Store) Dialect() Dialect { return s.b.dialect() }

// Self is the member name given with WithSelf.
func (s *Store) Self() string { return s.o.self }

// BatchSize is the number of rows bulk writes put in one transaction.
func (s *Store) BatchSize() int { return s.o.batch }

// IsDuplicate reports whether err is a primary-key or unique-key violation.
func (s *Store) IsDuplicate(err error) bool { return s.b.isDuplicate(err) }

// Tx runs fn in a read-write transaction and commits it.
//
// fn may be run more than once: after a conflict (Galera error 1213, SQLite
// busy) it runs again on the same node, and after a node failure (lost
// connection, error 1047, a commit of unknown outcome such as 1180) it runs
// again on another healthy node, up to the attempts of WithRetry, with
// exponential backoff and jitter. fn must therefore have no effect outside
// the transaction, and a decision in it must be a conditional statement
// (UPDATE ... WHERE col = old) so that a second run after a commit whose
// outcome was unknown finds the first run's result instead of doing it
// twice. An error returned by fn that is not a database error ends Tx
// at once and rolls back.
func (s *Store) Tx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	return s.run(ctx, true, fn)
}

// Read runs fn in a transaction that is rolled back at the end: a
// consistent snapshot for reads, with the same retries as Tx.
func (s *Store) Read(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	return s.run(ctx, false, fn)
}

func (s *Store) run(ctx context.Context, write bool, fn func(tx *sqlx.Tx) error) error {
	var last error
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			if last != nil {
				return fmt.Errorf("%w (last attempt: %v)", err, last)
			}
			return err
		}
		db, node, err := s.b.db(ctx, write)
		if err != nil {
			// No healthy node right now: wait and look again, a node may
			// come back or finish syncing within the retry budget.
			last = err
			if ctx.Err() != nil || attempt >= s.o.maxAttempts {
				return err
			}
			if err := s.sleep(ctx, attempt); err != nil {
				return fmt.Errorf("%w (last attempt: %v)", err, last)
			}
			continue
		}
		err = runOnce(ctx, db, write, fn)
		if err == nil {
			return nil
		}
		if isContextErr(ctx, err) {
			if errors.Is(err, context.DeadlineExceeded) {
				// The node may be hung (paused): have the next call check
				// it again instead of going straight back to it.
				s.b.markBad(node, err)
			}
			return err
		}
		switch s.b.classify(err) {
		case errFatal:
			return err
		case errNode:
			s.b.markBad(node, err)
		}
		last = err
		if attempt >= s.o.maxAttempts {
			return fmt.Errorf("pool: transaction failed after %d attempts: %w", attempt, err)
		}
		s.log.Debug("pool: retrying transaction", "attempt", attempt, "node", node, "err", err)
		if err := s.sleep(ctx, attempt); err != nil {
			return fmt.Errorf("%w (last attempt: %v)", err, last)
		}
	}
}

func runOnce(ctx context.Context, db *sqlx.DB, write bool, fn func(tx *sqlx.Tx) error) (err error) {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
			return errors.Join(err, rerr)
		}
		return err
	}
	if !write {
		return tx.Rollback()
	}
	return tx.Commit()
}

// sleep waits for the backoff of attempt: exponential with full jitter.
func (s *Store) sleep(ctx context.Context, attempt int) error {
	d := s.o.backoff << min(attempt-1, 16)
	if d > s.o.maxBackoff || d <= 0 {
		d = s.o.maxBackoff
	}
	if n, err := rand.Int(rand.Reader, big.NewInt(int64(d)+1)); err == nil {
		d = time.Duration(n.Int64())
	}
	return ctxutil.Sleep(ctx, d)
}
