package dispatch

import "errors"

// Sentinel errors; match with errors.Is. Messages name the node or value.
var (
	// ErrInvalid: a request, target or option failed validation; nothing
	// was run.
	ErrInvalid = errors.New("dispatch: invalid value")
	// ErrUnknown: a name in the noderange is neither a node nor a member.
	ErrUnknown = errors.New("dispatch: unknown node")
	// ErrConnect: the node could not be reached or refused the login.
	ErrConnect = errors.New("dispatch: cannot reach node")
	// ErrHostKey: the node's SSH host key is unknown or does not match
	// known_hosts.
	ErrHostKey = errors.New("dispatch: node host key not accepted")
	// ErrTimeout: the node did not finish within the command timeout, or
	// did not answer within the connect timeout.
	ErrTimeout = errors.New("dispatch: node timed out")
	// ErrRelay: the member a node was relayed through failed before the
	// node's result came back.
	ErrRelay = errors.New("dispatch: relay through member failed")
	// ErrCanceled: the caller's context ended before the node ran.
	ErrCanceled = errors.New("dispatch: canceled")
)

// errKinds maps sentinels to the names they travel under in the relay
// protocol, so a relayed error is still matched with errors.Is.
func errKinds() []struct {
	name string
	err  error
} {
	return []struct {
		name string
		err  error
	}{
		// relay first: a relay failure wraps the member's own error.
		{"relay", ErrRelay}, {"invalid", ErrInvalid}, {"unknown", ErrUnknown},
		{"connect", ErrConnect}, {"hostkey", ErrHostKey}, {"timeout", ErrTimeout},
		{"canceled", ErrCanceled},
	}
}

func errKind(err error) string {
	for _, k := range errKinds() {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	return ""
}

func kindErr(name string) error {
	for _, k := range errKinds() {
		if k.name == name {
			return k.err
		}
	}
	return nil
}

// kindError gives err the kind of a sentinel of this package without
// changing its message.
type kindError struct{ kind, err error }

func (k kindError) Error() string   { return k.err.Error() }
func (k kindError) Unwrap() []error { return []error{k.kind, k.err} }
