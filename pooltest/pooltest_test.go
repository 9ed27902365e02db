package pooltest_test

import (
	"context"
	"net/netip"
	"testing"

	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pooltest"
)

func TestSeededPool(t *testing.T) {
	pooltest.Each(t, func(t *testing.T, p *pooltest.Pool) {
		ctx := context.Background()
		st, err := p.Store.LoadState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Master.Member != "mn1" || st.Master.Epoch != 1 {
			t.Errorf("master %+v, want mn1 epoch 1", st.Master)
		}
		if len(st.Members) != 3 || len(st.Nodes) != 7 {
			t.Fatalf("%d members, %d nodes; want 3 and 7", len(st.Members), len(st.Nodes))
		}
		n := st.Nodes[1]
		if n.Name != "cn0002" || n.IP != netip.MustParseAddr("10.0.1.2") || n.Network != pooltest.NetworkName ||
			len(n.ServiceNodes) != 3 || n.ServiceNodes[0] != "sn1" {
			t.Errorf("cn0002 = %+v", n)
		}
		site, err := p.Store.Site(ctx)
		if err != nil || site["autofailover"] != "1" {
			t.Errorf("site %v, %v: want autofailover=1", site, err)
		}
		// A second store on the same database, as another member.
		s2 := p.Open(t, pool.WithSelf("sn1"))
		if nodes, err := s2.Nodes(ctx); err != nil || len(nodes) != 7 {
			t.Errorf("second store: %d nodes, %v", len(nodes), err)
		}
	}, pooltest.WithNodes(7), pooltest.WithSite(map[string]string{"autofailover": "1"}))
}

func TestFreshPoolPerTest(t *testing.T) {
	for _, b := range pooltest.Backends() {
		t.Run(string(b), func(t *testing.T) {
			a := pooltest.New(t, pooltest.WithBackend(b), pooltest.WithNodes(2))
			c := pooltest.New(t, pooltest.WithBackend(b), pooltest.WithNodes(2))
			if a.DSN == c.DSN {
				t.Fatalf("two pools share %s", a.DSN)
			}
			if err := a.Store.RemoveNodes(context.Background(), []string{"cn0001"}); err != nil {
				t.Fatal(err)
			}
			if nodes, err := c.Store.Nodes(context.Background()); err != nil || len(nodes) != 2 {
				t.Fatalf("the other pool has %d nodes (%v), want 2", len(nodes), err)
			}
		})
	}
}

func TestMembersAndPrefix(t *testing.T) {
	p := pooltest.New(t, pooltest.WithMembers("mgt", "svc1"), pooltest.WithPrefix(netip.MustParsePrefix("127.44.0.0/20")),
		pooltest.WithNodes(300), pooltest.WithSelf("svc1"))
	if p.Store.Self() != "svc1" || p.Self != "svc1" {
		t.Fatalf("self %q", p.Store.Self())
	}
	if a := p.Members[1].Addresses[pooltest.NetworkName]; a != netip.MustParseAddr("127.44.0.2") {
		t.Errorf("svc1 at %s", a)
	}
	if ip := p.Nodes[299].IP; !p.Network.Prefix.Contains(ip) || ip.As4()[3] == 0 || ip.As4()[3] == 255 {
		t.Errorf("cn0300 at %s", ip)
	}
}
