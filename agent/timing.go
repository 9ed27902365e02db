package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mnpool/mnpool/pool"
)

// Timing defaults. A zero field of Timing is derived from the failure
// detection time D of the Galera cluster under the pool database
// (evs.suspect_timeout + evs.inactive_timeout, read from the server; 0 on
// SQLite): see Timing.Resolve and docs/AGENT.md ("Timing").
const (
	DefaultHeartbeatInterval = 1 * time.Second
	// MinSuspectAfter and MinDeadAfter are the floors of the derived
	// suspect and dead timeouts. On the test cluster (D = 6 s) the derived
	// values are 7 s and 12 s; with Galera's production defaults (D = 20 s)
	// 21 s and 40 s.
	MinSuspectAfter = 5 * time.Second
	MinDeadAfter    = 10 * time.Second
	// SuspectMargin is how much longer than D the suspect timeout is.
	SuspectMargin = 1 * time.Second
	// DeadFactor: the dead timeout is at least DeadFactor x D. During a
	// Galera view change commits stall on every node for up to D, and a
	// member whose own database node froze needs up to a few seconds more
	// to move to another node; neither may look like death.
	DeadFactor = 2
)

// Timing is the liveness and election timing of an agent. Every agent of
// a pool should use the same values: the failover leader judges the others
// with its own.
type Timing struct {
	// HeartbeatInterval: how often the member's heartbeat counter is
	// bumped and the other members' counters are sampled.
	HeartbeatInterval time.Duration `json:"heartbeat_interval_ns"`
	// SuspectAfter: a counter silent this long (on the observer's clock)
	// makes its member suspect: shown, never failed over.
	SuspectAfter time.Duration `json:"suspect_after_ns"`
	// DeadAfter: a counter silent this long makes its member dead; with
	// autofailover its nodes move.
	DeadAfter time.Duration `json:"dead_after_ns"`
	// LeaseTTL is the lease of the failover leader (default DeadAfter): a
	// leader that dies is replaced after about this long.
	LeaseTTL time.Duration `json:"lease_ttl_ns"`
	// GaleraDetection is D, the cluster's failure detection time the
	// other values were checked against (0: not Galera).
	GaleraDetection time.Duration `json:"galera_detection_ns"`
}

// Resolve fills the zero fields from the Galera failure detection time
// detect (0 when the database is not Galera) and checks the result:
//
//	HeartbeatInterval  1 s
//	SuspectAfter       max(5 s, D + 1 s)       explicit: > D and >= 2 x interval
//	DeadAfter          max(10 s, 2 x D)        explicit: >= 2 x D and >= SuspectAfter + interval
//	LeaseTTL           DeadAfter               explicit: > D and >= 3 x interval
//
// Values below these limits fail with ErrUnsafeTiming (an explicit value
// is never raised silently).
func (t Timing) Resolve(detect time.Duration) (Timing, error) {
	if t.HeartbeatInterval < 0 || t.SuspectAfter < 0 || t.DeadAfter < 0 || t.LeaseTTL < 0 || detect < 0 {
		return t, fmt.Errorf("%w: negative timing %s", ErrInvalid, t)
	}
	t.GaleraDetection = detect
	if t.HeartbeatInterval == 0 {
		t.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if t.HeartbeatInterval < 10*time.Millisecond {
		return t, fmt.Errorf("%w: heartbeat interval %v (allowed 10ms or more)", ErrInvalid, t.HeartbeatInterval)
	}
	galera := ""
	if detect > 0 {
		galera = fmt.Sprintf(" (Galera failure detection evs.suspect_timeout + evs.inactive_timeout = %v)", detect)
	}
	if t.SuspectAfter == 0 {
		t.SuspectAfter = max(MinSuspectAfter, detect+SuspectMargin, 2*t.HeartbeatInterval)
	}
	if t.SuspectAfter <= detect || t.SuspectAfter < 2*t.HeartbeatInterval {
		return t, fmt.Errorf("%w: suspect timeout %v must be longer than %v%s and at least 2 x the heartbeat interval %v",
			ErrUnsafeTiming, t.SuspectAfter, detect, galera, t.HeartbeatInterval)
	}
	if t.DeadAfter == 0 {
		t.DeadAfter = max(MinDeadAfter, DeadFactor*detect, t.SuspectAfter+t.HeartbeatInterval)
	}
	if t.DeadAfter < DeadFactor*detect || t.DeadAfter < t.SuspectAfter+t.HeartbeatInterval {
		return t, fmt.Errorf("%w: dead timeout %v must be at least %d x %v%s and at least the suspect timeout %v + the heartbeat interval %v",
			ErrUnsafeTiming, t.DeadAfter, DeadFactor, detect, galera, t.SuspectAfter, t.HeartbeatInterval)
	}
	if t.LeaseTTL == 0 {
		t.LeaseTTL = t.DeadAfter
	}
	if t.LeaseTTL <= detect || t.LeaseTTL < 3*t.HeartbeatInterval {
		return t, fmt.Errorf("%w: failover lease TTL %v must be longer than %v%s and at least 3 x the heartbeat interval %v",
			ErrUnsafeTiming, t.LeaseTTL, detect, galera, t.HeartbeatInterval)
	}
	return t, nil
}

func (t Timing) String() string {
	return fmt.Sprintf("heartbeat %v, suspect %v, dead %v, lease %v", t.HeartbeatInterval, t.SuspectAfter, t.DeadAfter, t.LeaseTTL)
}

// galeraDetection is the store's Galera failure detection time; a bad
// value in wsrep_provider_options is ErrInvalid, which Run does not wait
// out.
func galeraDetection(ctx context.Context, s *pool.Store) (time.Duration, error) {
	d, err := s.GaleraDetection(ctx)
	if errors.Is(err, pool.ErrInvalid) {
		return 0, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return d, err
}
