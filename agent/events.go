package agent

import (
	"time"

	"github.com/mnpool/mnpool/pool/liveness"
	"github.com/mnpool/mnpool/poolsync"
)

// EventKind names what happened.
type EventKind string

// Event kinds.
const (
	// EventSynced: the pool changed (or a resync ran) and the sync steps
	// ran. Gained and Lost list the nodes this member now serves first,
	// or no longer does: that is how a member learns that nodes were
	// failed over to it.
	EventSynced EventKind = "synced"
	// EventLiveness: this agent's judgement of a member changed.
	EventLiveness EventKind = "liveness"
	// EventLeader: this agent became the failover leader (Leader true,
	// Token its fencing token) or stopped being it.
	EventLeader EventKind = "leader"
	// EventFailover: this agent, as the leader, failed a member over.
	EventFailover EventKind = "failover"
	// EventSuppressed: a dead member was not failed over (Reason says
	// why: cool-down, limit, never seen alive).
	EventSuppressed EventKind = "suppressed"
	// EventDynamic: whether this member serves the DHCP dynamic range
	// changed (the MN guard).
	EventDynamic EventKind = "dynamic"
)

// Event is something an embedding program may react to. Fields not
// relevant to the Kind are zero.
type Event struct {
	Kind EventKind `json:"kind"`
	// Member the event is about (liveness, failover, suppressed), or this
	// agent's member.
	Member string `json:"member"`
	// Time on this process's clock.
	Time time.Time `json:"time"`

	// Liveness.
	State liveness.State `json:"state,omitempty"`
	Prev  liveness.State `json:"prev,omitempty"`

	// Synced.
	Version int64            `json:"version,omitempty"`
	Report  *poolsync.Report `json:"report,omitempty"`
	Gained  []string         `json:"gained,omitempty"`
	Lost    []string         `json:"lost,omitempty"`

	// Leader, failover.
	Leader   bool            `json:"leader,omitempty"`
	Token    int64           `json:"token,omitempty"`
	Failover *FailoverReport `json:"failover,omitempty"`

	// Dynamic.
	ServeDynamic bool  `json:"serve_dynamic,omitempty"`
	Epoch        int64 `json:"epoch,omitempty"`

	// Suppressed, or a failed sync.
	Reason string `json:"reason,omitempty"`
	Err    error  `json:"-"`
}

func (a *Agent) emit(e Event) {
	if a.o.events == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	a.o.events(e)
}
