package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mnpool/mnpool/agent"
	"github.com/mnpool/mnpool/internal/cli"
	"github.com/mnpool/mnpool/internal/testenv"
	"github.com/mnpool/mnpool/internal/testgalera"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/liveness"
)

// e2eNodes is the pool size of the end-to-end tests.
const e2eNodes = 300

// e2e is three mnpoold processes, one per member, on the local Galera
// cluster: agent i prefers Galera node i (mn1: 1, sn1: 2, sn2: 3).
type e2e struct {
	env   *testgalera.Env
	admin *pool.Store
	procs map[string]*agentProc
	extra []string // extra mnpoold flags
}

// agentProc is one mnpoold process: the test binary run again as mnpoold.
type agentProc struct {
	name, dir, dsn, addr string
	cmd                  *exec.Cmd
	log                  *os.File
	exited               chan struct{}
}

// dsnFrom lists the Galera nodes starting with node first (1-based).
func dsnFrom(env *testgalera.Env, first int) string {
	n := env.NodeDSNs()
	out := append(append([]string{}, n[first-1:]...), n[:first-1]...)
	return strings.Join(out, ",")
}

func newE2E(t testing.TB, extra ...string) *e2e {
	t.Helper()
	env := testgalera.Open(t, testgalera.WithFaults())
	seedPool(t, env.DSN(), e2eNodes, map[string]string{agent.SiteAutoFailover: "1"})
	s, err := pool.Open(context.Background(), dsnFrom(env, 3), pool.WithSelf("mn1"), pool.WithActor("test"))
	if err != nil {
		t.Fatal(err)
	}
	c := &e2e{env: env, admin: s, procs: map[string]*agentProc{}, extra: extra}
	t.Cleanup(func() {
		for _, p := range c.procs {
			p.stop(t)
		}
		if t.Failed() {
			for _, m := range members {
				if p := c.procs[m]; p != nil {
					t.Logf("--- log of %s (last 40 lines):\n%s", m, tail(p.logPath(), 40))
				}
			}
		}
		s.Close()
	})
	for i, m := range members {
		c.start(t, m, i+1)
	}
	for _, m := range members {
		c.waitHealthy(t, m, 90*time.Second)
	}
	return c
}

// start runs mnpoold for member m, its DSN preferring Galera node n.
func (c *e2e) start(t testing.TB, m string, n int) *agentProc {
	t.Helper()
	p := c.procs[m]
	if p == nil {
		p = &agentProc{name: m, dir: t.TempDir(), dsn: dsnFrom(c.env, n)}
		c.procs[m] = p
	}
	p.addr = freeAddr(t)
	tokenFile := filepath.Join(p.dir, "http-token")
	if err := os.WriteFile(tokenFile, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--db", p.dsn, "--self", m, "--root", p.dir, "--dhcp-config", filepath.Join(p.dir, "dhcpd.conf"),
		"--metrics-addr", p.addr, "--http-token-file", tokenFile, "--log-format", "json",
		// The fixture nodes' 10.x addresses must never be dialled.
		"--no-node-config"}, c.extra...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), envChild+"=1")
	f, err := os.OpenFile(p.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("starting mnpoold for %s: %v", m, err)
	}
	p.cmd, p.log, p.exited = cmd, f, make(chan struct{})
	go func() { _ = cmd.Wait(); close(p.exited) }()
	return p
}

func (p *agentProc) logPath() string { return filepath.Join(p.dir, "mnpoold.log") }

func (p *agentProc) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// signal sends sig to the process.
func (p *agentProc) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to mnpoold %s: %v", sig, p.name, err)
	}
}

// kill crashes the process (SIGKILL) and waits until it is gone.
func (p *agentProc) kill(t testing.TB) {
	t.Helper()
	p.signal(t, syscall.SIGKILL)
	<-p.exited
	p.log.Close()
}

// stop ends the process gracefully (SIGCONT, SIGTERM), SIGKILL after 20s.
func (p *agentProc) stop(t testing.TB) {
	if !p.running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(testenv.Timeout(20 * time.Second)):
		t.Errorf("mnpoold %s did not stop within 20s of SIGTERM", p.name)
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	p.log.Close()
}

// health reads the agent's /healthz.
func (p *agentProc) health() (agent.Health, error) {
	var h agent.Health
	req, err := http.NewRequest(http.MethodGet, "http://"+p.addr+"/healthz", nil)
	if err != nil {
		return h, err
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Do(req)
	if err != nil {
		return h, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&h)
	return h, err
}

// state returns what agent p judges member m.
func (p *agentProc) state(m string) liveness.State {
	h, err := p.health()
	if err != nil {
		return ""
	}
	for _, l := range h.Members {
		if l.Member == m {
			return l.State
		}
	}
	return ""
}

// waitHealthy waits until m's agent is healthy, judges every running
// member alive and has written its DHCP file for the current pool.
func (c *e2e) waitHealthy(t testing.TB, m string, timeout time.Duration) {
	t.Helper()
	p := c.procs[m]
	waitFor(t, timeout, m+"'s agent healthy, seeing the others alive, its DHCP file current", func() bool {
		if !p.running() {
			t.Fatalf("mnpoold %s exited:\n%s", m, tail(p.logPath(), 30))
		}
		h, err := p.health()
		if err != nil || !h.OK {
			return false
		}
		for _, o := range members {
			if c.procs[o].running() && p.state(o) != liveness.Alive {
				return false
			}
		}
		return c.dhcpCurrent(t, m)
	})
}

// dhcpCurrent reports whether m's DHCP file is what the current pool
// renders for it.
func (c *e2e) dhcpCurrent(t testing.TB, m string) bool {
	st, err := c.admin.LoadState(context.Background())
	if err != nil {
		return false
	}
	return readFile(t, filepath.Join(c.procs[m].dir, "dhcpd.conf")) == wantDHCP(t, st, m)
}

// failover kills victim's agent and waits until its nodes have moved and
// the survivors' DHCP files are rendered for the new pool. It returns the
// time from the kill to each.
func (c *e2e) failover(t testing.TB, victim string) (moved, rendered time.Duration, nodes []string) {
	t.Helper()
	ctx := context.Background()
	nodes = primaries(t, c.admin)[victim]
	if len(nodes) == 0 {
		t.Fatalf("%s serves no nodes before the kill", victim)
	}
	t0 := time.Now()
	c.procs[victim].kill(t)
	var st *pool.State
	waitFor(t, 60*time.Second, victim+"'s nodes to move", func() bool {
		s, err := c.admin.LoadState(ctx)
		if err != nil {
			return false
		}
		for _, n := range s.Nodes {
			if len(n.ServiceNodes) > 0 && n.ServiceNodes[0] == victim {
				return false
			}
		}
		st = s
		return true
	})
	moved = time.Since(t0)
	want := map[string]string{}
	for _, m := range members {
		if m != victim && c.procs[m].running() {
			want[m] = wantDHCP(t, st, m)
		}
	}
	waitFor(t, 30*time.Second, "the survivors' DHCP files after the failover", func() bool {
		for m, w := range want {
			if readFile(t, filepath.Join(c.procs[m].dir, "dhcpd.conf")) != w {
				return false
			}
		}
		return true
	})
	return moved, time.Since(t0), nodes
}

// leader returns the member holding the failover lease.
func (c *e2e) leader(t testing.TB) string { return leaseHolder(t, c.admin) }

// dynamicRanges counts the range statements in m's DHCP file.
func (c *e2e) dynamicRanges(t testing.TB, m string) int {
	n := 0
	for _, l := range strings.Split(readFile(t, filepath.Join(c.procs[m].dir, "dhcpd.conf")), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "range ") {
			n++
		}
	}
	return n
}

// TestAgentsOnGalera runs one mnpoold process per member on the local
// three-node Galera cluster, with the default timing, and shows: a member
// paused (SIGSTOP) for less than the dead timeout is suspect and keeps its
// nodes; a member killed (SIGKILL) has its nodes moved by exactly one
// agent and the survivors' DHCP files re-rendered (timed); it stays empty
// when it returns; after the MN's agent and its Galera node are killed
// and makemn runs on a survivor, exactly one member serves the dynamic
// range, also once the old MN is back.
func TestAgentsOnGalera(t *testing.T) {
	c := newE2E(t)
	ctx := context.Background()
	h, err := c.procs["mn1"].health()
	if err != nil {
		t.Fatal(err)
	}
	tm := h.Timing
	t.Logf("timing derived from Galera detection %v: %s", tm.GaleraDetection, tm)
	if tm.GaleraDetection <= 0 || tm.DeadAfter < 2*tm.GaleraDetection || tm.SuspectAfter <= tm.GaleraDetection {
		t.Fatalf("timing %+v does not exceed the Galera detection", tm)
	}
	if n := c.dynamicRanges(t, "mn1"); n != 1 {
		t.Fatalf("mn1 serves %d dynamic ranges at start, want 1", n)
	}
	before := primaries(t, c.admin)

	// 1. sn2 paused for longer than the suspect timeout, shorter than the
	// dead timeout (with a margin for a loaded machine): suspect, nothing
	// moves.
	pause := tm.SuspectAfter + tm.HeartbeatInterval
	c.procs["sn2"].signal(t, syscall.SIGSTOP)
	t0 := time.Now()
	waitFor(t, tm.DeadAfter, "mn1 judging the paused sn2 suspect", func() bool { return c.procs["mn1"].state("sn2") == liveness.Suspect })
	for time.Since(t0) < pause {
		if st := c.procs["mn1"].state("sn2"); st == liveness.Dead {
			t.Fatalf("sn2 judged dead %v into a pause of %v (dead timeout %v)", time.Since(t0), pause, tm.DeadAfter)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.procs["sn2"].signal(t, syscall.SIGCONT)
	t.Logf("sn2 paused for %v", time.Since(t0))
	waitFor(t, 30*time.Second, "sn2 alive again", func() bool {
		return c.procs["mn1"].state("sn2") == liveness.Alive && c.procs["sn1"].state("sn2") == liveness.Alive
	})
	if got := primaries(t, c.admin); !mapsEqual(before, got) {
		t.Fatalf("nodes moved after a pause shorter than the dead timeout")
	}
	if n := auditCount(t, c.admin, "agent.failover", ""); n != 0 {
		t.Fatalf("%d failovers after a pause shorter than the dead timeout", n)
	}

	// 2. sn1 killed: its nodes move, the survivors re-render.
	leader := c.leader(t)
	moved, rendered, nodes := c.failover(t, "sn1")
	t.Logf("sn1 killed (leader %s): nodes moved after %v, survivors' DHCP files re-rendered after %v (dead timeout %v)", leader, moved, rendered, tm.DeadAfter)
	reps := failoverReports(t, c.admin)
	if len(reps) != 1 || reps[0].Member != "sn1" || reps[0].Moved != len(nodes) || reps[0].Targets["sn2"] != len(nodes) {
		t.Fatalf("agent.failover records %+v, want one for sn1 moving its %d nodes to sn2", reps, len(nodes))
	}
	t.Logf("failover by %s (token %d): silence %v, move %v", reps[0].Leader, reps[0].Token, reps[0].Silent, reps[0].Took)
	all, err := c.admin.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range all {
		if slices.Contains(nodes, n.Name) && !slices.Equal(n.ServiceNodes, []string{"sn2", "mn1", "sn1"}) {
			t.Errorf("node %s has list %v after the failover, want [sn2 mn1 sn1]", n.Name, n.ServiceNodes)
		}
	}
	// The last beat may come up to one interval before the kill.
	if early := tm.DeadAfter - tm.HeartbeatInterval; moved < early {
		t.Errorf("nodes moved %v after the kill, before the dead timeout %v less one heartbeat interval", moved, tm.DeadAfter)
	}
	lead := c.leader(t)
	checkMetrics(t, scrape(t, "http://"+c.procs[lead].addr+"/metrics"), []metricCheck{
		{"mnpool_failovers_total", map[string]string{"member": "sn1"}, 1},
		{"mnpool_failover_leader", nil, 1},
		{"mnpool_member_state", map[string]string{"member": "sn1", "state": "dead"}, 1},
		{"mnpool_member_nodes", map[string]string{"member": "sn1"}, 0},
		{"mnpool_heartbeat_age_seconds", map[string]string{"member": "sn1"}, -1},
		{"mnpool_heartbeat_age_seconds", map[string]string{"member": "sn2"}, -1},
		{"mnpool_mn_epoch", nil, 1},
		{"mnpool_db_healthy", nil, 1},
		{"mnpool_db_cluster_size", nil, 3},
		{"mnpool_render_duration_seconds_count", map[string]string{"step": "dhcp"}, -1},
	})

	// sn1 returns and stays empty.
	c.start(t, "sn1", 2)
	c.waitHealthy(t, "sn1", 60*time.Second)
	if got := primaries(t, c.admin)["sn1"]; len(got) != 0 {
		t.Errorf("sn1 serves %d nodes after its return, want 0", len(got))
	}

	// 3. The MN's agent and its Galera node die; makemn on sn1.
	c.procs["mn1"].kill(t)
	c.env.Kill(t, 1)
	var out bytes.Buffer
	args := []string{"--db", c.procs["sn1"].dsn, "--self", "sn1", "--root", c.procs["sn1"].dir}
	for i, m := range members {
		host, _, _ := net.SplitHostPort(c.env.Addr(i + 1))
		args = append(args, "--db-address", m+"="+host)
	}
	if code := cli.Makemn(ctx, args, cli.IO{In: strings.NewReader(""), Out: &out, Err: &out}); code != 0 {
		t.Fatalf("makemn on sn1: exit %d\n%s", code, out.String())
	}
	t.Logf("makemn:\n%s", out.String())
	waitFor(t, 60*time.Second, "exactly one dynamic range, sn1's, among the running agents", func() bool {
		return c.dynamicRanges(t, "sn1") == 1 && c.dynamicRanges(t, "sn2") == 0
	})
	m, err := c.admin.Master(ctx)
	if err != nil || m.Member != "sn1" || m.Epoch != 2 {
		t.Fatalf("master %+v (%v), want sn1 epoch 2", m, err)
	}

	// The old MN comes back as an SN and drops its range.
	c.env.Start(t, 1)
	c.start(t, "mn1", 1)
	c.waitHealthy(t, "mn1", 90*time.Second)
	total := 0
	for _, m := range members {
		total += c.dynamicRanges(t, m)
	}
	if total != 1 || c.dynamicRanges(t, "sn1") != 1 {
		t.Errorf("%d dynamic ranges across the three members (sn1: %d), want exactly one, sn1's", total, c.dynamicRanges(t, "sn1"))
	}
	if _, err := os.Stat(filepath.Join(c.procs["mn1"].dir, "etc/xCATSN")); err != nil {
		t.Errorf("mn1 has no etc/xCATSN after makemn: %v", err)
	}
}

// BenchmarkFailoverGalera measures, per run, the time from SIGKILL of a
// member's agent to its nodes moved and the survivors' DHCP files
// re-rendered, with the default timing on the local Galera cluster. The
// victim is restarted and its nodes moved back between runs (cool-down 1s
// so that runs can follow each other). victim=sn alternates sn1 and sn2
// (mostly not the leader); victim=leader kills the failover leader, whose
// lease must be taken over first.
func BenchmarkFailoverGalera(b *testing.B) {
	for _, bc := range []struct {
		name   string
		victim func(c *e2e, i int) string
	}{
		{"victim=sn", func(_ *e2e, i int) string { return []string{"sn1", "sn2"}[i%2] }},
		{"victim=leader", func(c *e2e, _ int) string { return c.leader(b) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := newE2E(b, "--failover-cooldown", "1s", "--failover-limit", "1000")
			ctx := context.Background()
			var moved, rendered, took []float64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				victim := bc.victim(c, i)
				mv, rd, nodes := c.failover(b, victim)
				moved, rendered = append(moved, mv.Seconds()), append(rendered, rd.Seconds())
				b.StopTimer()
				if reps := failoverReports(b, c.admin); len(reps) > 0 && reps[0].Member == victim {
					took = append(took, reps[0].Took.Seconds())
				}
				c.start(b, victim, slices.Index(members, victim)+1)
				c.waitHealthy(b, victim, 60*time.Second)
				res, err := c.admin.Move(ctx, pool.MoveRequest{Nodes: nodes, Target: victim})
				if err != nil || res.Counts.Moved != len(nodes) {
					b.Fatalf("moving %d nodes back to %s: %v %+v", len(nodes), victim, err, res.Counts)
				}
				for _, m := range members {
					c.waitHealthy(b, m, 60*time.Second)
				}
				b.StartTimer()
			}
			b.StopTimer()
			b.ReportMetric(median(moved), "s-to-moved")
			b.ReportMetric(median(rendered), "s-to-rerendered")
			b.ReportMetric(slices.Max(rendered), "s-max-rerendered")
			b.ReportMetric(median(took), "s-move")
			b.Logf("runs %d: moved %v s, re-rendered %v s, Move took %v s", len(rendered), fmtList(moved), fmtList(rendered), fmtList(took))
		})
	}
}

func median(v []float64) float64 {
	s := append([]float64{}, v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtList(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(parts, " ")
}

func mapsEqual(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
