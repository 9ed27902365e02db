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

// roleFiles lists which role files exist under root.
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
		probes := map[string]*dhcpProbe{"mn1": {}, "sn1": {}, "stranger": {}}
		sync := func(self string) poolsync.Report {
			t.Helper()
			rep, err := poolsync.Sync(ctx, s, self, poolsync.Options{Steps: []poolsync.Step{rolefiles.Step(roots[self]), probes[self].step()}})
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
		require.Equal(t, []string{"etc/xCATMN"}, roleFiles(t, roots["mn1"]))
		require.Len(t, probes["mn1"].last(t).State.Nodes, 2, "the step gets the whole snapshot")

		rep = sync("sn1")
		require.Equal(t, pool.RoleSN, rep.Role)
		require.False(t, rep.ServeDynamic)
		require.Equal(t, []string{"etc/xCATSN"}, roleFiles(t, roots["sn1"]))
		require.False(t, probes["sn1"].last(t).ServeDynamic, "an SN never renders the dynamic range")

		rep = sync("stranger")
		require.Equal(t, pool.RoleNone, rep.Role)
		require.Empty(t, roleFiles(t, roots["stranger"]))

		// makemn: the roles swap.
		_, err := s.Promote(ctx, "sn1", pool.PromoteOptions{})
		require.NoError(t, err)
		rep = sync("sn1")
		require.Equal(t, pool.RoleMN, rep.Role)
		require.True(t, rep.ServeDynamic)
		require.Equal(t, int64(2), probes["sn1"].last(t).DynamicEpoch)
		require.Equal(t, []string{"etc/xCATMN"}, roleFiles(t, roots["sn1"]))
		rep = sync("mn1")
		require.Equal(t, pool.RoleSN, rep.Role)
		require.False(t, probes["mn1"].last(t).ServeDynamic)
		require.Equal(t, []string{"etc/xCATSN"}, roleFiles(t, roots["mn1"]))

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
			p := &dhcpProbe{}
			rep, err := poolsync.Sync(ctx, s, "mn1", poolsync.Options{Steps: []poolsync.Step{p.step()}, Gate: tc.gate})
			require.NoError(t, err)
			require.Equal(t, tc.wantServe, rep.ServeDynamic)
			require.Equal(t, tc.wantServe, p.last(t).ServeDynamic)
			require.Equal(t, tc.wantEpoch, p.last(t).DynamicEpoch)
		})
	}
}

func TestSyncReportsEveryStep(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t, "sqlite:"+filepath.Join(t.TempDir(), "pool.db"))
	storetest.Seed(t, s, 0)
	boom := errors.New("dhcpd -t: syntax error")
	p := &dhcpProbe{}
	steps := []poolsync.Step{
		poolsync.StepFunc("dhcp", func(context.Context, *poolsync.Input) (poolsync.Change, error) { return poolsync.Change{}, boom }),
		p.step(),
	}
	steps[1] = poolsync.StepFunc("after", steps[1].Sync)
	rep, err := poolsync.Sync(ctx, s, "mn1", poolsync.Options{Steps: steps})
	require.ErrorIs(t, err, boom)
	require.Contains(t, err.Error(), "sync step dhcp")
	require.Equal(t, []string{"dhcp"}, rep.Failed())
	require.Len(t, p.calls, 1, "a failed step does not stop the next")

	for name, steps := range map[string][]poolsync.Step{
		"unnamed":  {poolsync.StepFunc("", steps[0].Sync)},
		"twice":    {p.step(), p.step()},
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
	p := &dhcpProbe{}
	_, err = poolsync.Sync(ctx, s, "mn1", poolsync.Options{Steps: []poolsync.Step{p.step()}})
	require.Error(t, err)
	require.Empty(t, p.calls)
}
