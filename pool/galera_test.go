package pool_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/schemas"
	"github.com/mnpool/mnpool/internal/storetest"
	"github.com/mnpool/mnpool/internal/testenv"
	"github.com/mnpool/mnpool/internal/testgalera"
	"github.com/mnpool/mnpool/pool"
)

// helperEnv selects a helper mode when the test binary re-executes itself.
const helperEnv = "MNPOOL_POOL_TEST_HELPER"

// TestMain lets the test binary act as a second "member" process.
func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	os.Exit(m.Run())
}

func runHelper(mode string) int {
	switch mode {
	case "heartbeat": // liveness_galera_test.go
		return heartbeatHelper()
	case "migrate":
		// Wait for the start signal so that both processes migrate at the
		// same moment, then apply the schema through one Galera node.
		start := os.Getenv("MNPOOL_HELPER_START")
		for deadline := time.Now().Add(testenv.Timeout(30 * time.Second)); ; time.Sleep(time.Millisecond) {
			if _, err := os.Stat(start); err == nil {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintln(os.Stderr, "no start signal")
				return 3
			}
		}
		ctx := context.Background()
		s, err := pool.Open(ctx, os.Getenv("MNPOOL_HELPER_DSN"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer s.Close()
		if err := s.Migrate(ctx, schemas.All()...); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
	return 2
}

func TestGaleraConcurrentMigrationsFromTwoNodes(t *testing.T) {
	env := testgalera.Open(t)
	start := filepath.Join(t.TempDir(), "go")
	var cmds []*exec.Cmd
	var outs []*strings.Builder
	for _, n := range []int{1, 2} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"=migrate", "MNPOOL_HELPER_DSN="+env.NodeDSN(n), "MNPOOL_HELPER_START="+start)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		require.NoError(t, cmd.Start())
		cmds = append(cmds, cmd)
		outs = append(outs, &out)
	}
	time.Sleep(300 * time.Millisecond) // both processes are up and polling
	require.NoError(t, os.WriteFile(start, nil, 0o600))
	for i, cmd := range cmds {
		require.NoError(t, cmd.Wait(), "migrating process %d: %s", i+1, outs[i].String())
	}
	// Every node has the one correct schema.
	migs, last := poolMigrationFiles(t, "mysql")
	for n := 1; n <= env.N(); n++ {
		s := storetest.Open(t, env.NodeDSN(n))
		v, err := s.SchemaVersion(context.Background())
		require.NoError(t, err)
		require.Equal(t, last, v, "schema version on node %d", n)
		db := env.DB(t, n)
		var count int
		require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM schema_migrations").Scan(&count))
		require.Equal(t, migs, count, "one row per migration on node %d", n)
		require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM component_migrations").Scan(&count))
		require.Equal(t, len(schemas.All()), count, "one row per component migration on node %d", n)
		require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM master").Scan(&count))
		require.Equal(t, 1, count, "one master record on node %d", n)
	}
}

func TestGaleraStoreMovesOnWhenItsNodeIsKilled(t *testing.T) {
	env := testgalera.Open(t, testgalera.WithFaults())
	ctx := context.Background()
	s := storetest.Open(t, env.DSN(), pool.WithHealthInterval(200*time.Millisecond, 2*time.Second))
	storetest.Seed(t, s, 10)
	h, err := s.Health(ctx)
	require.NoError(t, err)
	require.Equal(t, "galera", h.Backend)
	require.Equal(t, env.Addr(1), h.Node, "the store prefers the first node")
	require.Len(t, h.Replicas, 3)

	env.Kill(t, 1)
	// The very next operation succeeds through another node.
	require.NoError(t, s.AddNodes(ctx, []pool.Node{{Name: "after-kill", Network: "mgmt"}}, pool.AddOptions{}))
	h, err = s.Health(ctx)
	require.NoError(t, err)
	require.NotEqual(t, env.Addr(1), h.Node)
	require.True(t, h.Healthy)
	require.False(t, h.Nodes[0].Healthy, "node 1 is reported down")
	nodes, err := s.Nodes(ctx)
	require.NoError(t, err)
	require.Len(t, nodes, 11)
}

func TestGaleraStoreRefusesIsolatedNode(t *testing.T) {
	env := testgalera.Open(t, testgalera.WithFaults())
	ctx := context.Background()
	all := storetest.Open(t, env.DSN(), pool.WithHealthInterval(200*time.Millisecond, 2*time.Second))
	storetest.Seed(t, all, 5)
	env.Isolate(t, 1)

	// Node 1 still answers SELECT 1 but is not Primary: reads of tables
	// fail there with 1047. That is why health is not SELECT 1.
	raw := env.DB(t, 1)
	require.NoError(t, raw.PingContext(ctx))
	var one int
	require.NoError(t, raw.QueryRowContext(ctx, "SELECT 1").Scan(&one))
	require.Eventually(t, func() bool {
		var n int
		err := raw.QueryRowContext(ctx, "SELECT COUNT(*) FROM nodes").Scan(&n)
		var me *mysql.MySQLError
		return errors.As(err, &me) && me.Number == 1047
	}, testenv.Timeout(30*time.Second), 100*time.Millisecond, "isolated node keeps serving reads")

	// A store that knows only node 1 refuses to use it.
	only1, err := pool.Open(ctx, env.NodeDSN(1), pool.WithRetry(2, 10*time.Millisecond, 50*time.Millisecond), pool.WithHealthInterval(0, 0))
	require.NoError(t, err)
	defer only1.Close()
	_, err = only1.Nodes(ctx)
	require.ErrorIs(t, err, pool.ErrUnavailable)
	require.Contains(t, err.Error(), "Primary")

	// The store with all three nodes moves to a healthy one and works.
	require.NoError(t, all.AddNodes(ctx, []pool.Node{{Name: "during-isolation", Network: "mgmt"}}, pool.AddOptions{}))
	h, err := all.Health(ctx)
	require.NoError(t, err)
	require.NotEqual(t, env.Addr(1), h.Node)
	require.False(t, h.Nodes[0].Healthy)
	require.Contains(t, h.Nodes[0].Problem, "Primary")
}

// TestGaleraNoLostUpdatesUnderConflicts increments one row from three
// stores, each pinned to another Galera node. Certification conflicts
// (1213) are retried by Store.Tx, so every increment lands exactly once.
func TestGaleraNoLostUpdatesUnderConflicts(t *testing.T) {
	env := testgalera.Open(t)
	ctx := context.Background()
	_, err := env.DB(t, 1).ExecContext(ctx, "CREATE TABLE counter (id INT PRIMARY KEY, v BIGINT NOT NULL) ENGINE=InnoDB")
	require.NoError(t, err)
	_, err = env.DB(t, 1).ExecContext(ctx, "INSERT INTO counter VALUES (1, 0)")
	require.NoError(t, err)
	const workers, each = 6, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		s := storetest.Open(t, env.NodeDSN(w%env.N()+1), pool.WithRetry(50, 2*time.Millisecond, 100*time.Millisecond))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				err := s.Tx(ctx, func(tx *sqlx.Tx) error {
					_, err := tx.ExecContext(ctx, "UPDATE counter SET v = v + 1 WHERE id = 1")
					return err
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for n := 1; n <= env.N(); n++ {
		var v int64
		db := env.DB(t, n)
		_, _ = db.ExecContext(ctx, "SET SESSION wsrep_sync_wait = 1")
		require.NoError(t, db.QueryRowContext(ctx, "SELECT v FROM counter WHERE id = 1").Scan(&v))
		require.Equal(t, int64(workers*each), v, "node %d", n)
	}
	_ = sql.ErrNoRows
}

// poolMigrationFiles counts pool's own migration files of dialect and
// returns the highest version among them.
func poolMigrationFiles(t *testing.T, dialect string) (n, last int) {
	t.Helper()
	entries, err := os.ReadDir("migrations")
	require.NoError(t, err)
	for _, e := range entries {
		if base, ok := strings.CutSuffix(e.Name(), "."+dialect+".sql"); ok {
			v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
			require.NoError(t, err, e.Name())
			n, last = n+1, max(last, v)
		}
	}
	return n, last
}
