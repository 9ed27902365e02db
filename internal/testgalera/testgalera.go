// Package testgalera gives each mnpool test a fresh database on the shared
// local three-node MariaDB Galera cluster started by `scripts/galera.sh up`,
// and lets fault tests crash, stop, pause and isolate its nodes.
//
// Typical use:
//
//	func TestSomething(t *testing.T) {
//		env := testgalera.Open(t)
//		db := env.DB(t, 1) // *sql.DB on node 1, test database selected
//		...
//	}
//
// Open skips the test when MNPOOL_TEST_DSNS is unset, unless
// MNPOOL_REQUIRE_GALERA=1, when it fails it. Ordinary tests share the
// cluster (a shared flock on faults.lock); a test opened WithFaults holds
// that lock exclusively, so no other test, in this process or another, runs
// against the cluster while it injects faults, and when it ends every node
// it touched is restored and the cluster is Synced again.
//
// See docs/GALERA.md for the cluster itself.
package testgalera

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/mnpool/mnpool/internal/ctxutil"
	"github.com/mnpool/mnpool/internal/testenv"
)

// Timeouts used by Open and the cleanups.
const (
	// LockTimeout bounds waiting for faults.lock.
	LockTimeout = 10 * time.Minute
	// SetupTimeout bounds the health check, creating the database and
	// waiting for it on every node.
	SetupTimeout = 60 * time.Second
	// RestoreTimeout bounds restoring the cluster after a fault test.
	RestoreTimeout = 5 * time.Minute
	// queryTimeout bounds one administrative query (a paused node never answers).
	queryTimeout = 5 * time.Second
	// pollInterval is how often waits re-check the cluster.
	pollInterval = 200 * time.Millisecond
)

// dbNamePattern is what a test database name looks like; it is checked
// before the name is put into DDL (identifiers cannot be parameters).
var dbNamePattern = regexp.MustCompile(`^mnpool_t_[0-9a-f]{16}$`)

// Env is a fresh database on the shared local Galera cluster for one test.
// Its methods are safe for concurrent use by subtests.
type Env struct {
	t      testing.TB
	nodes  []node
	dir    string
	db     string
	faults bool
	script string     // scripts/galera.sh, set only WithFaults
	admin  []*sql.DB  // one pool per node, no database selected, for status and DDL
	lock   *faultLock // shared, or exclusive WithFaults

	mu      sync.Mutex
	touched map[int]fault // nodes changed by fault methods, to restore at cleanup
}

// fault is what a fault method did to a node, as a set of bits.
type fault uint8

const (
	faultDown fault = 1 << iota // stopped or killed
	faultPaused
	faultIsolated
)

// Option changes how Open sets up an Env.
type Option func(*options)

type options struct {
	faults bool
}

// WithFaults takes the fault lock exclusively instead of shared, and enables
// Kill, Stop, Start, Pause, Resume, Isolate and Heal. At cleanup, every node
// that was stopped, killed, paused or isolated is restored (resumed, healed,
// started) and the harness waits until all nodes are Synced in one Primary
// component of full size, so the next test sees a healthy cluster.
func WithFaults() Option {
	return func(o *options) { o.faults = true }
}

// Open reads MNPOOL_TEST_DSNS (comma-separated, each
// `mysql:USER:PASS@tcp(HOST:PORT)/DB`). When it is unset, Open skips the
// test with a message naming the variable and `scripts/galera.sh up`,
// unless MNPOOL_REQUIRE_GALERA=1, when it fails the test instead.
//
// Open then takes a shared flock on <MNPOOL_GALERA_DIR or
// ${TMPDIR:-/tmp}/mnpool-galera>/faults.lock for the life of the test (so
// fault tests in other test processes wait), checks that every node is
// Synced and Primary, creates a uniquely named database (mnpool_t_<16 hex>)
// through node 1, waits until it is visible on all nodes, and registers a
// cleanup that drops it.
func Open(t testing.TB, opts ...Option) *Env {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	s := loadSettings(os.Getenv)
	switch s.action {
	case skipTest:
		t.Skip(s.message)
		return nil
	case failTest:
		t.Fatal(s.message)
		return nil
	}

	e := &Env{t: t, nodes: s.nodes, dir: s.dir, faults: o.faults, touched: map[int]fault{}}
	if o.faults {
		script, err := findScript(os.Getenv(EnvScript))
		if err != nil {
			t.Fatal(err)
		}
		e.script = script
	}

	lctx, cancel := context.WithTimeout(t.Context(), testenv.Timeout(LockTimeout))
	defer cancel()
	lock, err := acquireLock(lctx, e.dir, o.faults)
	if err != nil {
		t.Fatalf("%v (a test holding an Env must not open another WithFaults)", err)
	}
	e.lock = lock
	t.Cleanup(func() {
		if err := e.lock.release(); err != nil {
			t.Errorf("testgalera: release fault lock: %v", err)
		}
	})

	e.admin = make([]*sql.DB, len(e.nodes))
	for i, n := range e.nodes {
		cfg := n.driverConfig("")
		// Idle connections to a node that was restarted are expected here.
		cfg.Logger = &mysql.NopLogger{}
		e.admin[i] = sql.OpenDB(mustConnector(t, cfg))
		e.admin[i].SetMaxIdleConns(2)
	}
	t.Cleanup(func() {
		for _, db := range e.admin {
			db.Close()
		}
	})

	ctx, cancel := context.WithTimeout(t.Context(), testenv.Timeout(SetupTimeout))
	defer cancel()
	if o.faults {
		if err := e.checkScriptMatches(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.waitHealthy(ctx); err != nil {
		t.Fatalf("%v; check `scripts/galera.sh status`, repair with `scripts/galera.sh up`", err)
	}
	if err := e.createDatabase(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.dropDatabase)
	if o.faults {
		t.Cleanup(e.restore)
	}
	return e
}

func mustConnector(t testing.TB, cfg *mysql.Config) driver.Connector {
	t.Helper()
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatalf("testgalera: connector for %s: %v", cfg.Addr, err)
	}
	return c
}

// newDatabaseName returns mnpool_t_ followed by 16 random hex digits.
func newDatabaseName() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("testgalera: random database name: %w", err)
	}
	return "mnpool_t_" + hex.EncodeToString(b[:]), nil
}

// createDatabase creates the test database on node 1 and waits until every
// node lists it.
func (e *Env) createDatabase(ctx context.Context) error {
	name, err := newDatabaseName()
	if err != nil {
		return err
	}
	if !dbNamePattern.MatchString(name) {
		return fmt.Errorf("testgalera: database name %q does not match %s", name, dbNamePattern)
	}
	if _, err := e.admin[0].ExecContext(ctx, "CREATE DATABASE `"+name+"`"); err != nil {
		return fmt.Errorf("testgalera: create database %s on node 1 (%s): %w", name, e.nodes[0].cfg.Addr, err)
	}
	e.db = name
	for i := range e.nodes {
		if err := e.waitSchema(ctx, i+1, true); err != nil {
			return err
		}
	}
	return nil
}

// waitSchema waits until node n lists the test database (or, with !present,
// no longer lists it).
func (e *Env) waitSchema(ctx context.Context, n int, present bool) error {
	var last error
	for {
		var count int
		qctx, cancel := context.WithTimeout(ctx, queryTimeout)
		last = e.admin[n-1].QueryRowContext(qctx,
			"SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", e.db).Scan(&count)
		cancel()
		if last == nil && (count == 1) == present {
			return nil
		}
		if err := ctxutil.Sleep(ctx, pollInterval); err != nil {
			return fmt.Errorf("testgalera: database %s present=%v not seen on node %d (%s): last error: %v: %w",
				e.db, present, n, e.nodes[n-1].cfg.Addr, last, err)
		}
	}
}

// dropDatabase is the cleanup that removes the test database, through the
// first node that accepts the statement.
func (e *Env) dropDatabase() {
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Timeout(SetupTimeout))
	defer cancel()
	var errs []error
	for i := range e.nodes {
		_, err := e.admin[i].ExecContext(ctx, "DROP DATABASE IF EXISTS `"+e.db+"`")
		if err == nil {
			return
		}
		errs = append(errs, fmt.Errorf("node %d (%s): %w", i+1, e.nodes[i].cfg.Addr, err))
	}
	e.t.Errorf("testgalera: could not drop database %s: %v", e.db, errors.Join(errs...))
}

// N returns the number of nodes (3 for the local cluster).
func (e *Env) N() int { return len(e.nodes) }

// Database returns the name of this test's database.
func (e *Env) Database() string { return e.db }

// Addr returns node n's (1-based) SQL address, e.g. "127.0.0.11:4401".
func (e *Env) Addr(n int) string {
	e.t.Helper()
	e.checkNode(e.t, n)
	return e.nodes[n-1].cfg.Addr
}

// NodeDSN returns node n's (1-based) DSN in mnpool's format
// (`mysql:USER:PASS@tcp(HOST:PORT)/DB`), pointing at the test database.
func (e *Env) NodeDSN(n int) string {
	e.t.Helper()
	e.checkNode(e.t, n)
	return e.nodes[n-1].formatDSN(e.db)
}

// NodeDSNs returns every node's DSN, in node order, pointing at the test
// database.
func (e *Env) NodeDSNs() []string {
	out := make([]string, len(e.nodes))
	for i, n := range e.nodes {
		out[i] = n.formatDSN(e.db)
	}
	return out
}

// DSN returns all nodes' DSNs comma-separated, in the format of
// MNPOOL_TEST_DSNS, pointing at the test database.
func (e *Env) DSN() string { return strings.Join(e.NodeDSNs(), ",") }

// DB returns a new *sql.DB (go-sql-driver/mysql) to node n (1-based) with
// the test database selected and a 5 s dial timeout; it is closed when t's
// test ends.
func (e *Env) DB(t testing.TB, n int) *sql.DB {
	t.Helper()
	e.checkNode(t, n)
	db := sql.OpenDB(mustConnector(t, e.nodes[n-1].driverConfig(e.db)))
	t.Cleanup(func() { db.Close() })
	return db
}

func (e *Env) checkNode(t testing.TB, n int) {
	t.Helper()
	if n < 1 || n > len(e.nodes) {
		t.Fatalf("testgalera: node %d: must be 1..%d", n, len(e.nodes))
	}
}
