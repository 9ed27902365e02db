package nodecfg

import "errors"

// Sentinel errors; match with errors.Is. Messages name the node and the
// offending value.
var (
	// ErrInvalid: a file, target or pusher setting failed validation;
	// nothing was sent to the node.
	ErrInvalid = errors.New("nodecfg: invalid value")
	// ErrTimeout: the node did not finish within its timeout (or the
	// caller's context ended); files written before that are listed in
	// the Result.
	ErrTimeout = errors.New("nodecfg: node timed out")
	// ErrConnect: the node could not be reached or refused the login.
	ErrConnect = errors.New("nodecfg: cannot reach node")
	// ErrHostKey: the node's SSH host key is unknown or does not match
	// known_hosts.
	ErrHostKey = errors.New("nodecfg: node host key not accepted")
	// ErrRemote: the remote command failed (its stderr is in the message).
	ErrRemote = errors.New("nodecfg: remote command failed")
	// ErrRender: the files of a node could not be rendered from the pool.
	ErrRender = errors.New("nodecfg: cannot render node configuration")
	// ErrSetup: the SSH pusher cannot be built (no pool key, no
	// known_hosts file); no node was contacted.
	ErrSetup = errors.New("nodecfg: SSH pusher not set up")
)
