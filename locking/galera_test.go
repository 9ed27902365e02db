package locking_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mnpool/mnpool/console"
	"github.com/mnpool/mnpool/internal/ctxutil"
	"github.com/mnpool/mnpool/internal/testenv"
	"github.com/mnpool/mnpool/internal/testgalera"
	"github.com/mnpool/mnpool/locking"
	"github.com/mnpool/mnpool/pool"
)

// TestGetLockIsNodeLocal shows why the locking package is built from rows
// and conditional updates: on Galera, GET_LOCK() and SELECT ... FOR
// UPDATE lock only the node that runs them, so two clients on two nodes
// both "hold" the same lock (docs/DESIGN.md, *node-local-locks*). Do not reintroduce them.
// If a Galera version ever makes them cluster-wide, this test fails and
// says so.
func TestGetLockIsNodeLocal(t *testing.T) {
	g := testgalera.Open(t)
	ctx := context.Background()
	conn := func(n int) *sql.Conn {
		c, err := g.DB(t, n).Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	c1, c2 := conn(1), conn(2)

	t.Run("GET_LOCK", func(t *testing.T) {
		name := "mnpool-test-" + g.Database() // GET_LOCK names are per server, not per database
		var got1, got2 sql.NullInt64
		if err := c1.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", name).Scan(&got1); err != nil {
			t.Fatal(err)
		}
		if err := c2.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", name).Scan(&got2); err != nil {
			t.Fatal(err)
		}
		if got1.Int64 != 1 || got2.Int64 != 1 {
			t.Fatalf("GET_LOCK on node 1 = %v, on node 2 = %v: Galera no longer gives the lock to both; revisit docs/DESIGN.md, *node-local-locks*", got1, got2)
		}
		t.Logf("GET_LOCK(%q, 0) returned 1 on node 1 and on node 2: two holders", name)
		for _, c := range []*sql.Conn{c1, c2} {
			c.ExecContext(ctx, "DO RELEASE_LOCK(?)", name)
		}
	})

	t.Run("SELECT FOR UPDATE", func(t *testing.T) {
		if _, err := c1.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS forupdate_test (id INT NOT NULL PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB"); err != nil {
			t.Fatal(err)
		}
		if _, err := c1.ExecContext(ctx, "INSERT INTO forupdate_test VALUES (1, 0) ON DUPLICATE KEY UPDATE v = v"); err != nil {
			t.Fatal(err)
		}
		g.WaitSynced(t, 2, 30*time.Second)
		var tx [2]*sql.Tx
		for i, c := range []*sql.Conn{c1, c2} {
			// A lock wait would end after 1s with an error; there is none.
			if _, err := c.ExecContext(ctx, "SET SESSION innodb_lock_wait_timeout = 1, SESSION wsrep_sync_wait = 1"); err != nil {
				t.Fatal(err)
			}
			var err error
			if tx[i], err = c.BeginTx(ctx, nil); err != nil {
				t.Fatal(err)
			}
			defer tx[i].Rollback()
			start := time.Now()
			var v int
			if err := tx[i].QueryRowContext(ctx, "SELECT v FROM forupdate_test WHERE id = 1 FOR UPDATE").Scan(&v); err != nil {
				t.Fatalf("SELECT ... FOR UPDATE on node %d: %v (a cluster-wide row lock would make the second one wait)", i+1, err)
			}
			if d := time.Since(start); d > testenv.Timeout(500*time.Millisecond) {
				t.Fatalf("SELECT ... FOR UPDATE on node %d waited %v; revisit docs/DESIGN.md, *node-local-locks*", i+1, d)
			}
		}
		t.Log("SELECT ... FOR UPDATE of the same row returned at once on node 1 and on node 2: two holders")
	})

	t.Run("locking", func(t *testing.T) {
		open := func(n int) *locking.Locker {
			s, err := pool.Open(ctx, g.NodeDSN(n), pool.WithMigrate(locking.Schema()), pool.WithSelf(fmt.Sprintf("m%d", n)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return newLocker(t, s)
		}
		lk1, lk2 := open(1), open(2)
		l, err := lk1.TryLock(ctx, "getlock")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lk2.TryLock(ctx, "getlock"); !errors.Is(err, locking.ErrLocked) {
			t.Errorf("TryLock through node 2 while held through node 1: %v, want ErrLocked", err)
		}
		mustUnlock(t, l)
	})
}

// safetyTTL is the lease time of the fault test: above 2x the test
// cluster's failure detection time (evs.suspect_timeout 2s +
// evs.inactive_timeout 4s = 6s, docs/GALERA.md), so that a fault on a
// node does not by itself make the holder lose the lock (docs/LOCKING.md).
const safetyTTL = 15 * time.Second

// TestSafetyUnderFaults: clients spread over the three Galera nodes take
// the same lock in a loop while, one at a time, nodes are paused, killed
// and isolated, and the network of the client holding the lock is cut for
// longer than the TTL (it loses the lock, another client takes it over).
// Node faults mostly hit the node the holder uses. A protected resource
// that checks fencing tokens records every critical section; no two may
// overlap and tokens must grow strictly. The fault phase lasts
// MNPOOL_LOCK_SAFETY_SECONDS (default 45).
//
// It runs once for each user of the lease primitive: Lock (queued
// waiters) and the console leases (console.LeaseTable, built on Contend:
// polling contenders that take over a lease seen stale).
func TestSafetyUnderFaults(t *testing.T) {
	g := testgalera.Open(t, testgalera.WithFaults())
	for _, u := range safetyUsers() {
		t.Run(u.name, func(t *testing.T) { safetyUnderFaults(t, g, u) })
	}
}

// holding is one critical section's hold of the safety lease.
type holding struct {
	token   int64
	done    <-chan struct{}
	held    func() bool
	release func(context.Context)
}

// safetyUser is a user of the lease primitive under test: open returns
// client c's acquire function and the Locker under it (for its Stats).
type safetyUser struct {
	name string
	open func(t *testing.T, s *pool.Store, member string) (func(ctx context.Context) (holding, error), *locking.Locker)
}

func safetyUsers() []safetyUser {
	return []safetyUser{
		{"Lock", func(t *testing.T, s *pool.Store, _ string) (func(ctx context.Context) (holding, error), *locking.Locker) {
			lk := newLocker(t, s, locking.WithTTL(safetyTTL), locking.WithPollInterval(50*time.Millisecond))
			return func(ctx context.Context) (holding, error) {
				l, err := lk.Lock(ctx, "safety")
				if err != nil {
					return holding{}, err
				}
				return holding{l.Token(), l.Done(), l.Held, func(c context.Context) { l.Unlock(c) }}, nil
			}, lk
		}},
		{"ConsoleLease", func(t *testing.T, s *pool.Store, member string) (func(ctx context.Context) (holding, error), *locking.Locker) {
			lt, err := console.NewLeaseTable(s, member, safetyTTL, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { lt.Close(context.Background()) })
			return func(ctx context.Context) (holding, error) {
				for {
					le, err := lt.TryAcquire(ctx, "safety")
					if err == nil {
						held := func() bool { return !closed(le.Done(), 0) }
						return holding{le.Token(), le.Done(), held, func(c context.Context) { le.Release(c) }}, nil
					}
					if !errors.Is(err, console.ErrLeaseHeld) {
						return holding{}, err
					}
					if err := ctxutil.Sleep(ctx, 50*time.Millisecond); err != nil {
						return holding{}, err
					}
				}
			}, lt.Locker()
		}},
	}
}

func safetyUnderFaults(t *testing.T, g *testgalera.Env, u safetyUser) {
	phase := 45 * time.Second
	if v := os.Getenv("MNPOOL_LOCK_SAFETY_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 10 {
			t.Fatalf("MNPOOL_LOCK_SAFETY_SECONDS=%q: want a number of seconds, at least 10", v)
		}
		phase = time.Duration(n) * time.Second
	}
	const clients = 6
	var (
		r           resource
		lockErrs    atomic.Int64
		holderIndex atomic.Int32 // 1 + index of the client in the critical section, 0 when none
		wg          sync.WaitGroup
		lks         = make([]*locking.Locker, clients)
		acquire     = make([]func(context.Context) (holding, error), clients)
		links       = make([][]*proxy, clients) // each client's network, one proxy per node
		ctx, stop   = context.WithCancel(context.Background())
		longHolds   atomic.Int64
		lostInside  atomic.Int64
		cutRequest  atomic.Bool // the next client to enter cuts its own network
		cutDone     = make(chan int, 1)
		isCut       [clients]atomic.Bool
	)
	defer stop()
	for c := range clients {
		// Client c prefers node c%3+1 and fails over to the others, all
		// through its own proxies so its network can be cut.
		var dsns []string
		for k := range g.N() {
			n := (c+k)%g.N() + 1
			p := newProxy(t, g.Addr(n))
			links[c] = append(links[c], p)
			dsns = append(dsns, strings.Replace(g.NodeDSN(n), "tcp("+g.Addr(n)+")", "tcp("+p.addr()+")", 1))
		}
		s, err := pool.Open(context.Background(), strings.Join(dsns, ","), pool.WithMigrate(locking.Schema()), pool.WithSelf(fmt.Sprintf("m%d", c)),
			pool.WithHealthInterval(500*time.Millisecond, 2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		acquire[c], lks[c] = u.open(t, s, fmt.Sprintf("m%d", c))
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("client%d@node%d", c, c%g.N()+1)
			for ctx.Err() == nil {
				lctx, cancel := context.WithTimeout(ctx, testenv.Timeout(2*time.Minute))
				l, err := acquire[c](lctx)
				cancel()
				if err != nil {
					if ctx.Err() == nil {
						lockErrs.Add(1)
						if !isCut[c].Load() {
							t.Logf("%s: Lock: %v", name, err)
						}
						time.Sleep(100 * time.Millisecond)
					}
					continue
				}
				if l.held() { // Lock's contract: check Held (or Done) before acting
					i := r.enter(name, l.token)
					holderIndex.Store(int32(c + 1))
					hold := time.Duration(rand.IntN(10)) * time.Millisecond
					if i%100 == 99 { // every 100th section across a renewal (every TTL/3)
						hold = safetyTTL/3 + time.Second
						longHolds.Add(1)
					}
					if cutRequest.CompareAndSwap(true, false) {
						for _, p := range links[c] {
							p.setCut(true)
						}
						isCut[c].Store(true)
						cutDone <- c
						hold = 2 * safetyTTL // stay until Done closes
					}
					lost := false
					select {
					case <-time.After(hold):
					case <-l.done:
						lost = true
						lostInside.Add(1)
					}
					r.exit(i, lost)
					holderIndex.CompareAndSwap(int32(c+1), 0)
				}
				uctx, cancel := context.WithTimeout(context.Background(), testenv.Timeout(10*time.Second))
				l.release(uctx)
				cancel()
			}
		}()
	}

	faults := map[string]int{}
	start := time.Now()
	kinds := []string{"pause", "cut", "kill", "isolate"}
	for k := 0; time.Since(start) < phase; k++ {
		kind := kinds[k%len(kinds)]
		if kind == "cut" {
			// The next holder's network is cut inside its critical section
			// for longer than the TTL: it cannot renew nor unlock, must see
			// Done, and another client must take the lock over.
			cutRequest.Store(true)
			select {
			case c := <-cutDone:
				faults[kind]++
				time.Sleep(safetyTTL + 2*time.Second)
				for _, p := range links[c] {
					p.setCut(false)
				}
				isCut[c].Store(false)
			case <-time.After(testenv.Timeout(30 * time.Second)):
				cutRequest.Store(false)
				t.Error("no client entered the critical section within 30s to have its network cut")
			}
			continue
		}
		n := 0
		if c := int(holderIndex.Load()) - 1; c >= 0 && k%2 == 0 {
			n = c%g.N() + 1 // the node the holder prefers
		} else {
			n = rand.IntN(g.N()) + 1
		}
		switch kind {
		case "pause":
			g.Pause(t, n)
		case "kill":
			g.Kill(t, n)
		case "isolate":
			g.Isolate(t, n)
		}
		faults[kind]++
		time.Sleep(3*time.Second + time.Duration(rand.IntN(4000))*time.Millisecond)
		switch kind {
		case "pause":
			g.Resume(t, n)
		case "kill":
			g.Start(t, n)
		case "isolate":
			g.Heal(t, n)
		}
		g.WaitSynced(t, n, 2*time.Minute)
	}
	faultTime := time.Since(start)
	// After the faults the lock must work again: a new section within a
	// long hold plus a TTL (the holder may just have lost its network).
	before := r.count()
	for end := time.Now().Add(testenv.Timeout(2 * safetyTTL)); r.count() == before && time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
	}
	if r.count() == before {
		t.Errorf("no critical section within %v after the faults", 2*safetyTTL)
	}
	stop()
	wg.Wait()

	r.check(t)
	var st locking.Stats
	for _, lk := range lks {
		s := lk.Stats()
		st.Acquired += s.Acquired
		st.Takeovers += s.Takeovers
		st.LeasesLost += s.LeasesLost
		st.RenewFailures += s.RenewFailures
	}
	total := 0
	for _, n := range faults {
		total += n
	}
	t.Logf("%d clients on 3 nodes, %v of faults: %d faults (node pause %d, kill %d, isolate %d; client cut %d); %d critical sections (%d long), %d acquisitions, %d takeovers, %d leases lost (%d inside a section), %d renewal errors, %d Lock errors",
		clients, faultTime.Round(time.Second), total, faults["pause"], faults["kill"], faults["isolate"], faults["cut"],
		r.count(), longHolds.Load(), st.Acquired, st.Takeovers, st.LeasesLost, lostInside.Load(), st.RenewFailures, lockErrs.Load())
	if total < 3 || r.count() < 50 || faults["cut"] > 0 && (st.Takeovers == 0 || lostInside.Load() == 0) {
		t.Errorf("too little exercised: %d faults, %d critical sections, %d takeovers, %d leases lost inside a section; want at least 3, 50, 1 and 1",
			total, r.count(), st.Takeovers, lostInside.Load())
	}
}
