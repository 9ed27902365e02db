package pool

// LiveState is what an observer concluded about a member from watching its
// heartbeat counter on the observer's own monotonic clock.
type LiveState string

// Liveness states.
const (
	// LiveUnknown: not observed long enough to say.
	LiveUnknown LiveState = "unknown"
	// LiveAlive: the heartbeat counter moved recently.
	LiveAlive LiveState = "alive"
	// LiveSuspect: the counter has not moved for the suspect timeout; the
	// member may only be slow. Nothing is failed over for a suspect.
	LiveSuspect LiveState = "suspect"
	// LiveDead: the counter has not moved for the dead timeout.
	LiveDead LiveState = "dead"
)

// LivenessView answers what is known now about members' liveness. The
// heartbeat observer implements it; StaticLiveness is a fixed view for
// tests and for callers that decided liveness some other way.
type LivenessView interface {
	LiveState(member string) LiveState
}

// StaticLiveness is a LivenessView from a map; members not in it are
// LiveUnknown.
type StaticLiveness map[string]LiveState

// LiveState implements LivenessView.
func (m StaticLiveness) LiveState(member string) LiveState {
	if s, ok := m[member]; ok {
		return s
	}
	return LiveUnknown
}

// Usable reports whether a member in this state may be given work: alive,
// or unknown (not yet observed long enough to call it dead).
func (s LiveState) Usable() bool { return s == LiveAlive || s == LiveUnknown }
