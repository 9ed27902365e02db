package liveness

// State is what an observer concluded about a member from watching its
// heartbeat counter on the observer's own monotonic clock.
type State string

// Liveness states.
const (
	// Unknown: not observed long enough to say.
	Unknown State = "unknown"
	// Alive: the heartbeat counter moved recently.
	Alive State = "alive"
	// Suspect: the counter has not moved for the suspect timeout; the
	// member may only be slow. Nothing is failed over for a suspect.
	Suspect State = "suspect"
	// Dead: the counter has not moved for the dead timeout.
	Dead State = "dead"
)

// Source answers what is known now about members' liveness. The
// heartbeat observer implements it; Static is a fixed view for
// tests and for callers that decided liveness some other way.
type Source interface {
	LiveState(member string) State
}

// Static is a Source from a map; members not in it are
// Unknown.
type Static map[string]State

// LiveState implements Source.
func (m Static) LiveState(member string) State {
	if s, ok := m[member]; ok {
		return s
	}
	return Unknown
}

// Usable reports whether a member in this state may be given work: alive,
// or unknown (not yet observed long enough to call it dead).
func (s State) Usable() bool { return s == Alive || s == Unknown }
