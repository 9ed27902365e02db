package testgalera

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"

	"github.com/mnpool/mnpool/internal/testenv"
)

// detectTimeout bounds waiting for Galera to notice a fault; the local
// cluster's failure detection time is about 6 s (docs/GALERA.md).
const detectTimeout = 30 * time.Second

// waitFor polls cond until it holds or timeout passes; cond returns a
// description of the current state for the failure message.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(testenv.Timeout(timeout))
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached after %v; last state: %s", what, timeout, state)
		}
		time.Sleep(pollInterval)
	}
}

// waitComponent waits until each listed node is Primary with the given size.
func waitComponent(t *testing.T, e *Env, size int, nodes ...int) {
	t.Helper()
	for _, n := range nodes {
		waitFor(t, detectTimeout, fmt.Sprintf("node %d Primary with size %d", n, size), func() (bool, string) {
			st := e.Status(t, n)
			return st.Healthy() && st.Size == size, st.String()
		})
	}
}

// syncedQuery runs a single-row query on db with wsrep_sync_wait=1, so the
// read sees every write committed anywhere in the cluster before it.
func syncedQuery(t *testing.T, db *sql.DB, query string, dest ...any) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Timeout(10*time.Second))
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET SESSION wsrep_sync_wait = 1"); err != nil {
		return err
	}
	return conn.QueryRowContext(ctx, query).Scan(dest...)
}

func mustExec(t *testing.T, db *sql.DB, query string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Timeout(10*time.Second))
	defer cancel()
	if _, err := db.ExecContext(ctx, query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func countRows(t *testing.T, e *Env, n int) int {
	t.Helper()
	var c int
	if err := syncedQuery(t, e.DB(t, n), "SELECT COUNT(*) FROM kv", &c); err != nil {
		t.Fatalf("count rows on node %d: %v", n, err)
	}
	return c
}

// newKV creates table kv through node 1 with rows k = 1..rows and checks
// that node n sees them all; it returns node 1's *sql.DB.
func newKV(t *testing.T, e *Env, rows, n int) *sql.DB {
	t.Helper()
	db1 := e.DB(t, 1)
	mustExec(t, db1, "CREATE TABLE kv (k INT PRIMARY KEY, v INT NOT NULL)")
	for k := 1; k <= rows; k++ {
		mustExec(t, db1, "INSERT INTO kv VALUES (?, ?)", k, k)
	}
	if got := countRows(t, e, n); got != rows {
		t.Fatalf("node %d has %d rows before the fault, want %d", n, got, rows)
	}
	return db1
}

func TestOpen(t *testing.T) {
	e := Open(t)
	want, err := parseDSNs(os.Getenv(EnvDSNs))
	if err != nil {
		t.Fatal(err)
	}
	if e.N() != len(want) {
		t.Fatalf("N() = %d, want %d nodes from %s", e.N(), len(want), EnvDSNs)
	}
	if !dbNamePattern.MatchString(e.Database()) {
		t.Errorf("Database() = %q, want a name matching %s", e.Database(), dbNamePattern)
	}
	var wantDSNs, addrs []string
	for i, n := range want {
		addrs = append(addrs, n.cfg.Addr)
		wantDSNs = append(wantDSNs, fmt.Sprintf("mysql:%s:%s@tcp(%s)/%s", n.cfg.User, n.cfg.Passwd, n.cfg.Addr, e.Database()))
		if got := e.Addr(i + 1); got != n.cfg.Addr {
			t.Errorf("Addr(%d) = %q, want %q", i+1, got, n.cfg.Addr)
		}
		if got := e.NodeDSN(i + 1); got != wantDSNs[i] {
			t.Errorf("NodeDSN(%d) = %q, want %q", i+1, got, wantDSNs[i])
		}
	}
	if diff := cmp.Diff(wantDSNs, e.NodeDSNs()); diff != "" {
		t.Errorf("NodeDSNs() mismatch (-want +got):\n%s", diff)
	}
	if got := e.DSN(); got != strings.Join(wantDSNs, ",") {
		t.Errorf("DSN() = %q, want %q", got, strings.Join(wantDSNs, ","))
	}

	for n := 1; n <= e.N(); n++ {
		st := e.Status(t, n)
		if !st.Healthy() || st.Size != e.N() {
			t.Errorf("Status(%d) = %v, want Primary Synced ready size %d", n, st, e.N())
		}
		got := slices.Sorted(slices.Values(st.IncomingAddresses))
		if diff := cmp.Diff(slices.Sorted(slices.Values(addrs)), got); diff != "" {
			t.Errorf("node %d wsrep_incoming_addresses mismatch (-want +got):\n%s", n, diff)
		}
		var db string
		if err := e.DB(t, n).QueryRowContext(t.Context(), "SELECT DATABASE()").Scan(&db); err != nil {
			t.Fatalf("node %d: %v", n, err)
		}
		if db != e.Database() {
			t.Errorf("DB(t, %d) selects database %q, want %q", n, db, e.Database())
		}
	}

	// A write through node 1 is readable on every node.
	db1 := e.DB(t, 1)
	mustExec(t, db1, "CREATE TABLE kv (k INT PRIMARY KEY, v VARCHAR(32) NOT NULL)")
	mustExec(t, db1, "INSERT INTO kv (k, v) VALUES (1, ?)", "from node 1")
	for n := 1; n <= e.N(); n++ {
		var v string
		if err := syncedQuery(t, e.DB(t, n), "SELECT v FROM kv WHERE k = 1", &v); err != nil {
			t.Fatalf("node %d: %v", n, err)
		}
		if v != "from node 1" {
			t.Errorf("node %d reads %q, want %q", n, v, "from node 1")
		}
	}
}

func TestOpenGivesEachTestItsOwnDatabaseAndDropsIt(t *testing.T) {
	e := Open(t) // shared locks do not exclude each other
	var names []string
	for i := range 2 {
		t.Run(fmt.Sprint("test", i), func(t *testing.T) {
			e := Open(t)
			names = append(names, e.Database())
		})
	}
	if len(names) != 2 || names[0] == names[1] {
		t.Fatalf("database names %v, want two different names", names)
	}
	for n := 1; n <= e.N(); n++ {
		for _, name := range names {
			var c int
			if err := syncedQuery(t, e.DB(t, n),
				fmt.Sprintf("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '%s'", name), &c); err != nil {
				t.Fatal(err)
			}
			if c != 0 {
				t.Errorf("node %d still has database %s after its test ended", n, name)
			}
		}
	}
}

func TestFaultMethodsNeedWithFaults(t *testing.T) {
	e := Open(t)
	f := runFake(func(tb testing.TB) { e.Kill(tb, 2) })
	if !f.fatal || !strings.Contains(f.msg, "WithFaults") {
		t.Fatalf("Kill without WithFaults: fatal=%v msg=%q, want a fatal naming WithFaults", f.fatal, f.msg)
	}
	if st := e.Status(t, 2); !st.Healthy() {
		t.Errorf("node 2 after a refused Kill: %v", st)
	}
}

func TestFaultIsolateHeal(t *testing.T) {
	e := Open(t, WithFaults())
	db1 := newKV(t, e, 1, 3)
	db3 := e.DB(t, 3)

	e.Isolate(t, 3)
	waitFor(t, detectTimeout, "isolated node 3 non-Primary", func() (bool, string) {
		st := e.Status(t, 3)
		return st.Reachable && st.ClusterStatus != "Primary" && !st.Ready, st.String()
	})
	var v int
	err := db3.QueryRowContext(t.Context(), "SELECT v FROM kv WHERE k = 1").Scan(&v)
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1047 {
		t.Fatalf("read on isolated node 3: error = %v, want MySQL error 1047", err)
	}
	waitComponent(t, e, 2, 1, 2)
	mustExec(t, db1, "INSERT INTO kv VALUES (2, 2)")

	e.Heal(t, 3)
	e.WaitSynced(t, 3, 60*time.Second)
	if st := e.Status(t, 3); st.Size != 3 {
		t.Errorf("node 3 after heal: %v, want size 3", st)
	}
	if got := countRows(t, e, 3); got != 2 {
		t.Errorf("node 3 has %d rows after heal, want 2 (the write made while it was cut off)", got)
	}
}

func TestFaultPauseResume(t *testing.T) {
	e := Open(t, WithFaults())
	db1 := newKV(t, e, 0, 2)

	e.Pause(t, 2)
	if st := e.Status(t, 2); st.Reachable {
		t.Errorf("paused node 2 answered: %v", st)
	}
	waitComponent(t, e, 2, 1, 3)
	mustExec(t, db1, "INSERT INTO kv VALUES (1, 1)")

	e.Resume(t, 2)
	e.WaitSynced(t, 2, 60*time.Second)
	waitComponent(t, e, 3, 1, 2, 3)
	if got := countRows(t, e, 2); got != 1 {
		t.Errorf("node 2 has %d rows after resume, want 1", got)
	}
}

func TestFaultKillStart(t *testing.T) {
	e := Open(t, WithFaults())
	db1 := newKV(t, e, 1, 3)

	e.Kill(t, 3)
	if st := e.Status(t, 3); st.Reachable {
		t.Fatalf("killed node 3 answered: %v", st)
	}
	waitComponent(t, e, 2, 1, 2)
	mustExec(t, db1, "INSERT INTO kv VALUES (2, 2)")

	e.Start(t, 3)
	if st := e.Status(t, 3); !st.Healthy() || st.Size != 3 {
		t.Errorf("node 3 after Start: %v, want Primary Synced ready size 3", st)
	}
	if got := countRows(t, e, 3); got != 2 {
		t.Errorf("node 3 has %d rows after restart, want 2", got)
	}
}

// TestFaultCleanupRestores leaves three faults behind and checks that the
// next test finds a healthy cluster.
func TestFaultCleanupRestores(t *testing.T) {
	t.Run("break", func(t *testing.T) {
		e := Open(t, WithFaults())
		e.Kill(t, 2)
		e.Isolate(t, 1)
		e.Pause(t, 3)
	})
	e := Open(t)
	for n := 1; n <= e.N(); n++ {
		if st := e.Status(t, n); !st.Healthy() || st.Size != e.N() {
			t.Errorf("after the faulty test's cleanup: %v, want Primary Synced ready size %d", st, e.N())
		}
	}
}
