package dhcp_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/dhcp"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/poolsync"
)

// The DHCP sync step publishes the dynamic range only while the MN guard
// still confirms it: a sync that outlived the confirmation writes none.
func TestSyncStepRechecksTheGate(t *testing.T) {
	st := fixture("0")
	mn := st.Master.Member
	rangeLine := regexp.MustCompile(`(?m)^\s*range \d`)
	for _, tc := range []struct {
		name       string
		stillServe bool
		want       bool
	}{{"confirmed", true, true}, {"expired during the sync", false, false}} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "dhcpd.conf")
			step := dhcp.SyncStep(&dhcp.Applier{Path: out, Check: dhcp.CheckNever}, dhcp.Options{})
			in := &poolsync.Input{Self: mn, State: st, Role: pool.RoleMN, ServeDynamic: true, DynamicEpoch: st.Master.Epoch,
				StillServe: func() bool { return tc.stillServe }}
			_, err := step.Sync(context.Background(), in)
			require.NoError(t, err)
			b, err := os.ReadFile(out)
			require.NoError(t, err)
			require.Equal(t, tc.want, rangeLine.Match(b))
		})
	}
}
