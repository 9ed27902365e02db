package pool_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/storetest"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
)

// Seeds of the random pools the assignment properties are checked on.
var assignSeeds = []uint64{1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987, 1597, 2584, 4181, 6765, 10946,
	17711, 28657, 46368, 75025, 121393, 196418, 317811, 514229, 832040, 1346269}

// randomPool builds a pool state in memory: 1-3 networks, 3-9 members
// (some disabled, some without tftp, some missing a network), 0-3000
// nodes with random, partly stale lists. Every network has at least
// `width` eligible members. No node has a manual list.
func randomPool(seed uint64, width int) *pool.State {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	st := &pool.State{Master: pool.Master{Member: "mn", Epoch: 1}}
	nNets := 1 + r.IntN(3)
	for i := range nNets {
		st.Networks = append(st.Networks, pool.Network{Name: fmt.Sprintf("net%d", i), Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16)})
	}
	nMem := 3 + r.IntN(7)
	for i := range nMem {
		name := fmt.Sprintf("sn%02d", i)
		if i == 0 {
			name = "mn"
		}
		m := pool.Member{Name: name, Services: service.All(), Addresses: map[string]netip.Addr{}}
		for j := range nNets {
			if r.IntN(5) > 0 {
				m.Addresses[fmt.Sprintf("net%d", j)] = netip.AddrFrom4([4]byte{10, byte(j), 0, byte(1 + i)})
			}
		}
		switch r.IntN(8) {
		case 0:
			m.Disabled = true
		case 1:
			m.Services = []service.Service{service.DHCP, service.DNS}
		}
		st.Members = append(st.Members, m)
	}
	// Make every network servable: the first `width` members serve all.
	for i := 0; i < width && i < len(st.Members); i++ {
		st.Members[i].Disabled = false
		st.Members[i].Services = service.All()
		for j := range nNets {
			st.Members[i].Addresses[fmt.Sprintf("net%d", j)] = netip.AddrFrom4([4]byte{10, byte(j), 0, byte(1 + i)})
		}
	}
	sort.Slice(st.Members, func(a, b int) bool { return st.Members[a].Name < st.Members[b].Name })
	nNodes := r.IntN(3001)
	for i := range nNodes {
		n := pool.Node{Name: fmt.Sprintf("cn%05d", i), Network: fmt.Sprintf("net%d", r.IntN(nNets)), Revision: int64(r.IntN(3))}
		// Random current lists: empty, valid-looking or naming anyone.
		for range r.IntN(4) {
			sn := st.Members[r.IntN(len(st.Members))].Name
			if !slices.Contains(n.ServiceNodes, sn) {
				n.ServiceNodes = append(n.ServiceNodes, sn)
			}
		}
		st.Nodes = append(st.Nodes, n)
	}
	return st
}

// eligible returns the members eligible for network (the rule Assign
// documents).
func eligible(st *pool.State, network string) []string {
	var out []string
	for _, m := range st.Members {
		_, has := m.Addresses[network]
		if !m.Disabled && m.Runs(service.DHCP) && m.Runs(service.TFTP) && (network == "" || has) {
			out = append(out, m.Name)
		}
	}
	return out
}

// apply returns a copy of st with the plan's lists written.
func apply(st *pool.State, p *pool.AssignPlan) *pool.State {
	out := *st
	out.Nodes = slices.Clone(st.Nodes)
	idx := map[string]int{}
	for i, n := range out.Nodes {
		idx[n.Name] = i
	}
	for _, c := range p.Changes {
		n := &out.Nodes[idx[c.Node]]
		n.ServiceNodes = c.New
		n.Manual = false
		n.Revision++
	}
	return &out
}

// checkLists asserts the invariants of an assigned state: lists of width
// distinct eligible members, first entries balanced per network, second
// entries balanced per network and first member.
func checkLists(t *testing.T, st *pool.State, width int) {
	t.Helper()
	firsts := map[string]map[string]int{}
	seconds := map[string]map[string]int{}
	for _, n := range st.Nodes {
		el := eligible(st, n.Network)
		require.Len(t, n.ServiceNodes, width, "node %s", n.Name)
		seen := map[string]bool{}
		for _, sn := range n.ServiceNodes {
			require.Contains(t, el, sn, "node %s on %s lists a member that is not eligible", n.Name, n.Network)
			require.False(t, seen[sn], "node %s lists %s twice", n.Name, sn)
			seen[sn] = true
		}
		if firsts[n.Network] == nil {
			firsts[n.Network] = map[string]int{}
		}
		firsts[n.Network][n.ServiceNodes[0]]++
		key := n.Network + "/" + n.ServiceNodes[0]
		if seconds[key] == nil {
			seconds[key] = map[string]int{}
		}
		seconds[key][n.ServiceNodes[1]]++
	}
	for network, counts := range firsts {
		lo, hi := spread(eligible(st, network), counts)
		require.LessOrEqual(t, hi-lo, 1, "network %s: first entries %v are not balanced", network, counts)
	}
	for key, counts := range seconds {
		network, first, _ := cut(key)
		var bins []string
		for _, m := range eligible(st, network) {
			if m != first {
				bins = append(bins, m)
			}
		}
		lo, hi := spread(bins, counts)
		require.LessOrEqual(t, hi-lo, 1, "%s: second entries %v are not balanced", key, counts)
	}
}

func cut(s string) (string, string, bool) {
	for i := range s {
		if s[i] == '/' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func spread(members []string, counts map[string]int) (lo, hi int) {
	lo = int(^uint(0) >> 1)
	for _, m := range members {
		lo = min(lo, counts[m])
		hi = max(hi, counts[m])
	}
	return lo, hi
}

func firstCounts(st *pool.State) map[string]map[string]int {
	out := map[string]map[string]int{}
	for _, n := range st.Nodes {
		if out[n.Network] == nil {
			out[n.Network] = map[string]int{}
		}
		if len(n.ServiceNodes) > 0 {
			out[n.Network][n.ServiceNodes[0]]++
		}
	}
	return out
}

func plan(t *testing.T, st *pool.State, o pool.AssignOptions) *pool.AssignPlan {
	t.Helper()
	p, err := pool.PlanAssignment(st, o)
	require.NoError(t, err)
	return p
}

func TestAssignPropertiesOverRandomPools(t *testing.T) {
	for _, seed := range assignSeeds {
		for _, width := range []int{2, 3} {
			t.Run(fmt.Sprintf("seed%d/width%d", seed, width), func(t *testing.T) {
				st := randomPool(seed, width)
				o := pool.AssignOptions{Width: width}
				p := plan(t, st, o)
				after := apply(st, p)
				checkLists(t, after, width)

				// Deterministic, and a second run changes nothing.
				p2 := plan(t, st, o)
				require.Equal(t, p.Changes, p2.Changes)
				again := plan(t, after, o)
				require.Empty(t, again.Changes, "re-running assign changed lists")

				// Adding an eligible member moves between floor and ceil of
				// T/(k+1) first entries per network: what the newcomer must
				// take, and no more.
				grown := *after
				grown.Members = slices.Clone(after.Members)
				nm := pool.Member{Name: "zz-new", Services: service.All(), Addresses: map[string]netip.Addr{}}
				for _, n := range after.Networks {
					nm.Addresses[n.Name] = netip.AddrFrom4([4]byte{10, n.Prefix.Addr().As4()[1], 1, 1})
				}
				grown.Members = append(grown.Members, nm)
				pg := plan(t, &grown, o)
				grownAfter := apply(&grown, pg)
				checkLists(t, grownAfter, width)
				moved := movedFirsts(after, grownAfter)
				for network, total := range nodesPerNetwork(after) {
					k := len(eligible(&grown, network))
					require.GreaterOrEqual(t, moved[network], total/k, "network %s", network)
					require.LessOrEqual(t, moved[network], (total+k-1)/k, "network %s: adding a member moved too many nodes", network)
					require.Equal(t, moved[network], firstCounts(grownAfter)[network]["zz-new"], "network %s: nodes moved elsewhere than to the new member", network)
				}

				// Disabling a member moves exactly the nodes it was first
				// for, when the rest can still serve every network.
				victim := eligible(after, after.Networks[0].Name)[0]
				shrunk := *after
				shrunk.Members = slices.Clone(after.Members)
				for i := range shrunk.Members {
					if shrunk.Members[i].Name == victim {
						shrunk.Members[i].Disabled = true
					}
				}
				ok := true
				for _, n := range after.Networks {
					if len(eligible(&shrunk, n.Name)) < width {
						ok = false
					}
				}
				if !ok {
					_, err := pool.PlanAssignment(&shrunk, o)
					require.ErrorIs(t, err, pool.ErrInvalid)
					return
				}
				ps := plan(t, &shrunk, o)
				shrunkAfter := apply(&shrunk, ps)
				checkLists(t, shrunkAfter, width)
				before := firstCounts(after)
				for network, m := range movedFirsts(after, shrunkAfter) {
					require.Equal(t, before[network][victim], m, "network %s: disabling %s moved other nodes too", network, victim)
				}
				// Lists that did not name the victim are untouched, except
				// for the few second entries that must shift to keep the
				// second entries balanced (at most one per member and
				// first-member group).
				shifted := 0
				for i, n := range after.Nodes {
					if !slices.Contains(n.ServiceNodes, victim) && !slices.Equal(n.ServiceNodes, shrunkAfter.Nodes[i].ServiceNodes) {
						require.Equal(t, n.ServiceNodes[0], shrunkAfter.Nodes[i].ServiceNodes[0], "node %s did not list %s but moved", n.Name, victim)
						shifted++
					}
				}
				groups := 0
				for _, n := range after.Networks {
					k := len(eligible(after, n.Name))
					groups += k * k
				}
				require.LessOrEqual(t, shifted, groups, "too many lists changed that did not name %s", victim)
			})
		}
	}
}

func nodesPerNetwork(st *pool.State) map[string]int {
	out := map[string]int{}
	for _, n := range st.Nodes {
		out[n.Network]++
	}
	return out
}

func movedFirsts(a, b *pool.State) map[string]int {
	out := map[string]int{}
	for i := range a.Nodes {
		if a.Nodes[i].ServiceNodes[0] != b.Nodes[i].ServiceNodes[0] {
			out[a.Nodes[i].Network]++
		}
	}
	return out
}

func TestAssignKeepsManualListsUnlessRebalance(t *testing.T) {
	st := randomPool(7, 2)
	for i := range st.Nodes {
		if i%5 == 0 {
			// Manual lists all on the same two members: they keep them
			// and count as load.
			el := eligible(st, st.Nodes[i].Network)
			st.Nodes[i].ServiceNodes = []string{el[0], el[1]}
			st.Nodes[i].Manual = true
		}
	}
	p := plan(t, st, pool.AssignOptions{})
	after := apply(st, p)
	for i, n := range st.Nodes {
		if n.Manual {
			require.Equal(t, n.ServiceNodes, after.Nodes[i].ServiceNodes)
		}
	}
	require.Equal(t, (len(st.Nodes)+4)/5, p.KeptManual)
	p2 := plan(t, st, pool.AssignOptions{Rebalance: true})
	checkLists(t, apply(st, p2), 2)
	require.Zero(t, p2.KeptManual)
}

func TestAssignSelectsNodesAndReportsUnknownOnes(t *testing.T) {
	st := randomPool(3, 2)
	require.NotEmpty(t, st.Nodes)
	_, err := pool.PlanAssignment(st, pool.AssignOptions{Nodes: []string{st.Nodes[0].Name, "nope1", "nope2"}})
	require.ErrorIs(t, err, pool.ErrNotFound)
	require.ErrorContains(t, err, "nope1, nope2")
	p := plan(t, st, pool.AssignOptions{Nodes: []string{st.Nodes[0].Name}})
	require.Equal(t, 1, p.Selected)
	for _, c := range p.Changes {
		require.Equal(t, st.Nodes[0].Name, c.Node)
	}
}

func TestAssignRefusesNarrowListsAndTooFewMembers(t *testing.T) {
	st := randomPool(3, 2)
	_, err := pool.PlanAssignment(st, pool.AssignOptions{Width: 1})
	require.ErrorIs(t, err, pool.ErrInvalid)
	require.ErrorContains(t, err, "at least 2")
	for i := range st.Members {
		if st.Members[i].Name != "mn" {
			st.Members[i].Disabled = true
		}
	}
	_, err = pool.PlanAssignment(st, pool.AssignOptions{})
	require.ErrorIs(t, err, pool.ErrInvalid)
	require.ErrorContains(t, err, "only 1 are eligible (mn)")
	require.ErrorContains(t, err, "(disabled")
}

func TestAssignMNAppearsLikeAnySN(t *testing.T) {
	st := randomPool(11, 2)
	after := apply(st, plan(t, st, pool.AssignOptions{}))
	counts := firstCounts(after)
	for network, c := range counts {
		if len(eligible(st, network)) > 0 && slices.Contains(eligible(st, network), "mn") && nodesPerNetwork(st)[network] >= len(eligible(st, network)) {
			require.Positive(t, c["mn"], "network %s: the MN is first for no node", network)
		}
	}
}

func TestStoreAssign(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx := context.Background()
		storetest.Seed(t, s, 600)
		st, err := s.LoadState(ctx)
		require.NoError(t, err)
		// A manual list that must survive.
		manual := st.Nodes[3]
		manual.ServiceNodes = []string{"sn2", "sn1"}
		manual.Manual = true
		require.NoError(t, s.AddNodes(ctx, []pool.Node{manual}, pool.AddOptions{Replace: true}))

		v0, err := s.Version(ctx)
		require.NoError(t, err)
		res, err := s.Assign(ctx, pool.AssignOptions{Width: 3})
		require.NoError(t, err)
		require.Equal(t, 600, res.Selected)
		require.Equal(t, 1, res.KeptManual)
		require.Equal(t, len(res.Changes), res.Written)
		v1, err := s.Version(ctx)
		require.NoError(t, err)
		// One audit record (and change-counter bump) per batch of 500.
		require.Equal(t, int64((res.Written+499)/500), v1-v0)

		st, err = s.LoadState(ctx)
		require.NoError(t, err)
		load := map[string]int{}
		for _, n := range st.Nodes {
			if n.Name == manual.Name {
				require.Equal(t, []string{"sn2", "sn1"}, n.ServiceNodes)
				require.True(t, n.Manual)
				continue
			}
			require.Len(t, n.ServiceNodes, 3)
			require.False(t, n.Manual)
			load[n.ServiceNodes[0]]++
		}
		load["sn2"]++ // the manual node counts
		require.Equal(t, res.Load, load)
		lo, hi := spread([]string{"mn1", "sn1", "sn2"}, load)
		require.LessOrEqual(t, hi-lo, 1, "loads %v", load)

		// Again: nothing written, no audit, the change counter stays.
		res2, err := s.Assign(ctx, pool.AssignOptions{Width: 3})
		require.NoError(t, err)
		require.Zero(t, res2.Written)
		v2, err := s.Version(ctx)
		require.NoError(t, err)
		require.Equal(t, v1, v2)

		// Rebalance replaces the manual list and clears the flag.
		res3, err := s.Assign(ctx, pool.AssignOptions{Width: 3, Rebalance: true, Nodes: []string{manual.Name}})
		require.NoError(t, err)
		require.Equal(t, 1, res3.Written)
		nodes, err := s.Nodes(ctx)
		require.NoError(t, err)
		require.False(t, nodes[3].Manual)
		require.Greater(t, nodes[3].Revision, st.Nodes[3].Revision)
	})
}

func BenchmarkPlanAssignment100kNodes8Members(b *testing.B) {
	st := benchPool(100_000, 8)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pool.PlanAssignment(st, pool.AssignOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPlanAssignmentStable100kNodes8Members(b *testing.B) {
	st := benchPool(100_000, 8)
	p, err := pool.PlanAssignment(st, pool.AssignOptions{})
	if err != nil {
		b.Fatal(err)
	}
	st = apply(st, p)
	b.ReportAllocs()
	for b.Loop() {
		p, err := pool.PlanAssignment(st, pool.AssignOptions{})
		if err != nil || len(p.Changes) != 0 {
			b.Fatal(err, len(p.Changes))
		}
	}
}

// benchPool is n unassigned nodes on one network served by m members.
func benchPool(n, m int) *pool.State {
	st := &pool.State{Networks: []pool.Network{{Name: "mgmt", Prefix: netip.MustParsePrefix("10.0.0.0/8")}}}
	for i := range m {
		st.Members = append(st.Members, pool.Member{Name: fmt.Sprintf("sn%02d", i), Services: service.All(),
			Addresses: map[string]netip.Addr{"mgmt": netip.AddrFrom4([4]byte{10, 0, 0, byte(1 + i)})}})
	}
	for i := range n {
		st.Nodes = append(st.Nodes, pool.Node{Name: fmt.Sprintf("cn%06d", i), Network: "mgmt"})
	}
	return st
}

// BenchmarkStoreAssign100kNodes8Members measures Store.Assign writing
// lists for 100,000 nodes without one (load, plan, 200 batches of
// conditional updates with an audit record each).
func BenchmarkStoreAssign100kNodes8Members(b *testing.B) {
	for _, be := range storetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			ctx := context.Background()
			s := storetest.Open(b, be.DSN(b))
			st := benchPool(100_000, 8)
			storetest.MustNet(b, s, "mgmt", "10.0.0.0/8", "")
			if _, err := s.Init(ctx, pool.InitOptions{MN: st.Members[0]}); err != nil {
				b.Fatal(err)
			}
			for _, m := range st.Members[1:] {
				if err := s.AddMember(ctx, m, false); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.AddNodes(ctx, st.Nodes, pool.AddOptions{}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				res, err := s.Assign(ctx, pool.AssignOptions{})
				if err != nil || res.Written != 100_000 {
					b.Fatal(err, res.Written)
				}
				b.StopTimer()
				if err := s.Tx(ctx, func(tx *sqlx.Tx) error {
					_, err := tx.ExecContext(ctx, "UPDATE nodes SET servicenodes = ''")
					return err
				}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
