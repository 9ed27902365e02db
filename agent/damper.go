package agent

import (
	"fmt"
	"sort"
	"time"
)

// Failover damping defaults (docs/AGENT.md, "Damping").
const (
	DefaultFailoverCoolDown = 10 * time.Minute
	DefaultFailoverLimit    = 3
	DefaultFailoverWindow   = 30 * time.Minute
)

// FailoverPolicy damps automatic failover. Whether failover runs at all is
// the site setting autofailover (0 or 1, default 0); the policy is the
// elected leader's.
type FailoverPolicy struct {
	// Disabled keeps this agent out of the election whatever the site
	// setting says: it never fails a member over.
	Disabled bool `json:"disabled,omitempty"`
	// CoolDown: a member that was failed over is not failed over again
	// for this long (default DefaultFailoverCoolDown). A leader that takes
	// over restarts the cool-down of every member failed over before (it
	// compares no clocks, so it cannot know how long ago that was).
	CoolDown time.Duration `json:"cool_down_ns"`
	// Limit is the most failovers one leader performs per Window (default
	// DefaultFailoverLimit per DefaultFailoverWindow): a fault that makes
	// many members look dead at once does not empty the pool.
	Limit  int           `json:"limit"`
	Window time.Duration `json:"window_ns"`
}

func (p FailoverPolicy) withDefaults() FailoverPolicy {
	if p.CoolDown == 0 {
		p.CoolDown = DefaultFailoverCoolDown
	}
	if p.Limit == 0 {
		p.Limit = DefaultFailoverLimit
	}
	if p.Window == 0 {
		p.Window = DefaultFailoverWindow
	}
	return p
}

func (p FailoverPolicy) validate() error {
	if p.CoolDown < 0 || p.Window < 0 || p.Limit < 0 {
		return fmt.Errorf("%w: failover cool-down %v, limit %d, window %v (want positive values; 0 takes the default)", ErrInvalid, p.CoolDown, p.Limit, p.Window)
	}
	return nil
}

// Reasons a failover is held back, as reported in logs and the
// mnpool_failovers_suppressed_total metric.
const (
	SuppressCoolDown    = "cool-down"
	SuppressLimit       = "limit"
	SuppressNeverAlive  = "never-seen-alive"
	SuppressConfirming  = "confirming"
	SuppressLeaseNoHeld = "lease-not-held"
)

// damper keeps the cool-downs and the window of one leader, on the
// leader's monotonic clock. It is used from one goroutine.
type damper struct {
	p      FailoverPolicy
	cool   map[string]time.Time // member -> end of its cool-down
	recent []time.Time          // failovers within the window
}

func newDamper(p FailoverPolicy) *damper {
	return &damper{p: p.withDefaults(), cool: map[string]time.Time{}}
}

// allow says whether member may be failed over now, and if not, why.
func (d *damper) allow(member string, now time.Time) (bool, string) {
	if end, ok := d.cool[member]; ok && now.Before(end) {
		return false, fmt.Sprintf("%s: %s was failed over less than %v ago (%v left)", SuppressCoolDown, member, d.p.CoolDown, end.Sub(now).Round(time.Second))
	}
	d.prune(now)
	if len(d.recent) >= d.p.Limit {
		return false, fmt.Sprintf("%s: %d failovers within %v already (next allowed in %v)", SuppressLimit, len(d.recent), d.p.Window, d.recent[0].Add(d.p.Window).Sub(now).Round(time.Second))
	}
	return true, ""
}

// coolingDown reports whether member is in its cool-down at now.
func (d *damper) coolingDown(member string, now time.Time) bool {
	end, ok := d.cool[member]
	return ok && now.Before(end)
}

// record notes a failover of member at now.
func (d *damper) record(member string, now time.Time) {
	d.cool[member] = now.Add(d.p.CoolDown)
	d.recent = append(d.recent, now)
}

// restore starts a cool-down for member at now without counting it in the
// window (a failover done by an earlier leader).
func (d *damper) restore(member string, now time.Time) {
	if end := now.Add(d.p.CoolDown); end.After(d.cool[member]) {
		d.cool[member] = end
	}
}

// expire forgets the cool-downs that ended and returns their members,
// sorted.
func (d *damper) expire(now time.Time) []string {
	var out []string
	for m, end := range d.cool {
		if !now.Before(end) {
			out = append(out, m)
			delete(d.cool, m)
		}
	}
	sort.Strings(out)
	return out
}

func (d *damper) prune(now time.Time) {
	i := 0
	for i < len(d.recent) && !now.Before(d.recent[i].Add(d.p.Window)) {
		i++
	}
	d.recent = d.recent[i:]
}
