package locking

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// sighting is what Contend has seen of a held lock: the lease state, the
// holder's TTL and since when (on this process's monotonic clock) it has
// been seen unchanged.
type sighting struct {
	ob  observer
	ttl time.Duration
}

// Contend is TryLock for a caller that polls instead of queueing (the
// console leases, which must not block a client's request): it takes the
// lock when it is free, and takes it over when this Locker's earlier
// Contend calls have seen the holder's lease counter stand still for the
// holder's TTL on this process's monotonic clock. Otherwise it returns an
// error wrapping ErrLocked (a *HeldError naming the holder). Each call is
// one observation, so a caller that wants a dead holder's lock calls
// Contend repeatedly, more often than the TTL.
//
// The takeover is the same conditional UPDATE on the observed lease that
// Lock uses, and the Lock returned has the same give-up rule (Done closes
// TTL - margin after the last successful renewal). Contend does not queue:
// it may take a free lock ahead of queued Lock callers.
func (lk *Locker) Contend(ctx context.Context, name string, opts ...Option) (*Lock, error) {
	if err := ensureSchema(ctx, lk.s); err != nil {
		return nil, err
	}
	w, err := lk.newWait(name, true, opts)
	if err != nil {
		return nil, err
	}
	stale := lk.staleSighting(name, time.Now())
	l, err := lk.claim(ctx, w, stale)
	var he *HeldError
	switch {
	case err == nil:
		lk.forget(name)
		return l, nil
	case errors.As(err, &he):
		lk.sight(name, he.row, time.Now())
		return nil, fmt.Errorf("locking: contending for %q: %w", name, err)
	case errors.Is(err, errRace):
		return nil, fmt.Errorf("%w: %q was taken by another session at the same moment", ErrLocked, name)
	}
	return nil, lk.waitErr(ctx, w, err)
}

// staleSighting returns the lease state of name when it has been seen
// unchanged for the holder's TTL, else nil.
func (lk *Locker) staleSighting(name string, now time.Time) *leaseState {
	lk.mu.Lock()
	defer lk.mu.Unlock()
	s := lk.seen[name]
	if s == nil || !s.ob.stale(s.ttl, now) {
		return nil
	}
	st := s.ob.cur
	return &st
}

// sight records one observation of name's held lease.
func (lk *Locker) sight(name string, row lockRow, now time.Time) {
	lk.mu.Lock()
	defer lk.mu.Unlock()
	s := lk.seen[name]
	if s == nil {
		s = &sighting{}
		lk.seen[name] = s
	}
	s.ob.see(row.lease(), now)
	s.ttl = row.ttl()
}

func (lk *Locker) forget(name string) {
	lk.mu.Lock()
	defer lk.mu.Unlock()
	delete(lk.seen, name)
}
