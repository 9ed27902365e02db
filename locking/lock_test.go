package locking_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jmoiron/sqlx"

	"github.com/mnpool/mnpool/internal/testenv"
	"github.com/mnpool/mnpool/locking"
)

func TestLockUnlock(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		lk := e.locker(t, 1, locking.WithInfo("pid 1: test\x00run"))
		l := mustLock(t, lk, "repo")
		if l.Token() != 1 || !l.Held() || l.Err() != nil {
			t.Fatalf("first lock: token %d held %v err %v, want token 1, held, no error", l.Token(), l.Held(), l.Err())
		}
		got := lockInfo(t, lk, "repo")
		want := locking.Info{Name: "repo", Held: true, Member: "m1", Session: l.Session(), Info: "pid 1: test run", Token: 1, TTL: testTTL.Milliseconds()}
		if d := cmp.Diff(want, got, cmpopts.IgnoreFields(locking.Info{}, "Since", "Lease")); d != "" {
			t.Errorf("List while held (-want +got):\n%s", d)
		}
		if got.Since.IsZero() || got.Lease < 1 {
			t.Errorf("List while held: since %v lease %d, want a time and lease >= 1", got.Since, got.Lease)
		}
		mustUnlock(t, l)
		if !closed(l.Done(), 0) || !errors.Is(l.Err(), locking.ErrNotHeld) || l.Held() {
			t.Errorf("after Unlock: done %v err %v held %v, want done, ErrNotHeld, not held", closed(l.Done(), 0), l.Err(), l.Held())
		}
		got = lockInfo(t, lk, "repo")
		if got.Held || got.Token != 1 || got.Member != "" {
			t.Errorf("List after Unlock: %+v, want free with last token 1", got)
		}
		l2 := mustLock(t, lk, "repo")
		if l2.Token() != 2 {
			t.Errorf("second lock token %d, want 2", l2.Token())
		}
		l3 := mustLock(t, lk, "other")
		if l3.Token() != 1 {
			t.Errorf("token of another name %d, want 1 (tokens are per name)", l3.Token())
		}
		mustUnlock(t, l2)
		mustUnlock(t, l3)
	})
}

func TestTryLock(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		a, b := e.locker(t, 1), e.locker(t, 2)
		ctx := context.Background()
		l, err := a.TryLock(ctx, "images")
		if err != nil {
			t.Fatalf("TryLock of a free lock: %v", err)
		}
		_, err = b.TryLock(ctx, "images")
		if !errors.Is(err, locking.ErrLocked) || !strings.Contains(err.Error(), `member "m1"`) || !strings.Contains(err.Error(), "token 1") {
			t.Fatalf("TryLock of a held lock: %v, want ErrLocked naming member m1 and token 1", err)
		}
		mustUnlock(t, l)
		l, err = b.TryLock(ctx, "images")
		if err != nil || l.Token() != 2 {
			t.Fatalf("TryLock after Unlock: %v (token %v), want token 2", err, l)
		}
		mustUnlock(t, l)
	})
}

// TestContention: clients of separate stores (separate members) take the
// same lock in a loop; the protected resource sees no overlap and growing
// tokens, and every client gets its turns.
func TestContention(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		const clients, rounds = 6, 8
		var r resource
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for c := range clients {
			lk := e.locker(t, c/2) // two goroutines per store
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range rounds {
					ctx, cancel := context.WithTimeout(context.Background(), testenv.Timeout(30*time.Second))
					l, err := lk.Lock(ctx, "contended")
					cancel()
					if err != nil {
						errs <- err
						return
					}
					i := r.enter(fmt.Sprintf("client%d", c), l.Token())
					time.Sleep(2 * time.Millisecond)
					r.exit(i, false)
					if err := l.Unlock(context.Background()); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		r.check(t)
		if r.count() != clients*rounds {
			t.Errorf("%d critical sections, want %d", r.count(), clients*rounds)
		}
	})
}

// TestFIFO: waiters are served in the order they queued.
func TestFIFO(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		holder := e.locker(t, 0)
		l := mustLock(t, holder, "fifo")
		var mu sync.Mutex
		var order []int
		var wg sync.WaitGroup
		for i := 1; i <= 4; i++ {
			// A long TTL: a waiter starved of CPU for a TTL would rightly
			// be dropped from the queue by the others.
			lk := e.locker(t, i, locking.WithTTL(5*time.Second))
			wg.Add(1)
			go func() {
				defer wg.Done()
				l := mustLock(t, lk, "fifo")
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
				mustUnlock(t, l)
			}()
			waitFor(t, 10*time.Second, fmt.Sprintf("waiter %d to queue", i), func() bool { return lockInfo(t, holder, "fifo").Waiters == i })
		}
		mustUnlock(t, l)
		wg.Wait()
		if d := cmp.Diff([]int{1, 2, 3, 4}, order); d != "" {
			t.Errorf("order of acquisition (-want +got):\n%s", d)
		}
		if n := lockInfo(t, holder, "fifo").Waiters; n != 0 {
			t.Errorf("%d waiters left in the queue, want 0", n)
		}
	})
}

// TestNoThunderingHerd: with many waiters, a release makes only the first
// in the queue try to take the lock; the others keep reading.
func TestNoThunderingHerd(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		const waiters = 8
		holder := e.locker(t, 0)
		l := mustLock(t, holder, "herd")
		lks := make([]*locking.Locker, waiters)
		var wg sync.WaitGroup
		for i := range lks {
			lks[i] = e.locker(t, i+1, locking.WithTTL(5*time.Second))
			wg.Add(1)
			go func() {
				defer wg.Done()
				l := mustLock(t, lks[i], "herd")
				time.Sleep(3 * testPoll) // long enough for every waiter to poll meanwhile
				mustUnlock(t, l)
			}()
		}
		waitFor(t, 10*time.Second, "all waiters to queue", func() bool { return lockInfo(t, holder, "herd").Waiters == waiters })
		mustUnlock(t, l)
		wg.Wait()
		var claims, acquired int64
		for _, lk := range lks {
			st := lk.Stats()
			claims += st.Claims
			acquired += st.Acquired
		}
		// Each Lock call makes one claim on arrival (the lock was held) and
		// one when its turn comes; a herd would make every waiter claim at
		// every release.
		if acquired != waiters || claims > 2*waiters+2 {
			t.Errorf("%d waiters: %d claims for %d acquisitions, want %d acquisitions and at most %d claims", waiters, claims, acquired, waiters, 2*waiters+2)
		}
	})
}

func TestCancelWhileWaiting(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		holder, waiter := e.locker(t, 1), e.locker(t, 2)
		l := mustLock(t, holder, "cancel")
		defer mustUnlock(t, l)
		for _, tc := range []struct {
			name string
			ctx  func() (context.Context, context.CancelFunc)
			want error
		}{
			{"canceled", func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(300*time.Millisecond, cancel)
				return ctx, cancel
			}, context.Canceled},
			{"deadline", func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 300*time.Millisecond)
			}, context.DeadlineExceeded},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ctx, cancel := tc.ctx()
				defer cancel()
				done := make(chan struct{})
				var got *locking.Lock
				var err error
				go func() {
					defer close(done)
					got, err = waiter.Lock(ctx, "cancel")
				}()
				waitFor(t, 5*time.Second, "the waiter to queue", func() bool { return lockInfo(t, holder, "cancel").Waiters == 1 })
				if !closed(done, 5*time.Second) {
					t.Fatal("Lock did not return after its context ended")
				}
				if got != nil || !errors.Is(err, tc.want) || !strings.Contains(err.Error(), `"cancel"`) {
					t.Fatalf("Lock = %v, %v; want nil and an error wrapping %v naming the lock", got, err, tc.want)
				}
				if n := lockInfo(t, holder, "cancel").Waiters; n != 0 {
					t.Errorf("%d waiters after cancellation, want 0 (the waiter cleans up)", n)
				}
				if !l.Held() {
					t.Error("the holder lost the lock")
				}
			})
		}
	})
}

func TestDoubleUnlock(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		a, b := e.locker(t, 1), e.locker(t, 2)
		l := mustLock(t, a, "twice")
		mustUnlock(t, l)
		l2 := mustLock(t, b, "twice")
		err := l.Unlock(context.Background())
		if !errors.Is(err, locking.ErrNotHeld) {
			t.Errorf("second Unlock: %v, want ErrNotHeld", err)
		}
		if !l2.Held() || !lockInfo(t, b, "twice").Held {
			t.Error("a second Unlock of an old holding released the new holder's lock")
		}
		mustUnlock(t, l2)
	})
}

// TestRowDeletedUnderHolder: deleting the lock row ends the holding at
// the next renewal, and the token keeps growing afterwards.
func TestRowDeletedUnderHolder(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		s := e.store(t, 1)
		lk := newLocker(t, s)
		l := mustLock(t, lk, "deleted")
		if err := s.Tx(context.Background(), func(tx *sqlx.Tx) error {
			_, err := tx.Exec(`DELETE FROM locks WHERE name = ?`, "deleted")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if !closed(l.Done(), testTTL) {
			t.Fatal("Done not closed within the TTL after the lock row was deleted")
		}
		if !errors.Is(l.Err(), locking.ErrLeaseLost) || l.Held() {
			t.Errorf("after deletion: err %v held %v, want ErrLeaseLost, not held", l.Err(), l.Held())
		}
		if err := l.Unlock(context.Background()); !errors.Is(err, locking.ErrLeaseLost) {
			t.Errorf("Unlock after the row was deleted: %v, want ErrLeaseLost", err)
		}
		l2 := mustLock(t, lk, "deleted")
		if l2.Token() <= l.Token() {
			t.Errorf("token after the row was deleted: %d, want above %d", l2.Token(), l.Token())
		}
		mustUnlock(t, l2)
	})
}

// TestHolderCutOff: a holder that cannot reach the database closes Done
// before a contender takes over, and the contender waits the full TTL
// after it saw the lease counter last move.
func TestHolderCutOff(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		hs, cut := e.cutStore(t, 1)
		holder := newLocker(t, hs)
		contender := e.locker(t, 2)
		l := mustLock(t, holder, "cutoff")
		lastMove := time.Now()
		lease := lockInfo(t, contender, "cutoff").Lease
		cut() // the holder's database is gone: renewals fail
		// Observe the lease like a contender does, to know when it last moved.
		stopWatch := make(chan struct{})
		watched := make(chan struct{})
		defer func() {
			select {
			case <-stopWatch:
			default:
				close(stopWatch)
			}
			<-watched
		}()
		go func() {
			defer close(watched)
			for {
				select {
				case <-stopWatch:
					return
				case <-time.After(5 * time.Millisecond):
				}
				if in := lockInfo(t, contender, "cutoff"); in.Session == l.Session() && in.Lease != lease {
					lease, lastMove = in.Lease, time.Now()
				}
			}
		}()
		start := time.Now()
		l2 := mustLock(t, contender, "cutoff")
		took := time.Now()
		doneFirst := closed(l.Done(), 0)
		close(stopWatch)
		<-watched
		if !doneFirst {
			t.Fatalf("contender took over after %v while the holder's Done was still open", took.Sub(start))
		}
		if !errors.Is(l.Err(), locking.ErrLeaseLost) || !strings.Contains(l.Err().Error(), "not renewed within") {
			t.Errorf("holder's Err: %v, want ErrLeaseLost for a lease not renewed", l.Err())
		}
		if took.Sub(lastMove) < testTTL {
			t.Errorf("takeover %v after the lease last moved, want at least the TTL %v", took.Sub(lastMove), testTTL)
		}
		if l2.Token() != l.Token()+1 {
			t.Errorf("takeover token %d, want %d", l2.Token(), l.Token()+1)
		}
		if st := contender.Stats(); st.Takeovers != 1 {
			t.Errorf("contender stats %+v, want 1 takeover", st)
		}
		log, err := e.store(t, 3).AuditLog(context.Background(), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(log) == 0 || log[0].Action != "lock.takeover" || log[0].Target != "cutoff" || !strings.Contains(log[0].Detail, `"from_member":"m1"`) {
			t.Errorf("audit log %+v, want a lock.takeover of cutoff from m1 first", log)
		}
		mustUnlock(t, l2)
	})
}

// TestGuard: a guarded write commits only while the token is current.
func TestGuard(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		ctx := context.Background()
		s := e.store(t, 1)
		lk := newLocker(t, s)
		if err := s.Tx(ctx, func(tx *sqlx.Tx) error {
			_, err := tx.Exec(`CREATE TABLE IF NOT EXISTS guarded_test (k VARCHAR(16) NOT NULL PRIMARY KEY, v BIGINT NOT NULL)`)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		write := func(l *locking.Lock, v int64) error {
			return s.Tx(ctx, func(tx *sqlx.Tx) error {
				if _, err := tx.Exec(`DELETE FROM guarded_test WHERE k = 'x'`); err != nil {
					return err
				}
				if _, err := tx.Exec(`INSERT INTO guarded_test (k, v) VALUES ('x', ?)`, v); err != nil {
					return err
				}
				return l.Guard(ctx, tx)
			})
		}
		read := func() (v int64) {
			if err := s.Read(ctx, func(tx *sqlx.Tx) error { return tx.Get(&v, `SELECT v FROM guarded_test WHERE k = 'x'`) }); err != nil {
				t.Fatal(err)
			}
			return v
		}
		l1 := mustLock(t, lk, "guarded")
		if err := write(l1, 1); err != nil {
			t.Fatalf("guarded write while held: %v", err)
		}
		mustUnlock(t, l1)
		l2 := mustLock(t, e.locker(t, 2), "guarded")
		if err := write(l1, 2); !errors.Is(err, locking.ErrStaleToken) {
			t.Errorf("guarded write with an old token: %v, want ErrStaleToken", err)
		}
		if v := read(); v != 1 {
			t.Errorf("value after a rejected write: %d, want 1 (rolled back)", v)
		}
		if err := write(l2, 3); err != nil || read() != 3 {
			t.Errorf("guarded write of the new holder: %v, value %d; want 3", err, read())
		}
		mustUnlock(t, l2)
		if err := write(l2, 4); !errors.Is(err, locking.ErrStaleToken) {
			t.Errorf("guarded write after Unlock: %v, want ErrStaleToken", err)
		}
	})
}

// TestDeadWaiterReaped: a waiter that died in the queue (its entry no
// longer beats) is removed after its TTL and does not block the lock.
func TestDeadWaiterReaped(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		s := e.store(t, 1)
		if err := s.Tx(context.Background(), func(tx *sqlx.Tx) error {
			_, err := tx.Exec(`INSERT INTO lock_waiters (name, session_id, ticket, member, info, lease, ttl_ms, since_us) VALUES ('reap', 'dead', 1, 'gone', '', 0, 300, 0)`)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		lk := newLocker(t, s)
		start := time.Now()
		l := mustLock(t, lk, "reap")
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Errorf("Lock returned after %v, before the dead waiter's TTL of 300ms", d)
		}
		if st := lk.Stats(); st.ReapedWaiters != 1 {
			t.Errorf("stats %+v, want 1 reaped waiter", st)
		}
		mustUnlock(t, l)
	})
}

func TestValidation(t *testing.T) {
	lk := newLocker(t, env{dsn: func(int) string { return "sqlite:" + t.TempDir() + "/p.db" }}.store(t, 1))
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		lock string
		opts []locking.Option
		want string
	}{
		{"empty name", "", nil, "empty lock name"},
		{"long name", strings.Repeat("x", 256), nil, "256 bytes"},
		{"control", "a\nb", nil, "control characters"},
		{"space", " a", nil, "leading or trailing space"},
		{"not utf8", "a\xffb", nil, "not UTF-8"},
		{"short ttl", "ok", []locking.Option{locking.WithTTL(time.Millisecond)}, "TTL 1ms"},
		{"long ttl", "ok", []locking.Option{locking.WithTTL(25 * time.Hour)}, "TTL 25h0m0s"},
		{"margin", "ok", []locking.Option{locking.WithMargin(600 * time.Millisecond)}, "margin 600ms"},
		{"negative margin", "ok", []locking.Option{locking.WithMargin(-1)}, "margin -1ns"},
		{"renew", "ok", []locking.Option{locking.WithRenewInterval(900 * time.Millisecond)}, "renew interval 900ms"},
		{"poll", "ok", []locking.Option{locking.WithPollInterval(time.Millisecond)}, "poll interval 1ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := lk.Lock(ctx, tc.lock, tc.opts...)
			if !errors.Is(err, locking.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Lock: %v, want ErrInvalid containing %q", err, tc.want)
			}
		})
	}
	if list, err := lk.List(ctx); err != nil || len(list) != 0 {
		t.Errorf("List after invalid calls: %v %v, want nothing written", list, err)
	}
}
