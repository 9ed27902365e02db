package dispatch

import (
	"errors"
	"fmt"
)

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

// phrase is what a sentinel says, without the package tag.
func phrase(kind error) string {
	switch kind {
	case ErrInvalid:
		return "invalid value"
	case ErrUnknown:
		return "unknown node"
	case ErrConnect:
		return "cannot reach node"
	case ErrHostKey:
		return "node host key not accepted"
	case ErrTimeout:
		return "node timed out"
	case ErrRelay:
		return "relay through member failed"
	case ErrCanceled:
		return "canceled"
	}
	return "error"
}

// Error is how this package reports what went wrong. Kind is one of the
// sentinels above (errors.Is matches it, and the causes); Msg is the
// message for a person, without the package tag, which Error adds:
// "cannot reach node: cn001 (10.0.0.9:22): connection refused".
type Error struct {
	Kind error
	Msg  string
	// cause is what the message was formatted from with %w, if anything.
	cause error
}

func (e *Error) Error() string { return "dispatch: " + e.Msg }

// Unwrap returns the sentinel and the cause.
func (e *Error) Unwrap() []error {
	if e.cause == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.cause}
}

// errorf returns an *Error of kind whose message is the kind's phrase,
// ": " and the formatted text. An *Error among args is formatted by its
// Msg, so a person reads one package tag at most.
func errorf(kind error, format string, args ...any) error {
	for i, a := range args {
		if de, ok := a.(*Error); ok {
			args[i] = msgOnly{de}
		}
	}
	cause := fmt.Errorf(format, args...)
	return &Error{Kind: kind, Msg: phrase(kind) + ": " + cause.Error(), cause: cause}
}

// msgOnly is an *Error inside the message of another: its Msg, and its
// chain for errors.Is.
type msgOnly struct{ e *Error }

func (m msgOnly) Error() string { return m.e.Msg }
func (m msgOnly) Unwrap() error { return m.e }

// message is err's text for a person: Msg for an *Error.
func message(err error) string {
	if de, ok := err.(*Error); ok {
		return de.Msg
	}
	return err.Error()
}
