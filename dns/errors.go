package dns

import "errors"

// Errors returned by the package; match them with errors.Is.
var (
	// ErrInvalid: a value from the pool or the command line cannot go into
	// a configuration file (bad forwarder, domain, option, ...).
	ErrInvalid = errors.New("dns: invalid value")
	// ErrNotFound: a node, member or zone that is not in the pool.
	ErrNotFound = errors.New("dns: not found")
	// ErrNoServers: no member can serve the node or member asked about.
	ErrNoServers = errors.New("dns: no server")
	// ErrOnlyMN: a member's resolver would depend on the MN alone.
	ErrOnlyMN = errors.New("dns: only the MN")
)
