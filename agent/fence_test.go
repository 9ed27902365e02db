package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/mnpool/mnpool/locking"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/liveness"
	"github.com/mnpool/mnpool/pool/service"
)

// TestFailoverMoveIsFenced: the move of a failover commits only while the
// lease it was started under is current; with a released or taken-over
// lease nothing moves.
func TestFailoverMoveIsFenced(t *testing.T) {
	ctx := context.Background()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "pool.db")
	s, err := pool.Open(ctx, dsn, pool.WithMigrate(), pool.WithSelf("mn1"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.AddNetwork(ctx, pool.Network{Name: "mgmt", Prefix: netip.MustParsePrefix("10.0.0.0/16")}, false); err != nil {
		t.Fatal(err)
	}
	addr := func(b byte) map[string]netip.Addr {
		return map[string]netip.Addr{"mgmt": netip.AddrFrom4([4]byte{10, 0, 0, b})}
	}
	if _, err := s.Init(ctx, pool.InitOptions{MN: pool.Member{Name: "mn1", Addresses: addr(1)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddMember(ctx, pool.Member{Name: "sn1", Addresses: addr(2), Services: service.All()}, false); err != nil {
		t.Fatal(err)
	}
	var nodes []pool.Node
	for i := range 4 {
		nodes = append(nodes, pool.Node{Name: fmt.Sprintf("cn%d", i), IP: netip.AddrFrom4([4]byte{10, 0, 1, byte(i + 1)}), ServiceNodes: []string{"sn1", "mn1"}})
	}
	if err := s.AddNodes(ctx, nodes, pool.AddOptions{}); err != nil {
		t.Fatal(err)
	}
	a, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	lk, err := locking.New(s)
	if err != nil {
		t.Fatal(err)
	}
	old, err := lk.Lock(ctx, FailoverLockName)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	cur, err := lk.Lock(ctx, FailoverLockName)
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Unlock(ctx)
	req := pool.MoveRequest{Source: "sn1", Liveness: liveness.Static{"sn1": liveness.Dead}}

	res, err := a.move(ctx, old, req, "sn1", 0)
	if !errors.Is(err, locking.ErrStaleToken) {
		t.Fatalf("move under the released lease (token %d; current %d) = %v, want ErrStaleToken", old.Token(), cur.Token(), err)
	}
	if res != nil && res.Counts.Moved != 0 {
		t.Fatalf("%d nodes moved under a stale lease", res.Counts.Moved)
	}
	got, err := s.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range got {
		if n.ServiceNodes[0] != "sn1" {
			t.Fatalf("node %s moved to %v under a stale lease", n.Name, n.ServiceNodes)
		}
	}

	// A member that beats again after it was judged dead keeps its nodes.
	if _, err := s.Heartbeat(ctx, "sn1"); err != nil {
		t.Fatal(err)
	}
	res, err = a.move(ctx, cur, req, "sn1", 0)
	if !errors.Is(err, ErrMemberAlive) {
		t.Fatalf("move of a member that beat again = %v, want ErrMemberAlive", err)
	}
	if res != nil && res.Counts.Moved != 0 {
		t.Fatalf("%d nodes moved off a member that is alive again", res.Counts.Moved)
	}

	res, err = a.move(ctx, cur, req, "sn1", 1)
	if err != nil || res.Counts.Moved != 4 {
		t.Fatalf("move under the current lease = %v, %+v; want 4 moved", err, res.Counts)
	}
}
