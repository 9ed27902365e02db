package makemn_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/poolsync"
	"github.com/stretchr/testify/require"
)

func roleFiles(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	for _, f := range []string{"etc/xCATMN", "etc/xCATSN"} {
		if _, err := os.Stat(filepath.Join(root, f)); err == nil {
			out = append(out, f)
		}
	}
	return out
}

// dhcpProbe is a sync step that records what a DHCP renderer is told.
type dhcpProbe struct {
	calls []poolsync.Input
}

func (p *dhcpProbe) step() poolsync.Step {
	return poolsync.StepFunc("dhcp", func(_ context.Context, in *poolsync.Input) (poolsync.Change, error) {
		p.calls = append(p.calls, *in)
		return poolsync.Change{Changed: true, Detail: "rendered"}, nil
	})
}
func (p *dhcpProbe) last(t testing.TB) poolsync.Input {
	t.Helper()
	require.NotEmpty(t, p.calls, "the DHCP step ran")
	return p.calls[len(p.calls)-1]
}
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
