package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mnpool/mnpool/agent"
	"github.com/mnpool/mnpool/internal/testenv"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/liveness"
	"github.com/mnpool/mnpool/pooltest"
	"github.com/mnpool/mnpool/rolefiles"
)

func sqliteDSN(t testing.TB) string { return "sqlite:" + filepath.Join(t.TempDir(), "pool.db") }

// openAdmin opens the store as an administrator would (mnpool on mn1).
func openAdmin(t testing.TB, dsn string) *pool.Store {
	t.Helper()
	s, err := pool.Open(context.Background(), dsn, pool.WithSelf("mn1"), pool.WithActor("admin"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestFailover runs three agents on one SQLite pool: with autofailover
// unset a dead member keeps its nodes; once it is set, exactly one agent
// moves them to the next member of each list, audits it, and the
// survivors re-render their DHCP files; the member that comes back stays
// empty. The leader's metrics and health are scraped over HTTP.
func TestFailover(t *testing.T) {
	ctx := context.Background()
	dsn := sqliteDSN(t)
	seedPool(t, dsn, 30, nil)
	admin := openAdmin(t, dsn)
	addr := map[string]string{}
	ags := map[string]*running{}
	for _, m := range members {
		addr[m] = freeAddr(t)
		ags[m] = startAgent(t, dsn, m, t.TempDir(), agent.WithTiming(fastTiming), fastGuard(), agent.WithHTTPAddr(addr[m]), agent.WithHTTPToken(testToken))
	}
	for _, m := range members {
		waitFor(t, 15*time.Second, m+" judging every member alive", func() bool { return allAlive(ags[m], members...) })
	}
	before := primaries(t, admin)
	if len(before["sn1"]) != 10 {
		t.Fatalf("sn1 serves %d nodes before, want 10", len(before["sn1"]))
	}

	// autofailover unset: a dead member keeps its nodes.
	if err := ags["sn1"].stop(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel = %v, want context.Canceled", err)
	}
	waitFor(t, 15*time.Second, "mn1 judging sn1 dead for 3 dead timeouts", func() bool {
		l := ags["mn1"].a.Liveness()["sn1"]
		return l.State == liveness.Dead && l.Silent >= 3*fastTiming.DeadAfter
	})
	if diff := cmp.Diff(before, primaries(t, admin)); diff != "" {
		t.Fatalf("nodes moved with autofailover unset (-before +after):\n%s", diff)
	}
	if n := auditCount(t, admin, "agent.failover", ""); n != 0 {
		t.Fatalf("%d agent.failover records with autofailover unset", n)
	}

	// autofailover=1: one leader moves sn1's nodes.
	if err := admin.SetSite(ctx, map[string]string{agent.SiteAutoFailover: "1"}); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, 15*time.Second, "sn1's nodes to move", func() bool { return len(primaries(t, admin)["sn1"]) == 0 })
	t.Logf("failover %v after autofailover=1", took)
	nodes, err := admin.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if slices.Contains(before["sn1"], n.Name) {
			if diff := cmp.Diff([]string{"sn2", "mn1", "sn1"}, n.ServiceNodes); diff != "" {
				t.Errorf("node %s list (-want +got):\n%s", n.Name, diff)
			}
		}
	}
	after := primaries(t, admin)
	if diff := cmp.Diff(before["mn1"], after["mn1"]); diff != "" {
		t.Errorf("mn1's own nodes changed:\n%s", diff)
	}
	if got, want := len(after["sn2"]), 20; got != want {
		t.Errorf("sn2 serves %d nodes after, want %d", got, want)
	}
	// The record is written right after the move's last batch, in its own
	// transaction.
	waitFor(t, 15*time.Second, "the agent.failover record", func() bool { return len(failoverReports(t, admin)) > 0 })
	if reps := failoverReports(t, admin); len(reps) != 1 || reps[0].Member != "sn1" || reps[0].Moved != 10 {
		t.Fatalf("agent.failover records %+v, want one for sn1 with 10 nodes moved", reps)
	}
	var leader string
	for _, m := range []string{"mn1", "sn2"} {
		if ev := ags[m].events.of(agent.EventFailover); len(ev) > 0 {
			if leader != "" {
				t.Fatalf("both %s and %s failed sn1 over", leader, m)
			}
			leader = m
			if ev[0].Failover.Moved != 10 || ev[0].Failover.Targets["sn2"] != 10 {
				t.Errorf("failover report %+v, want 10 nodes moved to sn2", *ev[0].Failover)
			}
		}
	}
	if leader == "" {
		t.Fatal("no agent reported the failover")
	}

	// The survivors re-render their DHCP configuration.
	st, err := admin.LoadState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"mn1", "sn2"} {
		path := filepath.Join(ags[m].dir, "dhcpd.conf")
		want := wantDHCP(t, st, m)
		waitFor(t, 10*time.Second, m+"'s dhcpd.conf after the failover", func() bool { return readFile(t, path) == want })
	}

	// The leader's metrics and health, once it has applied the move.
	var samples []sample
	waitFor(t, 10*time.Second, "the leader's metrics to count sn2's new nodes", func() bool {
		samples = scrape(t, "http://"+addr[leader]+"/metrics")
		n, _ := find(samples, "mnpool_member_nodes", map[string]string{"member": "sn2"})
		return n == 20
	})
	checkMetrics(t, samples, []metricCheck{
		{"mnpool_failovers_total", map[string]string{"member": "sn1"}, 1},
		{"mnpool_failover_nodes_total", map[string]string{"status": "moved"}, 10},
		{"mnpool_failover_leader", nil, 1},
		{"mnpool_autofailover_enabled", nil, 1},
		{"mnpool_member_nodes", map[string]string{"member": "sn2"}, 20},
		{"mnpool_member_nodes", map[string]string{"member": "sn1"}, 0},
		{"mnpool_member_state", map[string]string{"member": "sn1", "state": "dead"}, 1},
		{"mnpool_member_state", map[string]string{"member": "mn1", "state": "alive"}, 1},
		{"mnpool_heartbeat_age_seconds", map[string]string{"member": "mn1"}, -1},
		{"mnpool_heartbeat_age_seconds", map[string]string{"member": "sn1"}, -1},
		{"mnpool_heartbeat_age_seconds", map[string]string{"member": "sn2"}, -1},
		{"mnpool_mn_epoch", nil, 1},
		{"mnpool_db_healthy", nil, 1},
		{"mnpool_render_duration_seconds_count", map[string]string{"step": "dhcp"}, -1},
		{"mnpool_render_duration_seconds_count", map[string]string{"step": "role-files"}, -1},
		{"mnpool_failover_duration_seconds_count", nil, 1},
		{"mnpool_heartbeats_total", nil, -1},
		{"mnpool_agent_info", map[string]string{"member": leader}, 1},
		{"mnpool_build_info", map[string]string{"goversion": runtime.Version()}, 1},
	})
	if age, _ := find(samples, "mnpool_heartbeat_age_seconds", map[string]string{"member": "sn1"}); age < fastTiming.DeadAfter.Seconds() {
		t.Errorf("heartbeat age of the dead sn1 = %vs, want at least the dead timeout", age)
	}
	resp, err := getHealthz(addr[leader], testToken)
	if err != nil {
		t.Fatal(err)
	}
	var h agent.Health
	err = json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !h.OK || !h.Leader || h.Member != leader {
		t.Errorf("healthz of %s: status %d, err %v, %+v", leader, resp.StatusCode, err, h)
	}

	// sn1 returns: alive, and still serving nothing.
	ags["sn1"] = startAgent(t, dsn, "sn1", ags["sn1"].dir, agent.WithTiming(fastTiming), fastGuard())
	waitFor(t, 15*time.Second, "mn1 judging sn1 alive again", func() bool { return ags["mn1"].a.Liveness().LiveState("sn1") == liveness.Alive })
	st, err = admin.LoadState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := wantDHCP(t, st, "sn1")
	waitFor(t, 10*time.Second, "sn1's dhcpd.conf after its return", func() bool { return readFile(t, filepath.Join(ags["sn1"].dir, "dhcpd.conf")) == want })
	waitFor(t, 10*time.Second, "sn1 alive for 2 dead timeouts", func() bool {
		return len(ags["sn1"].events.of(agent.EventSynced)) > 0 && allAlive(ags["mn1"], members...) && ags["mn1"].a.Liveness()["sn1"].Counter > 2*int64(fastTiming.DeadAfter/fastTiming.HeartbeatInterval)
	})
	if got := primaries(t, admin)["sn1"]; len(got) != 0 {
		t.Errorf("sn1 serves %v after its return, want nothing until an admin moves nodes back", got)
	}
	if n := auditCount(t, admin, "agent.failover", ""); n != 1 {
		t.Errorf("%d agent.failover records, want 1", n)
	}
}

// TestSuspectIsNotFailedOver: a member whose heartbeats come slower than
// the suspect timeout but faster than the dead timeout is suspect, again
// and again, and never failed over.
func TestSuspectIsNotFailedOver(t *testing.T) {
	dsn := pooltest.New(t, pooltest.WithNodes(12), pooltest.WithSite(map[string]string{agent.SiteAutoFailover: "1"})).DSN
	admin := openAdmin(t, dsn)
	watch := agent.Timing{HeartbeatInterval: 100 * time.Millisecond, SuspectAfter: 300 * time.Millisecond, DeadAfter: 3 * time.Second, LeaseTTL: time.Second}
	slow := agent.Timing{HeartbeatInterval: 600 * time.Millisecond}
	ags := map[string]*running{
		"mn1": startAgent(t, dsn, "mn1", t.TempDir(), agent.WithTiming(watch), fastGuard()),
		"sn2": startAgent(t, dsn, "sn2", t.TempDir(), agent.WithTiming(watch), fastGuard()),
		"sn1": startAgent(t, dsn, "sn1", t.TempDir(), agent.WithTiming(slow), fastGuard(), agent.WithFailover(agent.FailoverPolicy{Disabled: true})),
	}
	before := primaries(t, admin)
	suspect := func(r *running) int {
		n := 0
		for _, e := range r.events.of(agent.EventLiveness) {
			if e.Member == "sn1" && e.State == liveness.Suspect {
				n++
			}
		}
		return n
	}
	waitFor(t, 30*time.Second, "mn1 and sn2 judging sn1 suspect 5 times each", func() bool { return suspect(ags["mn1"]) >= 5 && suspect(ags["sn2"]) >= 5 })
	leaders := len(ags["mn1"].events.of(agent.EventLeader)) + len(ags["sn2"].events.of(agent.EventLeader))
	if leaders == 0 {
		t.Fatal("no failover leader was elected")
	}
	if diff := cmp.Diff(before, primaries(t, admin)); diff != "" {
		t.Fatalf("nodes moved off a suspect member (-before +after):\n%s", diff)
	}
	for _, m := range []string{"mn1", "sn2"} {
		for _, e := range ags[m].events.of(agent.EventLiveness) {
			if e.Member == "sn1" && e.State == liveness.Dead {
				t.Errorf("%s judged the slow sn1 dead", m)
			}
		}
	}
	if n := auditCount(t, admin, "agent.failover", ""); n != 0 {
		t.Errorf("%d failovers of a suspect member", n)
	}
}

// TestGracefulStopHandsOverTheLease: a leader stopped by its context
// releases the failover lease, so another agent leads long before the
// lease's TTL.
func TestGracefulStopHandsOverTheLease(t *testing.T) {
	dsn := pooltest.New(t, pooltest.WithNodes(3), pooltest.WithSite(map[string]string{agent.SiteAutoFailover: "1"})).DSN
	tm := agent.Timing{HeartbeatInterval: 100 * time.Millisecond, SuspectAfter: 500 * time.Millisecond, DeadAfter: 8 * time.Second, LeaseTTL: 8 * time.Second}
	ags := map[string]*running{}
	for _, m := range members {
		ags[m] = startAgent(t, dsn, m, t.TempDir(), agent.WithTiming(tm), fastGuard())
	}
	leaderOf := func() string {
		for _, m := range members {
			if h := ags[m].a.Health(); h.Leader && h.Phase == agent.PhaseRunning {
				return m
			}
		}
		return ""
	}
	waitFor(t, 20*time.Second, "a failover leader", func() bool { return leaderOf() != "" })
	first := leaderOf()
	token := ags[first].a.Health().Token
	if err := ags[first].stop(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	took := waitFor(t, tm.LeaseTTL/2, "another leader within half the lease TTL", func() bool { return leaderOf() != "" })
	second := leaderOf()
	if second == first {
		t.Fatalf("%s still leads after it stopped", first)
	}
	if got := ags[second].a.Health().Token; got <= token {
		t.Errorf("token of the new leader %d, want more than %d", got, token)
	}
	t.Logf("%s took over from %s after %v", second, first, took)
	if got := leaseHolder(t, openAdmin(t, dsn)); got != second {
		t.Errorf("the failover lease is held by %q, want %s", got, second)
	}
}

// TestMNFailSafeWithoutDatabase: when the MN's agent loses the database,
// the MN guard's confirmation expires and the agent takes the dynamic range
// out of the DHCP file from its last snapshot.
func TestMNFailSafeWithoutDatabase(t *testing.T) {
	r, path, hasRange := startServingMN(t, 6)
	r.s.Close() // the database is gone for this agent
	cached := func() bool {
		for _, e := range r.events.of(agent.EventSynced) {
			if strings.Contains(e.Reason, "cached snapshot") {
				return true
			}
		}
		return false
	}
	took := waitFor(t, 10*time.Second, "the dynamic range withdrawn", func() bool { return !hasRange() && readFile(t, path) != "" })
	t.Logf("dynamic range withdrawn %v after the database was lost", took)
	waitFor(t, 5*time.Second, "the sync from the cached snapshot reported", cached)
	if r.a.Health().ServeDynamic {
		t.Error("health still says the MN serves the dynamic range")
	}
	if !strings.Contains(readFile(t, path), "cn0001") {
		t.Error("the file without the range lost the host entries")
	}
}

// startServingMN runs mn1's agent on a new pool of n nodes and waits until
// it serves the dynamic range. It returns the agent, the path of its DHCP
// file and a check for the range in it.
func startServingMN(t *testing.T, n int) (*running, string, func() bool) {
	t.Helper()
	dsn := sqliteDSN(t)
	seedPool(t, dsn, n, nil)
	r := startAgent(t, dsn, "mn1", t.TempDir(), agent.WithTiming(fastTiming), fastGuard())
	path := filepath.Join(r.dir, "dhcpd.conf")
	hasRange := func() bool { return strings.Contains(readFile(t, path), "range 10.0.200.1 10.0.200.200;") }
	waitFor(t, 15*time.Second, "the MN serving the dynamic range", func() bool { return hasRange() && r.a.Health().ServeDynamic })
	return r, path, hasRange
}

func TestNewRejects(t *testing.T) {
	dsn := sqliteDSN(t)
	seedPool(t, dsn, 0, nil)
	noSelf, err := pool.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer noSelf.Close()
	s := openAdmin(t, dsn)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for name, c := range map[string]struct {
		s    *pool.Store
		opts []agent.Option
	}{
		"no store":              {nil, nil},
		"store without member":  {noSelf, nil},
		"negative timing":       {s, []agent.Option{agent.WithTiming(agent.Timing{DeadAfter: -time.Second})}},
		"zero watch interval":   {s, []agent.Option{agent.WithWatchInterval(0)}},
		"step twice":            {s, []agent.Option{agent.WithSteps(rolefiles.Step("/tmp/x"), rolefiles.Step("/tmp/y"))}},
		"negative cool-down":    {s, []agent.Option{agent.WithFailover(agent.FailoverPolicy{CoolDown: -time.Minute})}},
		"service without name":  {s, []agent.Option{agent.WithService("", func(context.Context) error { return nil })}},
		"address and listener":  {s, []agent.Option{agent.WithHTTPAddr("127.0.0.1:0"), agent.WithHTTPListener(ln)}},
		"negative node timeout": {s, []agent.Option{agent.WithNodeConfig(agent.NodeConfig{Timeout: -time.Second})}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := agent.New(c.s, c.opts...); !errors.Is(err, agent.ErrInvalid) {
				t.Errorf("New = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestRunFailsForUnknownMemberAndUnsafeTiming(t *testing.T) {
	dsn := sqliteDSN(t)
	seedPool(t, dsn, 0, nil)
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Timeout(20*time.Second))
	defer cancel()
	s, err := pool.Open(ctx, dsn, pool.WithSelf("sn9"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, err := agent.New(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Run(ctx); !errors.Is(err, agent.ErrNotMember) || !strings.Contains(err.Error(), "sn9") {
		t.Errorf("Run for a non-member = %v, want ErrNotMember naming sn9", err)
	}
	if err := a.Run(ctx); !errors.Is(err, agent.ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
	s2 := openAdmin(t, dsn)
	a2, err := agent.New(s2, agent.WithTiming(agent.Timing{DeadAfter: 5 * time.Second}), agent.WithEvents(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := a2.Run(ctx); !errors.Is(err, agent.ErrUnsafeTiming) {
		t.Errorf("Run with dead timeout 5s = %v, want ErrUnsafeTiming", err)
	}
}

func TestSiteAutoFailoverIsValidated(t *testing.T) {
	dsn := sqliteDSN(t)
	seedPool(t, dsn, 0, nil)
	s := openAdmin(t, dsn)
	for _, v := range []string{"yes", "2", "on", ""} {
		if err := s.SetSite(context.Background(), map[string]string{agent.SiteAutoFailover: v}); !errors.Is(err, pool.ErrInvalid) {
			t.Errorf("SetSite(autofailover=%q) = %v, want pool.ErrInvalid", v, err)
		}
	}
	for _, v := range []string{"0", "1"} {
		if err := s.SetSite(context.Background(), map[string]string{agent.SiteAutoFailover: v}); err != nil {
			t.Errorf("SetSite(autofailover=%q) = %v", v, err)
		}
	}
}

// TestStopWithdrawsDynamicRange: the MN's agent takes the dynamic range
// out of the DHCP file when it stops, since it can no longer confirm its
// role.
func TestStopWithdrawsDynamicRange(t *testing.T) {
	r, path, hasRange := startServingMN(t, 3)
	if err := r.stop(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	if got := readFile(t, path); hasRange() || !strings.Contains(got, "cn0001") {
		t.Errorf("DHCP file after the stop still has the range or lost the hosts:\n%s", got)
	}
	if h := r.a.Health(); h.Phase != agent.PhaseStopped || h.OK {
		t.Errorf("health after the stop: phase %s ok %v", h.Phase, h.OK)
	}
}

// TestMemberWithoutAgentIsNotFailedOver: a member whose counter never
// moved while the leader watched (it runs no agent) is dead but is never
// failed over; the leader says why.
func TestMemberWithoutAgentIsNotFailedOver(t *testing.T) {
	dsn := pooltest.New(t, pooltest.WithNodes(9), pooltest.WithSite(map[string]string{agent.SiteAutoFailover: "1"})).DSN
	admin := openAdmin(t, dsn)
	before := primaries(t, admin)
	ags := map[string]*running{}
	for _, m := range []string{"mn1", "sn1"} {
		ags[m] = startAgent(t, dsn, m, t.TempDir(), agent.WithTiming(fastTiming), fastGuard())
	}
	suppressed := func() []agent.Event {
		var out []agent.Event
		for _, r := range ags {
			for _, e := range r.events.of(agent.EventSuppressed) {
				if e.Member == "sn2" {
					out = append(out, e)
				}
			}
		}
		return out
	}
	waitFor(t, 15*time.Second, "the leader holding back the failover of sn2", func() bool { return len(suppressed()) > 0 })
	if e := suppressed()[0]; !strings.HasPrefix(e.Reason, agent.SuppressNeverAlive) {
		t.Errorf("reason %q, want %s", e.Reason, agent.SuppressNeverAlive)
	}
	waitFor(t, 15*time.Second, "sn2 dead for 2 dead timeouts", func() bool {
		l := ags["mn1"].a.Liveness()["sn2"]
		return l.State == liveness.Dead && l.Silent >= 2*fastTiming.DeadAfter
	})
	if diff := cmp.Diff(before, primaries(t, admin)); diff != "" {
		t.Errorf("nodes of a member without an agent moved (-before +after):\n%s", diff)
	}
}

// TestCoolDownSurvivesLeaderChange: a member failed over by one leader,
// given its nodes back and dead again is held back by the next leader too
// (the cool-down is restarted from agent_failovers, not from a clock).
func TestCoolDownSurvivesLeaderChange(t *testing.T) {
	ctx := context.Background()
	dsn := sqliteDSN(t)
	seedPool(t, dsn, 30, map[string]string{agent.SiteAutoFailover: "1"})
	admin := openAdmin(t, dsn)
	ags := map[string]*running{}
	for _, m := range members {
		ags[m] = startAgent(t, dsn, m, t.TempDir(), agent.WithTiming(fastTiming), fastGuard())
	}
	for _, m := range members {
		waitFor(t, 15*time.Second, m+" judging every member alive", func() bool { return allAlive(ags[m], members...) })
	}
	nodes := primaries(t, admin)["sn1"]
	ags["sn1"].stop(t)
	waitFor(t, 15*time.Second, "sn1's nodes to move", func() bool { return len(primaries(t, admin)["sn1"]) == 0 })
	first := leaseHolder(t, admin)
	if first == "" || first == "sn1" {
		t.Fatalf("leader after the failover: %q", first)
	}
	ags[first].stop(t)
	second := map[string]string{"mn1": "sn2", "sn2": "mn1"}[first]
	waitFor(t, 15*time.Second, second+" leading", func() bool { return ags[second].a.Health().Leader })

	ags["sn1"] = startAgent(t, dsn, "sn1", t.TempDir(), agent.WithTiming(fastTiming), fastGuard())
	waitFor(t, 15*time.Second, second+" judging sn1 alive", func() bool { return ags[second].a.Liveness().LiveState("sn1") == liveness.Alive })
	if res, err := admin.Move(ctx, pool.MoveRequest{Nodes: nodes, Target: "sn1"}); err != nil || res.Counts.Moved != len(nodes) {
		t.Fatalf("moving the nodes back: %v %+v", err, res)
	}
	ags["sn1"].stop(t)
	waitFor(t, 15*time.Second, second+" holding sn1 back (cool-down)", func() bool {
		for _, e := range ags[second].events.of(agent.EventSuppressed) {
			if e.Member == "sn1" && strings.HasPrefix(e.Reason, agent.SuppressCoolDown) {
				return true
			}
		}
		return false
	})
	if got := primaries(t, admin)["sn1"]; len(got) != len(nodes) {
		t.Errorf("sn1 serves %d nodes, want its %d back (held by the cool-down)", len(got), len(nodes))
	}
	if reps := failoverReports(t, admin); len(reps) != 1 {
		t.Errorf("%d failovers, want 1", len(reps))
	}
}
