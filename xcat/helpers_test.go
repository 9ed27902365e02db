package xcat_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/mnpool/mnpool/internal/testgalera"
	"github.com/mnpool/mnpool/pool"
)

// eachBackend runs f as a subtest per backend with a fresh, migrated
// store: the embedded SQLite and the local three-node Galera cluster
// (skipped without MNPOOL_TEST_DSNS, a failure with
// MNPOOL_REQUIRE_GALERA=1).
func eachBackend(t *testing.T, f func(t *testing.T, s *pool.Store)) {
	for _, b := range []struct {
		name string
		dsn  func(t testing.TB) string
	}{
		{"sqlite", sqliteDSN},
		{"galera", func(t testing.TB) string { return testgalera.Open(t).DSN() }},
	} {
		t.Run(b.name, func(t *testing.T) { f(t, openStore(t, b.dsn(t))) })
	}
}

func sqliteDSN(t testing.TB) string { return "sqlite:" + filepath.Join(t.TempDir(), "pool.db") }

func openStore(t testing.TB, dsn string) *pool.Store {
	t.Helper()
	s, err := pool.Open(context.Background(), dsn, pool.WithMigrate(), pool.WithSelf("mn1"))
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
