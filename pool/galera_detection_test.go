package pool_test

import (
	"context"
	"testing"

	"github.com/mnpool/mnpool/internal/storetest"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/dsn"
)

// TestGaleraDetection: 0 on SQLite; on Galera evs.suspect_timeout +
// evs.inactive_timeout of the node in use (never 0).
func TestGaleraDetection(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *pool.Store) {
		d, err := s.GaleraDetection(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		switch s.Kind() {
		case dsn.SQLite:
			if d != 0 {
				t.Errorf("SQLite: %v, want 0", d)
			}
		default:
			if d <= 0 {
				t.Errorf("Galera: %v, want the detection time", d)
			}
			t.Logf("Galera failure detection: %v", d)
		}
	})
}
