package locking

import (
	"errors"
	"fmt"
)

// Sentinel errors of the locking package, matched with errors.Is. The
// errors returned wrap them and name the lock, the token and the holder.
var (
	// ErrInvalid: a lock name, directory or option is not allowed. Nothing
	// was written.
	ErrInvalid = errors.New("locking: invalid value")
	// ErrLocked: TryLock found the lock held by another session.
	ErrLocked = errors.New("locking: lock held")
	// ErrLeaseLost: the lease ended while the lock was believed held: its
	// row was taken over or deleted, or it could not be renewed within
	// the TTL minus the safety margin. Done is closed; work done under the
	// lock since the last successful renewal may have overlapped with the
	// next holder, and only writes fenced by the token are known safe.
	ErrLeaseLost = errors.New("locking: lease lost")
	// ErrNotHeld: Unlock of a lock that was already released.
	ErrNotHeld = errors.New("locking: lock not held")
	// ErrStaleToken: a fencing token is no longer the current one for its
	// lock (Guard, CheckToken): a newer holder exists or the lock is free.
	ErrStaleToken = errors.New("locking: stale fencing token")
)

// HeldError is ErrLocked with the holder that was found (TryLock,
// Contend): match it with errors.As.
type HeldError struct {
	Name    string // the lock
	Member  string // the member recorded as holder
	Session string // the holding session
	Token   int64  // the holder's fencing token
	row     lockRow
}

func newHeldError(name string, row lockRow) *HeldError {
	return &HeldError{Name: name, Member: row.Member, Session: row.Holder, Token: row.Token, row: row}
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("%v: %q is held by member %q (session %s, token %d)", ErrLocked, e.Name, e.Member, shortID(e.Session), e.Token)
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *HeldError) Is(target error) bool { return target == ErrLocked }

// Internal outcomes of a claim attempt that make the waiter look again.
var (
	errRace   = errors.New("locking: lost a race for the lock row")
	errQueued = errors.New("locking: other sessions are queued")
)

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
