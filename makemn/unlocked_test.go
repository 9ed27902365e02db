package makemn_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/storetest"
	"github.com/mnpool/mnpool/makemn"
	"github.com/mnpool/mnpool/mnguard"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/liveness"
	"github.com/mnpool/mnpool/pool/siteschema"
	"github.com/mnpool/mnpool/poolsync"
	"github.com/mnpool/mnpool/rolefiles"
)

// fastGuard is guard timing for tests on one host.
func fastGuard() []mnguard.Option {
	return []mnguard.Option{mnguard.WithTiming(20*time.Millisecond, 150*time.Millisecond), mnguard.WithHold(40 * time.Millisecond)}
}

// stepSummary is "name status" per step, to compare the sequence.
func stepSummary(steps []makemn.Step) []string {
	out := make([]string, len(steps))
	for i, st := range steps {
		out[i] = st.Name + " " + string(st.Status)
	}
	return out
}

func stepMessage(t testing.TB, rep makemn.Outcome, name string) string {
	t.Helper()
	for _, st := range rep.Steps {
		if st.Name == name {
			return st.Message
		}
	}
	t.Fatalf("no step %s in %v", name, stepSummary(rep.Steps))
	return ""
}

type makemnFixture struct {
	s     *pool.Store
	root  string
	probe *storetest.DHCPProbe
}

func newMakemnFixture(t testing.TB) *makemnFixture {
	s := storetest.Open(t, "sqlite:"+filepath.Join(t.TempDir(), "pool.db"))
	storetest.Seed(t, s, 3)
	return &makemnFixture{s: s, root: t.TempDir(), probe: &storetest.DHCPProbe{}}
}

func (f *makemnFixture) opts(target string) makemn.Request {
	return makemn.Request{
		Target: target,
		Guard:  fastGuard(),
		Sync:   poolsync.Options{Steps: []poolsync.Step{rolefiles.Step(f.root), f.probe.Step()}},
	}
}

func TestMakeMNOnSQLite(t *testing.T) {
	ctx := context.Background()
	f := newMakemnFixture(t)
	o := f.opts("sn1")
	o.Liveness = liveness.Static{"mn1": liveness.Dead, "sn1": liveness.Alive}
	var seen []makemn.Step
	o.OnStep = func(st makemn.Step) { seen = append(seen, st) }

	rep, err := makemn.RunUnlocked(ctx, f.s, o)
	require.NoError(t, err)
	require.True(t, rep.OK)
	require.Empty(t, cmp.Diff([]string{
		"db ok", "target ok", "replica skipped", "old-mn info",
		"promote ok", "hold ok", "sync info", "sync/role-files ok", "sync/dhcp ok",
	}, stepSummary(rep.Steps)))
	require.Equal(t, rep.Steps, seen, "every step is reported as it ends")
	require.Equal(t, pool.Master{Member: "mn1", Epoch: 1}, rep.Previous)
	require.Equal(t, pool.Master{Member: "sn1", Epoch: 2}, rep.Master)

	require.Contains(t, stepMessage(t, rep, "db"), "SQLite")
	require.Contains(t, stepMessage(t, rep, "target"), "sn1 is an enabled member, liveness alive")
	require.Contains(t, stepMessage(t, rep, "replica"), "not applicable (sqlite, single host)")
	require.Contains(t, stepMessage(t, rep, "old-mn"), "mn1 (MN of epoch 1) is dead: when it comes back it reads the new master record and stays an SN")
	require.Contains(t, stepMessage(t, rep, "promote"), "sn1 is the MN of epoch 2 (was mn1, epoch 1); site.master=sn1")
	require.Contains(t, stepMessage(t, rep, "sync"), "dynamic range served under epoch 2")

	require.Equal(t, []string{"etc/xCATMN"}, storetest.RoleFiles(t, f.root))
	in := f.probe.Last(t)
	require.True(t, in.ServeDynamic)
	require.Equal(t, int64(2), in.DynamicEpoch)
	site, err := f.s.Site(ctx)
	require.NoError(t, err)
	require.Equal(t, "sn1", site[siteschema.Master])

	// Again, on the member that is now the MN: nothing to promote, the
	// hold and the sync run again.
	rep, err = makemn.RunUnlocked(ctx, f.s, f.opts("sn1"))
	require.NoError(t, err)
	require.Contains(t, stepMessage(t, rep, "promote"), "sn1 is already the MN of epoch 2; nothing written")
	require.Equal(t, "old-mn skipped", stepSummary(rep.Steps)[3])
	require.Len(t, storetest.PromoteAudits(t, f.s), 1)
}

func TestMakeMNPreflightRefusals(t *testing.T) {
	tests := []struct {
		name     string
		prep     func(t *testing.T, s *pool.Store)
		target   string
		live     liveness.Static
		force    bool
		wantFail string // the failed step and a part of its message; "" when forced through
	}{
		{name: "not a member", target: "sn9", wantFail: "target: sn9 is not a member of the pool (members: mn1, sn1, sn2)"},
		{name: "disabled", target: "sn2", prep: disable("sn2"), wantFail: "target: sn2 is a member, but it is disabled"},
		{name: "disabled, forced", target: "sn2", prep: disable("sn2"), force: true},
		{name: "target dead", target: "sn1", live: liveness.Static{"sn1": liveness.Dead}, wantFail: "its heartbeat says dead (is mnpoold running on sn1?); --force goes past this check"},
		{name: "target suspect, forced", target: "sn1", live: liveness.Static{"sn1": liveness.Suspect}, force: true},
		{name: "not a member is not forceable", target: "sn9", force: true, wantFail: "target: sn9 is not a member"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newMakemnFixture(t)
			if tc.prep != nil {
				tc.prep(t, f.s)
			}
			v0, err := f.s.Version(ctx)
			require.NoError(t, err)
			o := f.opts(tc.target)
			o.Liveness, o.Force = tc.live, tc.force
			rep, err := makemn.RunUnlocked(ctx, f.s, o)
			if tc.wantFail == "" {
				require.NoError(t, err)
				require.Equal(t, "target forced", stepSummary(rep.Steps)[1])
				require.Equal(t, pool.Master{Member: tc.target, Epoch: 2}, rep.Master)
				return
			}
			require.ErrorIs(t, err, makemn.ErrPreflight)
			require.Contains(t, err.Error(), tc.wantFail)
			require.False(t, rep.OK)
			for _, st := range rep.Steps {
				require.NotContains(t, []string{"promote", "hold", "sync"}, st.Name, "no step after a failed check")
			}
			v1, err := f.s.Version(ctx)
			require.NoError(t, err)
			require.Equal(t, v0, v1, "nothing written")
			require.Empty(t, f.probe.Calls)
			require.Empty(t, storetest.RoleFiles(t, f.root))
		})
	}
}

func disable(member string) func(t *testing.T, s *pool.Store) {
	return func(t *testing.T, s *pool.Store) {
		m, err := s.Member(context.Background(), member)
		require.NoError(t, err)
		m.Disabled = true
		require.NoError(t, s.AddMember(context.Background(), m, true))
	}
}

func TestMakeMNDryRunChangesNothing(t *testing.T) {
	ctx := context.Background()
	f := newMakemnFixture(t)
	v0, err := f.s.Version(ctx)
	require.NoError(t, err)
	o := f.opts("sn2")
	o.DryRun = true
	rep, err := makemn.RunUnlocked(ctx, f.s, o)
	require.NoError(t, err)
	require.Empty(t, cmp.Diff([]string{
		"db ok", "target ok", "replica skipped", "old-mn info", "promote would", "hold would", "sync would",
	}, stepSummary(rep.Steps)))
	require.Contains(t, stepMessage(t, rep, "promote"), "would make sn2 the MN of epoch 2 (now mn1, epoch 1)")
	require.Contains(t, stepMessage(t, rep, "sync"), "would sync sn2: role-files, dhcp")
	v1, err := f.s.Version(ctx)
	require.NoError(t, err)
	require.Equal(t, v0, v1)
	require.Empty(t, f.probe.Calls)
	require.Empty(t, storetest.RoleFiles(t, f.root))
}

// racingLiveness promotes another member while makemn runs its checks,
// after it read the master record: the promotion must then lose.
type racingLiveness struct {
	s     *pool.Store
	other string
	done  bool
}

func (r *racingLiveness) LiveState(member string) liveness.State {
	if !r.done && member == "mn1" { // asked in the old-mn report
		r.done = true
		if _, err := r.s.Promote(context.Background(), r.other, pool.PromoteOptions{}); err != nil {
			panic(err)
		}
	}
	return liveness.Alive
}

func TestMakeMNLosesToAConcurrentPromotion(t *testing.T) {
	ctx := context.Background()
	f := newMakemnFixture(t)
	o := f.opts("sn1")
	o.Liveness = &racingLiveness{s: f.s, other: "sn2"}
	rep, err := makemn.RunUnlocked(ctx, f.s, o)
	require.ErrorIs(t, err, pool.ErrConflict)
	require.Contains(t, err.Error(), "sn2 is the MN of epoch 2")
	require.Equal(t, pool.Master{Member: "sn2", Epoch: 2}, rep.Master, "the report names the winner")
	require.Equal(t, "promote failed", stepSummary(rep.Steps)[len(rep.Steps)-1], "nothing runs after a lost promotion")
	require.Empty(t, f.probe.Calls)
}

// TestMakeMNHoldRefusesWhenTheRoleIsLostAgain promotes another member right
// after makemn's promotion: the guard sees it and the sync renders the
// member as an SN, without the dynamic range.
func TestMakeMNHoldRefusesWhenTheRoleIsLostAgain(t *testing.T) {
	ctx := context.Background()
	f := newMakemnFixture(t)
	o := f.opts("sn1")
	o.Guard = []mnguard.Option{mnguard.WithTiming(20*time.Millisecond, 150*time.Millisecond), mnguard.WithHold(300 * time.Millisecond)}
	o.OnStep = func(st makemn.Step) {
		if st.Name == makemn.StepPromote {
			_, err := f.s.Promote(ctx, "sn2", pool.PromoteOptions{})
			require.NoError(t, err)
		}
	}
	rep, err := makemn.RunUnlocked(ctx, f.s, o)
	require.Error(t, err)
	require.False(t, rep.OK)
	require.Contains(t, stepMessage(t, rep, "hold"), "sn1 is not the MN any more: sn2 is the MN of epoch 3")
	require.Equal(t, pool.RoleSN, rep.Sync.Role)
	require.False(t, f.probe.Last(t).ServeDynamic)
	require.Equal(t, []string{"etc/xCATSN"}, storetest.RoleFiles(t, f.root))
	require.True(t, strings.HasPrefix(err.Error(), "pool: makemn: hold: "), err.Error())
}
