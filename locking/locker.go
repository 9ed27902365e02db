package locking

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/mnpool/mnpool/internal/ctxutil"
	"github.com/mnpool/mnpool/pool"
)

// minPoll is the shortest poll interval.
const minPoll = 5 * time.Millisecond

// cleanupTimeout bounds the database calls that tidy up after the
// caller's context ended (leaving the queue, releasing a claim whose
// outcome was unknown).
const cleanupTimeout = 10 * time.Second

// Locker hands out cluster-wide locks kept in the pool database. It is
// safe for concurrent use; one per process is enough. Locks are named by
// any string (ValidateName); the lock of a directory of the shared install
// tree is Install.
type Locker struct {
	s      *pool.Store
	o      options
	log    *slog.Logger
	member string

	mu   sync.Mutex
	wake map[string]chan struct{} // closed by Unlock to wake local waiters
	seen map[string]*sighting     // Contend's observations of held locks

	stats struct {
		acquired, takeovers, claims, races, renewals, renewFailures, lost, reaped atomic.Int64
	}
}

// New returns a Locker on the store s. The options set the defaults of
// its locks; each Lock call may override them. The member recorded as
// holder is s.Self() (pool.WithSelf).
func New(s *pool.Store, opts ...Option) (*Locker, error) {
	o := defaultOptions()
	for _, f := range opts {
		f(&o)
	}
	if _, err := o.resolve(); err != nil {
		return nil, err
	}
	if o.member != "" {
		if err := pool.ValidateName("member", o.member); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	member := s.Self()
	if o.member != "" {
		member = o.member
	}
	return &Locker{s: s, o: o, log: o.log, member: member, wake: map[string]chan struct{}{}, seen: map[string]*sighting{}}, nil
}

// Stats are counters of a Locker since New, for monitoring and tests.
type Stats struct {
	Acquired      int64 // locks acquired (including takeovers)
	Takeovers     int64 // locks taken over from a holder whose lease stood still for its TTL
	Claims        int64 // claim transactions run (each acquisition needs one)
	LostRaces     int64 // claims that found the lock taken or the queue non-empty
	Renewals      int64 // successful lease renewals
	RenewFailures int64 // renewal attempts that failed with a database error
	LeasesLost    int64 // locks whose Done closed before Unlock
	ReapedWaiters int64 // dead waiters removed from the queue
}

// Stats returns the Locker's counters.
func (lk *Locker) Stats() Stats {
	return Stats{
		Acquired: lk.stats.acquired.Load(), Takeovers: lk.stats.takeovers.Load(),
		Claims: lk.stats.claims.Load(), LostRaces: lk.stats.races.Load(),
		Renewals: lk.stats.renewals.Load(), RenewFailures: lk.stats.renewFailures.Load(),
		LeasesLost: lk.stats.lost.Load(), ReapedWaiters: lk.stats.reaped.Load(),
	}
}

// Lock acquires the lock name, waiting as long as ctx allows, and returns
// the held lock. Waiters are served in the order they queued: only the
// first in the queue tries to take the lock, the others only read, so a
// release does not set off a thundering herd of conflicting writes. A
// holder whose lease counter stands still for its TTL, as seen on this
// process's monotonic clock, is taken over (the takeover is audited as
// "lock.takeover").
//
// A database error on the first attempt is returned at once, so an
// unreachable or misconfigured database is reported rather than waited
// out; once queued, Lock waits through database errors (the store fails
// over to another Galera node) until ctx ends. When ctx ends first, Lock
// leaves the queue and returns an error that wraps ctx.Err(); it never
// returns a nil lock without an error. A lock whose lease ran out while
// it was being acquired (a commit slower than TTL - margin) is given back
// and waited for again.
//
// See Lock (the type) for when it is safe to assume the lock is held.
func (lk *Locker) Lock(ctx context.Context, name string, opts ...Option) (*Lock, error) {
	return lk.acquire(ctx, name, false, opts)
}

// TryLock takes the lock name if it is free now and otherwise returns an
// error wrapping ErrLocked that names the holder. It does not queue and
// may take a free lock ahead of queued waiters. It never takes over an
// expired lease: that needs watching the lease for the TTL, which Lock
// does.
func (lk *Locker) TryLock(ctx context.Context, name string, opts ...Option) (*Lock, error) {
	return lk.acquire(ctx, name, true, opts)
}

// waitState is one Lock call's view of the lock and its queue.
type waitState struct {
	name       string
	session    string
	o          options
	try        bool
	registered bool
	ticket     int64
	beatAt     time.Time // last successful heartbeat of our queue entry
	holder     observer
	waiters    map[string]*observer
}

// observer remembers since when (on the local monotonic clock) a lease
// has been seen unchanged.
type observer struct {
	cur   leaseState
	since time.Time
	ok    bool
}

func (o *observer) see(s leaseState, now time.Time) {
	if !o.ok || o.cur != s {
		o.cur, o.since, o.ok = s, now, true
	}
}

func (o *observer) stale(ttl time.Duration, now time.Time) bool {
	return o.ok && now.Sub(o.since) >= ttl
}

// newWait validates name and the per-lock options of one Lock, TryLock
// or Contend call.
func (lk *Locker) newWait(name string, try bool, opts []Option) (*waitState, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	o := lk.o
	for _, f := range opts {
		f(&o)
	}
	o, err := o.resolve()
	if err != nil {
		return nil, err
	}
	return &waitState{name: name, session: newSessionID(), o: o, try: try, waiters: map[string]*observer{}}, nil
}

func (lk *Locker) acquire(ctx context.Context, name string, try bool, opts []Option) (*Lock, error) {
	if err := ensureSchema(ctx, lk.s); err != nil {
		return nil, err
	}
	w, err := lk.newWait(name, try, opts)
	if err != nil {
		return nil, err
	}
	defer func() {
		if w.registered {
			lk.leaveQueue(ctx, w)
		}
	}()
	// First attempt without reading first: one transaction when the lock
	// is free and nobody waits. A database error here is returned (a
	// misconfigured store fails fast); later ones are waited out.
	l, err := lk.claim(ctx, w, nil)
	var he *HeldError
	switch {
	case err == nil:
		return l, nil
	case try && errors.Is(err, errRace):
		return nil, fmt.Errorf("%w: %q was taken by another session at the same moment", ErrLocked, name)
	case try, ctx.Err() != nil:
		return nil, lk.waitErr(ctx, w, err)
	case errors.As(err, &he):
		w.holder.see(he.row.lease(), time.Now())
	case errors.Is(err, errQueued), errors.Is(err, errRace):
	default:
		return nil, lk.waitErr(ctx, w, err)
	}
	for {
		pause := true // after a failed claim, look again after a poll interval
		if !w.registered {
			if err := lk.register(ctx, w); err != nil {
				if ctx.Err() != nil {
					return nil, lk.waitErr(ctx, w, err)
				}
				lk.log.Warn("locking: queueing failed; trying again", "lock", name, "err", err)
				if err := lk.sleep(ctx, w, false); err != nil {
					return nil, lk.waitErr(ctx, w, err)
				}
				continue
			}
			pause = false // look at once after queueing
		}
		stale, err := lk.waitTurn(ctx, w, pause)
		if err != nil {
			return nil, lk.waitErr(ctx, w, err)
		}
		l, err := lk.claim(ctx, w, stale)
		switch {
		case err == nil:
			return l, nil
		case errors.As(err, &he):
			w.holder.see(he.row.lease(), time.Now())
		case errors.Is(err, errQueued), errors.Is(err, errRace):
		case ctx.Err() != nil:
			return nil, lk.waitErr(ctx, w, err)
		default:
			lk.log.Warn("locking: claim failed; trying again", "lock", name, "err", err)
		}
	}
}

func (lk *Locker) waitErr(ctx context.Context, w *waitState, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("locking: waiting for %q: %w", w.name, ctx.Err())
	}
	return fmt.Errorf("locking: acquiring %q: %w", w.name, err)
}

// waitTurn polls until this waiter is first in the queue and the lock is
// free, or held by a lease that has stood still for its TTL (returned as
// stale). It keeps the waiter's own queue entry alive and removes dead
// waiters ahead of it. Database errors are logged and waited out (the
// store fails over to another node meanwhile); only the end of ctx ends
// the wait.
func (lk *Locker) waitTurn(ctx context.Context, w *waitState, pause bool) (*leaseState, error) {
	near := false // first or second in the queue
	for {
		if pause {
			if err := lk.sleep(ctx, w, near); err != nil {
				return nil, err
			}
		}
		pause = true
		if err := lk.heartbeat(ctx, w); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			lk.log.Warn("locking: renewing the queue entry failed", "lock", w.name, "err", err)
			continue
		}
		var row lockRow
		var held bool
		var queue []waiterRow
		err := lk.read(ctx, w, func(ctx context.Context, tx *sqlx.Tx) error {
			var err error
			if row, held, err = getLock(ctx, tx, w.name); err != nil {
				return err
			}
			queue = queue[:0]
			return tx.SelectContext(ctx, &queue, selectWaiters, w.name)
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			lk.log.Warn("locking: reading the lock failed", "lock", w.name, "err", err)
			continue
		}
		now := time.Now()
		ahead := 0
		seen := map[string]bool{}
		for _, q := range queue {
			if !q.before(w.ticket, w.session) {
				continue
			}
			seen[q.Session] = true
			ob := w.waiters[q.Session]
			if ob == nil {
				ob = &observer{}
				w.waiters[q.Session] = ob
			}
			ob.see(leaseState{q.Session, q.Ticket, q.Lease}, now)
			if ob.stale(q.ttl(), now) {
				if err := lk.reap(ctx, w, q); err == nil {
					delete(w.waiters, q.Session)
					continue
				} else if ctx.Err() != nil {
					return nil, ctx.Err()
				}
			}
			ahead++
		}
		for s := range w.waiters {
			if !seen[s] {
				delete(w.waiters, s)
			}
		}
		if held && row.Holder != "" {
			w.holder.see(row.lease(), now)
		} else {
			w.holder = observer{}
		}
		if near = ahead <= 1; ahead > 0 {
			continue
		}
		if !held || row.Holder == "" {
			return nil, nil
		}
		if w.holder.stale(row.ttl(), now) {
			st := w.holder.cur
			return &st, nil
		}
	}
}

// sleep waits one jittered poll interval, or until Unlock in this
// process wakes the lock's waiters. The first two in the queue wait a
// quarter of it: the first is the one to notice a release, the second the
// one to notice that the first got the lock; the rest only move up.
func (lk *Locker) sleep(ctx context.Context, w *waitState, near bool) error {
	d := w.o.poll
	if near {
		d = max(d/4, minPoll)
	}
	d = time.Duration(float64(d) * (0.75 + 0.5*mrand.Float64()))
	return ctxutil.SleepOr(ctx, d, lk.wakeChan(w.name))
}

func (lk *Locker) wakeChan(name string) chan struct{} {
	lk.mu.Lock()
	defer lk.mu.Unlock()
	ch := lk.wake[name]
	if ch == nil {
		ch = make(chan struct{})
		lk.wake[name] = ch
	}
	return ch
}

// wakeWaiters wakes this process's waiters for name.
func (lk *Locker) wakeWaiters(name string) {
	lk.mu.Lock()
	defer lk.mu.Unlock()
	if ch := lk.wake[name]; ch != nil {
		close(ch)
		delete(lk.wake, name)
	}
}

// opTimeout bounds one database attempt: half the renew interval, from
// 1s to 5s. A node that hangs (a paused one) then holds an operation up
// only that long; the next attempt finds the node unhealthy (the store's
// health check) and uses another one.
func (o options) opTimeout() time.Duration {
	return min(max(o.renewEvery/2, time.Second), 5*time.Second)
}

func opCtx(ctx context.Context, o options) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, o.opTimeout())
}

// retryTx runs fn in a transaction, each attempt bounded by opTimeout,
// until it succeeds, fails otherwise than by that timeout, or ctx ends.
// fn must be safe to run again after an attempt whose commit had an
// unknown outcome.
func (lk *Locker) retryTx(ctx context.Context, attempt time.Duration, fn func(ctx context.Context, tx *sqlx.Tx) error) error {
	for {
		c, cancel := context.WithTimeout(ctx, attempt)
		err := lk.s.Tx(c, func(tx *sqlx.Tx) error { return fn(c, tx) })
		cancel()
		if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		lk.log.Debug("locking: database attempt timed out; trying again", "err", err)
	}
}

// read and tx run fn with a context bounded by opTimeout, which fn must
// use for its statements.
func (lk *Locker) read(ctx context.Context, w *waitState, fn func(ctx context.Context, tx *sqlx.Tx) error) error {
	c, cancel := opCtx(ctx, w.o)
	defer cancel()
	return lk.s.Read(c, func(tx *sqlx.Tx) error { return fn(c, tx) })
}

func (lk *Locker) tx(ctx context.Context, w *waitState, fn func(ctx context.Context, tx *sqlx.Tx) error) error {
	c, cancel := opCtx(ctx, w.o)
	defer cancel()
	return lk.s.Tx(c, func(tx *sqlx.Tx) error { return fn(c, tx) })
}

// register puts the waiter at the end of the queue. The ticket is one
// more than the largest present; two waiters registering at once on two
// Galera nodes may draw the same ticket and are then ordered by session
// id. The order only serves fairness; exclusion rests on the lock row.
func (lk *Locker) register(ctx context.Context, w *waitState) error {
	err := lk.tx(ctx, w, func(ctx context.Context, tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO lock_waiters (name, session_id, ticket, member, info, lease, ttl_ms, since_us)
			SELECT ?, ?, COALESCE(MAX(ticket), 0) + 1, ?, ?, 0, ?, ? FROM lock_waiters WHERE name = ?`,
			w.name, w.session, lk.member, w.o.info, w.o.ttl.Milliseconds(), time.Now().UnixMicro(), w.name)
		if err != nil {
			return err
		}
		return tx.GetContext(ctx, &w.ticket, `SELECT ticket FROM lock_waiters WHERE name = ? AND session_id = ?`, w.name, w.session)
	})
	if err != nil {
		return err
	}
	w.registered, w.beatAt = true, time.Now()
	lk.log.Debug("locking: queued", "lock", w.name, "session", shortID(w.session), "ticket", w.ticket)
	return nil
}

// heartbeat bumps the waiter's queue entry every renew interval so the
// waiters behind it do not remove it. An entry removed meanwhile (this
// process was paused for longer than its TTL) is queued again at the end.
func (lk *Locker) heartbeat(ctx context.Context, w *waitState) error {
	if !w.registered || time.Since(w.beatAt) < w.o.renewEvery {
		return nil
	}
	start := time.Now()
	var n int64
	err := lk.tx(ctx, w, func(ctx context.Context, tx *sqlx.Tx) error {
		var err error
		n, err = affected(tx.ExecContext(ctx, `UPDATE lock_waiters SET lease = lease + 1 WHERE name = ? AND session_id = ?`, w.name, w.session))
		return err
	})
	if err != nil {
		return err
	}
	if n == 0 {
		lk.log.Warn("locking: queue entry was removed while waiting; queueing again", "lock", w.name, "session", shortID(w.session))
		w.registered = false
		return lk.register(ctx, w)
	}
	w.beatAt = start
	return nil
}

// reap removes a waiter whose lease has stood still for its TTL,
// conditionally on that lease so a waiter that just beat survives.
func (lk *Locker) reap(ctx context.Context, w *waitState, q waiterRow) error {
	var n int64
	err := lk.tx(ctx, w, func(ctx context.Context, tx *sqlx.Tx) error {
		var err error
		n, err = affected(tx.ExecContext(ctx, `DELETE FROM lock_waiters WHERE name = ? AND session_id = ? AND lease = ?`, w.name, q.Session, q.Lease))
		return err
	})
	if err == nil && n > 0 {
		lk.stats.reaped.Add(1)
		lk.log.Info("locking: removed dead waiter", "lock", w.name, "waiter", shortID(q.Session), "member", q.Member)
	}
	return err
}

// leaveQueue removes the waiter's queue entry, also after ctx ended.
func (lk *Locker) leaveQueue(ctx context.Context, w *waitState) {
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	err := lk.retryTx(c, w.o.opTimeout(), func(c context.Context, tx *sqlx.Tx) error {
		_, err := tx.ExecContext(c, `DELETE FROM lock_waiters WHERE name = ? AND session_id = ?`, w.name, w.session)
		return err
	})
	if err != nil {
		lk.log.Warn("locking: leaving the queue failed; the entry is removed by other waiters after its TTL", "lock", w.name, "err", err)
	}
}

// claimMode is how a claim takes the lock row.
type claimMode int

const (
	claimInsert   claimMode = iota // no row yet
	claimFree                      // row with holder ''
	claimTakeover                  // row whose lease stood still for its TTL
	claimMine                      // row taken by an earlier run of the same claim
)

// claim tries to take the lock in one transaction: it draws the next
// fencing token and takes the row with a conditional statement (free, or
// exactly the stale lease observed). An unregistered Lock call only takes
// a lock nobody queues for. On success the waiter's queue entry is
// removed in the same transaction.
func (lk *Locker) claim(ctx context.Context, w *waitState, stale *leaseState) (*Lock, error) {
	lk.stats.claims.Add(1)
	start := time.Now()
	var c claimState
	err := lk.tx(ctx, w, func(ctx context.Context, tx *sqlx.Tx) error {
		c = claimState{}
		return lk.claimTx(ctx, tx, w, stale, &c)
	})
	token, mode, prev := c.token, c.mode, c.prev
	if err != nil {
		var he *HeldError
		if errors.As(err, &he) || errors.Is(err, errRace) || errors.Is(err, errQueued) {
			lk.stats.races.Add(1)
			return nil, err
		}
		// A commit may have happened before the error (a context that
		// ended during COMMIT, a lost connection): release what this
		// session may hold. A no-op when it holds nothing.
		lk.releaseUnknown(ctx, w)
		return nil, err
	}
	if w.registered {
		w.registered = false // the claim removed the queue entry
	}
	lk.stats.acquired.Add(1)
	if mode == claimTakeover {
		lk.stats.takeovers.Add(1)
		lk.log.Warn("locking: took over a lease that stood still for its TTL", "lock", w.name,
			"from_member", prev.Member, "from_token", prev.Token, "token", token)
	}
	lk.log.Debug("locking: acquired", "lock", w.name, "token", token, "session", shortID(w.session))
	l := newLock(lk, w, token, start)
	if !l.Held() {
		// The claim took longer than TTL - margin (retries, a slow
		// commit): the lease may already be running out. Give it back
		// and wait again rather than hand out a lock that is not held.
		c, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		l.Unlock(c)
		lk.log.Warn("locking: lease ran out while it was being acquired", "lock", w.name, "took", time.Since(start))
		return nil, errRace
	}
	return l, nil
}

// claimState is what a claim transaction found and did.
type claimState struct {
	mode  claimMode
	token int64   // the new token
	prev  lockRow // the row as it was before
}

// claimTx is the transaction of claim: it reads the lock row, decides how
// to take it (claimMode) and takes it with one conditional statement.
func (lk *Locker) claimTx(ctx context.Context, tx *sqlx.Tx, w *waitState, stale *leaseState, c *claimState) error {
	row, ok, err := getLock(ctx, tx, w.name)
	if err != nil {
		return err
	}
	c.prev = row
	switch {
	case !ok:
		c.mode = claimInsert
	case row.Holder == w.session:
		// An earlier run of this transaction committed before its
		// connection failed (the store ran it again elsewhere).
		c.mode, c.token = claimMine, row.Token
	case row.Holder == "":
		c.mode = claimFree
	case stale != nil && row.lease() == *stale:
		c.mode = claimTakeover
	default:
		return newHeldError(w.name, row)
	}
	if c.mode == claimMine {
		// Move the lease so contenders start watching it anew: the
		// validity counted from this claim's start is then safe even
		// if the earlier commit happened long before.
		if _, err := tx.ExecContext(ctx, `UPDATE locks SET lease = lease + 1 WHERE name = ? AND holder = ? AND token = ?`, w.name, w.session, c.token); err != nil {
			return err
		}
		if w.registered {
			_, err := tx.ExecContext(ctx, `DELETE FROM lock_waiters WHERE name = ? AND session_id = ?`, w.name, w.session)
			return err
		}
		return nil
	}
	if !w.try && !w.registered {
		var n int
		if err := tx.GetContext(ctx, &n, `SELECT COUNT(*) FROM lock_waiters WHERE name = ?`, w.name); err != nil {
			return err
		}
		if n > 0 {
			return errQueued
		}
	}
	if c.token, err = lk.nextToken(ctx, tx, w.name, row.Token); err != nil {
		return err
	}
	if err := lk.takeRow(ctx, tx, w, c, stale); err != nil {
		return err
	}
	if w.registered {
		if _, err := tx.ExecContext(ctx, `DELETE FROM lock_waiters WHERE name = ? AND session_id = ?`, w.name, w.session); err != nil {
			return err
		}
	}
	if c.mode == claimTakeover {
		// Rare and worth a record; Audit also moves the change
		// counter, which is why ordinary acquisitions are not audited.
		return lk.s.Audit(ctx, tx, "lock.takeover", w.name, map[string]any{
			"from_member": row.Member, "from_session": shortID(row.Holder), "from_token": row.Token,
			"token": c.token, "ttl_ms": row.TTLms,
		})
	}
	return nil
}

// takeRow writes the claim of c.mode with token c.token: an INSERT, or a
// conditional UPDATE of a free row or of exactly the stale lease seen.
// errRace when another session got there first.
func (lk *Locker) takeRow(ctx context.Context, tx *sqlx.Tx, w *waitState, c *claimState, stale *leaseState) error {
	token := c.token
	now := time.Now().UnixMicro()
	var n int64
	var err error
	switch c.mode {
	case claimInsert:
		_, err = tx.ExecContext(ctx, `INSERT INTO locks (name, holder, member, info, token, lease, guards, ttl_ms, since_us) VALUES (?,?,?,?,?,1,0,?,?)`,
			w.name, w.session, lk.member, w.o.info, token, w.o.ttl.Milliseconds(), now)
		if lk.s.IsDuplicate(err) {
			return errRace
		}
		n = 1
	case claimFree:
		n, err = affected(tx.ExecContext(ctx, `UPDATE locks SET holder = ?, member = ?, info = ?, token = ?, lease = lease + 1, ttl_ms = ?, since_us = ?
			WHERE name = ? AND holder = ''`,
			w.session, lk.member, w.o.info, token, w.o.ttl.Milliseconds(), now, w.name))
	case claimTakeover:
		n, err = affected(tx.ExecContext(ctx, `UPDATE locks SET holder = ?, member = ?, info = ?, token = ?, lease = lease + 1, ttl_ms = ?, since_us = ?
			WHERE name = ? AND holder = ? AND token = ? AND lease = ?`,
			w.session, lk.member, w.o.info, token, w.o.ttl.Milliseconds(), now, w.name, stale.holder, stale.token, stale.lease))
	}
	if err != nil {
		return err
	}
	if n != 1 {
		return errRace
	}
	return nil
}

// nextToken increments and returns the lock's fencing token. The token
// row is never deleted; the GREATEST with the token found in the lock row
// keeps the token growing even if the token row was lost.
func (lk *Locker) nextToken(ctx context.Context, tx *sqlx.Tx, name string, floor int64) (int64, error) {
	n, err := affected(tx.ExecContext(ctx, `UPDATE lock_tokens SET token = `+lk.s.Dialect().Greatest("token", "?")+` + 1 WHERE name = ?`, floor, name))
	if err != nil {
		return 0, err
	}
	if n == 0 {
		_, err := tx.ExecContext(ctx, `INSERT INTO lock_tokens (name, token) VALUES (?, ?)`, name, floor+1)
		if lk.s.IsDuplicate(err) {
			return 0, errRace
		}
		if err != nil {
			return 0, err
		}
	}
	var token int64
	err = tx.GetContext(ctx, &token, `SELECT token FROM lock_tokens WHERE name = ?`, name)
	return token, err
}

// releaseUnknown frees the lock if a claim whose outcome is unknown took
// it (the caller's context ended during the commit, the connection was
// lost).
func (lk *Locker) releaseUnknown(ctx context.Context, w *waitState) {
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	err := lk.retryTx(c, w.o.opTimeout(), func(c context.Context, tx *sqlx.Tx) error {
		_, err := tx.ExecContext(c, `UPDATE locks SET holder = '', member = '', info = '', lease = lease + 1 WHERE name = ? AND holder = ?`, w.name, w.session)
		return err
	})
	if err != nil {
		lk.log.Warn("locking: could not release a claim of unknown outcome; it expires after its TTL", "lock", w.name, "err", err)
	}
}

func newSessionID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("locking: no randomness: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}
