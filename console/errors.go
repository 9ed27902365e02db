package console

import (
	"errors"
	"fmt"
)

// Sentinel errors of the console package, matched with errors.Is. Messages
// name the offending value and what is allowed.
var (
	// ErrInvalid: a console spec, hello or option failed validation.
	// Nothing was written.
	ErrInvalid = errors.New("console: invalid value")
	// ErrNotFound: the node has no console configured, or is not a node
	// of the pool.
	ErrNotFound = errors.New("console: not found")
	// ErrNoServer: no member may serve the node's console (its list is
	// empty, or every member in it is disabled, does not run the console
	// service, or is dead).
	ErrNoServer = errors.New("console: no member can serve the console")
	// ErrLeaseHeld: another member holds the node's console lease and it
	// has not been seen stale for the TTL yet. The error is a *HeldError.
	ErrLeaseHeld = errors.New("console: lease held")
	// ErrLeaseLost: a lease this member held was taken over, released or
	// could not be renewed before it expired on this member's clock. The
	// console connection it protected has been closed.
	ErrLeaseLost = errors.New("console: lease lost")
	// ErrRejected: a broker refused a request (the reply's error says why).
	ErrRejected = errors.New("console: broker refused")
	// ErrForbidden: a peer did not authenticate, or its identity may not
	// do what it asked (see SiteACL).
	ErrForbidden = errors.New("console: forbidden")
	// ErrNoCredentials: a TCP listener or a proxy needs the member's
	// certificate (WithCredentials).
	ErrNoCredentials = errors.New("console: no member certificate")
	// ErrClosed: the broker or lease table is closed.
	ErrClosed = errors.New("console: closed")
)

// HeldError says who holds a lease.
type HeldError struct {
	Node   string
	Holder string
	Token  int64
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("console: lease of %s held by %s (token %d)", e.Node, e.Holder, e.Token)
}

// Is makes errors.Is(err, ErrLeaseHeld) true.
func (e *HeldError) Is(target error) bool { return target == ErrLeaseHeld }
