package dhcp_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/dhcp"
	"github.com/mnpool/mnpool/mnguard"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
	"github.com/mnpool/mnpool/poolsync"
)

// makePool is a SQLite pool: MN mn1, SN sn1, nodes cn001..cn003.
func makePool(t *testing.T) *pool.Store {
	t.Helper()
	ctx := context.Background()
	s, err := pool.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "pool.db"), pool.WithMigrate(), pool.WithSelf("mn1"))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	a := netip.MustParseAddr
	require.NoError(t, s.AddNetwork(ctx, pool.Network{Name: "mgmt", Prefix: netip.MustParsePrefix("10.0.0.0/16"), DynamicStart: a("10.0.255.1"), DynamicEnd: a("10.0.255.9")}, false))
	_, err = s.Init(ctx, pool.InitOptions{MN: pool.Member{Name: "mn1", Addresses: map[string]netip.Addr{"mgmt": a("10.0.0.1")}}})
	require.NoError(t, err)
	require.NoError(t, s.AddMember(ctx, pool.Member{Name: "sn1", Services: service.All(), Addresses: map[string]netip.Addr{"mgmt": a("10.0.0.2")}}, false))
	var nodes []pool.Node
	for i, n := range []string{"cn001", "cn002", "cn003"} {
		nodes = append(nodes, pool.Node{Name: n, Groups: []string{"rack1"}, IP: netip.AddrFrom4([4]byte{10, 0, 1, byte(i + 1)}),
			MACs: []string{"00:1a:2b:3c:4d:0" + string(rune('1'+i))}, ServiceNodes: []string{"mn1", "sn1"}})
	}
	require.NoError(t, s.AddNodes(ctx, nodes, pool.AddOptions{}))
	return s
}

func TestMakeOptionsValidate(t *testing.T) {
	ac := dhcp.ApplierConfig{Path: "/tmp/x.conf"}
	for name, o := range map[string]dhcp.MakeOptions{
		"nothing":             {Self: "mn1", Applier: ac},
		"-a and NODERANGE":    {Self: "mn1", Applier: ac, All: true, Noderange: "cn001"},
		"-d without range":    {Self: "mn1", Applier: ac, Delete: true},
		"-q with -n":          {Self: "mn1", Applier: ac, Query: true, New: true, Noderange: "cn001"},
		"all-members with -d": {Applier: ac, AllMembers: true, Delete: true},
		"bad self":            {Self: "mn1;reboot", Applier: ac, All: true},
		"bad format":          {Self: "mn1", Applier: dhcp.ApplierConfig{Format: "dnsmasq"}, All: true},
		"path with a quote":   {Self: "mn1", Applier: dhcp.ApplierConfig{Path: `/etc/"x`}, All: true},
		"empty reload":        {Self: "mn1", Applier: dhcp.ApplierConfig{ReloadCommand: []string{" "}}, All: true},
	} {
		t.Run(name, func(t *testing.T) {
			err := o.Validate()
			require.Error(t, err)
			require.True(t, errors.Is(err, dhcp.ErrInvalid) || errors.Is(err, dhcp.ErrFormat), err)
		})
	}
}

// A node removed with Delete stays out of every later render (Make with
// -n, makemn's and the agent's sync step) until Noderange or All brings
// it back.
func TestMakeDeletePersists(t *testing.T) {
	s := makePool(t)
	ctx := context.Background()
	dir := t.TempDir()
	ac := dhcp.ApplierConfig{Path: filepath.Join(dir, "dhcpd.conf"), Check: dhcp.CheckNever}
	hold0 := []mnguard.Option{mnguard.WithHold(0)}
	rep, err := dhcp.Make(ctx, s, dhcp.MakeOptions{Self: "mn1", Applier: ac, Delete: true, Noderange: "rack1,-cn003", Guard: hold0})
	require.NoError(t, err)
	require.Equal(t, []string{"cn001", "cn002"}, rep.Removed)
	require.Equal(t, []string{"cn003"}, nodesIn(t, ac.Path))

	rep, err = dhcp.Make(ctx, s, dhcp.MakeOptions{Self: "mn1", Applier: ac, New: true, Guard: hold0})
	require.NoError(t, err)
	require.Equal(t, 2, rep.StillRemoved)
	require.Equal(t, []string{"cn003"}, nodesIn(t, ac.Path))

	other := ac
	other.Path = filepath.Join(dir, "sync.conf")
	_, err = poolsync.Sync(ctx, s, "mn1", poolsync.Options{Steps: []poolsync.Step{other.SyncStep()}, Gate: fixedGate{1, true}})
	require.NoError(t, err)
	require.Equal(t, []string{"cn003"}, nodesIn(t, other.Path))
	requireSameFile(t, ac.Path, other.Path)

	rep, err = dhcp.Make(ctx, s, dhcp.MakeOptions{Self: "mn1", Applier: ac, Noderange: "cn002", Guard: hold0})
	require.NoError(t, err)
	require.Equal(t, []string{"cn002"}, rep.Restored)
	require.Equal(t, []string{"cn002", "cn003"}, nodesIn(t, ac.Path))

	rep, err = dhcp.Make(ctx, s, dhcp.MakeOptions{Self: "mn1", Applier: ac, All: true, Guard: hold0})
	require.NoError(t, err)
	require.Equal(t, []string{"cn001"}, rep.Restored)
	excl, err := dhcp.Excluded(ctx, s)
	require.NoError(t, err)
	require.Empty(t, excl)

	// Removing a node from the pool drops its row at the next run.
	_, err = dhcp.Make(ctx, s, dhcp.MakeOptions{Self: "mn1", Applier: ac, Delete: true, Noderange: "cn001", Guard: hold0})
	require.NoError(t, err)
	require.NoError(t, s.RemoveNodes(ctx, []string{"cn001"}))
	_, err = dhcp.Make(ctx, s, dhcp.MakeOptions{Self: "mn1", Applier: ac, New: true, Guard: hold0})
	require.NoError(t, err)
	excl, err = dhcp.Excluded(ctx, s)
	require.NoError(t, err)
	require.Empty(t, excl)
}

// CheckOnly and a refused file write nothing, not even the removal.
func TestMakeWritesNothingWhenRefused(t *testing.T) {
	s := makePool(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dhcpd.conf")
	require.NoError(t, os.WriteFile(path, []byte("# someone else's dhcpd.conf\n"), 0o644))
	v0, err := s.Version(ctx)
	require.NoError(t, err)
	_, err = dhcp.Make(ctx, s, dhcp.MakeOptions{Self: "mn1", Applier: dhcp.ApplierConfig{Path: path, Check: dhcp.CheckNever}, Delete: true, Noderange: "cn001"})
	require.ErrorIs(t, err, dhcp.ErrFormat)
	b, _ := os.ReadFile(path)
	require.Equal(t, "# someone else's dhcpd.conf\n", string(b))
	v1, err := s.Version(ctx)
	require.NoError(t, err)
	require.Equal(t, v0, v1)
	excl, err := dhcp.Excluded(ctx, s)
	require.NoError(t, err)
	require.Empty(t, excl)
}

type fixedGate struct {
	epoch int64
	ok    bool
}

func (g fixedGate) ServeDynamic() (int64, bool) { return g.epoch, g.ok }

// The dynamic range: only the MN, only when the guard confirms; a file
// that already serves it under this epoch keeps it without a new hold.
func TestMakeDynamicRange(t *testing.T) {
	s := makePool(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	ac := dhcp.ApplierConfig{Path: filepath.Join(dir, "mn1.conf"), Check: dhcp.CheckNever}

	rep, err := dhcp.Make(ctx, s, dhcp.MakeOptions{Self: "mn1", Applier: ac, All: true, Gate: fixedGate{1, false}})
	require.NoError(t, err)
	require.False(t, rep.Dynamic.Served, "the gate does not confirm")
	require.Contains(t, rep.Dynamic.Why, "does not confirm")

	rep, err = dhcp.Make(ctx, s, dhcp.MakeOptions{Self: "mn1", Applier: ac, All: true, Gate: fixedGate{1, true}})
	require.NoError(t, err)
	require.True(t, rep.Dynamic.Served)
	require.True(t, rep.Config.Dynamic)

	// The file serves the range under epoch 1: a one-shot run keeps it at
	// once, even with an hour's hold.
	long := []mnguard.Option{mnguard.WithHold(time.Hour)}
	rep, err = dhcp.Make(ctx, s, dhcp.MakeOptions{Self: "mn1", Applier: ac, All: true, Guard: long})
	require.NoError(t, err)
	require.True(t, rep.Dynamic.Served, rep.Dynamic.Why)

	// A new file on the MN waits the hold; a short one here.
	fresh := ac
	fresh.Path = filepath.Join(dir, "fresh.conf")
	rep, err = dhcp.Make(ctx, s, dhcp.MakeOptions{Self: "mn1", Applier: fresh, All: true,
		Guard: []mnguard.Option{mnguard.WithTiming(100*time.Millisecond, 500*time.Millisecond), mnguard.WithHold(300 * time.Millisecond)}})
	require.NoError(t, err)
	require.True(t, rep.Dynamic.Served, rep.Dynamic.Why)
	require.Contains(t, rep.Dynamic.Why, "after the hold")

	// mnpool sync (poolsync.Sync without a gate) decides as makedhcp does:
	// the file serves the range under epoch 1, so it keeps it at once
	// (the default hold, 8 s, would outlast this deadline).
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
	defer scancel()
	srep, err := poolsync.Sync(sctx, s, "mn1", poolsync.Options{Steps: []poolsync.Step{fresh.SyncStep()}})
	require.NoError(t, err)
	require.Contains(t, srep.Steps[0].Detail, "dynamic range (epoch 1)")
	require.True(t, nodesServeRange(t, fresh.Path))

	sn := ac
	sn.Path = filepath.Join(dir, "sn1.conf")
	rep, err = dhcp.Make(ctx, s, dhcp.MakeOptions{Self: "sn1", Applier: sn, All: true, Gate: fixedGate{1, true}})
	require.NoError(t, err)
	require.False(t, rep.Config.Dynamic, "an SN never serves the range")
	require.Contains(t, rep.Dynamic.Why, "not the MN")
}

func nodesIn(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	in, err := dhcp.Parse(b)
	require.NoError(t, err)
	return in.Nodes()
}

func requireSameFile(t *testing.T, a, b string) {
	t.Helper()
	x, err := os.ReadFile(a)
	require.NoError(t, err)
	y, err := os.ReadFile(b)
	require.NoError(t, err)
	require.Equal(t, string(x), string(y))
}

func nodesServeRange(t *testing.T, path string) bool {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	in, err := dhcp.Parse(b)
	require.NoError(t, err)
	return in.Dynamic
}
