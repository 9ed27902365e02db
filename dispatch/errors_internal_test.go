package dispatch

import (
	"errors"
	"testing"
)

// TestErrorMessage: an *Error matches its sentinel and its cause, says
// its message once with the package tag, and carries it without.
func TestErrorMessage(t *testing.T) {
	for _, k := range errKinds() {
		if got := "dispatch: " + phrase(k.err); got != k.err.Error() {
			t.Errorf("phrase of %v: %q", k.err, got)
		}
	}
	cause := errors.New("connection refused")
	inner := errorf(ErrConnect, "cn1 (10.0.0.9:22): %w", cause)
	err := errorf(ErrRelay, "through member sn1: %w", inner)
	var de *Error
	if !errors.As(err, &de) || de.Msg != "relay through member failed: through member sn1: cannot reach node: cn1 (10.0.0.9:22): connection refused" {
		t.Fatalf("Msg = %q", de.Msg)
	}
	if err.Error() != "dispatch: "+de.Msg {
		t.Errorf("Error() = %q", err.Error())
	}
	for _, target := range []error{ErrRelay, ErrConnect, cause} {
		if !errors.Is(err, target) {
			t.Errorf("errors.Is(err, %v) = false", target)
		}
	}
	if errors.Is(err, ErrTimeout) {
		t.Error("matches ErrTimeout")
	}
	back := remoteErr(message(inner), kindErr(errKind(inner)))
	if back.Error() != inner.Error() || !errors.Is(back, ErrConnect) {
		t.Errorf("through the relay: %v", back)
	}
}
