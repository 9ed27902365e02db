package makemn_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/storetest"
	"github.com/mnpool/mnpool/internal/testenv"
	"github.com/mnpool/mnpool/internal/testgalera"
	"github.com/mnpool/mnpool/makemn"
	"github.com/mnpool/mnpool/mnguard"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/liveness"
	"github.com/mnpool/mnpool/poolsync"
	"github.com/mnpool/mnpool/rolefiles"
)

func galeraMemberNode(name string) int {
	for _, m := range storetest.GaleraMembers() {
		if m.Name == name {
			return m.Node
		}
	}
	return 0
}

// memberDSN is the DSN member would use: its own database node first,
// then the others (docs/DESIGN.md, *prefer-local-node*).
func memberDSN(t testing.TB, env *testgalera.Env, member string) string {
	t.Helper()
	local := galeraMemberNode(member)
	dsns := []string{}
	if local > 0 {
		dsns = append(dsns, env.NodeDSN(local))
	}
	for n := 1; n <= env.N(); n++ {
		if n != local {
			dsns = append(dsns, env.NodeDSN(n))
		}
	}
	return strings.Join(dsns, ",")
}

// memberStore opens the store member would use.
func memberStore(t testing.TB, env *testgalera.Env, member string, opts ...pool.Option) *pool.Store {
	t.Helper()
	return storetest.OpenMember(t, memberDSN(t, env, member), member, opts...)
}

// galeraGuard is guard timing for the test cluster, whose Galera failure
// detection is 6 s (docs/GALERA.md); hold >= validFor.
func galeraGuard() []mnguard.Option {
	return []mnguard.Option{mnguard.WithTiming(250*time.Millisecond, 1500*time.Millisecond), mnguard.WithHold(2 * time.Second)}
}

func TestGaleraMakeMNWithOldMNKilled(t *testing.T) {
	env := testgalera.Open(t, testgalera.WithFaults())
	ctx := context.Background()
	storetest.GaleraPool(t, env)
	env.Kill(t, 1) // mn1's host is gone, with its database node

	s := memberStore(t, env, "sn1")
	root, probe := t.TempDir(), &storetest.DHCPProbe{}
	rep, err := makemn.RunUnlocked(ctx, s, makemn.Request{
		Target:   "sn1",
		Liveness: liveness.Static{"mn1": liveness.Dead, "sn1": liveness.Alive},
		Guard:    galeraGuard(),
		Sync:     poolsync.Options{Steps: []poolsync.Step{rolefiles.Step(root), probe.Step()}},
	})
	require.NoError(t, err, "%v", stepSummary(rep.Steps))
	require.Equal(t, []string{
		"db ok", "target ok", "replica ok", "old-mn info", "promote ok", "hold ok", "sync info", "sync/role-files ok", "sync/dhcp ok",
	}, stepSummary(rep.Steps))
	require.Contains(t, stepMessage(t, rep, "db"), "local Galera node "+env.Addr(2)+" is Primary and Synced (cluster size ") // 3 until node 1 is dropped, then 2
	require.Contains(t, stepMessage(t, rep, "replica"), "Synced replica at "+env.Addr(2))
	require.Contains(t, stepMessage(t, rep, "old-mn"), "mn1 (MN of epoch 1) is dead")
	require.Equal(t, pool.Master{Member: "sn1", Epoch: 2}, rep.Master)
	require.Equal(t, []pool.Master{{Member: "sn1", Epoch: 2}, {Member: "sn1", Epoch: 2}}, storetest.MasterOnEveryNode(t, env, 1))
	require.True(t, probe.Last(t).ServeDynamic)
	require.Equal(t, []string{"etc/xCATMN"}, storetest.RoleFiles(t, root))

	// The old MN comes back: it reads the new master record and stays an SN.
	env.Start(t, 1)
	old := storetest.OpenMember(t, env.NodeDSN(1), "mn1")
	oldRoot, oldProbe := t.TempDir(), &storetest.DHCPProbe{}
	writeRoleFilesFor(t, oldRoot, "etc/xCATMN") // what it had when it died
	g, err := mnguard.New(old, "mn1", galeraGuard()...)
	require.NoError(t, err)
	m, err := g.Confirm(ctx)
	require.NoError(t, err)
	require.Equal(t, pool.Master{Member: "sn1", Epoch: 2}, m)
	_, ok := g.ServeDynamic()
	require.False(t, ok)
	srep, err := poolsync.Sync(ctx, old, "mn1", poolsync.Options{Steps: []poolsync.Step{rolefiles.Step(oldRoot), oldProbe.Step()}, Gate: g})
	require.NoError(t, err)
	require.Equal(t, pool.RoleSN, srep.Role)
	require.False(t, oldProbe.Last(t).ServeDynamic)
	require.Equal(t, []string{"etc/xCATSN"}, storetest.RoleFiles(t, oldRoot))
}

func writeRoleFilesFor(t *testing.T, root string, files ...string) {
	t.Helper()
	for _, f := range files {
		path := filepath.Join(root, f)
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, nil, 0o644))
	}
}

// transitions records when a guard's ServeDynamic answer changed.
type transitions struct {
	mu  sync.Mutex
	log []transition
}

type transition struct {
	at    time.Time
	serve bool
	epoch int64
}

func (tr *transitions) watch(ctx context.Context, g *mnguard.Guard) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.Changed():
			e, ok := g.ServeDynamic()
			tr.mu.Lock()
			tr.log = append(tr.log, transition{at: time.Now(), serve: ok, epoch: e})
			tr.mu.Unlock()
		}
	}
}

func (tr *transitions) snapshot() []transition {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]transition(nil), tr.log...)
}

// firstWith returns the first transition to serve, or the zero value.
func (tr *transitions) firstWith(serve bool) transition {
	for _, x := range tr.snapshot() {
		if x.serve == serve {
			return x
		}
	}
	return transition{}
}

// timedProbe is a DHCP step that records when it was first told to serve
// the dynamic range.
type timedProbe struct {
	mu    sync.Mutex
	first time.Time
}

func (p *timedProbe) Step() poolsync.Step {
	return poolsync.StepFunc("dhcp", func(_ context.Context, in *poolsync.Input) (poolsync.Change, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if in.ServeDynamic && p.first.IsZero() {
			p.first = time.Now()
		}
		return poolsync.Change{Changed: true}, nil
	})
}

// TestGaleraOldMNIsolated cuts the MN's database node off while the MN's
// guard runs, promotes an SN at the same time, and heals. The old MN must
// stop serving the dynamic range before the new MN starts, and after the
// partition heals it must see it is an SN and stay one.
func TestGaleraOldMNIsolated(t *testing.T) {
	env := testgalera.Open(t, testgalera.WithFaults())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	storetest.GaleraPool(t, env)

	// mn1 reaches only its own database node: its host is the one cut off.
	old := storetest.OpenMember(t, env.NodeDSN(1), "mn1", pool.WithRetry(3, 10*time.Millisecond, 100*time.Millisecond))
	g, err := mnguard.New(old, "mn1", mnguard.WithTiming(250*time.Millisecond, 1500*time.Millisecond), mnguard.WithHold(0))
	require.NoError(t, err)
	var tr transitions
	go tr.watch(ctx, g)
	runDone := make(chan error, 1)
	go func() { runDone <- g.Run(ctx) }()
	require.Eventually(t, func() bool { _, ok := g.ServeDynamic(); return ok }, testenv.Timeout(10*time.Second), 20*time.Millisecond, "mn1 serves before the fault")

	isolated := time.Now()
	env.Isolate(t, 1)

	// At the same time an administrator runs makemn on sn1.
	s := memberStore(t, env, "sn1")
	probe := &timedProbe{}
	rep, err := makemn.RunUnlocked(ctx, s, makemn.Request{
		Target:   "sn1",
		Liveness: liveness.Static{"mn1": liveness.Suspect, "sn1": liveness.Alive},
		Guard:    galeraGuard(),
		Sync:     poolsync.Options{Steps: []poolsync.Step{probe.Step()}},
	})
	require.NoError(t, err, "%v", stepSummary(rep.Steps))
	require.Equal(t, pool.Master{Member: "sn1", Epoch: 2}, rep.Master)
	require.Contains(t, stepMessage(t, rep, "old-mn"), "mn1 (MN of epoch 1) is suspect")

	require.Eventually(t, func() bool { _, ok := g.ServeDynamic(); return !ok }, testenv.Timeout(30*time.Second), 20*time.Millisecond, "the isolated MN stops serving")
	off := tr.firstWith(false)
	require.False(t, off.at.IsZero(), "the stop was signalled on Changed")
	require.False(t, probe.first.IsZero(), "the new MN serves the dynamic range")
	t.Logf("isolated at 0; old MN stopped serving at %v; new MN rendered the range at %v",
		off.at.Sub(isolated).Round(time.Millisecond), probe.first.Sub(isolated).Round(time.Millisecond))
	require.True(t, off.at.Before(probe.first), "never two dynamic ranges: the old MN stopped (%v) before the new one started (%v)",
		off.at.Sub(isolated), probe.first.Sub(isolated))

	// Heal. The old MN's guard reads the new master record and stays an SN.
	env.Heal(t, 1)
	env.WaitSynced(t, 1, 60*time.Second)
	require.Eventually(t, func() bool {
		st := g.Status()
		return st.Master == pool.Master{Member: "sn1", Epoch: 2} && !st.IsMN
	}, testenv.Timeout(30*time.Second), 50*time.Millisecond, "the old MN sees the new master after healing")
	oldRoot, oldProbe := t.TempDir(), &storetest.DHCPProbe{}
	writeRoleFilesFor(t, oldRoot, "etc/xCATMN")
	srep, err := poolsync.Sync(ctx, old, "mn1", poolsync.Options{Steps: []poolsync.Step{rolefiles.Step(oldRoot), oldProbe.Step()}, Gate: g})
	require.NoError(t, err)
	require.Equal(t, pool.RoleSN, srep.Role)
	require.False(t, oldProbe.Last(t).ServeDynamic)
	require.Equal(t, []string{"etc/xCATSN"}, storetest.RoleFiles(t, oldRoot))

	// It keeps confirming and stays an SN; nobody promoted it back.
	confirms := g.Status().Confirms
	require.Eventually(t, func() bool { return g.Status().Confirms >= confirms+4 }, testenv.Timeout(10*time.Second), 50*time.Millisecond)
	for _, x := range tr.snapshot() {
		require.False(t, x.serve && x.at.After(off.at), "the old MN never served again")
	}
	require.Equal(t, []pool.Master{{Member: "sn1", Epoch: 2}, {Member: "sn1", Epoch: 2}, {Member: "sn1", Epoch: 2}}, storetest.MasterOnEveryNode(t, env))
	cancel()
	require.ErrorIs(t, <-runDone, context.Canceled)
}

// TestGaleraMakeMNReplicaHook: sn2's database node is down, so makemn
// refuses; with a replica hook that starts it, makemn waits for it to be
// Synced and goes on.
func TestGaleraMakeMNReplicaHook(t *testing.T) {
	env := testgalera.Open(t, testgalera.WithFaults())
	ctx := context.Background()
	storetest.GaleraPool(t, env)
	env.Kill(t, 3)

	s := memberStore(t, env, "sn2")
	o := makemn.Request{Target: "sn2", Guard: galeraGuard(), Force: false}
	rep, err := makemn.RunUnlocked(ctx, s, o)
	require.ErrorIs(t, err, makemn.ErrPreflight)
	msg := stepMessage(t, rep, "replica")
	// Right after the kill the cluster may still list the node (it is
	// dropped after the failure detection time); either way it is refused.
	require.Contains(t, msg, "127.0.0.13")
	require.Contains(t, msg, "--replica-hook CMD")
	require.Contains(t, stepMessage(t, rep, "db"), "local Galera node "+env.Addr(3)+" is not Primary and Synced", "sn2's own node is down too")

	var hooked []string
	o.Force = false
	o.ReplicaPoll = 200 * time.Millisecond
	o.ReplicaWait = 60 * time.Second
	o.ReplicaHook = func(ctx context.Context, member string) error {
		hooked = append(hooked, member)
		env.Start(t, 3)
		return nil
	}
	// The db check still fails (its local node is down when it runs), so
	// force past it; the hook then starts the replica.
	o.Force = true
	rep, err = makemn.RunUnlocked(ctx, s, o)
	require.NoError(t, err, "%v", stepSummary(rep.Steps))
	require.Equal(t, []string{"sn2"}, hooked)
	require.Equal(t, "db forced", stepSummary(rep.Steps)[0])
	require.Contains(t, stepMessage(t, rep, "replica"), "replica hook ran; Synced replica at "+env.Addr(3))
	require.Equal(t, pool.Master{Member: "sn2", Epoch: 2}, rep.Master)
}
