package agent_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mnpool/mnpool/agent"
	"github.com/mnpool/mnpool/dhcp"
	"github.com/mnpool/mnpool/internal/testenv"
	"github.com/mnpool/mnpool/locking"
	"github.com/mnpool/mnpool/mnguard"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/liveness"
	"github.com/mnpool/mnpool/pool/service"
	"github.com/mnpool/mnpool/rolefiles"
)

// members of the test pool, MN first.
var members = []string{"mn1", "sn1", "sn2"}

// seedPool creates the test pool in dsn: network mgmt 10.0.0.0/16 with a
// dynamic range, MN mn1 and SNs sn1, sn2 running every service, n nodes
// cn0001.. whose servicenode lists rotate over the members ([mn1 sn1 sn2],
// [sn1 sn2 mn1], [sn2 mn1 sn1], ...), and the given site values.
func seedPool(t testing.TB, dsn string, n int, site map[string]string) {
	t.Helper()
	ctx := context.Background()
	s, err := pool.Open(ctx, dsn, pool.WithMigrate(), pool.WithSelf("mn1"), pool.WithActor("test"))
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	defer s.Close()
	nw := pool.Network{Name: "mgmt", Prefix: netip.MustParsePrefix("10.0.0.0/16"), Domain: "cluster",
		Gateways:     []netip.Addr{netip.MustParseAddr("10.0.0.254")},
		DynamicStart: netip.MustParseAddr("10.0.200.1"), DynamicEnd: netip.MustParseAddr("10.0.200.200")}
	if err := s.AddNetwork(ctx, nw, false); err != nil {
		t.Fatalf("add network: %v", err)
	}
	addr := func(i int) map[string]netip.Addr {
		return map[string]netip.Addr{"mgmt": netip.AddrFrom4([4]byte{10, 0, 0, byte(1 + i)})}
	}
	if _, err := s.Init(ctx, pool.InitOptions{MN: pool.Member{Name: "mn1", Addresses: addr(0), Services: service.All()}, Site: site}); err != nil {
		t.Fatalf("init: %v", err)
	}
	for i, m := range members[1:] {
		if err := s.AddMember(ctx, pool.Member{Name: m, Addresses: addr(i + 1), Services: service.All()}, false); err != nil {
			t.Fatalf("add member %s: %v", m, err)
		}
	}
	nodes := make([]pool.Node, n)
	for i := range nodes {
		nodes[i] = pool.Node{
			Name:         fmt.Sprintf("cn%04d", i+1),
			MACs:         []string{fmt.Sprintf("02:00:00:00:%02x:%02x", byte(i>>8), byte(i))},
			IP:           netip.AddrFrom4([4]byte{10, 0, byte(1 + i/250), byte(1 + i%250)}),
			ServiceNodes: []string{members[i%3], members[(i+1)%3], members[(i+2)%3]},
		}
	}
	if n > 0 {
		if err := s.AddNodes(ctx, nodes, pool.AddOptions{}); err != nil {
			t.Fatalf("add nodes: %v", err)
		}
	}
}

// fastTiming is a timing for in-process tests. The suspect and dead
// timeouts are several heartbeats long and grow with
// MNPOOL_TEST_TIMEOUT_SCALE: on a loaded machine a heartbeat write can
// stall for most of a second, and a member judged dead for that is a
// second, spurious failover.
var fastTiming = agent.Timing{HeartbeatInterval: 100 * time.Millisecond, SuspectAfter: testenv.Timeout(time.Second), DeadAfter: testenv.Timeout(2 * time.Second), LeaseTTL: testenv.Timeout(2 * time.Second)}

// fastGuard makes the MN guard confirm quickly so tests need not wait the
// production hold.
func fastGuard() agent.Option {
	return agent.WithGuardOptions(mnguard.WithTiming(100*time.Millisecond, 400*time.Millisecond), mnguard.WithHold(500*time.Millisecond))
}

// running is one agent started by startAgent.
type running struct {
	name   string
	a      *agent.Agent
	s      *pool.Store
	dir    string
	cancel context.CancelFunc
	done   chan error
	events *eventLog
}

// startAgent runs an agent for member self on dsn, with the role files and
// the DHCP configuration (ISC, not checked) under dir, and stops it at the
// end of the test.
func startAgent(t testing.TB, dsn, self, dir string, opts ...agent.Option) *running {
	t.Helper()
	s, err := pool.Open(context.Background(), dsn, pool.WithSelf(self), pool.WithActor("mnpoold"))
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	ev := &eventLog{}
	ap := &dhcp.Applier{Path: filepath.Join(dir, "dhcpd.conf"), Check: dhcp.CheckNever, Backup: "-"}
	var agentOf atomic.Pointer[agent.Agent]
	base := []agent.Option{
		agent.WithLogger(testLogger(t, self)),
		agent.WithSteps(rolefiles.Step(dir), dhcp.SyncStep(ap, dhcp.Options{})),
		// The fixture nodes' 10.x addresses must never be dialled; tests of
		// the node reconfiguration give their own (loopback) settings.
		agent.WithNodeConfig(agent.NodeConfig{Disabled: true}),
		agent.WithEvents(func(e agent.Event) {
			ev.add(e)
			if a := agentOf.Load(); a != nil {
				a.Health() // an embedding program may call back into the agent
			}
		}),
	}
	a, err := agent.New(s, append(base, opts...)...)
	if err != nil {
		s.Close()
		t.Fatalf("agent %s: %v", self, err)
	}
	agentOf.Store(a)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{name: self, a: a, s: s, dir: dir, cancel: cancel, done: make(chan error, 1), events: ev}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() { r.stop(t); s.Close() })
	return r
}

// stop stops the agent gracefully and returns Run's error.
func (r *running) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(testenv.Timeout(30 * time.Second)):
		t.Fatalf("agent %s did not stop within 30s", r.name)
		return nil
	}
}

// eventLog records an agent's events.
type eventLog struct {
	mu sync.Mutex
	ev []agent.Event
}

func (l *eventLog) add(e agent.Event) {
	l.mu.Lock()
	l.ev = append(l.ev, e)
	l.mu.Unlock()
}

func (l *eventLog) of(kind agent.EventKind) []agent.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []agent.Event
	for _, e := range l.ev {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// testLogger logs through t.Log when -v, else discards.
func testLogger(t testing.TB, who string) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})).With("agent", who)
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// waitFor polls cond every 20ms until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > testenv.Timeout(timeout) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// primaries counts, per member, the nodes whose list starts with it.
func primaries(t testing.TB, s *pool.Store) map[string][]string {
	t.Helper()
	nodes, err := s.Nodes(context.Background())
	if err != nil {
		t.Fatalf("nodes: %v", err)
	}
	out := map[string][]string{}
	for _, n := range nodes {
		if len(n.ServiceNodes) > 0 {
			out[n.ServiceNodes[0]] = append(out[n.ServiceNodes[0]], n.Name)
		}
	}
	return out
}

// auditCount counts audit records of action on target.
func auditCount(t testing.TB, s *pool.Store, action, target string) int {
	t.Helper()
	log, err := s.AuditLog(context.Background(), 10000)
	if err != nil {
		t.Fatalf("audit log: %v", err)
	}
	n := 0
	for _, e := range log {
		if e.Action == action && (target == "" || e.Target == target) {
			n++
		}
	}
	return n
}

// failoverReports returns the details of the agent.failover audit
// records, newest first.
func failoverReports(t testing.TB, s *pool.Store) []agent.FailoverReport {
	t.Helper()
	log, err := s.AuditLog(context.Background(), 10000)
	if err != nil {
		t.Fatalf("audit log: %v", err)
	}
	var out []agent.FailoverReport
	for _, e := range log {
		if e.Action != "agent.failover" {
			continue
		}
		var r agent.FailoverReport
		if err := json.Unmarshal([]byte(e.Detail), &r); err != nil {
			t.Fatalf("agent.failover detail %q: %v", e.Detail, err)
		}
		if e.Member != r.Leader || e.Actor != "mnpoold" {
			t.Errorf("agent.failover recorded by member %q actor %q, want the leader %q and mnpoold", e.Member, e.Actor, r.Leader)
		}
		out = append(out, r)
	}
	return out
}

// leaseHolder returns the member holding the failover lease ("" when
// nobody does).
func leaseHolder(t testing.TB, s *pool.Store) string {
	t.Helper()
	lk, err := locking.New(s)
	if err != nil {
		t.Fatal(err)
	}
	infos, err := lk.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range infos {
		if in.Name == agent.FailoverLockName && in.Held {
			return in.Member
		}
	}
	return ""
}

// allAlive reports whether agent r judges every member alive.
func allAlive(r *running, names ...string) bool {
	v := r.a.Liveness()
	for _, m := range names {
		if v.LiveState(m) != liveness.Alive {
			return false
		}
	}
	return true
}

// freeAddr returns a loopback address with a free port.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// sample is one series of a Prometheus text exposition.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape reads and parses a Prometheus text exposition.
func scrape(t testing.TB, url string) []sample {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	out, err := parseExposition(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return out
}

func parseExposition(r io.Reader) ([]sample, error) {
	var out []sample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			return nil, fmt.Errorf("bad line %q", line)
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("bad value in %q: %v", line, err)
		}
		s := sample{labels: map[string]string{}, value: v}
		head := line[:sp]
		name, rest, hasLabels := strings.Cut(head, "{")
		s.name = name
		if hasLabels {
			rest = strings.TrimSuffix(rest, "}")
			for _, kv := range splitLabels(rest) {
				k, val, ok := strings.Cut(kv, "=")
				if !ok {
					return nil, fmt.Errorf("bad label %q in %q", kv, line)
				}
				uq, err := strconv.Unquote(val)
				if err != nil {
					return nil, fmt.Errorf("bad label value %q in %q", val, line)
				}
				s.labels[k] = uq
			}
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

func splitLabels(s string) []string {
	var out []string
	inQ, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			inQ = !inQ
		case ',':
			if !inQ {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// find returns the value of the series name with labels (a subset), and
// whether it exists.
func find(samples []sample, name string, labels map[string]string) (float64, bool) {
next:
	for _, s := range samples {
		if s.name != name {
			continue
		}
		for k, v := range labels {
			if s.labels[k] != v {
				continue next
			}
		}
		return s.value, true
	}
	return 0, false
}

// wantDHCP renders what member m's agent should have written for st.
func wantDHCP(t testing.TB, st *pool.State, m string) string {
	t.Helper()
	cfg, err := dhcp.Render(st, m, dhcp.Options{ServeDynamic: st.IsMN(m)})
	if err != nil {
		t.Fatalf("render for %s: %v", m, err)
	}
	return string(cfg.Data)
}

// metricCheck is a series that must be exposed, with its value (-1: any).
type metricCheck struct {
	name   string
	labels map[string]string
	want   float64
}

func checkMetrics(t testing.TB, samples []sample, checks []metricCheck) {
	t.Helper()
	for _, c := range checks {
		got, ok := find(samples, c.name, c.labels)
		switch {
		case !ok:
			t.Errorf("metric %s%v missing", c.name, c.labels)
		case c.want >= 0 && got != c.want:
			t.Errorf("metric %s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

// readFile returns the file's content, "" when it does not exist.
func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
