package locking_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mnpool/mnpool/internal/testenv"
	"github.com/mnpool/mnpool/internal/testgalera"
	"github.com/mnpool/mnpool/locking"
	"github.com/mnpool/mnpool/pool"
)

// Short lease times keep the tests fast. The tests that inject Galera
// faults use a TTL above the cluster's failure detection instead.
const (
	testTTL  = time.Second
	testPoll = 20 * time.Millisecond
)

// env is one database under test; store opens another client of it, as a
// separate member would.
type env struct {
	name   string
	dsn    func(i int) string // DSN of client i (Galera: preferring node i%3+1)
	galera *testgalera.Env    // nil for SQLite
}

// backends lists the databases every lock test runs against: SQLite and
// the local Galera cluster (skipped without MNPOOL_TEST_DSNS).
func backends() []struct {
	name string
	open func(t testing.TB) env
} {
	return []struct {
		name string
		open func(t testing.TB) env
	}{
		{"sqlite", func(t testing.TB) env {
			dsn := "sqlite:" + filepath.Join(t.TempDir(), "pool.db")
			return env{name: "sqlite", dsn: func(int) string { return dsn }}
		}},
		{"galera", func(t testing.TB) env {
			g := testgalera.Open(t)
			return env{name: "galera", dsn: galeraDSN(g), galera: g}
		}},
	}
}

func eachBackend(t *testing.T, f func(t *testing.T, e env)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { f(t, b.open(t)) })
	}
}

// store opens client i of e as member "mN".
func (e env) store(t testing.TB, i int) *pool.Store {
	t.Helper()
	s, err := pool.Open(context.Background(), e.dsn(i), pool.WithMigrate(locking.Schema()), pool.WithSelf(fmt.Sprintf("m%d", i)),
		pool.WithHealthInterval(500*time.Millisecond, 2*time.Second))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// locker returns a Locker of client i with the fast test defaults.
func (e env) locker(t testing.TB, i int, opts ...locking.Option) *locking.Locker {
	t.Helper()
	return newLocker(t, e.store(t, i), opts...)
}

func newLocker(t testing.TB, s *pool.Store, opts ...locking.Option) *locking.Locker {
	t.Helper()
	lk, err := locking.New(s, append([]locking.Option{locking.WithTTL(testTTL), locking.WithPollInterval(testPoll)}, opts...)...)
	if err != nil {
		t.Fatalf("locking.New: %v", err)
	}
	return lk
}

func mustLock(t testing.TB, lk *locking.Locker, name string, opts ...locking.Option) *locking.Lock {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Timeout(20*time.Second))
	defer cancel()
	l, err := lk.Lock(ctx, name, opts...)
	if err != nil {
		t.Fatalf("Lock(%q): %v", name, err)
	}
	return l
}

func mustUnlock(t testing.TB, l *locking.Lock) {
	t.Helper()
	if err := l.Unlock(context.Background()); err != nil {
		t.Fatalf("Unlock(%q): %v", l.Name(), err)
	}
}

// closed reports whether ch is closed within d.
func closed(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	default:
	}
	select {
	case <-ch:
		return true
	case <-time.After(testenv.Timeout(d)):
		return false
	}
}

// waitFor polls cond every 10ms until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(testenv.Timeout(d))
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lockInfo returns List's entry for name.
func lockInfo(t testing.TB, lk *locking.Locker, name string) locking.Info {
	t.Helper()
	list, err := lk.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for _, in := range list {
		if in.Name == name {
			return in
		}
	}
	return locking.Info{Name: name}
}

// resource is the thing a lock protects, as the tests see it: it checks
// the fencing token on entry (a token must be larger than every token
// seen before) and records every critical section with the time of the
// test process, the one clock all clients share.
type resource struct {
	mu       sync.Mutex
	inside   int
	last     int64
	sections []section
	problems []string
}

type section struct {
	client      string
	token       int64
	enter, exit time.Time
	lostEarly   bool // left because Done closed
}

func (r *resource) enter(client string, token int64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inside > 0 {
		r.problems = append(r.problems, fmt.Sprintf("%s entered with token %d while %d client(s) inside", client, token, r.inside))
	}
	if token <= r.last {
		r.problems = append(r.problems, fmt.Sprintf("%s entered with token %d, not above the last token %d", client, token, r.last))
	}
	r.inside++
	r.last = max(r.last, token)
	r.sections = append(r.sections, section{client: client, token: token, enter: time.Now()})
	return len(r.sections) - 1
}

// count is the number of critical sections entered so far.
func (r *resource) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sections)
}

func (r *resource) exit(i int, lost bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inside--
	r.sections[i].exit = time.Now()
	r.sections[i].lostEarly = lost
}

// check fails t when sections overlap in time or tokens do not grow in
// the order of entry.
func (r *resource) check(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.problems {
		t.Error(p)
	}
	s := append([]section(nil), r.sections...)
	sort.Slice(s, func(i, j int) bool { return s[i].enter.Before(s[j].enter) })
	for i := 1; i < len(s); i++ {
		if s[i].token <= s[i-1].token {
			t.Errorf("section %d (%s) has token %d after token %d", i, s[i].client, s[i].token, s[i-1].token)
		}
		if s[i-1].exit.IsZero() || s[i].enter.Before(s[i-1].exit) {
			t.Errorf("section %d (%s, token %d) began before section %d (%s, token %d) ended", i, s[i].client, s[i].token, i-1, s[i-1].client, s[i-1].token)
		}
	}
}

// cutStore opens client i of e through a link that cut breaks, as a
// member whose network to the database fails: SQLite closes the store,
// Galera goes through a loopback TCP proxy to node i%N+1 that cut closes
// (with every connection) and that refuses connections afterwards.
func (e env) cutStore(t testing.TB, i int) (s *pool.Store, cut func()) {
	t.Helper()
	if e.galera == nil {
		s = e.store(t, i)
		return s, func() { s.Close() }
	}
	n := i%e.galera.N() + 1
	p := newProxy(t, e.galera.Addr(n))
	dsn := strings.Replace(e.galera.NodeDSN(n), "tcp("+e.galera.Addr(n)+")", "tcp("+p.addr()+")", 1)
	s, err := pool.Open(context.Background(), dsn, pool.WithMigrate(locking.Schema()), pool.WithSelf(fmt.Sprintf("m%d", i)),
		pool.WithHealthInterval(500*time.Millisecond, 2*time.Second))
	if err != nil {
		t.Fatalf("open store through proxy: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, p.cut
}

// proxy forwards loopback TCP connections to target; setCut breaks every
// connection and refuses new ones until it is called again with false.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	isCut  bool
}

func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.setCut(true) })
	go p.serve()
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.isCut
		p.mu.Unlock()
		if cut {
			c.Close()
			continue
		}
		u, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		go func() { io.Copy(u, c); u.Close() }()
		go func() { io.Copy(c, u); c.Close() }()
	}
}

func (p *proxy) cut() { p.setCut(true) }

func (p *proxy) setCut(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isCut = on
	if on {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}
