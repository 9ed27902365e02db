package storetest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/poolsync"
)

// RoleFiles lists which xCAT role files exist under root.
func RoleFiles(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	for _, f := range []string{"etc/xCATMN", "etc/xCATSN"} {
		if _, err := os.Stat(filepath.Join(root, f)); err == nil {
			out = append(out, f)
		}
	}
	return out
}

// DHCPProbe is a sync step that records what a DHCP renderer is told.
type DHCPProbe struct {
	Calls []poolsync.Input
}

// Step returns the step that records its input.
func (p *DHCPProbe) Step() poolsync.Step {
	return poolsync.StepFunc("dhcp", func(_ context.Context, in *poolsync.Input) (poolsync.Change, error) {
		p.Calls = append(p.Calls, *in)
		return poolsync.Change{Changed: true, Detail: "rendered"}, nil
	})
}

// Last returns the input of the last run, failing the test when the
// step never ran.
func (p *DHCPProbe) Last(t testing.TB) poolsync.Input {
	t.Helper()
	require.NotEmpty(t, p.Calls, "the DHCP step ran")
	return p.Calls[len(p.Calls)-1]
}
