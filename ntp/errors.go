package ntp

import "errors"

// Errors returned by the package; match them with errors.Is.
var (
	// ErrInvalid: a value that cannot go into chrony.conf, or a bad
	// server address.
	ErrInvalid = errors.New("ntp: invalid value")
	// ErrNotFound: a member that is not in the pool.
	ErrNotFound = errors.New("ntp: not found")
	// ErrNoServers: nothing to take time from.
	ErrNoServers = errors.New("ntp: no server")
	// ErrNoAnswer: the server did not answer in time.
	ErrNoAnswer = errors.New("ntp: no answer")
	// ErrKissOfDeath: the server answered with a kiss-of-death code (it
	// asks the client to slow down or go away).
	ErrKissOfDeath = errors.New("ntp: kiss of death")
	// ErrUnsynchronized: the server answered but its clock is not
	// synchronized (leap indicator 3 or stratum 16).
	ErrUnsynchronized = errors.New("ntp: server not synchronized")
	// ErrSkew: members' clocks differ by more than allowed.
	ErrSkew = errors.New("ntp: clock skew")
)
