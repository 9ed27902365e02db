package poolsync_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/storetest"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/poolsync"
	"github.com/mnpool/mnpool/rolefiles"
)

type fixedGate struct {
	epoch int64
	ok    bool
}

func (g fixedGate) ServeDynamic() (int64, bool) { return g.epoch, g.ok }

func TestSyncFollowsTheMasterRecord(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx := context.Background()
		storetest.Seed(t, s, 2)
		roots := map[string]string{"mn1": t.TempDir(), "sn1": t.TempDir(), "stranger": t.TempDir()}
		probes := map[string]*storetest.DHCPProbe{"mn1": {}, "sn1": {}, "stranger": {}}
		sync := func(self string) poolsync.Report {
			t.Helper()
			rep, err := poolsync.Sync(ctx, s, self, poolsync.Options{Steps: []poolsync.Step{rolefiles.Step(roots[self]), probes[self].Step()}})
			require.NoError(t, err)
			return rep
		}
		// A stale xCATMN on the stranger goes away.
		require.NoError(t, os.MkdirAll(filepath.Join(roots["stranger"], "etc"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(roots["stranger"], "etc/xCATMN"), nil, 0o644))

		rep := sync("mn1")
		require.Empty(t, cmp.Diff(poolsync.Report{
			Self: "mn1", Role: pool.RoleMN, Master: pool.Master{Member: "mn1", Epoch: 1}, ServeDynamic: true, DynamicEpoch: 1,
			Steps: []poolsync.StepResult{
				{Step: "role-files", Changed: true, Detail: "set for MN: " + filepath.Join(roots["mn1"], "etc/xCATMN")},
				{Step: "dhcp", Changed: true, Detail: "rendered"},
			},
		}, rep))
		require.Equal(t, []string{"etc/xCATMN"}, storetest.RoleFiles(t, roots["mn1"]))
		require.Len(t, probes["mn1"].Last(t).State.Nodes, 2, "the step gets the whole snapshot")

		rep = sync("sn1")
		require.Equal(t, pool.RoleSN, rep.Role)
		require.False(t, rep.ServeDynamic)
		require.Equal(t, []string{"etc/xCATSN"}, storetest.RoleFiles(t, roots["sn1"]))
		require.False(t, probes["sn1"].Last(t).ServeDynamic, "an SN never renders the dynamic range")

		rep = sync("stranger")
		require.Equal(t, pool.RoleNone, rep.Role)
		require.Empty(t, storetest.RoleFiles(t, roots["stranger"]))

		// makemn: the roles swap.
		_, err := s.Promote(ctx, "sn1", pool.PromoteOptions{})
		require.NoError(t, err)
		rep = sync("sn1")
		require.Equal(t, pool.RoleMN, rep.Role)
		require.True(t, rep.ServeDynamic)
		require.Equal(t, int64(2), probes["sn1"].Last(t).DynamicEpoch)
		require.Equal(t, []string{"etc/xCATMN"}, storetest.RoleFiles(t, roots["sn1"]))
		rep = sync("mn1")
		require.Equal(t, pool.RoleSN, rep.Role)
		require.False(t, probes["mn1"].Last(t).ServeDynamic)
		require.Equal(t, []string{"etc/xCATSN"}, storetest.RoleFiles(t, roots["mn1"]))

		// Running again changes nothing.
		rep = sync("mn1")
		require.False(t, rep.Steps[0].Changed)
	})
}

func TestSyncGateDecidesTheDynamicRange(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t, "sqlite:"+filepath.Join(t.TempDir(), "pool.db"))
	storetest.Seed(t, s, 0)
	tests := map[string]struct {
		gate      poolsync.DynamicGate
		wantServe bool
		wantEpoch int64
	}{
		"no gate: the fresh read decides": {gate: nil, wantServe: true, wantEpoch: 1},
		"gate agrees":                     {gate: fixedGate{epoch: 1, ok: true}, wantServe: true, wantEpoch: 1},
		"gate cannot confirm":             {gate: fixedGate{}, wantServe: false},
		"gate confirmed an older epoch":   {gate: fixedGate{epoch: 0, ok: true}, wantServe: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := &storetest.DHCPProbe{}
			rep, err := poolsync.Sync(ctx, s, "mn1", poolsync.Options{Steps: []poolsync.Step{p.Step()}, Gate: tc.gate})
			require.NoError(t, err)
			require.Equal(t, tc.wantServe, rep.ServeDynamic)
			require.Equal(t, tc.wantServe, p.Last(t).ServeDynamic)
			require.Equal(t, tc.wantEpoch, p.Last(t).DynamicEpoch)
		})
	}
}

func TestSyncReportsEveryStep(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t, "sqlite:"+filepath.Join(t.TempDir(), "pool.db"))
	storetest.Seed(t, s, 0)
	boom := errors.New("dhcpd -t: syntax error")
	p := &storetest.DHCPProbe{}
	steps := []poolsync.Step{
		poolsync.StepFunc("dhcp", func(context.Context, *poolsync.Input) (poolsync.Change, error) { return poolsync.Change{}, boom }),
		p.Step(),
	}
	steps[1] = poolsync.StepFunc("after", steps[1].Sync)
	rep, err := poolsync.Sync(ctx, s, "mn1", poolsync.Options{Steps: steps})
	require.ErrorIs(t, err, boom)
	require.Contains(t, err.Error(), "sync step dhcp")
	require.Equal(t, []string{"dhcp"}, rep.Failed())
	require.Len(t, p.Calls, 1, "a failed step does not stop the next")

	for name, steps := range map[string][]poolsync.Step{
		"unnamed":  {poolsync.StepFunc("", steps[0].Sync)},
		"twice":    {p.Step(), p.Step()},
		"nil":      {nil},
		"bad self": nil,
	} {
		t.Run(name, func(t *testing.T) {
			self := "mn1"
			if steps == nil {
				self = "not a name"
			}
			_, err := poolsync.Sync(ctx, s, self, poolsync.Options{Steps: steps})
			require.ErrorIs(t, err, pool.ErrInvalid)
		})
	}
}

func TestSyncWithoutDatabaseRunsNoStep(t *testing.T) {
	ctx := context.Background()
	s, err := pool.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "pool.db"), pool.WithMigrate())
	require.NoError(t, err)
	storetest.Seed(t, s, 0)
	require.NoError(t, s.Close())
	p := &storetest.DHCPProbe{}
	_, err = poolsync.Sync(ctx, s, "mn1", poolsync.Options{Steps: []poolsync.Step{p.Step()}})
	require.Error(t, err)
	require.Empty(t, p.Calls)
}
