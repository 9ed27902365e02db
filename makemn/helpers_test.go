package makemn_test

import (
	"context"
	"testing"

	"github.com/mnpool/mnpool/pool"
	"github.com/stretchr/testify/require"
)

func promoteAudits(t testing.TB, s *pool.Store) []pool.AuditEntry {
	t.Helper()
	log, err := s.AuditLog(context.Background(), 1000)
	require.NoError(t, err)
	var out []pool.AuditEntry
	for i := len(log) - 1; i >= 0; i-- {
		if log[i].Action == "pool.promote" {
			out = append(out, log[i])
		}
	}
	return out
}
