package pool_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/storetest"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/liveness"
)

func view(states map[string]liveness.State) liveness.Static {
	return liveness.Static(states)
}

func TestRouteNodesFollowsFailoverOrder(t *testing.T) {
	nodes := []pool.Node{
		{Name: "cn1", ServiceNodes: []string{"sn1", "sn2"}},
		{Name: "cn2", ServiceNodes: []string{"sn2", "mn1"}},
		{Name: "cn3", ServiceNodes: []string{"mn1", "sn1"}},
		{Name: "cn4"},
		{Name: "cn5", ServiceNodes: []string{"gone", "sn2"}},
	}
	all := func(s liveness.State) map[string]liveness.State {
		return map[string]liveness.State{"mn1": s, "sn1": s, "sn2": s}
	}
	cases := map[string]struct {
		live map[string]liveness.State
		want pool.Routing
	}{
		"all alive": {all(liveness.Alive), pool.Routing{
			ByMember:   map[string][]string{"sn1": {"cn1"}, "sn2": {"cn2", "cn5"}, "mn1": {"cn3"}},
			Unassigned: []string{"cn4"}, FailedOver: 1}},
		"nothing known yet: list order": {all(liveness.Unknown), pool.Routing{
			ByMember:   map[string][]string{"sn1": {"cn1"}, "sn2": {"cn2", "cn5"}, "mn1": {"cn3"}},
			Unassigned: []string{"cn4"}, FailedOver: 1}},
		"sn1 dead": {map[string]liveness.State{"mn1": liveness.Alive, "sn1": liveness.Dead, "sn2": liveness.Alive}, pool.Routing{
			ByMember:   map[string][]string{"sn2": {"cn1", "cn2", "cn5"}, "mn1": {"cn3"}},
			Unassigned: []string{"cn4"}, FailedOver: 2}},
		"sn2 suspect, the MN dead": {map[string]liveness.State{"mn1": liveness.Dead, "sn1": liveness.Alive, "sn2": liveness.Suspect}, pool.Routing{
			ByMember: map[string][]string{"sn1": {"cn1", "cn3"}},
			Down:     []string{"cn2", "cn5"}, Unassigned: []string{"cn4"}, FailedOver: 1}},
		"all dead": {all(liveness.Dead), pool.Routing{
			ByMember: map[string][]string{},
			Down:     []string{"cn1", "cn2", "cn3", "cn5"}, Unassigned: []string{"cn4"}}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			isMember := func(m string) bool { return m != "gone" }
			got := pool.RouteNodes(nodes, view(c.live), isMember)
			require.Empty(t, cmp.Diff(c.want, got, cmpopts.EquateEmpty()))
		})
	}
}

// TestStoreRouteFromAnyMember routes the same nodes from stores opened as
// different members: the answer does not depend on who asks.
func TestStoreRouteFromAnyMember(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := b.DSN(t)
			s := storetest.Open(t, dsn)
			storetest.Seed(t, s, 9)
			live := view(map[string]liveness.State{"mn1": liveness.Alive, "sn1": liveness.Dead, "sn2": liveness.Alive})
			var first pool.Routing
			for i, self := range []string{"mn1", "sn1", "sn2"} {
				as := storetest.Open(t, dsn, pool.WithSelf(self))
				r, err := as.Route(ctx, nil, live)
				require.NoError(t, err)
				if i == 0 {
					first = r
					continue
				}
				require.Equal(t, first, r, "routing as %s differs", self)
			}
			// makeNodes lists: cn1 sn1,sn2; cn2 sn2,mn1; cn3 mn1,sn1; ...
			require.Equal(t, []string{"cn00001", "cn00002", "cn00004", "cn00005", "cn00007", "cn00008"}, first.ByMember["sn2"])
			require.Equal(t, []string{"cn00003", "cn00006", "cn00009"}, first.ByMember["mn1"])
			require.Equal(t, 3, first.FailedOver)

			r, err := s.Route(ctx, []string{"cn00003", "cn00003", "cn00001"}, live)
			require.NoError(t, err)
			require.Equal(t, map[string][]string{"mn1": {"cn00003"}, "sn2": {"cn00001"}}, r.ByMember)
			_, err = s.Route(ctx, []string{"cn00001", "x1", "x2"}, live)
			require.ErrorIs(t, err, pool.ErrNotFound)
			require.ErrorContains(t, err, "x1, x2")
		})
	}
}
