package locking

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
)

// Lock is a held cluster-wide lock: a lease in the pool database, renewed
// in the background every renew interval (TTL/3 by default), with a
// fencing token.
//
// When it is safe to assume the lock is held:
//
//   - While Held reports true. Held is true from the moment Lock returns
//     until TTL - margin after the start of the last successful renewal,
//     measured on this process's monotonic clock. A contender can take the
//     lock over only after it has seen the lease counter stand still for
//     the full TTL on its own monotonic clock, and it can only have seen
//     the renewal after that renewal started, so Held turns false at least
//     margin before any takeover (docs/LOCKING.md has the arithmetic).
//   - For a database write in a transaction that calls Guard: the write
//     commits only if the lock row still carries this token, whatever the
//     clocks did, also on Galera (Guard writes the lock row, so a
//     concurrent takeover on another node conflicts with it).
//   - For files under an Install lock, for a writer that calls CheckToken
//     before each step it cannot undo.
//
// When it is not safe:
//
//   - After Done is closed (Err says why: lost, or released by Unlock).
//   - Between two checks of Held: the process may be paused (SIGSTOP, a
//     long GC, swapping, a frozen VM) right after a check and resume after
//     the TTL with the lock held by someone else; it learns of it only at
//     its next check. The same holds when the host suspends, which stops
//     the monotonic clock. Work that must not overlap with the next
//     holder's therefore has to be fenced with the token (Guard,
//     CheckToken); Held and Done only bound how long a healthy process
//     carries on.
//   - When the monotonic clocks of the holder's and the contender's hosts
//     run at rates that differ by more than margin/TTL (20% by default;
//     real clocks differ by less than 0.1%).
//
// A Lock is safe for concurrent use.
type Lock struct {
	lk         *Locker
	name       string
	session    string
	token      int64
	ttl        time.Duration
	margin     time.Duration
	renewEvery time.Duration
	opTimeout  time.Duration

	done    chan struct{}
	stop    context.CancelFunc // ends the renewer
	stopCtx context.Context
	exited  chan struct{} // closed when the renewer returns

	mu         sync.Mutex
	validUntil time.Time // monotonic: Held is false from here on
	deadline   *time.Timer
	err        error // why done was closed
	renewErr   error // last renewal error, explains an expiry
	released   bool  // Unlock was called
}

func newLock(lk *Locker, w *waitState, token int64, start time.Time) *Lock {
	l := &Lock{
		lk: lk, name: w.name, session: w.session, token: token,
		ttl: w.o.ttl, margin: w.o.margin, renewEvery: w.o.renewEvery, opTimeout: w.o.opTimeout(),
		done: make(chan struct{}), exited: make(chan struct{}),
		validUntil: start.Add(w.o.ttl - w.o.margin),
	}
	l.stopCtx, l.stop = context.WithCancel(context.Background())
	l.mu.Lock() // expire may run before AfterFunc returns
	l.deadline = time.AfterFunc(time.Until(l.validUntil), l.expire)
	l.mu.Unlock()
	go l.renew()
	return l
}

// Name is the lock's name.
func (l *Lock) Name() string { return l.name }

// Token is the fencing token of this holding: larger than the token of
// every earlier holding of the same name, never reused, never derived from
// an auto-increment value. Pass it to whatever the lock protects.
func (l *Lock) Token() int64 { return l.token }

// TTL is the lease time of this holding.
func (l *Lock) TTL() time.Duration { return l.ttl }

// Margin is the safety margin: Done closes at least this long before a
// contender can take the lock over. Work must stop within it.
func (l *Lock) Margin() time.Duration { return l.margin }

// Session is the random id recorded as holder in the lock row.
func (l *Lock) Session() string { return l.session }

// Done is closed when the lock is no longer held: the lease was lost (Err
// wraps ErrLeaseLost) or Unlock was called (Err wraps ErrNotHeld). It is
// closed before a contender can take the lock over, by at least the
// margin, as long as this process is not paused (see Lock).
func (l *Lock) Done() <-chan struct{} { return l.done }

// Err is nil while the lock is held and says why Done was closed after.
func (l *Lock) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Held reports whether the lease is still valid on this process's clock:
// Done is not closed and TTL - margin has not passed since the start of
// the last successful renewal. It reads the clock itself, so it is right
// even when the goroutine that closes Done has not run yet.
func (l *Lock) Held() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err == nil && time.Now().Before(l.validUntil)
}

// ValidUntil is the monotonic time at which the lease ends unless renewed.
func (l *Lock) ValidUntil() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.validUntil
}

// Guard fences a database write with this lock: call it inside the
// transaction that makes the write (see the package function Guard).
func (l *Lock) Guard(ctx context.Context, tx *sqlx.Tx) error {
	return Guard(ctx, tx, l.name, l.token)
}

// Unlock releases the lock. It returns an error wrapping ErrLeaseLost
// when the lease had been lost before (work done under it may have
// overlapped with the next holder), ErrNotHeld when called again, and a
// database error when the release could not be written (the lease then
// ends after its TTL, since nobody renews it). Done is closed in every
// case.
func (l *Lock) Unlock(ctx context.Context) error {
	l.mu.Lock()
	if l.released {
		l.mu.Unlock()
		return fmt.Errorf("%w: %q (token %d) was released already", ErrNotHeld, l.name, l.token)
	}
	l.released = true
	lost := l.err
	if l.err == nil {
		l.err = fmt.Errorf("%w: %q (token %d) released by Unlock", ErrNotHeld, l.name, l.token)
		close(l.done)
	}
	l.deadline.Stop()
	l.mu.Unlock()
	l.stop()
	<-l.exited

	var n int64
	err := l.lk.retryTx(ctx, l.opTimeout, func(ctx context.Context, tx *sqlx.Tx) error {
		var err error
		n, err = affected(tx.ExecContext(ctx, `UPDATE locks SET holder = '', member = '', info = '', lease = lease + 1
			WHERE name = ? AND holder = ? AND token = ?`, l.name, l.session, l.token))
		if err != nil || n == 1 {
			return err
		}
		// An earlier attempt may have committed before its connection
		// failed: then the row is free with this token.
		row, ok, err := getLock(ctx, tx, l.name)
		if err == nil && ok && row.Holder == "" && row.Token == l.token {
			n = 1
		}
		return err
	})
	l.lk.wakeWaiters(l.name)
	switch {
	case lost != nil:
		return lost
	case err != nil:
		return fmt.Errorf("locking: releasing %q (token %d): %w; it expires after its TTL of %v", l.name, l.token, err, l.ttl)
	case n == 0:
		l.lk.stats.lost.Add(1)
		return fmt.Errorf("%w: %q (token %d) had been taken over or deleted before Unlock", ErrLeaseLost, l.name, l.token)
	}
	l.lk.log.Debug("locking: released", "lock", l.name, "token", l.token)
	return nil
}

// Abandon stops renewing the lease and closes Done (Err wraps
// ErrNotHeld) without writing to the database, as if the process had
// died: the row stays held until a contender has seen its lease stand
// still for the TTL and takes it over. It is for a holder that must stop
// at once without waiting for the database, and for tests that simulate
// a crash. Unlock after Abandon returns the ErrNotHeld error.
func (l *Lock) Abandon() {
	l.mu.Lock()
	if l.released {
		l.mu.Unlock()
		return
	}
	l.released = true
	if l.err == nil {
		l.err = fmt.Errorf("%w: %q (token %d) abandoned without release; it can be taken over after its TTL", ErrNotHeld, l.name, l.token)
		close(l.done)
	}
	l.deadline.Stop()
	l.mu.Unlock()
	l.stop()
	<-l.exited
}

// renew keeps the lease alive until Unlock or loss.
func (l *Lock) renew() {
	defer close(l.exited)
	t := time.NewTimer(l.renewEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stopCtx.Done():
			return
		case <-l.done:
			return
		case <-t.C:
		}
		start := time.Now()
		// One attempt gets opTimeout (a node that hangs, such as a paused
		// one, is left for another), and none outlives the lease.
		end := start.Add(l.opTimeout)
		if until := l.ValidUntil(); until.Before(end) {
			end = until
		}
		ctx, cancel := context.WithDeadline(l.stopCtx, end)
		var n int64
		err := l.lk.s.Tx(ctx, func(tx *sqlx.Tx) error {
			var err error
			n, err = affected(tx.ExecContext(ctx, `UPDATE locks SET lease = lease + 1 WHERE name = ? AND holder = ? AND token = ?`,
				l.name, l.session, l.token))
			return err
		})
		cancel()
		next := l.renewEvery
		switch {
		case l.stopCtx.Err() != nil:
			return
		case err == nil && n == 0:
			l.lose(fmt.Errorf("%w: %q (token %d) was taken over or its row deleted", ErrLeaseLost, l.name, l.token))
			return
		case err == nil:
			l.lk.stats.renewals.Add(1)
			l.extend(start)
		default:
			l.lk.stats.renewFailures.Add(1)
			l.lk.log.Warn("locking: renewing lease failed", "lock", l.name, "token", l.token, "err", err)
			l.mu.Lock()
			l.renewErr = err
			l.mu.Unlock()
			next = min(l.renewEvery/4, 500*time.Millisecond)
		}
		t.Reset(next)
	}
}

// extend moves the end of the lease to TTL - margin after start, the
// moment the successful renewal was sent.
func (l *Lock) extend(start time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return
	}
	l.renewErr = nil
	if until := start.Add(l.ttl - l.margin); until.After(l.validUntil) {
		l.validUntil = until
		l.deadline.Reset(time.Until(until))
	}
}

// expire runs when the deadline timer fires.
func (l *Lock) expire() {
	l.mu.Lock()
	if l.err != nil {
		l.mu.Unlock()
		return
	}
	if left := time.Until(l.validUntil); left > 0 { // extended meanwhile
		l.deadline.Reset(left)
		l.mu.Unlock()
		return
	}
	cause := "no renewal succeeded"
	if l.renewErr != nil {
		cause = "last renewal error: " + l.renewErr.Error()
	}
	l.mu.Unlock()
	l.lose(fmt.Errorf("%w: %q (token %d) not renewed within TTL - margin = %v (%s)", ErrLeaseLost, l.name, l.token, l.ttl-l.margin, cause))
}

// lose closes Done with err unless it is closed already.
func (l *Lock) lose(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return
	}
	l.err = err
	l.deadline.Stop()
	close(l.done)
	l.lk.stats.lost.Add(1)
	l.lk.log.Warn("locking: lease lost", "lock", l.name, "token", l.token, "err", err)
}
