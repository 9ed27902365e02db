package agent

import "errors"

// Sentinel errors of the agent package, matched with errors.Is. Returned
// errors wrap them and name the offending value and what is allowed.
var (
	// ErrInvalid: an option or a site value is not allowed.
	ErrInvalid = errors.New("agent: invalid value")
	// ErrUnsafeTiming: a heartbeat, liveness or lease timeout is too short
	// for the failure detection of the Galera cluster under the pool
	// database (docs/DESIGN.md, *minority-primary*).
	ErrUnsafeTiming = errors.New("agent: unsafe timing")
	// ErrNotMember: the agent's member is not a member of the pool.
	ErrNotMember = errors.New("agent: not a pool member")
	// ErrMemberAlive: a member being failed over beat again; the failover
	// stopped (it was only paused or slow).
	ErrMemberAlive = errors.New("agent: member is alive")
	// ErrRunning: Run was called while the agent runs already.
	ErrRunning = errors.New("agent: already running")
)
